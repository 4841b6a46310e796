# Copyright (c) varedd_mm contributors. All rights reserved.
"""CPU memory allocation for inference: keep freed memory for reuse.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves
blocks above its mmap threshold (at most 32 MB by default) with fresh
``mmap`` pages and unmaps them on free, so every large activation of a
video model (a 8x256x4x56x56 float map is 103 MB) is new memory whose
pages fault in on first write. On this machine that made a strided rebuild
into a fresh 103 MB output 4x slower than into reused memory (35 ms against
8.7 ms; docs/engine.md). :func:`retain_freed_memory` raises the thresholds
at run time (``mallopt``), which is what exporting
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` before starting
Python does: freed blocks stay in the heap and the next forward reuses
them. It is a process-wide setting that helps every model in the process
alike (the base as much as the VA-RED² model, measured in the README's
speed table); the price is that the process keeps its peak memory. How
much memory glibc can then reuse depends on the heap's layout: a loop
that allocates and frees one 64 MB block here still faulted its pages in
most rounds, while the models of the benchmark ran up to 2x faster
(README), so measure it on your model.
"""
import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def _glibc():
    """glibc's ``mallopt``, or ``None`` when the process does not allocate
    through glibc's malloc (another C library, or an allocator such as
    jemalloc / tcmalloc loaded with ``LD_PRELOAD``)."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        libc.gnu_get_libc_version  # glibc only (musl has no such symbol)
        mallopt = libc.mallopt
        # the malloc the process calls must be glibc's own
        used = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
        own = ctypes.cast(libc.malloc, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None
    if used != own:
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def retain_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse: no ``mmap`` per
    large block (the mmap threshold raised, or where a glibc caps it, mmap
    switched off) and no trimming of the heap.

    Returns:
        bool: Whether it applied; ``False`` (and nothing changed) where
        the process does not allocate through glibc's ``malloc``.
    """
    mallopt = _glibc()
    if mallopt is None:
        return False
    # every setting is tried; some glibc versions cap the threshold at
    # 32 MB, then mmap is switched off instead
    no_mmap = (
        mallopt(_M_MMAP_THRESHOLD, _INT_MAX) == 1
        or mallopt(_M_MMAP_MAX, 0) == 1)
    no_trim = mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
    mallopt(_M_TOP_PAD, 64 << 20)  # growth step of the heap, optional
    return no_mmap and no_trim
