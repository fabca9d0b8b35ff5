"""Benchmark: CPU cost of MaskedTokenModel's training step, with the threads option, at the book's and full scale.

No target: it reports what the chapters' runtimes are made of. For each
configuration of Chapter 2 (``lpbook.scale``, ``tokens``: ``mlm_grammar`` and
``mlm_options``) it prints the CPU milliseconds of one training step
(:func:`lpbook.neural.measure.seconds_per_step`) with ``threads=1`` and
``threads=2``, and the step budget's worst case. Run:
``python benchmarks/bench_masked_token.py``.
"""

from __future__ import annotations

from lpbook import scale
from lpbook.neural.measure import seconds_per_step


def main() -> None:
    for name in ("book", "full"):
        cfg = scale.settings("tokens", name)
        for threads in (1, 2):
            step = seconds_per_step(cfg.mlm_grammar, {**cfg.mlm_options, "threads": threads})
            budget = cfg.mlm_options["max_steps"]
            print(f"{name:5s} {cfg.mlm_grammar} threads={threads}: {1000 * step:6.1f} ms/step, "
                  f"budget {budget} steps = {step * budget / 60:6.1f} CPU minutes at most")


if __name__ == "__main__":
    main()
