"""``DistributedSampler``: each JAX process reads its own share of a dataset (torch's DDP
sampler). Within one process, split a batch over devices with
:func:`~jaxmod.utils.data.prefetch_to_device` and a ``Sharding`` instead."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import jax

from jaxmod.random import Generator
from jaxmod.utils.data.sampler import Sampler, _host_rng

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler[int]):
    """The indices of process ``rank`` of ``num_replicas``, as ``torch``'s DistributedSampler.

    Args:
        dataset: the dataset (its length).
        num_replicas: how many processes share the data (default ``jax.process_count()``).
        rank: this process (default ``jax.process_index()``).
        shuffle: permute the indices, by ``seed + epoch`` (the same order in every process).
        seed: the shuffle seed, the same in every process.
        drop_last: drop the tail so every process gets the same count; otherwise the first
            indices are repeated to pad it.

    Call :meth:`set_epoch` at the start of each epoch, or every epoch has the same order.
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        num_replicas = jax.process_count() if num_replicas is None else num_replicas
        rank = jax.process_index() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = _host_rng(Generator(self.seed + self.epoch)).permutation(n).tolist()
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[: self.total_size]
        else:  # pad by repeating from the start
            pad = self.total_size - n
            indices += (indices * math.ceil(pad / n))[:pad] if pad > n else indices[:pad]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose shuffle order the next pass uses."""
        self.epoch = epoch
