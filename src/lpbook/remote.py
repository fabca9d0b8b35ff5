"""Sweeps on a running Dask cluster: the optional extra ``pip install lpbook[cluster]``.

:func:`lpbook.sweep.run_sweep` takes any :class:`concurrent.futures.Executor`,
and a ``dask.distributed`` client provides one (``client.get_executor(pure=False)``),
so nothing in the sweep is specific to Dask: the workers run
:func:`lpbook.sweep.run_point` and send its result back, and the process that
called ``run_sweep`` alone writes the SQLite file. When a worker dies, the
scheduler reruns its points on the others (up to its ``allowed-failures``
setting, 3 by default); a point that still fails is reported and left for the
next run of the same sweep. Every worker needs lpbook (and torch for the
neural learners) in the same version as the client.

From Python, pass ``client.get_executor(pure=False)``: with Dask's default
(``pure=True``) a point is a task keyed by its arguments, so rerunning a
sweep in the same client session would get back the failure of a point lost
with its worker, as long as that failed task is still referenced.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager


@contextmanager
def dask_executor(address: str, *, timeout: float = 30) -> Iterator[Executor]:
    """An executor on the Dask scheduler at ``address`` (such as ``"tcp://10.0.0.1:8786"``).

    Connects a ``distributed.Client``, waiting at most ``timeout`` seconds,
    and closes it on exit. Raises ``ImportError`` naming the extra when
    ``distributed`` is not installed, and ``OSError`` when no scheduler answers.
    """
    if not isinstance(address, str) or not address:
        raise TypeError(f"address must be a non-empty string such as 'tcp://host:8786', got {address!r}")
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("sweeps on a Dask cluster need dask.distributed: pip install 'lpbook[cluster]'") from None
    with Client(address, timeout=timeout) as client:
        yield client.get_executor(pure=False)
