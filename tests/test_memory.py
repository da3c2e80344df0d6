"""lipseg_tf/memory.py: with glibc's thresholds raised, freed photo-sized arrays are reused by the next
ones instead of being faulted in afresh (each case in a fresh process, whose allocator starts as
glibc's does)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Arrays of 1-5 MiB, as a photo's (a 1024 x 768 photo is 2.4 MB), each size made once, then made and
# dropped 50 times; prints the minor page faults of the 50 and how many pages fresh memory for all of
# them would have been.
ALLOCATE = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from lipseg_tf.memory import keep_freed_memory
    assert keep_freed_memory()
rng = np.random.default_rng(0)
for size in range(1, 6):  # every size made once first: the heap has grown to hold them
    array = np.ones(size << 20, np.uint8)
    doubled = array * 2
    del array, doubled
before, pages = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, 0
for _ in range(50):
    size = int(rng.integers(1, 6)) << 20
    array = np.ones(size, np.uint8)
    doubled = array * 2
    pages += 2 * size // resource.getpagesize()
    del array, doubled
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, pages)
"""


def _faults(mode: str) -> tuple[int, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", ALLOCATE, mode], capture_output=True, text=True, env=env,
                         check=True, timeout=120).stdout.split()
    return int(out[0]), int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds are glibc's")
def test_kept_memory_takes_a_fraction_of_the_page_faults():
    plain, pages = _faults("plain")
    kept, _ = _faults("keep")
    # glibc's own thresholds: many of the arrays in fresh pages (6,296 of 74,240 pages here, every run)
    assert plain > pages // 30, (plain, pages)
    assert kept < plain // 3 and kept < pages // 30, (kept, plain, pages)  # 770 here
