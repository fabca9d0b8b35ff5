"""Benchmark: SLC's time per training step, peak memory, and fit times (issue 10).

Reports, on one core (CPU time of this process, sampling excluded):

1. the time per training step and the peak resident memory at the settings of
   Chapter 4 at the current ``LPBOOK_SCALE`` (its largest grammar and sample);
2. the CPU time of the test ``tests/test_slc.py::test_recovers_every_level_at_64_v_m3``
   (five fits at ``v = 8, m = 2, L = 3``, ``P = 64 v m**3``; target: 60 s in all);
3. the fit time at ``P = 10**5, L = 6, v = 16, m = 3`` with the default options
   (target: at most 60 s on one core), with its held-out accuracy.

Run: ``python benchmarks/bench_slc.py``.
"""

from __future__ import annotations

import _one_core  # first: one thread for numpy
import resource
import time

from lpbook import RHM, SLC, level_accuracy, scale

TARGET_S = 60.0


def fit(rhm: RHM, P: int, seed: int = 0, **options) -> tuple[SLC, float, dict]:
    """Fit SLC on ``P`` samples of ``rhm``; return it, its fit CPU seconds and held-out accuracies."""
    train, test = rhm.sample(P, seed=2 * seed), rhm.sample(2000, seed=2 * seed + 1)
    learner = SLC(rhm.v, rhm.s, rhm.L, seed=seed, progress=False, **options)
    start = time.process_time()
    learner.fit(train.tokens)
    seconds = time.process_time() - start
    codes = learner.transform(test.tokens)
    return learner, seconds, {level: round(level_accuracy(test.levels[level], c), 3) for level, c in codes.items()}


def main() -> None:
    _one_core.pin()

    cfg = scale.settings("slc")
    m, L = max(cfg.m), max(cfg.L)
    P = 16 * cfg.v * m**3  # the largest P of the chapter's grid
    learner, seconds, accuracy = fit(RHM(cfg.v, m, 2, L, seed=0), P, **cfg.fit)
    steps = learner.steps * (L - 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"chapter settings ({cfg.scale}): v={cfg.v} m={m} L={L} P={P} {cfg.fit}")
    print(f"  {seconds:.2f} s CPU for {steps} steps: {1000 * seconds / steps:.2f} ms per step; "
          f"peak RSS {peak:.0f} MiB; accuracy {accuracy}")

    total = 0.0
    for seed in range(5):
        _, seconds, accuracy = fit(RHM(8, 2, 2, 3, seed=seed), 64 * 8 * 2**3, seed=seed)
        total += seconds
        print(f"  test fit, seed {seed}: {seconds:.2f} s, accuracy {accuracy}")
    print(f"test fits (v=8, m=2, L=3, P=4096, 5 seeds): {total:.1f} s CPU in all (target {TARGET_S:.0f} s)")

    _, seconds, accuracy = fit(RHM(16, 3, 2, 6, seed=0), 10**5)
    verdict = "OK" if seconds <= TARGET_S else "OVER TARGET"
    print(f"P=1e5, L=6, v=16, m=3, default options: fit {seconds:.1f} s CPU (target {TARGET_S:.0f} s) {verdict}; "
          f"accuracy {accuracy}")


if __name__ == "__main__":
    main()
