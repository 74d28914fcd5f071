"""Shape utilities: pixel/channel shuffles, ``Upsample`` and the distance layers."""

from __future__ import annotations

from typing import Any

import jax

from jaxmod.nn import _typerule
from jaxmod.nn import functional as F
from jaxmod.nn._checks import check_min_ndim
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import _unwrap

__all__ = [
    "PixelShuffle",
    "PixelUnshuffle",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "ChannelShuffle",
    "CosineSimilarity",
    "PairwiseDistance",
    "Fold",
    "Unfold",
]


class PixelShuffle(Module):
    """Rearrange ``(*, C*r*r, H, W)`` into ``(*, C, H*r, W*r)``.

    Args:
        upscale_factor: the factor ``r``.
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        check_min_ndim(self, x, 3)
        r = self.upscale_factor
        if x.shape[-3] % (r * r):
            raise ValueError(
                f"{self!r} expects the channel dimension (-3) to be divisible by "
                f"upscale_factor**2 = {r * r}, got an input of shape {tuple(x.shape)}"
            )
        return F.pixel_shuffle(x, r)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Rearrange ``(*, C, H*r, W*r)`` into ``(*, C*r*r, H, W)`` (inverse of PixelShuffle).

    Args:
        downscale_factor: the factor ``r``.
    """

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        check_min_ndim(self, x, 3)
        r = self.downscale_factor
        if x.shape[-1] % r or x.shape[-2] % r:
            raise ValueError(
                f"{self!r} expects height and width divisible by {r}, got an input of "
                f"shape {tuple(x.shape)}"
            )
        return F.pixel_unshuffle(x, r)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class Upsample(Module):
    """Resize ``(N, C, *spatial)`` with ``F.interpolate``.

    Args:
        size: output spatial size (int or tuple).
        scale_factor: multiplier of the spatial size (float or tuple); give exactly one
            of ``size`` and ``scale_factor``.
        mode: ``'nearest'``, ``'nearest-exact'``, ``'linear'``, ``'bilinear'``,
            ``'bicubic'``, ``'trilinear'`` or ``'area'``.
        align_corners: align corner pixels (interpolating modes only).
        recompute_scale_factor: compute the sampling scale from the output size.
    """

    def __init__(
        self,
        size: Any = None,
        scale_factor: Any = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        check_min_ndim(self, x, 3, " (N, C, *spatial)")
        return F.interpolate(
            x,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        info += ", mode=" + repr(self.mode)
        return info


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')`` for 4-D inputs."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode='bilinear', align_corners=True)``."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class ChannelShuffle(Module):
    """Interleave the channels of ``(N, C, *)`` in ``groups`` groups (ShuffleNet).

    Args:
        groups: number of groups; must divide ``C``.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        check_min_ndim(self, x, 3, " (N, C, *)")
        if x.shape[1] % self.groups:
            raise ValueError(
                f"{self!r} expects the channel dimension (1) to be divisible by "
                f"{self.groups}, got an input of shape {tuple(x.shape)}"
            )
        return F.channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` (broadcast) along ``dim``.

    Args:
        dim: the dimension compared.
        eps: lower bound of each norm.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Any, x2: Any) -> jax.Array:
        return F.cosine_similarity(_unwrap(x1), _unwrap(x2), self.dim, self.eps)


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` over the last dimension.

    Args:
        p: the norm degree (stored as ``norm``, as in torch).
        eps: added to the difference to avoid division by zero.
        keepdim: keep the reduced dimension.
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Any, x2: Any) -> jax.Array:
        return F.pairwise_distance(_unwrap(x1), _unwrap(x2), self.norm, self.eps, self.keepdim)


class Unfold(Module):
    """Extract sliding ``kernel_size`` blocks of ``(N, C, H, W)`` into columns
    ``(N, C * prod(kernel_size), L)`` (``F.unfold``).

    Args:
        kernel_size: the block size.
        dilation: spacing of the block's elements.
        padding: zero padding on both sides of each spatial dimension.
        stride: step between blocks.
    """

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Any) -> jax.Array:
        return F.unfold(_unwrap(input), self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
            f"padding={self.padding}, stride={self.stride}"
        )


class Fold(Module):
    """Sum columns ``(N, C * prod(kernel_size), L)`` back into ``(N, C, *output_size)``, the
    inverse layout of :class:`Unfold` (``F.fold``).

    Args:
        output_size: the spatial shape of the output.
        kernel_size: the block size, as for :class:`Unfold`.
        dilation: spacing of the block's elements.
        padding: zero padding on both sides of each spatial dimension.
        stride: step between blocks.
    """

    def __init__(
        self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
        stride: Any = 1,
    ) -> None:  # fmt: skip
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Any) -> jax.Array:
        return F.fold(
            _unwrap(input), self.output_size, self.kernel_size, self.dilation, self.padding,
            self.stride,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}"
        )


_typerule.tensor_forwards(globals())
