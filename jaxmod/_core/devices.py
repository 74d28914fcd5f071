"""One parser for device specs: ``"cpu"``, ``"cuda:1"``, ``torch.device``, ``jax.Device``, Sharding.

``Module.to``, ``load(map_location=)`` and the tensor API's ``device=`` arguments all map
their argument to a JAX device (or sharding) here, so they accept the same spellings and
fail with the same messages.
"""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["resolve_device", "PLATFORMS"]

# torch's device types and JAX's names for them -> the JAX platform they select.
PLATFORMS = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "tpu": "tpu", "rocm": "gpu"}


def resolve_device(device: Any, what: str = "device") -> Any:
    """A ``jax.Device`` (or the ``Sharding``/Device given) for a torch-style device spec.

    Accepts ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"gpu:0"``, ``"tpu"``, an int (a GPU index,
    as torch does), anything whose ``str`` is such a spec (``torch.device``, jaxmod's
    ``device``), a ``jax.Device`` or a ``jax.sharding.Sharding``. ``what`` names the argument
    in error messages (``"map_location"``).
    """
    if isinstance(device, (jax.Device, jax.sharding.Sharding)):
        return device
    if isinstance(device, int) and not isinstance(device, bool):
        device = f"cuda:{device}"
    if not isinstance(device, str) and type(device).__name__ != "device":
        raise TypeError(
            f"{what} must be a device such as 'cpu', 'cuda' or 'cuda:0', a jax.Device or a "
            f"jax.sharding.Sharding, not {type(device).__name__}"
        )
    spec = str(device)
    kind, _, index = spec.partition(":")
    platform = PLATFORMS.get(kind)
    if platform is None or (index and not index.isdigit()):
        raise ValueError(f"Expected a device such as 'cpu', 'cuda' or 'cuda:0', got {spec!r}")
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    i = int(index or 0)
    if not devices:
        raise RuntimeError(
            f"No {kind.upper() if kind != 'cpu' else 'CPU'} device is available to JAX "
            f"(jax.devices() = {jax.devices()}). Install a jax build for that accelerator, or "
            "keep the model on 'cpu'."
        )
    if i >= len(devices):
        raise RuntimeError(
            f"Device {spec!r} does not exist: JAX sees {len(devices)} {kind} devices"
        )
    return devices[i]
