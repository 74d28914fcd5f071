"""Padding layers: zero, constant, reflection, replication and circular (torch's ``F.pad`` order).

``padding`` is an int (same on every side) or a tuple listing ``(left, right)`` pairs from
the last dimension backwards, exactly as in torch.
"""

from __future__ import annotations

from typing import Any

import jax

from jaxmod.nn import _typerule
from jaxmod.nn import functional as F
from jaxmod.nn._checks import _ntuple, check_min_ndim, check_ndim
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import _unwrap

__all__ = [
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
]


class _PadNd(Module):
    """Pads the last ``_n`` dims of a ``(C, *spatial)`` or ``(N, C, *spatial)`` input."""

    _n: int = 0
    _mode: str = "constant"

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _ntuple(padding, 2 * self._n)

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        check_ndim(self, x, (self._n + 1, self._n + 2), " (unbatched or batched)")
        return F.pad(x, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(Module):
    _n: int = 0

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__()
        self.value = value
        self.padding = _ntuple(padding, 2 * self._n)

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        check_min_ndim(self, x, len(self.padding) // 2)
        return F.pad(x, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``.

    Args:
        padding: int, or ``(left, right)``; negative values crop.
        value: the fill value.
    """

    _n = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims with ``value``; ``padding`` is an int or
    ``(left, right, top, bottom)``."""

    _n = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dims with ``value``; ``padding`` is an int or a 6-tuple
    ``(left, right, top, bottom, front, back)``."""

    _n = 3


class ZeroPad1d(ConstantPad1d):
    """Pad the last dim with zeros; ``padding`` is an int or ``(left, right)``."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dims with zeros; ``padding`` is an int or a 4-tuple."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pad the last three dims with zeros; ``padding`` is an int or a 6-tuple."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pad ``(C, W)`` or ``(N, C, W)`` by reflecting at the border (pads < the dim size)."""

    _n = 1
    _mode = "reflect"


class ReflectionPad2d(_PadNd):
    """Reflection padding of the last two dims of a 3-D or 4-D input."""

    _n = 2
    _mode = "reflect"


class ReflectionPad3d(_PadNd):
    """Reflection padding of the last three dims of a 4-D or 5-D input."""

    _n = 3
    _mode = "reflect"


class ReplicationPad1d(_PadNd):
    """Pad ``(C, W)`` or ``(N, C, W)`` by repeating the border value."""

    _n = 1
    _mode = "replicate"


class ReplicationPad2d(_PadNd):
    """Replication padding of the last two dims of a 3-D or 4-D input."""

    _n = 2
    _mode = "replicate"


class ReplicationPad3d(_PadNd):
    """Replication padding of the last three dims of a 4-D or 5-D input."""

    _n = 3
    _mode = "replicate"


class CircularPad1d(_PadNd):
    """Pad ``(C, W)`` or ``(N, C, W)`` by wrapping around (negative values crop)."""

    _n = 1
    _mode = "circular"


class CircularPad2d(_PadNd):
    """Circular padding of the last two dims of a 3-D or 4-D input."""

    _n = 2
    _mode = "circular"


class CircularPad3d(_PadNd):
    """Circular padding of the last three dims of a 4-D or 5-D input."""

    _n = 3
    _mode = "circular"


_typerule.tensor_forwards(globals())
