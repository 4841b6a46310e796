# Copyright (c) varedd_mm contributors. All rights reserved.
"""Upstream gaps of the verified stack, handled in this one place.

Importing this module (``import varedd_mm`` does it first) calls
:func:`apply`. Each fix is narrow, does
nothing where the gap is absent, and has a test in ``tests/test_compat.py``.

===================  ==========================================================
gap                  fix
===================  ==========================================================
mmaction2 1.2.0      The wheel lacks ``mmaction/models/localizers/drn`` that
wheel lacks DRN      ``localizers/__init__`` imports, so ``import
                     mmaction.models`` fails. A stub package is put in
                     ``sys.modules`` whose ``DRN`` raises when built; done
                     only when the folder is missing.
numpy 2 removed      mmaction2 1.2.0 still uses ``np.Inf``, ``np.trapz``,
aliases              ``np.in1d`` (pose transforms, metrics). The names are
                     restored as the numpy 2 equivalents (``np.inf``,
                     ``np.trapezoid``, ``np.isin``) when missing.
torch >= 2.6         ``torch.load`` defaults to ``weights_only=True`` and
``weights_only``     mmengine 0.10.7 cannot load its own checkpoints
                     ("Unsupported global ... HistoryBuffer"):
                     ``tools/test.py`` and ``--resume`` fail. The classes
                     mmengine checkpoints hold are allow-listed
                     (``HistoryBuffer``; numpy arrays,
                     dtypes and scalars), and the ``getattr`` its pickles use
                     to name HistoryBuffer's statistic methods is allowed
                     *only* for those methods. ``weights_only`` stays on.
``--launcher``       mmengine's ``init_dist`` calls ``torch.cuda.set_device``
``pytorch``/         (fails on CPU-only torch) and the runner passes
``slurm`` on CPU     ``device_ids`` to DDP, which CPU modules refuse. Without
                     CUDA: no ``set_device``, ``nccl`` becomes ``gloo``, and
                     ``device_ids`` are dropped for CPU modules. With CUDA
                     the upstream code runs unchanged.
undeclared deps      mmaction2 needs ``importlib_metadata``; ``mmseg.models``
                     needs ``ftfy`` and ``regex``: declared in
                     ``requirements/runtime.txt`` and ``setup.cfg`` extras.
===================  ==========================================================
"""
import importlib.util
import os
import sys
import types

import numpy as np
import torch

_APPLIED = set()


# --------------------------------------------------------------------------
# mmaction2 1.2.0: missing localizers/drn
def mmaction_drn_missing() -> bool:
    """True when the installed mmaction lacks ``models/localizers/drn``."""
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    root = list(spec.submodule_search_locations)[0]
    return not os.path.isdir(os.path.join(root, 'models', 'localizers', 'drn'))


def _install_drn_shim() -> None:
    if 'mmaction.models.localizers.drn' in sys.modules:
        return
    if not mmaction_drn_missing():
        return

    class DRN:  # noqa: D401 - a placeholder that refuses to be built
        """DRN is not shipped in the mmaction2 1.2.0 wheel."""

        def __init__(self, *args, **kwargs):
            raise ImportError(
                'DRN is missing from the installed mmaction2 1.2.0 wheel '
                '(mmaction/models/localizers/drn); install mmaction2 from '
                'source to use it')

    pkg = types.ModuleType('mmaction.models.localizers.drn')
    pkg.__path__ = []  # a package, so 'drn.drn' resolves below
    pkg.__varedd_shim__ = True
    mod = types.ModuleType('mmaction.models.localizers.drn.drn')
    mod.DRN = DRN
    mod.__varedd_shim__ = True
    pkg.drn = mod
    sys.modules[pkg.__name__] = pkg
    sys.modules[mod.__name__] = mod


# --------------------------------------------------------------------------
# numpy 2 removed aliases
NUMPY_ALIASES = {
    'Inf': lambda: np.inf,
    'trapz': lambda: np.trapezoid,
    'in1d': lambda: np.isin,
}


def _restore_numpy_aliases() -> None:
    for name, value in NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value())


# --------------------------------------------------------------------------
# torch.load(weights_only=True) and mmengine checkpoints
def _history_buffer_getattr(obj, name):
    """``getattr`` restricted to HistoryBuffer's statistic methods, which
    mmengine pickles as ``getattr(HistoryBuffer, 'mean')``."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and isinstance(
            name, str) and (name in HistoryBuffer._statistics_methods or name
                            in ('min', 'max', 'current', 'mean')) and callable(
                                getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle_error(f'weights_only load: getattr({obj!r}, {name!r}) is '
                       'not allowed (only HistoryBuffer statistic methods)')


def pickle_error(msg: str) -> Exception:
    import pickle
    return pickle.UnpicklingError(msg)


def checkpoint_safe_globals() -> list:
    """The globals mmengine checkpoints need, for ``add_safe_globals``."""
    from mmengine.logging import HistoryBuffer
    core = getattr(np, '_core', None) or np.core
    safe = [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        core.multiarray._reconstruct,
        core.multiarray.scalar,
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [
            getattr(dtypes, n) for n in dir(dtypes)
            if n.endswith('DType') and isinstance(getattr(dtypes, n), type)
        ]
    return safe


def _allow_mmengine_checkpoints() -> None:
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(checkpoint_safe_globals())


# --------------------------------------------------------------------------
# mmengine distributed launchers on CPU-only torch
def _patch_cpu_launchers() -> None:
    import mmengine.dist.utils as dist_utils
    from mmengine.model import MMDistributedDataParallel

    if getattr(dist_utils, '_varedd_cpu_patch', False):
        return

    def wrap(orig):

        def init(backend='nccl', init_backend='torch', **kwargs):
            if torch.cuda.is_available():
                return orig(backend, init_backend=init_backend, **kwargs)
            return _init_cpu_process_group(backend, **kwargs)

        init.__wrapped__ = orig
        return init

    dist_utils._init_dist_pytorch = wrap(dist_utils._init_dist_pytorch)
    orig_slurm = dist_utils._init_dist_slurm

    def init_slurm(backend='nccl', port=None, init_backend='torch', **kwargs):
        if torch.cuda.is_available():
            return orig_slurm(backend, port, init_backend, **kwargs)
        # the slurm helper sets these before its set_device call
        _slurm_env(port)
        return _init_cpu_process_group(backend, **kwargs)

    init_slurm.__wrapped__ = orig_slurm
    dist_utils._init_dist_slurm = init_slurm

    orig_ddp_init = MMDistributedDataParallel.__init__

    def ddp_init(self, module, detect_anomalous_params=False, **kwargs):
        params = list(module.parameters())
        if kwargs.get('device_ids') and params and all(p.device.type == 'cpu'
                                                       for p in params):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        orig_ddp_init(
            self,
            module=module,
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)

    MMDistributedDataParallel.__init__ = ddp_init
    dist_utils._varedd_cpu_patch = True


def _init_cpu_process_group(backend, **kwargs):
    import torch.distributed as torch_dist
    if backend == 'nccl':
        backend = 'gloo'
    torch_dist.init_process_group(
        backend=backend,
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def _slurm_env(port) -> None:
    import subprocess
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    addr = subprocess.getoutput(
        f'scontrol show hostname {node_list} | head -n1')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ.setdefault('MASTER_ADDR', addr)
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ['RANK'] = str(proc_id)


# --------------------------------------------------------------------------
def apply() -> None:
    """Apply every fix (idempotent)."""
    for name, fn in (('drn', _install_drn_shim), ('numpy',
                                                  _restore_numpy_aliases),
                     ('checkpoints', _allow_mmengine_checkpoints),
                     ('launchers', _patch_cpu_launchers)):
        if name not in _APPLIED:
            fn()
            _APPLIED.add(name)


apply()
