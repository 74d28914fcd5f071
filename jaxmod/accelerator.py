"""``torch.accelerator``: the accelerator JAX runs on (a GPU or TPU), if there is one.

``is_available()`` is ``True`` when JAX's default backend is not the CPU, and
``current_accelerator()`` names it the way torch does (``"cuda"`` for JAX's ``"gpu"``);
with only a CPU it returns ``None``, as torch does on a machine without an accelerator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax

import jaxmod

__all__ = [
    "current_accelerator",
    "current_device_idx",
    "current_device_index",
    "device_count",
    "device_index",
    "empty_cache",
    "is_available",
    "set_device_idx",
    "set_device_index",
    "synchronize",
]

_TORCH_TYPE = {"gpu": "cuda", "cuda": "cuda", "rocm": "cuda", "tpu": "tpu"}


def _accelerators() -> list[jax.Device]:
    if jax.default_backend() == "cpu":
        return []
    return jax.devices()


def is_available() -> bool:
    """Whether JAX runs on an accelerator (its default backend is not the CPU)."""
    return bool(_accelerators())


def device_count() -> int:
    """Number of accelerator devices JAX sees (0 with only a CPU)."""
    return len(_accelerators())


def current_accelerator(check_available: bool = False) -> Any:
    """The accelerator as a device (``"cuda"`` for a GPU), or ``None`` without one.

    The result is a ``jaxmod.device`` where jaxmod has that type, else the device type
    string; either is accepted by ``Module.to`` and ``device=`` arguments.
    """
    devices = _accelerators()
    if not devices:
        return None
    kind = _TORCH_TYPE.get(devices[0].platform, devices[0].platform)
    device_type = getattr(jaxmod, "device", None)
    return device_type(kind) if isinstance(device_type, type) else kind


def current_device_index() -> int:
    """Index of the current accelerator device (always 0: JAX's default device)."""
    return 0


current_device_idx = current_device_index


def set_device_index(device: Any) -> None:
    """No-op: place arrays with ``Module.to(device)`` or ``jax.default_device``."""


set_device_idx = set_device_index


@contextlib.contextmanager
def device_index(device: Any) -> Iterator[None]:
    """Context manager accepted for torch compatibility (no effect)."""
    yield


def synchronize(device: Any = None) -> None:
    """``jax.effects_barrier()``: waits for pending effects. JAX has no barrier for all
    dispatched work; before reading a clock, call ``jax.block_until_ready(result)``."""
    jax.effects_barrier()


def empty_cache() -> None:
    """No-op: XLA manages device memory."""
