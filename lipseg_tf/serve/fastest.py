"""Which of several interchangeable runners is quickest on this machine, measured where it will run.

The copies of one network that lipseg_tf ships (the U-Net's TensorFlow Lite copies with int8 or float
activations) give the same answers within rounding, but their speed order depends on the CPU: on one
machine (Intel Xeon with AVX-512 VNNI, 2026-12-02) the small U-Net's int8 copy took 10.9 ms a run and
its dynamic-range copy 6.8; on another of the same flags, 1.2 ms int8. No CPU flag tells which, so the
choice is timed when the model is loaded (a few runs each, about as long as loading them), with a margin
for the first (predict.Model's: the int8 copy unless the other is clearly faster), since two copies that
run about as fast would otherwise take turns from one run to the next, each with its own rounding.
(One cause found since: on a Xeon with AMX, XNNPACK's AMX kernels took the int8 copy 2.1 ms a run against
1.2 through its VNNI ones; lipseg_tf keeps XNNPACK off AMX, serve/xnnpack.py.)
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, TypeVar

Key = TypeVar("Key")
ROUNDS = 5  # timed calls of each runner, after one untimed warm-up call


def fastest(runners: Mapping[Key, Callable[[], object]], rounds: int = ROUNDS, margin: float = 0.0,
            clock: Callable[[], float] = time.perf_counter) -> tuple[Key, dict[Key, float]]:
    """(the key whose runner is quickest, each runner's best seconds). Each runner is called once untimed
    (set-up, caches), then `rounds` times in turn, so that a load on the machine weighs on all alike;
    the least time of each is compared (what the runner costs when nothing gets in its way). The first
    runner is kept unless another's is below (1 - margin) times its own: runners that take about as long
    then give the same choice every time. A single runner is returned without calling it."""
    if not runners:
        raise ValueError("fastest: no runners")
    if len(runners) == 1:
        key, = runners
        return key, {}
    for run in runners.values():
        run()
    best = {key: float("inf") for key in runners}
    for _ in range(rounds):
        for key, run in runners.items():
            start = clock()
            run()
            best[key] = min(best[key], clock() - start)
    first = next(iter(runners))
    quickest = min(best, key=best.get)
    return (quickest if best[quickest] < (1.0 - margin) * best[first] else first), best
