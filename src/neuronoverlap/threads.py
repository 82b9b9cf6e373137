"""How many threads torch computes with: one rule, applied by the command line and `load_model`.

The count, first that applies: `--threads N` (or `set_threads(N)`), the environment variable
`NEURONOVERLAP_THREADS`, `OMP_NUM_THREADS` (the usual way to give each process of a shared
machine one thread), else the cores this process may run on (`os.sched_getaffinity`, which a
container, `taskset` or a batch scheduler narrows; torch's own default counts every core of the
machine). Two processes whose threads add up to more than the cores spin against each other: on
a shared machine run one heavy job at a time, or give each process `OMP_NUM_THREADS=1`.

    >>> thread_count(3).count
    3
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from neuronoverlap.errors import InputError

#: The environment variable that sets the toolkit's thread count.
THREADS_ENV = "NEURONOVERLAP_THREADS"


@dataclass(frozen=True)
class Threads:
    """A thread count and where it came from (`source`, said by `neuronoverlap info`)."""

    count: int
    source: str

    def describe(self) -> str:
        return f"{self.count} torch thread{'s' if self.count != 1 else ''} ({self.source})"


def allowed_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


def _positive(text: str | int, where: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or str(text).strip() not in (str(value), f"+{value}"):
        raise InputError(f"{where} must be a whole number of threads >= 1, got {text!r}")
    return value


def thread_count(requested: int | None = None) -> Threads:
    """The thread count by the rule of the module docstring; a bad value is an `InputError`."""
    if requested is not None:
        return Threads(_positive(requested, "--threads"), "--threads")
    if os.environ.get(THREADS_ENV, "").strip():
        return Threads(_positive(os.environ[THREADS_ENV], THREADS_ENV), THREADS_ENV)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return Threads(int(omp), "OMP_NUM_THREADS")
    cores = allowed_cores()
    return Threads(cores, f"the {cores} core{'s' if cores != 1 else ''} this process may use")


_applied: Threads | None = None


def set_threads(requested: int | None = None) -> Threads:
    """Set torch's intra-op thread count by the rule (`requested` first) and return it.
    `load_model` calls `ensure_threads()`, which keeps what this set."""
    global _applied
    import torch

    threads = thread_count(requested)
    torch.set_num_threads(threads.count)
    _applied = threads
    return threads


def ensure_threads() -> Threads:
    """The thread count already set in this process, else `set_threads()` by the rule."""
    return _applied if _applied is not None else set_threads()


__all__ = ["THREADS_ENV", "Threads", "allowed_cores", "ensure_threads", "set_threads", "thread_count"]
