"""Benchmark: do the encoder learners' defaults converge, and what do they cost on one core?

Target (issue 27): ``MaskedTokenModel(v, s, L)`` and ``Data2Vec(v, s, L)`` with no
options converge (excess loss over the Bayes floor at most
``lpbook.bp.CONVERGED_EXCESS``; data2vec's through its token probe) and read
every level at 0.9 or more, on a grammar that no chapter uses: ``v = 16, m = 3,
L = 3`` with grammar seed 7 (the book's networks use seeds 0 and 1), at
``P = 16,000`` training strings. For each learner it prints the excess loss,
each level's accuracy, the steps run and the CPU minutes of the fit. Run:
``python benchmarks/bench_defaults.py`` (about 15 minutes).
"""

from __future__ import annotations

import time

import _one_core

from lpbook import bp
from lpbook.neural.measure import measure_network
from lpbook.points import Grammar, Point

GRAMMAR, P, SEED = Grammar(v=16, m=3, s=2, L=3), 16000, 7


def main() -> None:
    _one_core.pin()
    for learner in ("masked-token", "data2vec"):
        point = Point.make(learner, GRAMMAR, P, SEED)
        _, train, _ = point.data()
        model = point.make_learner(progress=False)  # no options: the defaults
        start = time.process_time()
        model.fit(train.tokens)
        minutes = (time.process_time() - start) / 60
        measured = measure_network(model, GRAMMAR.as_dict(), P, SEED, point.n_test)
        levels = ", ".join(f"level {level} {accuracy:.3f}" for level, accuracy in measured.accuracy.items())
        verdict = "converged" if measured.converged else f"NOT converged (criterion {bp.CONVERGED_EXCESS})"
        print(f"{learner:12s} {GRAMMAR} seed {SEED}, P = {P}: excess {measured.excess_loss:.3f} nats ({verdict}), "
              f"{levels}; {measured.steps} steps, {minutes:.1f} CPU minutes")


if __name__ == "__main__":
    main()
