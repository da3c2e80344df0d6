"""Run one function over many items, on all cores, with a progress bar."""

from __future__ import annotations

import functools
import multiprocessing
import os
from typing import Callable, Iterable, Iterator, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")


def _worker_count(workers: int | None, items: int) -> int:
    """Processes to use: all cores when None, never more than there are items."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return min(workers, max(1, items))


def worker_count(workers: int | None, items: int) -> int:
    """The processes map_progress and imap_progress use for this many items."""
    return _worker_count(workers, items)


def available_memory_bytes() -> int | None:
    """Memory the machine has available now (MemAvailable of /proc/meminfo), None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _indexed(fn: Callable, job: tuple[int, object]) -> tuple[int, object]:
    """Call fn on one item and keep its position, so unordered results can be put back in order."""
    position, item = job
    return position, fn(item)


def map_progress(fn: Callable[[Item], Result], items: Iterable[Item], workers: int | None = None,
                 desc: str | None = None, unit: str = "image") -> list[Result]:
    """Apply fn to every item and return the results in the order of the items.

    workers: processes to use; None means every core (os.cpu_count()), 1 runs in this process (easy
    to debug, no pickling). fn must be a module-level function (or a functools.partial of one) so a
    worker process can receive it. An exception raised by fn in a worker (a UserError included) is
    re-raised here with its message intact; functions that want to skip bad items and go on should
    return the problem as a value instead.
    """
    items = list(items)
    workers = _worker_count(workers, len(items))
    # disable=None: no bar when stderr is not a terminal (logs, CI), so logs stay readable.
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=None, dynamic_ncols=True)
    results: list = [None] * len(items)
    try:
        if workers == 1:
            for position, item in enumerate(items):
                results[position] = fn(item)
                bar.update()
            return results
        # Chunks big enough to amortise the inter-process traffic, small enough that the bar moves
        # and the last chunks keep every worker busy.
        chunksize = max(1, min(64, len(items) // (workers * 8)))
        # forkserver: workers fork from a fresh server process, never from this one, which may hold
        # TensorFlow's threads and locks (forking those can deadlock).
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:
            for position, result in pool.imap_unordered(functools.partial(_indexed, fn),
                                                        enumerate(items), chunksize=chunksize):
                results[position] = result
                bar.update()
        return results
    finally:
        bar.close()


def imap_progress(fn: Callable[[Item], Result], items: Iterable[Item], workers: int | None = None,
                  desc: str | None = None, unit: str = "image") -> Iterator[Result]:
    """Like map_progress, but yields the results one by one, in the order of the items.

    For results too big to hold all at once (encoded images streamed into a file): the caller
    consumes each while the workers compute the next ones.
    """
    items = list(items)
    workers = _worker_count(workers, len(items))
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=None, dynamic_ncols=True)
    try:
        if workers == 1:
            for item in items:
                yield fn(item)
                bar.update()
            return
        chunksize = max(1, min(16, len(items) // (workers * 8)))
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:
            for result in pool.imap(fn, items, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()
