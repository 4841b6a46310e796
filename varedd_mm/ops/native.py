# Copyright (c) varedd_mm contributors. All rights reserved.
"""The one-pass rebuild writer (``csrc/rebuild.cpp``), built on first use.

A VA-RED² layer at a reduced choice writes its full output from a small
computed block; with torch ops that takes several memory passes over the
output (place the computed part with its affine, copy the ghost channels,
two passes per rebuilt frame, then the ReLU that follows the layer). The
C++ kernel writes every output element once, with its affine and the ReLU
(docs/engine.md has the measurements). It covers CPU float32 inference;
everything else (CUDA, other dtypes, training, autograd) runs the torch-op
path, which computes the same values.

The extension is compiled with ``torch.utils.cpp_extension.load`` the first
time it is needed (about a minute; cached by torch under
``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``). Set
``VARED2_NATIVE=0`` to never build or use it. If it cannot be built (no
C++ compiler), a warning says so once and the torch-op path runs.
"""
import hashlib
import os
import os.path as osp
import warnings
from typing import List, Optional

import torch

_SOURCE = osp.join(osp.dirname(__file__), 'csrc', 'rebuild.cpp')
_state = dict(module=None, tried=False, error=None)


def native_enabled() -> bool:
    """Whether the kernel may be used (``VARED2_NATIVE`` is not ``0``)."""
    value = os.environ.get('VARED2_NATIVE', '1')
    if value not in ('0', '1'):
        raise ValueError(f'VARED2_NATIVE must be 0 or 1, got {value!r}')
    return value == '1'


def load_native():
    """The ops of the compiled extension (``torch.ops.varedd_mm``), building
    it on the first call; ``None`` when disabled or when it cannot be built
    (the reason is in :func:`native_error`)."""
    if not native_enabled():
        return None
    if not _state['tried']:
        _state['tried'] = True
        try:
            from torch.utils.cpp_extension import load
            name, arch = _build_name()
            load(
                name=name,
                sources=[_SOURCE],
                is_python_module=False,  # registers torch.ops.varedd_mm
                # at::parallel_for runs on torch's OpenMP runtime (the
                # libgomp torch loaded) only when compiled with OpenMP
                extra_cflags=['-O3', '-fopenmp'] + arch,
                extra_ldflags=['-fopenmp'],
                verbose=False)
            _state['module'] = torch.ops.varedd_mm
        except Exception as e:  # no compiler, no ninja, headers missing
            _state['error'] = f'{type(e).__name__}: {e}'
            warnings.warn(
                'varedd_mm: the one-pass rebuild kernel could not be built '
                f'({_state["error"].splitlines()[0]}); the torch-op path '
                'runs instead (same values, more memory passes)')
    return _state['module']


def _build_name():
    """Extension name and architecture flags: built for this CPU's vector
    units (``-march=native``) on x86 Linux, under a name that carries a hash
    of the CPU's flags, so that machines sharing a home directory (a
    cluster's login and compute nodes) never load a build for another
    CPU."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = next(line for line in f if line.startswith('flags'))
    except (OSError, StopIteration):
        return 'varedd_mm_rebuild', []
    digest = hashlib.sha1(flags.encode()).hexdigest()[:10]
    return f'varedd_mm_rebuild_{digest}', ['-march=native']


def native_error() -> Optional[str]:
    """Why the extension is not available (after :func:`load_native`)."""
    return _state['error']


def native_applies(blocks: List[torch.Tensor]) -> bool:
    """Whether the kernel can write the output of these computed blocks:
    CPU float32 tensors of 4 or 5 dims, no autograd, not traced."""
    b = blocks[0]
    return (b.device.type == 'cpu' and b.dim() in (4, 5)
            and not torch.jit.is_tracing()
            and all(x.dtype == torch.float32 and x.device == b.device
                    for x in blocks)
            and not (torch.is_grad_enabled() and any(x.requires_grad
                                                     for x in blocks))
            and load_native() is not None)


def native_rebuild(blocks: List[torch.Tensor], t_out: int, ratio: int,
                   coef: torch.Tensor, relu: bool) -> torch.Tensor:
    """Write the layer output from its computed channel blocks in one pass.

    Args:
        blocks (list[Tensor]): ``(N, C_b, T_c, H, W)`` (or ``(N, C_b, H,
            W)`` with ``ratio=1``), channel blocks of the computed frames,
            all channels-last or all contiguous (others are made
            contiguous first).
        t_out (int): Frames of the output (``1`` for 4D blocks).
        ratio (int): Temporal reduction ``R`` (``1``: no temporal rebuild).
        coef (Tensor): ``(2 + 3 (R - 1) + 2, C)`` per-channel terms (see
            ``csrc/rebuild.cpp``; :meth:`TemporalCheapOp.native_coef`).
        relu (bool): Apply a ReLU to every output element.

    Returns:
        Tensor: ``(N, C, t_out, H, W)`` (or ``(N, C, H, W)``) in the first
        block's layout.
    """
    from .backend import canonical_strides, is_channels_last, memory_format_of
    four_d = blocks[0].dim() == 4
    channels_last = is_channels_last(blocks[0])
    flat = []
    for b in blocks:
        # each block in the first one's layout (a no-op for the conv outputs)
        b = b.contiguous(memory_format=memory_format_of(blocks[0]))
        flat.append((b.unsqueeze(2) if four_d else b).flatten(3))
    spatial = blocks[0].shape[-2:]
    out = load_native().rebuild(flat, t_out, ratio, coef, relu, channels_last)
    out = out.unflatten(3, tuple(spatial))
    return canonical_strides(out.squeeze(2) if four_d else out)
