"""``torch.onnx``: jaxmod exports through ``jax.export`` (StableHLO), not ONNX.

``torch.onnx.export(model, args, "model.onnx")`` raises and names the replacement,
``jaxmod.export(model, *args)`` , so a script's export step fails
loudly instead of writing a file of another format under an ``.onnx`` name.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export", "is_in_onnx_export"]


def export(model: Any, args: Any = (), f: Any = None, *more: Any, **kwargs: Any) -> None:
    """Refuse: there is no ONNX writer; use ``jaxmod.export`` (StableHLO)."""
    raise NotImplementedError(
        "torch.onnx.export: jaxmod cannot write ONNX. Export the model with "
        "jaxmod.export(model, *example_inputs), which serialises it as StableHLO through "
        "jax.export; tools that need ONNX can convert StableHLO."
    )


def is_in_onnx_export() -> bool:
    """False: no ONNX export ever runs."""
    return False
