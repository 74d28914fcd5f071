"""Pooling layers with torch's arguments, output sizes and ``repr``.

Inputs are channels-first, batched ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``.
Indices returned with ``return_indices=True`` are flat over the spatial dimensions, as
in torch, but use JAX's default integer dtype (``int32`` unless x64 is enabled).
"""

from __future__ import annotations

from typing import Any

import jax

from jaxmod.nn import _typerule
from jaxmod.nn import functional as F
from jaxmod.nn._checks import _ntuple, check_ndim
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import _unwrap

__all__ = [
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
]


def _input(module: Module, input: Any) -> jax.Array:
    x = _unwrap(input)
    n = module._n
    check_ndim(module, x, (n + 1, n + 2), " (unbatched or batched)")
    return x


# ---------------------------------------------------------------------------- max pooling
class _MaxPoolNd(Module):
    _n: int = 0

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Any) -> Any:
        x = _input(self, input)
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[self._n - 1]
        return fn(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            "kernel_size={kernel_size}, stride={stride}, padding={padding}"
            ", dilation={dilation}, ceil_mode={ceil_mode}".format(**self.__dict__)
        )


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling over ``(N, C, L)`` or ``(C, L)``.

    Args:
        kernel_size: window size.
        stride: window stride (default: ``kernel_size``).
        padding: implicit ``-inf`` padding on both sides (at most half the kernel).
        dilation: spacing between window elements.
        return_indices: also return the argmax indices (flat over the spatial dims).
        ceil_mode: use ceil instead of floor for the output size.
    """

    _n = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)``; arguments as :class:`MaxPool1d`."""

    _n = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; as :class:`MaxPool1d`."""

    _n = 3


# ---------------------------------------------------------------------------- avg pooling
class _AvgPoolNd(Module):
    _n: int = 0

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Any) -> jax.Array:
        x = _input(self, input)
        if self._n == 1:
            return F.avg_pool1d(
                x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad,
            )  # fmt: skip
        fn = F.avg_pool2d if self._n == 2 else F.avg_pool3d
        return fn(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling over ``(N, C, L)`` or ``(C, L)``.

    Args:
        kernel_size: window size.
        stride: window stride (default: ``kernel_size``).
        padding: implicit zero padding on both sides.
        ceil_mode: use ceil instead of floor for the output size.
        count_include_pad: count the zero padding in the divisor.

    As in torch, the arguments are stored (and shown) as 1-tuples.
    """

    _n = 1

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__(
            _ntuple(kernel_size, 1),
            _ntuple(stride if stride is not None else kernel_size, 1),
            _ntuple(padding, 1),
            ceil_mode,
            count_include_pad,
        )
        del self.divisor_override


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling over ``(N, C, H, W)`` or ``(C, H, W)``.

    Arguments as :class:`AvgPool1d`, plus ``divisor_override`` (divide every window sum
    by this number instead).
    """

    _n = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; as :class:`AvgPool2d`."""

    _n = 3


# ----------------------------------------------------------------------- adaptive pooling
class _AdaptiveAvgPoolNd(Module):
    _n: int = 0

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Any) -> jax.Array:
        x = _input(self, input)
        fn = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[self._n - 1]
        return fn(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling of ``(N, C, L)`` or ``(C, L)`` to ``output_size`` (torch's bins)."""

    _n = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling of ``(N, C, H, W)`` or ``(C, H, W)``; ``None`` keeps a size."""

    _n = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling of ``(N, C, D, H, W)`` or ``(C, D, H, W)``."""

    _n = 3


class _AdaptiveMaxPoolNd(Module):
    _n: int = 0

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: Any) -> Any:
        x = _input(self, input)
        fn = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)[self._n - 1]
        return fn(x, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of ``(N, C, L)`` or ``(C, L)``; optionally returns indices."""

    _n = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of ``(N, C, H, W)`` or ``(C, H, W)``; ``None`` keeps a size."""

    _n = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of ``(N, C, D, H, W)`` or ``(C, D, H, W)``."""

    _n = 3


# ----------------------------------------------------------------------------- LP pooling
class _LPPoolNd(Module):
    _n: int = 0

    def __init__(
        self, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
    ) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input: Any) -> jax.Array:
        x = _input(self, input)
        fn = (F.lp_pool1d, F.lp_pool2d, F.lp_pool3d)[self._n - 1]
        return fn(x, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (
            "norm_type={norm_type}, kernel_size={kernel_size}, stride={stride}, "
            "ceil_mode={ceil_mode}".format(**self.__dict__)
        )


class LPPool1d(_LPPoolNd):
    """Power-average pooling ``(sum x^p)^(1/p)`` over ``(N, C, L)`` or ``(C, L)``.

    Args:
        norm_type: the power ``p``.
        kernel_size: window size.
        stride: window stride (default: ``kernel_size``).
        ceil_mode: use ceil instead of floor for the output size.
    """

    _n = 1


class LPPool2d(_LPPoolNd):
    """Power-average pooling over ``(N, C, H, W)`` or ``(C, H, W)``; as :class:`LPPool1d`."""

    _n = 2


class LPPool3d(_LPPoolNd):
    """Power-average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``."""

    _n = 3


# ------------------------------------------------------------------------ max unpooling
class _MaxUnpoolNd(Module):
    _n: int = 0

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        n = self._n
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride if stride is not None else kernel_size, n)
        self.padding = _ntuple(padding, n)

    def forward(self, input: Any, indices: Any, output_size: Any = None) -> jax.Array:
        unpool = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[self._n - 1]
        return unpool(
            _unwrap(input), _unwrap(indices), self.kernel_size, self.stride, self.padding,
            output_size,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool1d`: each value goes back to the position its
    index names, zeros elsewhere.

    Args:
        kernel_size: the pooling window.
        stride: the pooling stride (default ``kernel_size``).
        padding: the pooling padding.
    """

    _n = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool2d`; arguments as :class:`MaxUnpool1d`."""

    _n = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool3d`; arguments as :class:`MaxUnpool1d`."""

    _n = 3


_typerule.tensor_forwards(globals())
