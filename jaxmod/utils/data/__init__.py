"""Data loading, as ``torch.utils.data``: datasets, samplers, collation and ``DataLoader``.

Plus :func:`prefetch_to_device`, which copies the next batches to the device (or onto a
``jax.sharding.Sharding``) in a background thread while the current step runs.

Example:
    >>> from jaxmod.utils.data import DataLoader, TensorDataset
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, drop_last=True)
    >>> for xb, yb in loader:
    ...     loss = train_step(model, opt, xb, yb)
"""

from jaxmod.utils.data._worker import WorkerInfo, get_worker_info
from jaxmod.utils.data.collate import default_collate, default_convert
from jaxmod.utils.data.dataloader import DataLoader
from jaxmod.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from jaxmod.utils.data.distributed import DistributedSampler
from jaxmod.utils.data.prefetch import DevicePrefetcher, prefetch_to_device
from jaxmod.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "StackDataset",
    "ConcatDataset",
    "ChainDataset",
    "Subset",
    "random_split",
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
    "DistributedSampler",
    "default_collate",
    "default_convert",
    "DataLoader",
    "get_worker_info",
    "WorkerInfo",
    "prefetch_to_device",
    "DevicePrefetcher",
]
