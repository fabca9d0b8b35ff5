"""Benchmark: one full fit of the clustering learners at P = 10**6, L = 7, v = 16, m = 4, s = 2.

Targets (issues 3 and 4), on one core, sampling excluded: ``TokenClustering``
fit at most 5 s; ``ILC`` fit and transform at most 5 s. Prints the time of each
phase. Run: ``python benchmarks/bench_clustering.py``.
"""

from __future__ import annotations

import _one_core  # first: one thread for numpy
import time

from lpbook import RHM, level_accuracy
from lpbook.learners import REGISTRY

P, L, v, m, s = 10**6, 7, 16, 4, 2
TARGET_S = 5.0


def main() -> None:
    _one_core.pin()
    rhm = RHM(v=v, m=m, s=s, L=L, seed=0)
    train = rhm.sample(P, seed=1)
    test = rhm.sample(10_000, seed=2)
    for name in ("token-clustering", "ilc"):
        if name not in REGISTRY:
            continue
        learner = REGISTRY[name](v=v, s=s, L=L, seed=0)
        start = time.perf_counter()
        learner.fit(train.tokens)
        fitted = time.perf_counter()
        learner.transform(train.tokens)
        done = time.perf_counter()
        codes = learner.transform(test.tokens)
        accuracy = {level: round(level_accuracy(test.levels[level], c), 3) for level, c in codes.items()}
        total = done - start
        print(f"{name}: fit {fitted - start:.2f} s, transform of the training set {done - fitted:.2f} s, "
              f"total {total:.2f} s (target {TARGET_S} s: {'met' if total <= TARGET_S else 'NOT met'})")
        print(f"  test accuracy by level: {accuracy}")


if __name__ == "__main__":
    main()
