"""Allocator tuning for the fabctl process (glibc only; elsewhere nothing changes).

The mesh stages make and drop many arrays of a few to a few tens of megabytes. With glibc's defaults each
one above the (adaptive) mmap threshold is a fresh mapping, and every page of it is faulted in again: on an
880k-triangle validation that was a fifth of the CPU time. Raising the mmap threshold to its maximum (32 MiB)
and keeping up to ``TRIM_BYTES`` of freed heap lets the next array reuse pages already mapped. The cost is
memory held after a peak (at most ``TRIM_BYTES`` above what is in use), which suits a command that exits and
a daemon that validates again and again.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold on 64-bit
TRIM_BYTES = 512 * 1024 * 1024


def tune_allocator() -> bool:
    """Set the thresholds; True when the C library took them (glibc), False when it has no ``mallopt``."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
