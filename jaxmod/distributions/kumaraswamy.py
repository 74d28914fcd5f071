""":class:`Kumaraswamy`: ``(1 - U ** (1 / b)) ** (1 / a)`` for a uniform ``U``
(``torch.distributions.kumaraswamy``)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import Uniform
from jaxmod.distributions.distribution import broadcast_all, wants_tensor
from jaxmod.distributions.gumbel import euler_constant
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import AffineTransform, PowerTransform

__all__ = ["Kumaraswamy"]


def _moment(a: Any, b: Any, n: int) -> Any:
    """``E[X ** n] = b B(1 + n / a, b)``."""
    arg = 1 + n / a
    return b * jnp.exp(gammaln(arg) + gammaln(b) - gammaln(arg + b))


class Kumaraswamy(TransformedDistribution):
    """The Kumaraswamy distribution on ``(0, 1)`` with ``concentration1`` (a) and
    ``concentration0`` (b), built as torch builds it."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}  # fmt: skip
    support = constraints.unit_interval
    has_rsample = True
    _repr_params = True

    def __init__(self, concentration1: Any, concentration0: Any,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        a, b = broadcast_all(concentration1, concentration0)
        self._params = {"concentration1": a, "concentration0": b}
        base = Uniform(jnp.zeros_like(b), jnp.ones_like(b), validate_args=validate_args)
        transforms = [PowerTransform(exponent=1 / b), AffineTransform(loc=1.0, scale=-1.0),
                      PowerTransform(exponent=1 / a)]  # fmt: skip
        super().__init__(base, transforms, validate_args=validate_args)
        self._wrap = wants_tensor(concentration1, concentration0)

    @property
    def concentration1(self) -> Any:
        """a."""
        return self._out(self._params["concentration1"])

    @property
    def concentration0(self) -> Any:
        """b."""
        return self._out(self._params["concentration0"])

    @property
    def mean(self) -> Any:
        """The first moment."""
        return self._out(_moment(self._params["concentration1"], self._params["concentration0"], 1))

    @property
    def mode(self) -> Any:
        """``((a - 1) / (a b - 1)) ** (1 / a)``; NaN where ``a < 1`` or ``b < 1``."""
        a, b = self._params["concentration1"], self._params["concentration0"]
        log_mode = jnp.log1p(-b) / b - jnp.log1p(-b * a)
        log_mode = jnp.where((b < 1) | (a < 1), jnp.nan, log_mode)
        return self._out(jnp.exp(log_mode))

    @property
    def variance(self) -> Any:
        """The second moment less the squared mean."""
        a, b = self._params["concentration1"], self._params["concentration0"]
        return self._out(_moment(a, b, 2) - _moment(a, b, 1) ** 2)

    def entropy(self) -> Any:
        """The differential entropy."""
        a, b = self._params["concentration1"], self._params["concentration0"]
        h0 = digamma(b + 1) + euler_constant
        return self._out((1 - 1 / b) + (1 - 1 / a) * h0 - jnp.log(a) - jnp.log(b))
