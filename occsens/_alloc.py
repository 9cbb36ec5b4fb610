"""Keep glibc from mapping and unmapping large activations on every forward pass.

With glibc's default malloc, tensors above the mmap threshold are mapped fresh for
every forward and each page faults in again; at batches of 256 and more the forward
pass runs 1.5-2.5x slower on the development machine (figures from
``shared/bench/peers-2026-11-26.md``). Turning off mmap for large blocks and keeping
freed memory in the heap removes those faults. It is a process-wide setting, applied
once, and only where glibc is the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_applied = False


def keep_heap_memory() -> bool:
    """Apply the allocator settings once; return whether they are in force."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        return False
    big = 1 << 30
    ok = mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, big) and mallopt(_M_TOP_PAD, 64 << 20)
    _applied = bool(ok)
    return _applied
