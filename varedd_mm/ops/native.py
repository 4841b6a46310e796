# Copyright (c) varedd_mm contributors. All rights reserved.
"""The one-pass rebuild writer and the gate's pooling (``csrc/rebuild.cpp``),
built on first use.

A VA-RED² layer at a reduced choice writes its full output from a small
computed block; with torch ops that takes several memory passes over the
output (place the computed part with its affine, copy the ghost channels,
two passes per rebuilt frame, then the ReLU that follows the layer). The
C++ kernel ``torch.ops.varedd_mm.rebuild`` writes every output element
once, with its affine and the ReLU (measurements: docs/engine.md, "One
pass per output"); ``rebuild_into`` writes a group of clips that share a
choice straight into their rows of the batch output (grouped inference,
no scatter copy). The rebuild runs for fused (inference) models on the CPU
in float32. ``torch.ops.varedd_mm.gate_pool`` is the gate's pooled input
(the mean over every ``pool_stride``-th pixel, and the mean absolute frame
difference there) without autograd on the CPU in float32: torch's strided
reductions read those pixels several times slower than a full pooling
reads every pixel. Everything else (CUDA, other dtypes, autograd,
tracing, ``torch.compile``) runs torch ops, which compute the same values
to float rounding.

The extension is compiled with ``torch.utils.cpp_extension.load`` (a C++
compiler and ``ninja``) the first time it is needed, or up front with
``python -m varedd_mm.ops.native`` (``tools/setup_env.sh`` does), in about
a minute, and cached by torch under ``TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions``) for this CPU, torch and environment. Set
``VARED2_NATIVE=0`` to never build or use it. If it cannot be built, a
warning says why, once, and the torch-op path runs.
"""
import hashlib
import os
import os.path as osp
import platform
import sys
import time
import warnings
from typing import List, Optional, Tuple

import torch

_SOURCE = osp.join(osp.dirname(__file__), 'csrc', 'rebuild.cpp')
_state = dict(module=None, tried=False, error=None)
# a build lock older than this is left over from a killed build
_STALE_LOCK_S = 15 * 60


def native_enabled() -> bool:
    """Whether the kernel may be used (``VARED2_NATIVE`` is not ``0``)."""
    value = os.environ.get('VARED2_NATIVE', '1')
    if value not in ('0', '1'):
        raise ValueError(f'VARED2_NATIVE must be 0 or 1, got {value!r}')
    return value == '1'


def _build_name():
    """Extension name and architecture flags. On x86 Linux it is built for
    this CPU's vector units (``-march=native``); the name carries a hash of
    the CPU's flags, the torch version and the Python environment, so that
    machines sharing a home directory (a cluster's login and compute
    nodes) and environments with another torch never load each other's
    build."""
    key = [torch.__version__, sys.prefix, platform.machine()]
    arch = []
    try:
        with open('/proc/cpuinfo') as f:
            key.append(next(line for line in f if line.startswith('flags')))
        arch = ['-march=native']
    except (OSError, StopIteration):
        pass
    digest = hashlib.sha1('\n'.join(key).encode()).hexdigest()[:10]
    return f'varedd_mm_rebuild_{digest}', arch


def _clear_stale_lock(name: str) -> None:
    """torch waits for ever on the lock file of a build that was killed;
    remove one that is older than any build takes."""
    from torch.utils.cpp_extension import _get_build_directory
    lock = osp.join(_get_build_directory(name, verbose=False), 'lock')
    try:
        age = time.time() - os.path.getmtime(lock)
    except OSError:
        return
    if age > _STALE_LOCK_S:
        warnings.warn(f'varedd_mm: removing the lock of a build that did '
                      f'not finish ({lock}, {age / 60:.0f} min old)')
        os.remove(lock)


def load_native():
    """The ops of the compiled extension (``torch.ops.varedd_mm``), building
    it on the first call; ``None`` when disabled or when it cannot be built
    (the reason is in :func:`native_error`)."""
    if not native_enabled():
        return None
    if not _state['tried']:
        _state['tried'] = True
        try:
            from torch.utils.cpp_extension import (load,
                                                   verify_ninja_availability)
            verify_ninja_availability()
            name, arch = _build_name()
            _clear_stale_lock(name)
            load(
                name=name,
                sources=[_SOURCE],
                is_python_module=False,  # registers torch.ops.varedd_mm
                # at::parallel_for needs OpenMP; with -fopenmp the kernel
                # links libgomp.so.1, the runtime torch's pip wheels load
                # (one thread pool, torch.set_num_threads applies)
                extra_cflags=['-O3', '-fopenmp'] + arch,
                extra_ldflags=['-fopenmp'],
                verbose=False)
            _state['module'] = torch.ops.varedd_mm
        except Exception as e:  # no compiler or ninja, headers missing
            _state['error'] = f'{type(e).__name__}: {e}'
            warnings.warn(
                'varedd_mm: the one-pass rebuild kernel could not be built '
                f'({_state["error"].splitlines()[0]}; it needs a C++ '
                'compiler and ninja); the torch-op path runs instead (same '
                'values, more memory passes)')
    return _state['module']


def native_error() -> Optional[str]:
    """Why the extension is not available (after :func:`load_native`)."""
    return _state['error']


#: The most blocks the kernel takes (``kMaxBlocks`` in csrc/rebuild.cpp).
MAX_BLOCKS = 8


def native_applies(blocks: List[torch.Tensor]) -> bool:
    """Whether the kernel can write the output of these computed blocks:
    at most :data:`MAX_BLOCKS` CPU float32 tensors of 4 or 5 dims, no
    autograd, not traced or compiled."""
    b = blocks[0]
    return (len(blocks) <= MAX_BLOCKS and b.device.type == 'cpu'
            and b.dim() in (4, 5) and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
            and all(x.dtype == torch.float32 and x.device == b.device
                    for x in blocks)
            and not (torch.is_grad_enabled() and any(x.requires_grad
                                                     for x in blocks))
            and load_native() is not None)


def native_rebuild(
        blocks: List[torch.Tensor],
        t_out: int,
        ratio: int,
        coef: torch.Tensor,
        relu: bool,
        into: Optional[Tuple[torch.Tensor, List[int]]] = None,
        residual: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
    """Write the layer output from its computed channel blocks in one pass.

    Args:
        blocks (list[Tensor]): ``(N, C_b, T_c, H, W)`` (or ``(N, C_b, H,
            W)`` with ``ratio=1``), channel blocks of the computed frames,
            in the first block's memory format (others are converted).
        t_out (int): Frames of the output (``1`` for 4D blocks).
        ratio (int): Temporal reduction ``R`` (``1``: no temporal rebuild).
        coef (Tensor): ``(2 + 3 (R - 1) + 2, C)`` per-channel terms (see
            ``csrc/rebuild.cpp``; :func:`~.cheap_ops.native_terms`).
        relu (bool): Apply a ReLU to every output element (after the
            residual, if there is one: then it is the residual block's
            ReLU and goes with the residual).
        into (tuple, optional): ``(out, rows)``: write clip ``n`` of the
            blocks into ``out[rows[n]]`` (a batch output, ``(B, C, t_out,
            H, W)`` in the blocks' memory format) instead of a new tensor;
            ``rows`` distinct. Used when it is in that format, else ignored.
        residual (Tensor, optional): Added to every output element before
            the ReLU (a residual block's sum): shaped like the output, or
            with ``into`` like ``out`` (clip ``n`` reads ``residual[rows
            [n]]``; when ``into`` is ignored, neither the residual nor the
            ReLU after it is applied: the caller adds both as it copies the
            returned output in). Converted to the blocks' memory format if
            it is not in it.

    Returns:
        Tensor | None: ``(N, C, t_out, H, W)`` (or ``(N, C, H, W)``) in the
        first block's memory format (contiguous where that is ambiguous:
        every dim after C of size 1); None when written ``into``.
    """
    from .backend import canonical_strides, memory_format_of
    first = blocks[0]
    fmt = (
        torch.contiguous_format
        if first.is_contiguous() else memory_format_of(first))
    four_d = first.dim() == 4
    flat = []
    for b in blocks:
        b = b.contiguous(memory_format=fmt)  # a no-op for conv outputs
        flat.append((b.unsqueeze(2) if four_d else b).flatten(3))
    channels_last = fmt != torch.contiguous_format

    def flat_view(t):  # (B, C, t_out, S); view() fails rather than copies
        t = t.unsqueeze(2) if four_d else t
        return t.view(t.shape[:3] + (-1, ))

    if into is not None and not into[0].is_contiguous(memory_format=fmt):
        into = None  # not written into: the caller copies the output in
        if residual is not None:  # and adds the residual and its ReLU
            residual, relu = None, False
    res = None
    if residual is not None:
        res = flat_view(residual.contiguous(memory_format=fmt))
    if into is not None:
        out, rows = into
        # the kernel writes into out
        load_native().rebuild_into(flat, t_out, ratio, coef, relu,
                                   channels_last, flat_view(out), rows, res)
        return None
    out = load_native().rebuild(flat, t_out, ratio, coef, relu, channels_last,
                                res)
    out = out.unflatten(3, tuple(first.shape[-2:]))
    return canonical_strides(out.squeeze(2) if four_d else out, fmt)


def native_gate_pool(x: torch.Tensor, stride: int,
                     tdiff: bool) -> torch.Tensor:
    """The gate's pooled input in one read of the sampled pixels.

    Args:
        x (Tensor): ``(N, C, T, H, W)`` or ``(N, C, H, W)`` layer input,
            float32 on the CPU, any memory format.
        stride (int): Every ``stride``-th pixel in H and W is read.
        tdiff (bool): Also the mean absolute difference of consecutive
            frames at those pixels (zeros for one frame; 5-d ``x``).

    Returns:
        Tensor: ``(N, C)``, or ``(N, 2C)`` with ``tdiff`` (mean first).
    """
    if x.dim() == 4:
        x = x.unsqueeze(2)
    return load_native().gate_pool(x, stride, tdiff)


if __name__ == '__main__':
    # python -m varedd_mm.ops.native: build (or find) the kernel now
    if load_native() is None:
        print('rebuild kernel not available: '
              f'{native_error() or "VARED2_NATIVE=0"}')
    else:
        print('rebuild kernel ready: torch.ops.varedd_mm.rebuild')
