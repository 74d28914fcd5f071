"""Datasets, as in ``torch.utils.data``: map-style and iterable-style, and ways to combine them.

A map-style :class:`Dataset` answers ``dataset[i]`` (and usually ``len(dataset)``); an
:class:`IterableDataset` is a stream. Samples are whatever ``__getitem__`` returns: numpy
arrays, JAX arrays, numbers, strings, or dicts/tuples of them; the
:class:`~jaxmod.utils.data.DataLoader` collates them into batches.
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import jax
import numpy as np

from jaxmod.random import Generator
from jaxmod.utils.data.sampler import _host_rng

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "StackDataset",
    "ConcatDataset",
    "ChainDataset",
    "Subset",
    "random_split",
]

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map from keys (usually ``0 .. len - 1``) to samples, like ``torch.utils.data.Dataset``.

    Subclasses implement ``__getitem__`` and, for the default samplers, ``__len__``. They may
    also implement ``__getitems__(indices) -> list of samples`` to read a whole batch at once.
    """

    def __getitem__(self, index: Any) -> T_co:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Dataset[T_co]) -> ConcatDataset[T_co]:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co], Iterable[T_co]):
    """A stream of samples, like ``torch.utils.data.IterableDataset``: implement ``__iter__``.

    With ``num_workers > 0`` every worker thread iterates its own shallow copy of the dataset;
    split the stream between them with :func:`~jaxmod.utils.data.get_worker_info` in
    ``__iter__`` (or in ``worker_init_fn``), or each worker yields every sample.
    """

    def __add__(self, other: Dataset[T_co]) -> ChainDataset:  # type: ignore[override]
        return ChainDataset([self, other])


def _rows(t: Any) -> int:
    return int(t.shape[0]) if hasattr(t, "shape") else len(t)


def _check_row(index: Any, n: int) -> None:
    """JAX clamps out-of-range indices silently; raise torch's IndexError instead."""
    if isinstance(index, (int, np.integer)) and not -n <= index < n:
        raise IndexError(f"index {index} is out of bounds for dimension 0 with size {n}")


class TensorDataset(Dataset[tuple[Any, ...]]):
    """Samples are rows of equally long arrays: ``dataset[i] == (a[i], b[i], ...)``.

    Args:
        *tensors: numpy arrays, JAX arrays (or anything indexable with a first dimension),
            all with the same length.

    Example:
        >>> ds = TensorDataset(np.zeros((100, 3)), np.arange(100))
        >>> x, y = ds[0]
    """

    tensors: tuple[Any, ...]

    def __init__(self, *tensors: Any) -> None:
        if any(_rows(tensors[0]) != _rows(t) for t in tensors):
            raise AssertionError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        _check_row(index, len(self))
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return _rows(self.tensors[0])


class StackDataset(Dataset[Any]):
    """Samples of several equally long datasets side by side, as a tuple or a dict.

    ``StackDataset(a, b)[i] == (a[i], b[i])``; ``StackDataset(x=a, y=b)[i] == {"x": a[i],
    "y": b[i]}``.
    """

    datasets: tuple[Any, ...] | dict[str, Any]

    def __init__(self, *args: Dataset[Any], **kwargs: Dataset[Any]) -> None:
        if args and kwargs:
            raise ValueError(
                "Supported either ``tuple``- (via ``args``) or"
                "``dict``- (via ``kwargs``) like input/output, but both types are given."
            )
        parts = list(args) or list(kwargs.values())
        if not parts:
            raise ValueError("At least one dataset should be passed")
        self._length = len(parts[0])  # type: ignore[arg-type]
        if any(self._length != len(d) for d in parts):  # type: ignore[arg-type]
            raise ValueError("Size mismatch between datasets")
        self.datasets = args if args else kwargs

    def __getitem__(self, index: Any) -> Any:
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __getitems__(self, indices: list[int]) -> list[Any]:
        named = isinstance(self.datasets, dict)
        parts = self.datasets.items() if named else enumerate(self.datasets)
        columns = {k: _items(d, indices) for k, d in parts}
        if named:
            return [{k: col[i] for k, col in columns.items()} for i in range(len(indices))]
        return [tuple(col[i] for col in columns.values()) for i in range(len(indices))]

    def __len__(self) -> int:
        return self._length


def _items(dataset: Any, indices: list[int]) -> list[Any]:
    """``[dataset[i] for i in indices]``, through ``__getitems__`` when the dataset has one."""
    if not callable(getattr(dataset, "__getitems__", None)):
        return [dataset[i] for i in indices]
    items = dataset.__getitems__(indices)
    if len(items) != len(indices):
        raise ValueError(
            f"Nested dataset's output size mismatch. Expected {len(indices)}, got {len(items)}"
        )
    return items


class ConcatDataset(Dataset[T_co]):
    """Map-style datasets one after the other (``a + b`` builds one).

    Args:
        datasets: the datasets, each with ``__len__``.
    """

    datasets: list[Dataset[T_co]]
    cumulative_sizes: list[int]

    @staticmethod
    def cumsum(sequence: Iterable[Any]) -> list[int]:
        """The running total of the lengths of ``sequence``'s datasets."""
        return list(itertools.accumulate(len(d) for d in sequence))

    def __init__(self, datasets: Iterable[Dataset[Any]]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        if any(isinstance(d, IterableDataset) for d in self.datasets):
            raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> T_co:
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after the other, streamed lazily (``a + b`` builds one)."""

    def __init__(self, datasets: Iterable[Dataset[Any]]) -> None:
        self.datasets = datasets

    def _parts(self) -> Iterator[Any]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield d

    def __iter__(self) -> Iterator[Any]:
        for d in self._parts():
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self._parts())  # type: ignore[arg-type]


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: the whole dataset.
        indices: the positions in ``dataset`` that make up the subset.
    """

    dataset: Dataset[T_co]
    indices: Sequence[int]

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices
        cls = type(self)
        if cls.__getitem__ is not Subset.__getitem__ and cls.__getitems__ is Subset.__getitems__:
            raise NotImplementedError(
                f"{cls.__name__} overrides __getitem__ but not __getitems__. "
                "When subclassing Subset and overriding __getitem__, you must also override "
                "__getitems__ to ensure DataLoader works correctly with your custom logic. "
                "A simple implementation:\n\n"
                "def __getitems__(self, indices):\n"
                "    return [self.__getitem__(idx) for idx in indices]"
            )

    def __getitem__(self, idx: Any) -> T_co:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list[T_co]:
        return _items(self.dataset, [self.indices[i] for i in indices])

    def __len__(self) -> int:
        return len(self.indices)


def _gather(dataset: Any) -> Callable[[list[int]], tuple[Any, ...]] | None:
    """A fast path for the DataLoader: ``indices -> default-collated batch`` in one gather.

    Only for a :class:`TensorDataset` of numpy/JAX arrays (or a :class:`Subset` of one)
    whose item methods are not overridden: stacking its rows is exactly indexing each
    array with the batch's indices, one numpy (or one device) gather per array instead of
    one indexing per sample. ``None`` where that does not hold.
    """
    cls = type(dataset)
    if isinstance(dataset, Subset):
        if cls.__getitem__ is not Subset.__getitem__ or cls.__getitems__ is not Subset.__getitems__:
            return None
        inner, where = _gather(dataset.dataset), dataset.indices
        return None if inner is None else (lambda idx: inner([where[i] for i in idx]))
    if not isinstance(dataset, TensorDataset) or cls.__getitem__ is not TensorDataset.__getitem__:
        return None
    tensors = dataset.tensors
    if hasattr(dataset, "__getitems__") or not all(
        isinstance(t, (np.ndarray, jax.Array)) for t in tensors
    ):
        return None
    n = len(dataset)

    def gather(indices: list[int]) -> tuple[Any, ...]:
        idx = np.asarray(indices, dtype=np.intp)
        if idx.size and not (-n <= idx.min() and idx.max() < n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"index {bad} is out of bounds for dimension 0 with size {n}")
        return tuple(t[idx] for t in tensors)

    return gather


def _fractions_to_lengths(n: int, fractions: Sequence[float]) -> list[int]:
    lengths = []
    for i, frac in enumerate(fractions):
        if frac < 0 or frac > 1:
            raise ValueError(f"Fraction at index {i} is not between 0 and 1")
        lengths.append(math.floor(n * frac))
    for i in range(n - sum(lengths)):  # the remainder, one each, round robin
        lengths[i % len(lengths)] += 1
    for i, length in enumerate(lengths):
        if length == 0:
            warnings.warn(
                f"Length of split at index {i} is 0. This might result in an empty dataset.",
                stacklevel=3,
            )
    return lengths


def random_split(
    dataset: Dataset[T_co],
    lengths: Sequence[int | float],
    generator: Generator | None = None,
) -> list[Subset[T_co]]:
    """Split ``dataset`` into disjoint random :class:`Subset` s of the given lengths.

    Args:
        dataset: the dataset to split (with ``__len__``).
        lengths: the subsets' lengths, summing to ``len(dataset)``; or fractions summing to
            1, turned into ``floor(fraction * len(dataset))`` with the remainder handed out one
            by one from the first split on (torch's rounding).
        generator: the :class:`jaxmod.Generator` that draws the permutation (default: the
            global one, seeded by :func:`jaxmod.manual_seed`).

    Example:
        >>> train, val = random_split(range(10), [0.8, 0.2], generator=jaxmod.Generator(0))
        >>> len(train), len(val)
        (8, 2)
    """
    n = len(dataset)  # type: ignore[arg-type]
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _fractions_to_lengths(n, lengths)
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    order = _host_rng(generator).permutation(n).tolist()
    ends = itertools.accumulate(lengths)
    return [Subset(dataset, order[end - int(k) : end]) for end, k in zip(ends, lengths)]
