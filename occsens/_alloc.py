"""Keep glibc from mapping and unmapping large activations on every forward pass.

With glibc's default malloc, tensors above the mmap threshold are mapped fresh for
every forward and each page faults in again; at batches of 256 and more the forward
pass runs 1.5-2.5x slower on the development machine (ResNet-20 at batch 1024: 3.1-3.9 s
instead of 1.2 s, 924k minor faults; ``shared/bench/peers-2026-11-26.md``, "The allocator
trap"). Turning off mmap for large blocks and keeping freed memory in the heap removes
those faults.

It is a process-wide setting, so the library never applies it: importing occsens or calling
``occlude`` in a notebook or a training job leaves that process's allocator as it was
(``tests/test_packaging.py`` checks it). Only occsens's own processes opt in: the ``occsens``
command (``occsens.cli.main``) and the benchmark (``occsens.bench``). In a process of yours, the
same settings come from the environment before Python starts:
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864``. Without them
the engine's default CPU chunks (48 MB of estimated activations: 64 images at 32x32) stay below the
batches of 256 and more where the trap was measured.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_applied = False  # the settings are in force in this process
_called = False  # keep_heap_memory() ran in this process (tests: the library must never call it)


def keep_heap_memory() -> bool:
    """Apply the allocator settings once; return whether they are in force."""
    global _applied, _called
    _called = True
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
