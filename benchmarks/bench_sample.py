"""Benchmark: RHM(v=32, m=8, s=2, L=6).sample(10**6), all levels included.

Target (issue 2), on one core: at most 0.7 s, and peak memory at most twice the
bytes of the returned arrays. Peak memory is traced with ``tracemalloc``
(numpy reports its allocations to it) during a separate run, so that tracing
does not distort the timing. Run: ``python benchmarks/bench_sample.py``.
"""

from __future__ import annotations

import _one_core  # first: one thread for numpy

from lpbook import RHM

P = 10**6
REPEATS = 5
TIME_TARGET_S = 0.7
MEMORY_TARGET = 2.0


def main() -> None:
    _one_core.pin()
    rhm = RHM(v=32, m=8, s=2, L=6, seed=0)
    rhm.sample(1000, seed=0)  # warm up
    times, _ = _one_core.best_of(lambda repeat: rhm.sample(P, seed=repeat), REPEATS)
    best = min(times)
    sample, peak = _one_core.traced_peak(lambda: rhm.sample(P, seed=0))
    returned = sum(level.nbytes for level in sample.levels)
    n_tokens = sample.tokens.size
    print(f"{rhm}.sample({P:.0e}), best of {REPEATS}: {best:.3f} s (median {sorted(times)[REPEATS // 2]:.3f} s)")
    print(f"  samples/s: {P / best:.3g}   tokens/s: {n_tokens / best:.3g}")
    print(f"  returned arrays: {returned / 2**20:.1f} MiB ({sample.tokens.dtype})   peak traced: {peak / 2**20:.1f} MiB "
          f"= {peak / returned:.2f} x returned")
    ok = best <= TIME_TARGET_S and peak <= MEMORY_TARGET * returned
    print(f"  targets: time <= {TIME_TARGET_S} s, peak <= {MEMORY_TARGET} x returned: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
