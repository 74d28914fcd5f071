"""The DataLoader's worker threads: what each runs, and what it can ask about itself.

Workers are threads of the loading process, not processes: JAX is multithreaded, so a
forked JAX process can deadlock, and spawned processes would each start JAX and pickle
the dataset. numpy, file reads and decoders release the GIL, so threads overlap that
work with the training step; pure-Python per-sample transforms do not (use torch's
DataLoader or grain for those, see docs/data.md).
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

__all__ = ["WorkerInfo", "WorkerRNG", "get_worker_info"]

_local = threading.local()


@dataclass(frozen=True)
class WorkerRNG:
    """Random generators of one worker thread, seeded with its :attr:`WorkerInfo.seed`.

    Threads share Python's and numpy's global generators (torch reseeds them per worker
    process); draw from these instead for per-worker randomness.
    """

    random_generator: random.Random
    numpy_generator: np.random.Generator


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker thread knows about itself (:func:`get_worker_info`).

    Attributes:
        id: the worker's index, ``0 .. num_workers - 1``.
        num_workers: how many workers the loader runs.
        seed: ``base_seed + id``; the base seed is drawn from the loader's generator (or the
            global one) once per epoch, or once for persistent workers.
        dataset: this worker's shallow copy of the dataset.
        rng: generators seeded with ``seed``.
        worker_method: ``"thread"``.
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any
    rng: WorkerRNG | None = None
    worker_method: str = "thread"


def get_worker_info() -> WorkerInfo | None:
    """The :class:`WorkerInfo` of the calling DataLoader worker thread; ``None`` elsewhere.

    Use it in an :class:`~jaxmod.utils.data.IterableDataset`'s ``__iter__`` or in
    ``worker_init_fn`` to give each worker its own part of a stream.
    """
    return getattr(_local, "info", None)


def _device_scope() -> Callable[[], Any]:
    """A context factory that re-enters the calling thread's ``jax.default_device`` in another
    thread (the setting is thread-local): batches made by workers land where the main
    thread's arrays would, uncommitted."""
    device = jax.config.jax_default_device
    if device is None:
        return contextlib.nullcontext
    return lambda: jax.default_device(device)


@dataclass
class _Failure:
    """An exception raised while making one batch, carried to the consumer."""

    error: BaseException
    where: str

    def reraise(self) -> None:
        if hasattr(self.error, "add_note"):  # Python >= 3.11
            self.error.add_note(f"(raised {self.where})")
        raise self.error


@dataclass(frozen=True)
class _WorkerDone:
    """A worker's iterable-dataset stream has ended."""

    worker_id: int


@dataclass(frozen=True)
class _Reset:
    """Start a new epoch: iterable datasets restart their stream."""

    epoch: int


class _MapFetcher:
    """Reads one batch (a list of indices) or one sample from a map-style dataset."""

    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Any, gather: Any) -> None:
        self.dataset, self.auto, self.collate_fn, self.gather = (
            dataset,
            auto_collation,
            collate_fn,
            gather,
        )

    def fetch(self, index: Any) -> Any:
        if not self.auto:
            return self.collate_fn(self.dataset[index])
        if self.gather is not None:  # TensorDataset and default_collate: already a batch
            return list(self.gather(index))
        getitems = getattr(self.dataset, "__getitems__", None)
        data = getitems(index) if getitems else [self.dataset[i] for i in index]
        return self.collate_fn(data)


class _IterFetcher:
    """Takes the next batch (``len(index)`` samples) or sample from an iterable dataset."""

    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Any, drop_last: bool):
        self.it, self.auto, self.collate_fn, self.drop_last = (
            iter(dataset),
            auto_collation,
            collate_fn,
            drop_last,
        )
        self.ended = False

    def fetch(self, index: Any) -> Any:
        if self.ended:
            raise StopIteration
        if not self.auto:
            return self.collate_fn(next(self.it))
        data = []
        for _ in index:
            try:
                data.append(next(self.it))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def _worker_loop(
    worker_id: int,
    info: WorkerInfo,
    make_fetcher: Callable[[Any], Any],
    init_fn: Callable[[int], None] | None,
    index_queue: Any,
    result_queue: Any,
    scope: Callable[[], Any],
) -> None:
    """One worker thread: take ``(epoch, idx, index, finish)`` tasks, put ``(epoch, idx,
    batch)`` results, until ``None``. A failure is sent as the task's result."""
    _local.info = info
    where = f"in DataLoader worker thread {worker_id}"
    fetcher: Any = None
    failure: _Failure | None = None
    with scope():
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = make_fetcher(info.dataset)
        except BaseException as e:  # reported with the first batch asked for
            failure = _Failure(e, where)
        while (task := index_queue.get()) is not None:
            if isinstance(task, _Reset):
                if failure is None:
                    try:
                        fetcher = make_fetcher(info.dataset)  # a fresh stream
                    except BaseException as e:
                        failure = _Failure(e, where)
                continue
            epoch, idx, index, finish = task
            if failure is not None:
                data = failure
            else:
                try:
                    data = finish(fetcher.fetch(index))
                except StopIteration:
                    data = _WorkerDone(worker_id)
                except BaseException as e:
                    data = _Failure(e, where)
            result_queue.put((epoch, idx, data))
