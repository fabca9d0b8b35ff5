"""Shared hypothesis strategies and statistical helpers for the tests."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from hypothesis import settings, strategies as st

settings.register_profile("default", max_examples=60, deadline=None)
settings.load_profile("default")


@st.composite
def grammar_params(draw, max_L: int = 3):
    """Small valid RHM parameters: (v, m, s, L, n_classes, seed)."""
    s = draw(st.integers(2, 3))
    v = draw(st.integers(2, 6))
    L = draw(st.integers(1, max_L if s == 2 else min(max_L, 2)))
    m = draw(st.integers(1, min(v ** (s - 1), 4)))
    n_classes = draw(st.integers(1, min(v, v**s // m)))
    seed = draw(st.integers(0, 2**32 - 1))
    return v, m, s, L, n_classes, seed


def assert_frequencies_match(p_hat: np.ndarray, p: np.ndarray, n, z: float = 5.0) -> None:
    """Check empirical frequencies against exact probabilities, cell by cell.

    ``p_hat`` are frequencies from ``n`` draws (``n`` broadcasts against the
    cells: a scalar, or one count per row of conditional distributions). Each
    cell must lie within ``z`` standard deviations ``sqrt(p (1 - p) / n)`` of
    ``p``, plus ``z / n`` for the discreteness of counts; cells of probability
    zero must be exactly zero. ``z = 5`` keeps the chance of a false alarm
    below 1e-6 per cell (a Bonferroni bound over a few hundred cells).
    """
    n = np.broadcast_to(np.asarray(n, dtype=float), p.shape)
    seen = n > 0
    tol = z * np.sqrt(p * (1 - p) / np.where(seen, n, 1)) + z / np.where(seen, n, 1)
    assert np.all(p_hat[seen & (p == 0)] == 0), "a cell of probability zero was observed"
    err = np.abs(p_hat - p)
    worst = np.unravel_index(np.argmax(np.where(seen, err - tol, -np.inf)), p.shape)
    assert np.all(err[seen] <= tol[seen]), (
        f"frequency {p_hat[worst]:.5f} vs probability {p[worst]:.5f} at {worst}, tolerance {tol[worst]:.5f}"
    )


def last_bar(stderr: str) -> str:
    """What a terminal shows of the last line of ``stderr`` that is left non-blank.

    Within a line, each ``\r`` returns to its start and what follows overwrites it: a bar that
    clears itself (spaces, then ``\r``) leaves nothing, a bar that stays leaves its last frame.
    """
    shown = []
    for line in stderr.split("\n"):
        frames = [frame for frame in line.split("\r") if frame]
        if frames and frames[-1].strip():
            shown.append(frames[-1].strip())
    return shown[-1] if shown else ""


def ends_at_total(stderr: str) -> bool:
    """Whether the last bar in ``stderr`` reads ``N/N``: it ended at its total."""
    import re

    match = re.search(r"\b(\d+)/(\d+)\b", last_bar(stderr))
    return match is not None and match[1] == match[2]


@contextmanager
def read_only(folder):
    """Make ``folder`` (a fresh, empty-or-not folder) unwritable for this process while the block runs.

    Modes do not stop root, so as root the folder is made immutable (``chattr +i``) instead, and the
    test is skipped where that is not possible.
    """
    import os
    import subprocess

    import pytest

    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only for root here (no chattr +i)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def git_tracked(paths: list[Path]) -> list[Path]:
    """The files among ``paths`` that the repository's git tracks (all of them outside a git checkout): a sweep
    still running under ``results/``, or a network still training, is not committed."""
    root = Path(__file__).resolve().parents[1]
    try:
        listed = subprocess.run(["git", "ls-files", "results"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return paths
    files = {root / line for line in listed.stdout.split()}
    return [p for p in paths if p in files]


def killed_then_resumed(make, tokens, checkpoint: Path, step: int):
    """``(plain, resumed)``: ``make()`` fitted on ``tokens`` without interruption, and ``make()`` fitted with
    ``checkpoint``, killed (``KeyboardInterrupt``) at training step ``step``, then fitted again with it."""

    def killed(at, network):
        if at == step:
            raise KeyboardInterrupt

    plain = make().fit(tokens)
    try:
        make().fit(tokens, on_step=killed, checkpoint=checkpoint)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError(f"the fit ended before step {step}")
    return plain, make().fit(tokens, checkpoint=checkpoint)


def same_weights(a, b) -> bool:
    """Whether two torch modules hold the same tensors, bit for bit."""
    import torch

    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
