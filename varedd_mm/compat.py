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
                     ``device_ids`` are dropped for CPU modules; the gloo
                     process group is destroyed at exit (left to the
                     interpreter's shutdown, gloo's threads now and again
                     abort the finished process). With CUDA the upstream
                     code runs unchanged.
undeclared deps      mmaction2 needs ``importlib_metadata``; ``mmseg.models``
                     needs ``ftfy`` and ``regex``: declared in
                     ``requirements/runtime.txt`` and ``setup.cfg`` extras.
MultiSports          mmaction2 1.2.0 ``multisports_utils.Dataset.get_vid_dets``
video-mAP            (``link_tubes`` calls it for ``MultiSportsMetric``)
(stale score;        scores every box with ``frm_det[3]``, the variable of an
numpy ``int()``)     earlier, finished loop: the *last* detection's score. All
                     tubes tie or fall under the 0.005 tube-score cut, so
                     video-mAP is wrong (frame-mAP is not affected): the
                     method is replaced by one that uses each row's own
                     score (``frm_dets[3]``). And ``iou3dt_voc`` (videoAP)
                     calls ``int()`` on 1-element arrays, a ``TypeError`` on
                     the installed numpy: replaced by the same IoU via
                     ``.item()``. Each is done only when a probe of the
                     installed function shows the fault.
===================  ==========================================================
"""
import atexit
import importlib.util
import os
import sys
import types
import warnings
from collections import defaultdict

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
    # gloo's threads outlive an un-destroyed process group at interpreter
    # exit; torch 2.13 then aborts now and again ("terminate called without
    # an active exception", exit code -6) after a finished run
    atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    import torch.distributed as torch_dist
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


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
# mmaction2 1.2.0: MultiSports video-mAP tubes scored with a stale variable
def _multisports_utils():
    """mmaction's ``multisports_utils`` module, or None without mmaction."""
    if importlib.util.find_spec('mmaction') is None:
        return None
    from mmaction.evaluation.functional import multisports_utils
    return multisports_utils


def multisports_stale_score_bug() -> bool:
    """True when the installed ``multisports_utils.Dataset.get_vid_dets``
    gives a box the score of another (the last) detection.

    A behaviour probe: two detections of one frame with scores 0.9 and 0.1
    must keep them as the last column of the per-frame boxes.
    """
    module = _multisports_utils()
    if module is None:
        return False
    anno = dict(test_videos=[['v']], nframes={'v': 1}, labels=['a'])
    # <video_idx> <frame> <label> <score> <x1> <y1> <x2> <y2>
    dets = np.array([[0, 1, 0, 0.9, 0, 0, 10, 10],
                     [0, 1, 0, 0.1, 20, 20, 30, 30]])
    try:
        boxes = module.Dataset(anno, dets).get_vid_dets()['v'][1][0]
    except Exception:  # a reworked upstream layout is not this gap
        return False
    return not np.allclose(boxes[:, -1], dets[:, 3])


def _multisports_get_vid_dets(self):
    """``Dataset.get_vid_dets`` of mmaction's ``multisports_utils`` with
    each box scored by its own detection.

    Rows of ``self.frm_alldets`` are ``<video_idx> <frame> <label> <score>
    <x1> <y1> <x2> <y2>``. Returns (and stores as ``self.vid_det``)
    ``{video: {frame (1-based): {label: array (N, 5) x1 y1 x2 y2 score}}}``
    with every frame and label of a video that has detections present; also
    stores the rows grouped by video as ``self.vid_frm_det``.
    """
    self.vid_frm_det = defaultdict(list)
    for row in self.frm_alldets:
        self.vid_frm_det[self.video_list[int(row[0])]].append(row)

    self.vid_det = dict()
    for vid_name, rows in self.vid_frm_det.items():
        frames = {
            frm_idx: {
                label_idx: np.empty((0, 5))
                for label_idx in range(len(self.labels))
            }
            for frm_idx in range(1, self.nframes[vid_name] + 1)
        }
        self.vid_det[vid_name] = frames
        for row in rows:
            frm_idx, label_idx = int(row[1]), int(row[2])
            # the fix: this row's score (upstream used the last row's)
            box = np.array([*row[-4:], row[3]])[None, :]
            frames[frm_idx][label_idx] = np.concatenate(
                [frames[frm_idx][label_idx], box])
    return self.vid_det


def multisports_iou3dt_scalar_bug() -> bool:
    """True when ``multisports_utils.iou3dt_voc`` fails on the installed
    numpy: it calls ``int()`` on the 1-element arrays ``np.where`` returns,
    deprecated since numpy 1.25 and a ``TypeError`` on newer numpy."""
    module = _multisports_utils()
    if module is None:
        return False
    tube = np.array([[1.0, 0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 0.0, 10.0, 10.0]])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        try:
            module.iou3dt_voc(tube, tube)
        except TypeError:
            return True
    return False


def _frame_row(tube, frame) -> int:
    """Row of ``frame`` in ``tube`` (first column: frame numbers); like
    upstream, anything but exactly one such row is an error."""
    return int(np.where(tube[:, 0] == frame)[0].item())


def _multisports_iou3dt_voc(b1, b2, spatialonly=False, temporalonly=False):
    """``iou3dt_voc`` of mmaction's ``multisports_utils`` (spatio-temporal
    IoU of two tubes with rows ``<frame> <x1> <y1> <x2> <y2> ...``) without
    the ``int()`` of a 1-element array."""
    from mmaction.evaluation.functional.multisports_utils import iou3d_voc
    start = max(b1[0, 0], b2[0, 0])
    end = min(b1[-1, 0], b2[-1, 0])
    if end < start:
        return 0.0
    t_inter = end - start
    t_union = max(b1[-1, 0], b2[-1, 0]) - min(b1[0, 0], b2[0, 0])
    if temporalonly:
        return t_inter / t_union
    common1 = b1[_frame_row(b1, start):_frame_row(b1, end) + 1, :]
    common2 = b2[_frame_row(b2, start):_frame_row(b2, end) + 1, :]
    spatial = iou3d_voc(common1, common2)
    return spatial * (1. if spatialonly else t_inter / t_union)


def _fix_multisports_video_map() -> None:
    if multisports_stale_score_bug():
        # ``link_tubes`` (imported by name into the metric's module) builds
        # ``Dataset`` from its own module, so patching the class method
        # reaches every caller
        dataset_cls = _multisports_utils().Dataset
        _multisports_get_vid_dets.__wrapped__ = dataset_cls.get_vid_dets
        dataset_cls.get_vid_dets = _multisports_get_vid_dets
    if multisports_iou3dt_scalar_bug():
        # looked up as a module global by ``videoAP`` / ``videoAP_error``;
        # neither the metric nor ``functional/__init__`` imports it by name
        module = _multisports_utils()
        _multisports_iou3dt_voc.__wrapped__ = module.iou3dt_voc
        module.iou3dt_voc = _multisports_iou3dt_voc


# --------------------------------------------------------------------------
def apply() -> None:
    """Apply every fix (idempotent)."""
    for name, fn in (('drn', _install_drn_shim), ('numpy',
                                                  _restore_numpy_aliases),
                     ('checkpoints', _allow_mmengine_checkpoints),
                     ('launchers', _patch_cpu_launchers),
                     ('multisports', _fix_multisports_video_map)):
        if name not in _APPLIED:
            fn()
            _APPLIED.add(name)


apply()
