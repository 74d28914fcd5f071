""":class:`Gumbel`: the type-I extreme value distribution, ``loc - scale log(-log U)``
(``torch.distributions.gumbel``)."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import Uniform, _batch_shape
from jaxmod.distributions.distribution import broadcast_all, wants_tensor
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import AffineTransform, ExpTransform

__all__ = ["Gumbel", "euler_constant"]

euler_constant = 0.57721566490153286060  # the Euler-Mascheroni constant


class Gumbel(TransformedDistribution):
    """The Gumbel distribution with location ``loc`` and scale ``scale``: a
    :class:`Uniform` on ``(tiny, 1 - eps)`` through ``-log``, ``-log`` and an affine map,
    as torch builds it (closed-form density, moments and entropy)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    _repr_params = True

    def __init__(self, loc: Any, scale: Any, validate_args: bool | None = None) -> None:
        loc_a, scale_a = broadcast_all(loc, scale)
        self._params = {"loc": loc_a, "scale": scale_a}
        finfo = jnp.finfo(loc_a.dtype)
        shape = _batch_shape((loc, scale), loc_a)
        base = Uniform(jnp.full(shape, finfo.tiny, loc_a.dtype),
                       jnp.full(shape, 1 - finfo.eps, loc_a.dtype),
                       validate_args=validate_args)  # fmt: skip
        transforms = [ExpTransform().inv, AffineTransform(0, -jnp.ones_like(scale_a)),
                      ExpTransform().inv, AffineTransform(loc_a, -scale_a)]  # fmt: skip
        super().__init__(base, transforms, validate_args=validate_args)
        self._wrap = wants_tensor(loc, scale)

    @property
    def loc(self) -> Any:
        """The location (the mode)."""
        return self._out(self._params["loc"])

    @property
    def scale(self) -> Any:
        """The scale."""
        return self._out(self._params["scale"])

    mode = loc

    @property
    def mean(self) -> Any:
        """``loc + scale * euler_constant``."""
        return self._out(self._params["loc"] + self._params["scale"] * euler_constant)

    @property
    def stddev(self) -> Any:
        """``pi / sqrt(6) * scale``."""
        return self._out(math.pi / math.sqrt(6) * self._params["scale"])

    @property
    def variance(self) -> Any:
        """``stddev ** 2``."""
        return self._out((math.pi / math.sqrt(6) * self._params["scale"]) ** 2)

    def log_prob(self, value: Any) -> Any:
        """``z - exp(z) - log(scale)`` for ``z = (loc - value) / scale``."""
        v = self._value(value)
        loc, scale = self._params["loc"], self._params["scale"]
        z = (loc - v) / scale
        return self._out(z - jnp.exp(z) - jnp.log(scale))

    def entropy(self) -> Any:
        """``log(scale) + 1 + euler_constant``."""
        return self._out(jnp.log(self._params["scale"]) + (1 + euler_constant))
