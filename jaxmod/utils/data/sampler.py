"""Samplers, as in ``torch.utils.data``: which indices a DataLoader reads, in which order.

Random samplers draw on the host with numpy, so a batch costs no device call. Their
randomness comes from a :class:`jaxmod.Generator` (or the global one that
:func:`jaxmod.manual_seed` seeds): each pass over a sampler takes one key from the generator
and seeds a numpy generator with its bits. The same seed gives the same order; successive
epochs differ. (torch's own Generator stream is not reproduced: the order for a given seed
differs from torch's, the distribution is the same.)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

import jax
import numpy as np

from jaxmod import random as _random
from jaxmod.random import Generator

__all__ = [
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
]

T_co = TypeVar("T_co", covariant=True)
_CHUNK = 4096  # indices drawn at a time by samplers with a caller-chosen length


def _check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, Generator):
        hint = (
            " torch's Generator stream cannot be reproduced without torch; pass "
            "jaxmod.Generator(seed) instead."
            if type(generator).__module__.startswith("torch")
            else ""
        )
        raise TypeError(
            f"generator must be a jaxmod.Generator or None, but got {type(generator).__name__}."
            + hint
        )


def _host_rng(generator: Generator | None) -> np.random.Generator:
    """A numpy generator seeded by one fresh key of ``generator`` (default: the global one).

    Advances ``generator`` by one draw, in the calling thread.
    """
    _check_generator(generator)
    key = _random.next_key(generator)
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value}")


class Sampler(Generic[T_co]):
    """Base class of samplers: an ``__iter__`` over indices (or batches of indices).

    A sampler may define ``__len__``; ``len(DataLoader)`` needs it.
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """``0, 1, ..., len(data_source) - 1``, every time."""

    data_source: Sized

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A random permutation of the indices each pass (or draws with replacement).

    Args:
        data_source: the dataset (only its length is used, read at each pass).
        replacement: draw ``num_samples`` indices independently (``True``) instead of
            permuting.
        num_samples: how many indices a pass yields (default ``len(data_source)``); without
            replacement, more than ``len`` chains whole permutations, then part of one.
        generator: a :class:`jaxmod.Generator` (default: the global generator).
    """

    data_source: Sized
    replacement: bool

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        _check_generator(generator)
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError(
                f"replacement should be a boolean value, but got replacement={self.replacement}"
            )
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                "num_samples should be a positive integer value, but got "
                f"num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        """Indices per pass (the dataset's current length unless given)."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        # The key is drawn now, not at the first next(): a loader iterated by a prefetch
        # thread still takes its randomness in the thread that started the epoch.
        rng, n, total = _host_rng(self.generator), len(self.data_source), self.num_samples
        return self._draw(rng, n, total)

    def _draw(self, rng: np.random.Generator, n: int, total: int) -> Iterator[int]:
        if self.replacement:
            for start in range(0, total, _CHUNK):
                yield from rng.integers(0, n, size=min(_CHUNK, total - start)).tolist()
            return
        for _ in range(total // n):
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n)[: total % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order, a new one each pass.

    Args:
        indices: the indices to sample from.
        generator: a :class:`jaxmod.Generator` (default: the global generator).
    """

    indices: Sequence[int]

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        _check_generator(generator)
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        order = _host_rng(self.generator).permutation(len(self.indices)).tolist()
        return (self.indices[i] for i in order)

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """Indices ``0 .. len(weights) - 1`` drawn with probability proportional to ``weights``.

    Args:
        weights: non-negative weights (need not sum to one), a 1-D sequence or array.
        num_samples: how many indices a pass yields.
        replacement: with ``False`` an index is drawn at most once per pass (each draw is
            proportional to the weights left, as ``torch.multinomial``).
        generator: a :class:`jaxmod.Generator` (default: the global generator).
    """

    weights: np.ndarray
    num_samples: int
    replacement: bool

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: Generator | None = None,
    ) -> None:
        _positive_int("num_samples", num_samples)
        _check_generator(generator)
        if not isinstance(replacement, bool):
            raise ValueError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(
                f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}"
            )
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        w, k = self.weights, self.num_samples
        # torch.multinomial's checks, with its messages (they depend on its kernel)
        bad_inf, bad_neg = np.isinf(w).any(), (np.isnan(w) | (w < 0)).any()
        if (bad_inf or bad_neg) and not (self.replacement and k > 1):
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if bad_inf:
            raise RuntimeError(
                "invalid multinomial distribution (encountering probability entry = infinity or "
                "NaN)"
            )
        if bad_neg:
            raise RuntimeError(
                "invalid multinomial distribution (encountering probability entry < 0)"
            )
        if w.sum() <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if not self.replacement and k > w.size:
            raise RuntimeError(
                "cannot sample n_sample > prob_dist.size(-1) samples without replacement"
            )
        if not self.replacement and k > np.count_nonzero(w):
            # torch 2.13 fills up with zero-weight indices here; an index of weight 0 is
            # never a valid draw, so this raises instead
            raise RuntimeError(
                f"WeightedRandomSampler: cannot draw {k} samples without replacement from "
                f"{np.count_nonzero(w)} non-zero weights; lower num_samples or use "
                "replacement=True"
            )
        rng = _host_rng(self.generator)
        return iter(rng.choice(w.size, size=k, replace=self.replacement, p=w / w.sum()).tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Groups another sampler's indices into lists of ``batch_size``.

    Args:
        sampler: any iterable of indices.
        batch_size: indices per batch.
        drop_last: drop a last batch shorter than ``batch_size``.

    Example:
        >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
        [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    """

    def __init__(
        self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool
    ) -> None:
        _positive_int("batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        return self._batches(iter(self.sampler))  # iter() now: see RandomSampler.__iter__

    def _batches(self, indices: Iterator[int]) -> Iterator[list[int]]:
        while batch := list(itertools.islice(indices, self.batch_size)):
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
