"""``DataLoader``: batches from a dataset, with torch's arguments, checks and semantics.

Indices are drawn on the host (numpy), samples are collated with numpy and each batch
becomes JAX arrays once (:func:`~jaxmod.utils.data.collate._to_batch`). ``num_workers > 0``
runs worker threads (see :mod:`jaxmod.utils.data._worker` for why threads);
:func:`~jaxmod.utils.data.prefetch_to_device` overlaps the host-to-device copies with the
training step.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import math
import queue
import random
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import jax
import numpy as np

from jaxmod.random import Generator
from jaxmod.utils.data import _worker
from jaxmod.utils.data.collate import (
    _collate_host,
    _convert_host,
    _to_batch,
    default_collate,
    default_convert,
)
from jaxmod.utils.data.dataset import Dataset, IterableDataset, _gather
from jaxmod.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    _check_generator,
    _host_rng,
)

__all__ = ["DataLoader"]

T_co = TypeVar("T_co", covariant=True)
_JOIN_TIMEOUT_S = 1.0  # how long closing an iterator waits for each worker thread
_FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")


class _InfiniteConstantSampler(Sampler[None]):
    """The index sampler of an iterable dataset: ``None`` forever (the stream decides)."""

    def __iter__(self) -> Any:
        return itertools.repeat(None)


def _is_torch_iterable(dataset: Any) -> bool:
    tdata = sys.modules.get("torch.utils.data")  # loaded with torch; never imported here
    return tdata is not None and isinstance(dataset, tdata.IterableDataset)


def _identity(x: Any) -> Any:
    return x


class DataLoader(Generic[T_co]):
    """Iterate over ``dataset`` in batches, like ``torch.utils.data.DataLoader``.

    Args:
        dataset: a map-style :class:`~jaxmod.utils.data.Dataset` (anything with
            ``__getitem__`` and ``__len__``) or an :class:`~jaxmod.utils.data.IterableDataset`.
        batch_size: samples per batch; ``None`` yields samples one by one, uncollated.
        shuffle: a new random order every epoch (a :class:`RandomSampler`).
        sampler: the order of indices (any iterable); excludes ``shuffle``.
        batch_sampler: yields whole lists of indices; excludes ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last``.
        num_workers: worker *threads* that read and collate batches ahead (``0``: the
            calling thread does it).
        collate_fn: merges a list of samples into a batch (default
            :func:`~jaxmod.utils.data.default_collate`; with ``batch_size=None``,
            :func:`~jaxmod.utils.data.default_convert`).
        pin_memory: accepted for torch compatibility; JAX stages host-to-device copies
            itself (use :func:`~jaxmod.utils.data.prefetch_to_device` to overlap them).
        drop_last: drop the last batch when it is short.
        timeout: seconds to wait for a worker's batch before raising (``0``: forever).
        worker_init_fn: called in each worker thread with its id before it loads data.
        multiprocessing_context: accepted with ``num_workers > 0`` for torch compatibility
            (with a warning): workers are threads.
        generator: the :class:`jaxmod.Generator` for the shuffle order and the workers'
            base seed (default: the global generator, seeded by :func:`jaxmod.manual_seed`).
        prefetch_factor: batches each worker loads ahead (default 2 with workers).
        persistent_workers: keep the worker threads (and their dataset copies) between
            epochs.
        pin_memory_device: accepted and ignored (deprecated in torch).
        in_order: yield batches in sampler order (``False``: as workers finish them).

    Example:
        >>> ds = TensorDataset(np.arange(10.0), np.arange(10) % 2)
        >>> loader = DataLoader(ds, batch_size=4, shuffle=True, generator=jaxmod.Generator(0))
        >>> len(loader), next(iter(loader))[0].shape   # batches of 4, 4 and 2
        (3, (4,))
    """

    dataset: Dataset[T_co]
    batch_size: int | None
    num_workers: int
    pin_memory: bool
    drop_last: bool
    timeout: float
    sampler: Sampler[Any] | Iterable[Any]
    prefetch_factor: int | None
    _initialized = False

    def __init__(
        self,
        dataset: Dataset[T_co],
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler[Any] | Iterable[Any] | None = None,
        batch_sampler: Sampler[list[Any]] | Iterable[list[Any]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; "
                "use num_workers=0 to disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing."
                "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor "
                "to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None:
            if num_workers == 0:
                raise ValueError(
                    "multiprocessing_context can only be used with multi-process loading "
                    f"(num_workers > 0), but got num_workers={num_workers}"
                )
            warnings.warn(
                "jaxmod's DataLoader runs its workers as threads (a forked JAX process can "
                f"deadlock); multiprocessing_context={multiprocessing_context!r} is ignored. "
                "Use torch's DataLoader for process workers (see docs/data.md).",
                stacklevel=2,
            )
        _check_generator(generator)
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        # dataset checks first, so that an iterable dataset's user learns that custom
        # samplers do not apply before fixing them
        self._iterable = isinstance(dataset, IterableDataset) or _is_torch_iterable(dataset)
        if _is_torch_iterable(dataset) and num_workers > 0:
            raise ValueError(
                "DataLoader: a torch IterableDataset splits its stream with "
                "torch.utils.data.get_worker_info(), which knows nothing of jaxmod's worker "
                "threads, so every worker would yield the whole stream. Use num_workers=0, "
                "subclass jaxmod.utils.data.IterableDataset (with jaxmod's get_worker_info), "
                "or torch's own DataLoader."
            )
        if self._iterable:
            if shuffle not in {False, None}:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle option, "
                    f"but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler option, "
                    f"but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler "
                    f"option, but got batch_sampler={batch_sampler}"
                )
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive "
                "with drop_last"
            )
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)  # type: ignore[arg-type]
            else:
                sampler = SequentialSampler(dataset)  # type: ignore[arg-type]
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._IterableDataset_len_called: int | None = None
        self._iterator: _BaseIter | None = None
        self._initialized = True

    def __setattr__(self, attr: str, val: Any) -> None:
        if self._initialized and attr in _FROZEN:
            raise ValueError(
                f"{attr} attribute should not be set after {type(self).__name__} is initialized"
            )
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self._auto_collation else self.sampler

    def _iter(self, finish: Callable[[Any], Any]) -> _BaseIter:
        if self.persistent_workers and self.num_workers > 0:
            if self._iterator is None:
                self._iterator = _ThreadedIter(self, finish)
            else:
                self._iterator._reset(self, finish)
            return self._iterator
        return (_ThreadedIter if self.num_workers > 0 else _SingleIter)(self, finish)

    def __iter__(self) -> _BaseIter:
        """An iterator over one epoch of batches (JAX arrays with the default collate_fn)."""
        default = self.collate_fn in (default_collate, default_convert)
        return self._iter(_to_batch if default else _identity)

    def _host_iter(self) -> _BaseIter:
        """One epoch of batches whose arrays are still numpy (for prefetch_to_device)."""
        return self._iter(_identity)

    def __len__(self) -> int:
        if self._iterable:
            # only an estimate: the stream decides (torch warns if it yields more)
            length = self._IterableDataset_len_called = len(self.dataset)  # type: ignore[arg-type]
            if self.batch_size is not None:
                length = (
                    length // self.batch_size
                    if self.drop_last
                    else math.ceil(length / self.batch_size)
                )
            return length
        return len(self._index_sampler)


def _make_fetcher(
    iterable: bool, auto: bool, collate_fn: Any, drop_last: bool, fast: bool, dataset: Any
) -> Any:
    if iterable:
        return _worker._IterFetcher(dataset, auto, collate_fn, drop_last)
    return _worker._MapFetcher(dataset, auto, collate_fn, _gather(dataset) if fast else None)


class _BaseIter:
    """One epoch's iterator (reset and reused by persistent workers)."""

    def __init__(self, loader: DataLoader[Any], finish: Callable[[Any], Any]) -> None:
        if loader.pin_memory and jax.default_backend() == "cpu":
            warnings.warn(  # torch's, from its iterator: once per process by default
                "'pin_memory' argument is set as true but no accelerator is found, then "
                "device pinned memory won't be used.",
                stacklevel=1,
            )
        self._dataset = loader.dataset
        self._iterable = loader._iterable
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._index_sampler = loader._index_sampler
        self._num_workers = loader.num_workers
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        # the host-side collate: default_collate/convert without their final _to_batch,
        # which `finish` applies (in a worker thread when there are workers)
        collate = loader.collate_fn
        self._collate_fn = {default_collate: _collate_host, default_convert: _convert_host}.get(
            collate, collate
        )
        self._fast = collate is default_collate and self._auto_collation and not self._iterable
        # dataset -> fetcher; refers to no iterator, so worker threads keep none alive
        self._make_fetcher = functools.partial(
            _make_fetcher, self._iterable, self._auto_collation, self._collate_fn,
            self._drop_last, self._fast,
        )  # fmt: skip
        self._base_seed = (
            int(_host_rng(loader.generator).integers(2**63)) if self._num_workers else 0
        )
        self._reset(loader, finish)

    def _reset(self, loader: DataLoader[Any], finish: Callable[[Any], Any]) -> None:
        self._finish = finish
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0
        self._len_called = loader._IterableDataset_len_called

    def _next_data(self) -> Any:
        raise NotImplementedError

    def __iter__(self) -> _BaseIter:
        return self

    def __next__(self) -> Any:
        data = self._next_data()
        self._num_yielded += 1
        if self._iterable and self._len_called is not None and self._num_yielded > self._len_called:
            msg = (
                f"Length of IterableDataset {self._dataset} was reported to be "
                f"{self._len_called}(when accessing len(dataloader)), but {self._num_yielded} "
                "samples have been fetched. "
            )
            if self._num_workers > 0:
                msg += (
                    "For multi-worker data loading, this could be caused by not properly "
                    "configuring the IterableDataset replica at each worker (see "
                    "jaxmod.utils.data.get_worker_info)."
                )
            warnings.warn(msg, stacklevel=2)
        return data

    def __len__(self) -> int:
        return len(self._index_sampler)


class _SingleIter(_BaseIter):
    """``num_workers=0``: the calling thread reads, collates and converts each batch."""

    def __init__(self, loader: DataLoader[Any], finish: Callable[[Any], Any]) -> None:
        if loader.timeout != 0:
            raise AssertionError(
                f"DataLoader: timeout={loader.timeout} applies to worker threads; use "
                "num_workers > 0 or timeout=0"
            )
        super().__init__(loader, finish)
        self._fetcher = self._make_fetcher(self._dataset)

    def _next_data(self) -> Any:
        index = next(self._sampler_iter)  # may raise StopIteration
        return self._finish(self._fetcher.fetch(index))  # may raise StopIteration


class _ThreadedIter(_BaseIter):
    """``num_workers > 0``: indices go round robin to the worker threads, at most
    ``prefetch_factor * num_workers`` batches ahead; batches come back in sampler order
    (``in_order``). A worker's exception is raised here, when its batch is due."""

    def __init__(self, loader: DataLoader[Any], finish: Callable[[Any], Any]) -> None:
        self._closed = True  # until the workers exist
        self._epoch = 0
        self._in_order = loader.in_order
        self._ahead = loader.prefetch_factor * loader.num_workers  # type: ignore[operator]
        self._results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queues: list[queue.SimpleQueue[Any]] = []
        self._threads: list[threading.Thread] = []
        super().__init__(loader, finish)
        self._closed = False
        scope = _worker._device_scope()
        for wid in range(self._num_workers):
            seed = self._base_seed + wid
            rng = _worker.WorkerRNG(random.Random(seed), np.random.default_rng(seed))
            info = _worker.WorkerInfo(wid, self._num_workers, seed, copy.copy(self._dataset), rng)
            q: queue.SimpleQueue[Any] = queue.SimpleQueue()
            args = (wid, info, self._make_fetcher, loader.worker_init_fn, q, self._results, scope)
            t = threading.Thread(
                target=_worker._worker_loop, args=args, name=f"DataLoader-worker-{wid}", daemon=True
            )
            t.start()
            self._queues.append(q)
            self._threads.append(t)
        self._start_epoch()

    def _reset(self, loader: DataLoader[Any], finish: Callable[[Any], Any]) -> None:
        super()._reset(loader, finish)
        if self._threads:  # a persistent iterator, reused: drop what the last epoch left
            for q in self._queues:
                with contextlib.suppress(queue.Empty):
                    while True:
                        q.get(block=False)
                q.put(_worker._Reset(self._epoch + 1))
            self._start_epoch()

    def _start_epoch(self) -> None:
        self._epoch += 1
        self._send_idx = self._rcvd_idx = self._outstanding = 0
        self._tasks: dict[int, tuple[Any, ...]] = {}  # (worker,) or (worker, early result)
        self._active = [True] * self._num_workers
        self._cycle = itertools.cycle(range(self._num_workers))
        for _ in range(self._ahead):
            self._try_put_index()

    def _try_put_index(self) -> None:
        if self._outstanding >= self._ahead:
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            wid = next(self._cycle)
            if self._active[wid]:
                break
        else:
            return  # every worker's stream has ended
        self._queues[wid].put((self._epoch, self._send_idx, index, self._finish))
        self._tasks[self._send_idx] = (wid,)
        self._outstanding += 1
        self._send_idx += 1

    def _get(self) -> tuple[int, int, Any]:
        try:
            return self._results.get(timeout=self._timeout or None)
        except queue.Empty:
            raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") from None

    def _next_data(self) -> Any:
        while True:
            while self._rcvd_idx < self._send_idx:  # skip tasks of ended streams
                task = self._tasks.get(self._rcvd_idx)
                if task is not None and (len(task) == 2 or self._active[task[0]]):
                    break
                self._tasks.pop(self._rcvd_idx, None)
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self.close()
                raise StopIteration
            task = self._tasks[self._rcvd_idx]
            if len(task) == 2:  # arrived earlier, out of order
                del self._tasks[self._rcvd_idx]
                self._rcvd_idx += 1
                return self._process(task[1])
            epoch, idx, data = self._get()
            if epoch != self._epoch:
                continue  # left over from an epoch that was broken off
            self._outstanding -= 1
            if isinstance(data, _worker._WorkerDone):
                self._active[data.worker_id] = False
                self._try_put_index()
                continue
            if self._in_order and idx != self._rcvd_idx:
                self._tasks[idx] += (data,)
                continue
            del self._tasks[idx]
            if idx == self._rcvd_idx:
                self._rcvd_idx += 1
            return self._process(data)

    def _process(self, data: Any) -> Any:
        self._try_put_index()
        if isinstance(data, _worker._Failure):
            self.close()
            data.reraise()
        return data

    def close(self) -> None:
        """Stop the worker threads (done at the end of an epoch unless they persist)."""
        if self._closed:
            return
        self._closed = True
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join(timeout=_JOIN_TIMEOUT_S)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()
