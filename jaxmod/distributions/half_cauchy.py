""":class:`HalfCauchy`: ``|X|`` for a zero-centred Cauchy ``X``
(``torch.distributions.half_cauchy``)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax.numpy as jnp
from jax.scipy import stats

from jaxmod._tensor import base as _b
from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import Cauchy
from jaxmod.distributions.distribution import broadcast_all, wants_tensor
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import AbsTransform

__all__ = ["HalfCauchy"]


class HalfCauchy(TransformedDistribution):
    """``|X|`` for ``X ~ Cauchy(0, scale)``: a :class:`TransformedDistribution`
    (``AbsTransform``) with closed forms, as torch's (repr ``HalfCauchy()``)."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale: Any, validate_args: bool | None = None) -> None:
        (s,) = broadcast_all(scale)
        self._params = {"scale": s}
        number = isinstance(scale, numbers.Number)
        base = Cauchy(0.0 if number else jnp.zeros_like(s), scale if number else s,
                      validate_args=False)  # fmt: skip
        super().__init__(base, AbsTransform(), validate_args=validate_args)
        self._wrap = wants_tensor(scale)

    @property
    def scale(self) -> Any:
        """The scale of the underlying Cauchy."""
        return self._out(self._params["scale"])

    @property
    def mean(self) -> Any:
        """Infinity."""
        return self._out(jnp.full(self._extended_shape(), jnp.inf, self._params["scale"].dtype))

    @property
    def mode(self) -> Any:
        """0."""
        return self._out(jnp.zeros_like(self._params["scale"]))

    @property
    def variance(self) -> Any:
        """Infinity (the Cauchy's)."""
        return self._out(jnp.full_like(self._params["scale"], jnp.inf))

    def log_prob(self, value: Any) -> Any:
        """Twice the Cauchy density on ``[0, inf)``, ``-inf`` below."""
        v = self._value(value).astype(self._params["scale"].dtype)
        lp = stats.cauchy.logpdf(v, 0.0, self._params["scale"]) + math.log(2)
        return self._out(jnp.where(v >= 0, lp, -jnp.inf))

    def cdf(self, value: Any) -> Any:
        """``2 F(value) - 1`` for the Cauchy cdf ``F``."""
        v = self._value(value)
        return self._out(2 * stats.cauchy.cdf(v, 0.0, self._params["scale"]) - 1)

    def icdf(self, prob: Any) -> Any:
        """The Cauchy quantile of ``(prob + 1) / 2``."""
        q = (jnp.asarray(_b.unwrap(prob)) + 1) / 2
        return self._out(stats.cauchy.ppf(q, 0.0, self._params["scale"]))

    def entropy(self) -> Any:
        """The Cauchy entropy less ``log 2``: ``log(2 pi scale)``."""
        return self._out(math.log(4 * math.pi) + jnp.log(self._params["scale"]) - math.log(2))
