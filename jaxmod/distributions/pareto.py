""":class:`Pareto`: ``scale * exp(E)`` for ``E ~ Exponential(alpha)``
(``torch.distributions.pareto``)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import Exponential
from jaxmod.distributions.distribution import broadcast_all, wants_tensor
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import AffineTransform, ExpTransform

__all__ = ["Pareto"]


class Pareto(TransformedDistribution):
    """The Pareto type-I distribution with minimum ``scale`` and tail index ``alpha``
    (a bad ``alpha`` is reported by the inner ``Exponential``, as torch)."""

    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}
    has_rsample = True
    _repr_params = True

    def __init__(self, scale: Any, alpha: Any, validate_args: bool | None = None) -> None:
        s, a = broadcast_all(scale, alpha)
        self._params = {"scale": s, "alpha": a}
        base = Exponential(a, validate_args=validate_args)
        transforms = [ExpTransform(), AffineTransform(loc=0, scale=s)]
        super().__init__(base, transforms, validate_args=validate_args)
        self._wrap = wants_tensor(scale, alpha)

    @property
    def scale(self) -> Any:
        """The minimum value."""
        return self._out(self._params["scale"])

    @property
    def alpha(self) -> Any:
        """The tail index."""
        return self._out(self._params["alpha"])

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self) -> Any:
        """``alpha scale / (alpha - 1)`` (infinite for ``alpha <= 1``)."""
        a = jnp.maximum(self._params["alpha"], 1)
        return self._out(a * self._params["scale"] / (a - 1))

    @property
    def mode(self) -> Any:
        """``scale``."""
        return self.scale

    @property
    def variance(self) -> Any:
        """``scale ** 2 alpha / ((alpha - 1) ** 2 (alpha - 2))`` (infinite for
        ``alpha <= 2``)."""
        a = jnp.maximum(self._params["alpha"], 2)
        return self._out(self._params["scale"] ** 2 * a / ((a - 1) ** 2 * (a - 2)))

    def entropy(self) -> Any:
        """``log(scale / alpha) + 1 + 1 / alpha``."""
        s, a = self._params["scale"], self._params["alpha"]
        return self._out(jnp.log(s / a) + (1 + 1 / a))
