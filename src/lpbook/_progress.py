"""The progress bars of long computations: shown on request, and ending at their total.

A bar stays on screen when its work is done and then reads ``total/total``. Work
that stops short of its planned total on purpose (training that stops once its
validation loss stops improving) ends its bar with :func:`finish`, which makes
the steps done the total, so that a finished computation never shows as unfinished.
"""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(total: int, desc: str, enabled: bool, **kwargs) -> tqdm:
    """A tqdm bar over ``total`` steps labelled ``desc``, shown when ``enabled``, left on screen when closed."""
    return tqdm(total=total, desc=desc, disable=not enabled, leave=True, **kwargs)


def finish(bar: tqdm) -> None:
    """Close ``bar`` at the end of its work: the steps done become its total, which it then shows."""
    if bar.total is not None and bar.n < bar.total:
        bar.total = bar.n
    bar.close()
