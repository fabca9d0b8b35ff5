"""What every benchmark shares: one core, and one way to time a call and trace its memory.

Import it before numpy (``import _one_core``, the benchmarks run as scripts from this
folder): it sets the BLAS and OpenMP thread counts, which numpy reads when it is imported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import resource  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402


def pin() -> None:
    """Keep this process on one core (where the platform allows it)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def best_of(call, repeats: int) -> tuple[list[float], list[tuple[float, float]]]:
    """Wall times and ``(user, system)`` CPU times of ``repeats`` calls of ``call()``, results dropped."""
    times, cpu_times = [], []
    for repeat in range(repeats):
        start, cpu_start = time.perf_counter(), _cpu()
        call(repeat)
        times.append(time.perf_counter() - start)
        cpu_times.append(tuple(b - a for a, b in zip(cpu_start, _cpu())))
    return times, cpu_times


def traced_peak(call):
    """``(call(), peak)``: the result, and the peak of the memory that ``tracemalloc`` saw during the call."""
    tracemalloc.start()
    result = call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, peak


def load() -> float:
    """The machine's 1-minute load average (NaN where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
