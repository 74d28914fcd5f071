"""``torch.multiprocessing``: Python's :mod:`multiprocessing`, plus torch's additions.

Everything of :mod:`multiprocessing` is here (``Process``, ``Queue``, ``Pool``,
``set_start_method``, ``cpu_count``, ...). torch's own names: ``spawn`` (run
``fn(i, *args)`` in ``nprocs`` processes, as ``torch.multiprocessing.spawn``) and the
sharing-strategy calls, which have nothing to configure here (JAX arrays are sent to a
child by pickling their values). JAX's runtime is multithreaded, so a child that uses JAX
should be started with the ``"spawn"`` method (``spawn`` does), not ``fork``.
"""

from __future__ import annotations

import multiprocessing as _mp
import traceback
from collections.abc import Callable
from multiprocessing import *  # noqa: F403  (torch.multiprocessing re-exports it all)
from typing import Any

__all__ = [*_mp.__all__, "spawn", "start_processes", "ProcessRaisedException",
           "ProcessExitedException", "set_sharing_strategy", "get_sharing_strategy",
           "get_all_sharing_strategies"]  # fmt: skip

_STRATEGY = ["file_system"]


def set_sharing_strategy(new_strategy: str) -> None:
    """Record the strategy (torch: how tensors are shared between processes)."""
    if new_strategy not in get_all_sharing_strategies():
        raise ValueError(f"invalid sharing strategy {new_strategy!r}")
    _STRATEGY[0] = new_strategy


def get_sharing_strategy() -> str:
    """The strategy :func:`set_sharing_strategy` set (``"file_system"``)."""
    return _STRATEGY[0]


def get_all_sharing_strategies() -> set[str]:
    """torch's strategy names."""
    return {"file_system", "file_descriptor"}


class ProcessRaisedException(Exception):
    """A process started by :func:`spawn` raised; the message holds its traceback."""


class ProcessExitedException(Exception):
    """A process started by :func:`spawn` exited with a non-zero code."""


def _run(fn: Callable, i: int, args: tuple, errors: Any) -> None:
    try:
        fn(i, *args)
    except BaseException:
        errors.put((i, traceback.format_exc()))
        raise SystemExit(1) from None


class ProcessContext:
    """The processes :func:`spawn` started (``join()`` waits for them)."""

    def __init__(self, processes: list, errors: Any) -> None:
        self.processes, self.errors = processes, errors

    def pids(self) -> list[int]:
        """The processes' ids."""
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every process; raise if one failed (torch's exceptions)."""
        for p in self.processes:
            p.join(timeout)
        if any(p.is_alive() for p in self.processes):
            return False
        if not self.errors.empty():
            i, tb = self.errors.get()
            raise ProcessRaisedException(
                f"\n\n-- Process {i} terminated with the following error:\n{tb}"
            )
        for i, p in enumerate(self.processes):
            if p.exitcode:
                raise ProcessExitedException(f"process {i} terminated with exit code {p.exitcode}")
        return True


def start_processes(fn: Callable, args: tuple = (), nprocs: int = 1, join: bool = True,
                    daemon: bool = False, start_method: str = "spawn") -> Any:  # fmt: skip
    """Run ``fn(i, *args)`` for ``i`` in ``range(nprocs)``, each in its own process."""
    ctx = _mp.get_context(start_method)
    errors = ctx.SimpleQueue()
    procs = []
    for i in range(nprocs):
        p = ctx.Process(target=_run, args=(fn, i, args, errors), daemon=daemon)
        p.start()
        procs.append(p)
    context = ProcessContext(procs, errors)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn: Callable, args: tuple = (), nprocs: int = 1, join: bool = True,
          daemon: bool = False, start_method: str = "spawn") -> Any:  # fmt: skip
    """``torch.multiprocessing.spawn``: :func:`start_processes` with the spawn method."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)
