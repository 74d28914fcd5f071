"""Dropout layers: ``Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``, ``FeatureAlphaDropout``.

In ``train()`` mode each call draws a fresh mask from the global generator
(:func:`jaxmod.random.next_key`); under :func:`jaxmod.jit` the generator's key is lifted
state, so every compiled call still gets a new mask, and :func:`jaxmod.manual_seed`
makes the sequence of masks repeat. In ``eval()`` mode the layers are the identity.
"""

from __future__ import annotations

from typing import Any

import jax

from jaxmod.nn import _typerule
from jaxmod.nn import functional as F
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import _unwrap

__all__ = [
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
]


class _DropoutNd(Module):
    """Common constructor and ``repr`` of the dropout layers.

    Args:
        p: probability of an element (or channel) being zeroed, in ``[0, 1]``.
        inplace: store the result in a :class:`jaxmod.Tensor` input and return it, as
            torch does; a ``jax.Array`` is immutable and gets a new array.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``."""

    def forward(self, input: Any) -> jax.Array:
        return F.dropout(_unwrap(input), self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """Zero whole channels of ``(N, C, L)`` or unbatched ``(C, L)`` inputs."""

    def forward(self, input: Any) -> jax.Array:
        return F.dropout1d(_unwrap(input), self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` or unbatched ``(C, H, W)`` inputs.

    As in torch, a 3-D input is treated as ``(N, C, L)`` with a warning.
    """

    def forward(self, input: Any) -> jax.Array:
        return F.dropout2d(_unwrap(input), self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """Zero whole channels of ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)`` inputs."""

    def forward(self, input: Any) -> jax.Array:
        return F.dropout3d(_unwrap(input), self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout for SELU networks: keeps the input's mean and variance (self-normalising)."""

    def forward(self, input: Any) -> jax.Array:
        return F.alpha_dropout(_unwrap(input), self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """Channel-wise :class:`AlphaDropout` (one mask value per sample and channel)."""

    def forward(self, input: Any) -> jax.Array:
        return F.feature_alpha_dropout(_unwrap(input), self.p, self.training)


_typerule.tensor_forwards(globals())
