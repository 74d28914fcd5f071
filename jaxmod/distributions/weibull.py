""":class:`Weibull`: ``scale * E ** (1 / concentration)`` for a unit exponential ``E``
(``torch.distributions.weibull``)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax.scipy.special import gammaln

from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import Exponential
from jaxmod.distributions.distribution import broadcast_all, wants_tensor
from jaxmod.distributions.gumbel import euler_constant
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import AffineTransform, PowerTransform

__all__ = ["Weibull"]


class Weibull(TransformedDistribution):
    """The two-parameter Weibull distribution (torch's construction: a unit
    :class:`Exponential` through ``x ** (1 / concentration)`` and ``scale * x``)."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive
    has_rsample = True
    _repr_params = True

    def __init__(self, scale: Any, concentration: Any, validate_args: bool | None = None) -> None:
        s, c = broadcast_all(scale, concentration)
        self._params = {"scale": s, "concentration": c}
        base = Exponential(jnp.ones_like(s), validate_args=validate_args)
        transforms = [PowerTransform(exponent=1 / c), AffineTransform(loc=0, scale=s)]
        super().__init__(base, transforms, validate_args=validate_args)
        self._wrap = wants_tensor(scale, concentration)

    @property
    def scale(self) -> Any:
        """The scale."""
        return self._out(self._params["scale"])

    @property
    def concentration(self) -> Any:
        """The shape parameter."""
        return self._out(self._params["concentration"])

    @property
    def concentration_reciprocal(self) -> Any:
        """``1 / concentration``."""
        return self._out(1 / self._params["concentration"])

    @property
    def mean(self) -> Any:
        """``scale * Gamma(1 + 1 / concentration)``."""
        s, c = self._params["scale"], self._params["concentration"]
        return self._out(s * jnp.exp(gammaln(1 + 1 / c)))

    @property
    def mode(self) -> Any:
        """``scale ((c - 1) / c) ** (1 / c)`` (NaN for ``c < 1``, as torch)."""
        s, c = self._params["scale"], self._params["concentration"]
        return self._out(s * ((c - 1) / c) ** (1 / c))

    @property
    def variance(self) -> Any:
        """``scale ** 2 (Gamma(1 + 2 / c) - Gamma(1 + 1 / c) ** 2)``."""
        s, c = self._params["scale"], self._params["concentration"]
        return self._out(s**2 * (jnp.exp(gammaln(1 + 2 / c)) - jnp.exp(2 * gammaln(1 + 1 / c))))

    def entropy(self) -> Any:
        """``euler (1 - 1 / c) + log(scale / c) + 1``."""
        s, c = self._params["scale"], self._params["concentration"]
        return self._out(euler_constant * (1 - 1 / c) + jnp.log(s / c) + 1)
