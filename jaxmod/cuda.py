"""``torch.cuda``-style queries answered by JAX's device list."""

from __future__ import annotations

import jax

__all__ = ["is_available", "device_count"]


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
