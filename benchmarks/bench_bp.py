"""Benchmark: lpbook.bp.posteriors for P = 10**5 strings of RHM(v=16, m=4, s=2, L=6), 15% of tokens hidden.

Target (issue 7), on one core: at most 2 s. Measured for both output types,
``dtype=float64`` (the default, exact to rounding) and ``dtype=float32`` (half
the memory; most of the time at this size is spent writing the output). Prints the best of a few runs (wall
time, and the process's CPU time, a fairer measure on a shared machine), the
load average of the machine at the time, and the peak memory traced with
``tracemalloc`` (numpy reports its allocations to it) during a separate run,
against the bytes of the returned posteriors. Sampling is excluded.
Run: ``python benchmarks/bench_bp.py``.
"""

from __future__ import annotations

import _one_core  # first: one thread for numpy
import numpy as np

from lpbook import RHM, bp

P = 10**5
HIDDEN = 0.15
REPEATS = 3
TIME_TARGET_S = 2.0


def measure(rhm: RHM, tokens: np.ndarray, mask: np.ndarray, dtype) -> None:
    """Print the best of REPEATS runs of ``bp.posteriors`` with ``dtype``, and its traced peak memory."""
    bp.posteriors(rhm, tokens[:1000], mask[:1000], dtype=dtype)  # warm up
    times, cpu_times = _one_core.best_of(lambda _: bp.posteriors(rhm, tokens, mask, dtype=dtype), REPEATS)
    best = min(times)
    post, peak = _one_core.traced_peak(lambda: bp.posteriors(rhm, tokens, mask, dtype=dtype))
    returned = sum(p.nbytes for p in post.values())
    del post
    load = _one_core.load()
    print(f"bp.posteriors(dtype={np.dtype(dtype).name}), {rhm}, P = {P:.0e}, {HIDDEN:.0%} hidden, best of {REPEATS}: "
          f"{best:.3f} s (median {sorted(times)[REPEATS // 2]:.3f} s; 1-min load average {load:.2f})")
    user, system = min(cpu_times, key=sum)
    print(f"  CPU time of the process, best of {REPEATS}: {user + system:.3f} s = {user:.3f} s user + {system:.3f} s "
          "system (on a loaded machine a fairer measure than wall time; system time is mostly page faults "
          "of the returned arrays)")
    print(f"  returned posteriors: {returned / 2**20:.0f} MiB   peak traced: {peak / 2**20:.0f} MiB "
          f"= {peak / returned:.2f} x returned")
    verdict = "met" if min(best, user + system) <= TIME_TARGET_S else "NOT met"
    print(f"  target: time <= {TIME_TARGET_S} s (wall, or CPU on a loaded machine): {verdict}")


def main() -> None:
    _one_core.pin()
    rhm = RHM(v=16, m=4, s=2, L=6, seed=0)
    tokens = rhm.sample(P, seed=1).tokens
    mask = np.random.default_rng(2).random(tokens.shape) < HIDDEN
    for dtype in (np.float64, np.float32):
        measure(rhm, tokens, mask, dtype)


if __name__ == "__main__":
    main()
