"""``torch.amp``: automatic mixed precision.

:class:`autocast` runs matmul, linear, convolution and attention in a lower precision
(bfloat16 or float16) and keeps precision-sensitive ops in float32, following torch's
per-device op lists, while parameters stay float32; :class:`GradScaler` scales the loss
for float16 training and skips steps whose gradients overflowed. Both work eagerly and
inside :func:`jaxmod.jit`. See ``docs/amp.md``.
"""

from __future__ import annotations

from jaxmod.amp._autocast import (
    autocast,
    custom_bwd,
    custom_fwd,
    get_autocast_dtype,
    is_autocast_available,
    is_autocast_enabled,
)
from jaxmod.amp.grad_scaler import GradScaler, OptState

__all__ = [
    "autocast",
    "GradScaler",
    "OptState",
    "is_autocast_enabled",
    "get_autocast_dtype",
    "is_autocast_available",
    "custom_fwd",
    "custom_bwd",
]
