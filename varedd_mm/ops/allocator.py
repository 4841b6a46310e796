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
speed table); the price is that the process keeps its peak memory.
"""
import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_INT_MAX = 2**31 - 1


def retain_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse (no ``mmap``
    per large block, no trimming of the heap).

    Returns:
        bool: Whether the setting applied (Linux with glibc); ``False``
        elsewhere, where nothing changes.
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only (musl has no such symbol)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(
        mallopt(param, value) == 1
        for param, value in ((_M_MMAP_THRESHOLD, _INT_MAX),
                             (_M_TRIM_THRESHOLD, _INT_MAX), (_M_TOP_PAD,
                                                             64 << 20)))
