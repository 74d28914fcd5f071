"""Background prefetch to device: the next batches are copied while the current step runs.

:func:`prefetch_to_device` wraps any iterable of batches (a jaxmod or torch DataLoader, a
grain loader, a generator): a background thread takes batches from it, puts their arrays
on the device, or on a ``jax.sharding.Sharding`` (a batch split over a mesh's data axis
for data parallelism), and keeps up to ``size`` of them ready.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import jax

from jaxmod.utils.data import _worker
from jaxmod.utils.data.collate import _to_batch

__all__ = ["DevicePrefetcher", "prefetch_to_device"]

_POLL_S = 0.1  # how often a producer blocked on a full queue checks for close()
_END = object()


def prefetch_to_device(
    source: Iterable[Any], size: int = 2, sharding: jax.sharding.Sharding | Any = None
) -> DevicePrefetcher:
    """Iterate ``source`` with its batches already on the device, copied in the background.

    Args:
        source: an iterable of batches (nested dicts/lists/tuples of numpy or JAX arrays or
            torch tensors): a :class:`~jaxmod.utils.data.DataLoader`, torch's DataLoader,
            a grain loader, a list.
        size: how many batches to keep ready on the device ahead of the consumer.
        sharding: where the arrays go. ``None``: the default device (the one
            ``jax.default_device`` names in the thread that starts the epoch), as
            *uncommitted* arrays, like ``jnp.asarray`` (a model built there compiles its step
            once). A ``jax.Device``: committed to it. A ``jax.sharding.Sharding``, e.g.
            ``NamedSharding(mesh, P("data"))``: every array split along dimension 0 over the
            mesh's ``data`` axis (arrays with fewer dimensions than the spec get its leading
            entries; scalars are replicated). With several processes each process's loader
            gives its own part of the global batch.

    Returns:
        A re-iterable :class:`DevicePrefetcher` (one background thread per epoch) with
        ``len()`` of ``source``.

    Errors raised by ``source`` or by the placement surface in the consumer, at the batch
    where they happened. Breaking out of the loop (or ``close()``) stops the thread.

    Example:
        >>> loader = prefetch_to_device(DataLoader(ds, batch_size=64, shuffle=True))
        >>> for x, y in loader:   # x, y are on the device before the step asks
        ...     loss = train_step(model, opt, x, y)
    """
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValueError(f"size should be a positive integer value, but got size={size}")
    ok = sharding is None or isinstance(sharding, (jax.sharding.Sharding, jax.Device))
    if not ok:
        raise TypeError(
            "sharding must be None, a jax.Device or a jax.sharding.Sharding (e.g. "
            f"NamedSharding(mesh, P('data'))), but got {type(sharding).__name__}"
        )
    return DevicePrefetcher(source, size, sharding)


class DevicePrefetcher(Iterable[Any]):
    """An iterable over ``source`` whose batches arrive on a device (see
    :func:`prefetch_to_device`)."""

    def __init__(self, source: Iterable[Any], size: int, sharding: Any) -> None:
        self.source, self.size, self.sharding = source, size, sharding

    def __iter__(self) -> _PrefetchIterator:
        # The source's iterator is made here, in the consumer's thread: samplers draw their
        # epoch's randomness (from jaxmod generators, which are not thread-safe) now.
        host_iter = getattr(self.source, "_host_iter", None)  # jaxmod DataLoader: numpy
        it = host_iter() if host_iter is not None else iter(self.source)
        return _PrefetchIterator(it, self.size, self.sharding)

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"DevicePrefetcher({self.source!r}, size={self.size}, sharding={self.sharding!r})"


class _PrefetchIterator(Iterator[Any]):
    def __init__(self, it: Iterator[Any], size: int, sharding: Any) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=_produce,
            args=(it, sharding, self._queue, self._stop, _worker._device_scope()),
            name="prefetch_to_device",
            daemon=True,
        )
        self._thread.start()

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, _worker._Failure):
            self.close()
            item.reraise()
        return item

    def close(self) -> None:
        """Stop the background thread and drop the batches it prepared."""
        self._done = True
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get(block=False)
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self.close()


def _produce(
    it: Iterator[Any], sharding: Any, out: queue.Queue[Any], stop: threading.Event, scope: Any
) -> None:
    """The background thread: place each batch, hand it over; then ``_END`` or a failure."""

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    with scope():
        try:
            for i, batch in enumerate(it):
                try:
                    placed = _to_batch(batch, sharding)
                except ValueError as e:
                    where = "the default device" if sharding is None else sharding
                    raise ValueError(
                        f"prefetch_to_device: cannot put batch {i} on {where}: {e}. A batch "
                        "split over devices must divide evenly: use drop_last=True or a batch "
                        "size divisible by the number of devices on the sharded axis."
                    ) from e
                if not put(placed):
                    return
        except BaseException as e:
            put(_worker._Failure(e, "in prefetch_to_device's thread"))
            return
        put(_END)
