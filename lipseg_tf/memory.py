"""Keeping freed memory for reuse, so that a long run over photos or frames does not page-fault afresh
for every array it makes.

glibc hands blocks above its mmap threshold (128 KiB at first, then as large as the largest such block
freed so far) to the kernel on free, and returns heap memory above its trim threshold. A photo's arrays
(a 1024 x 768 photo is 2.4 MB, its class probabilities more) are made and dropped for every photo, so
each comes back as fresh pages that the kernel must fault in and zero: about 1,600 minor page faults
and 4-5 ms of system time per photo in predict.py's pipeline on the development machine (a virtual
machine, where faults are dear), against 16 faults and 0.7 ms with the thresholds below (150 speed
scenes of the dev test split, one core, 2026-12-02; benchmarks/speed.py then runs with it too, as
predict.py does).

keep_freed_memory() raises both thresholds for the whole process: blocks under MMAP_THRESHOLD come from
the heap, and up to TRIM_THRESHOLD of free heap is kept. predict.py calls it; a Python program using
the Segmenter on many images may call it too. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

MMAP_THRESHOLD = 32 << 20   # as high as glibc's own dynamic threshold goes on 64-bit systems
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (module docstring); True when glibc took both."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):  # no C library by that name, or one without mallopt (not glibc)
        return False
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
