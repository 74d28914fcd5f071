"""``torch.cuda.amp``: torch's older spelling of :mod:`jaxmod.amp` for device type
``"cuda"`` (deprecated in torch, still in common scripts: nanoGPT builds
``torch.cuda.amp.GradScaler(enabled=...)``). The same classes, with torch's signatures and
its ``FutureWarning``."""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp

from jaxmod import amp as _amp
from jaxmod.amp import custom_bwd, custom_fwd

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd"]


def _deprecated(name: str) -> None:
    """torch's FutureWarning for ``torch.cuda.amp.<name>(...)``, at the caller's line."""
    warnings.warn(
        f"`torch.cuda.amp.{name}(args...)` is deprecated. Please use "
        f"`torch.amp.{name}('cuda', args...)` instead.",
        FutureWarning,
        stacklevel=3,
    )


class autocast(_amp.autocast):
    """``torch.cuda.amp.autocast(enabled, dtype, cache_enabled)``: ``jaxmod.amp.autocast``
    with ``device_type="cuda"`` (float16 by default)."""

    def __init__(self, enabled: bool = True, dtype: Any = jnp.float16,
                 cache_enabled: bool = True) -> None:  # fmt: skip
        _deprecated("autocast")
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_amp.GradScaler):
    """``torch.cuda.amp.GradScaler(init_scale, growth_factor, backoff_factor,
    growth_interval, enabled)``: ``jaxmod.amp.GradScaler("cuda", ...)``."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:  # fmt: skip
        _deprecated("GradScaler")
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval,
                         enabled)  # fmt: skip
