"""``torch.cuda``-style queries answered by JAX's device list."""

from __future__ import annotations

import jax

from jaxmod import random as _random
from jaxmod.cuda import amp

__all__ = [
    "amp",
    "is_available",
    "device_count",
    "current_device",
    "set_device",
    "get_device_name",
    "synchronize",
    "manual_seed",
    "manual_seed_all",
    "is_bf16_supported",
    "empty_cache",
    "memory_allocated",
    "max_memory_allocated",
    "reset_peak_memory_stats",
]


def _gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []


def is_available() -> bool:
    """Whether JAX sees at least one GPU."""
    return bool(_gpus())


def device_count() -> int:
    """Number of GPUs JAX sees."""
    return len(_gpus())


def current_device() -> int:
    """Index of the default GPU (0)."""
    return 0


def set_device(device: object) -> None:
    """No-op: choose devices with ``jax.default_device`` or ``x.to(device)``."""


def get_device_name(device: object = None) -> str:
    """The name JAX reports for a GPU."""
    gpus = _gpus()
    if not gpus:
        raise RuntimeError("no GPU is visible to JAX")
    idx = device if isinstance(device, int) else 0
    return str(getattr(gpus[idx], "device_kind", gpus[idx]))


def synchronize(device: object = None) -> None:
    """Wait for pending work: JAX dispatches asynchronously, ``jax.effects_barrier``."""
    jax.effects_barrier()


def manual_seed(seed: int) -> None:
    """Seed jaxmod's global generator (there is one generator for every device)."""
    _random.manual_seed(seed)


manual_seed_all = manual_seed


def is_bf16_supported() -> bool:
    """Whether a GPU is available (JAX supports bfloat16 on every GPU it runs on)."""
    return is_available()


def empty_cache() -> None:
    """No-op: XLA manages device memory."""


def memory_allocated(device: object = None) -> int:
    """Bytes in use on the GPU, from JAX's memory statistics (0 when unavailable)."""
    gpus = _gpus()
    stats = gpus[0].memory_stats() if gpus else None
    return int((stats or {}).get("bytes_in_use", 0))


def max_memory_allocated(device: object = None) -> int:
    """Peak bytes in use on the GPU (0 when unavailable)."""
    gpus = _gpus()
    stats = gpus[0].memory_stats() if gpus else None
    return int((stats or {}).get("peak_bytes_in_use", 0))


def reset_peak_memory_stats(device: object = None) -> None:
    """No-op (JAX does not reset its peak statistic)."""
