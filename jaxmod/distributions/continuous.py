"""Continuous distributions: :class:`Normal` and :class:`Uniform` (reparameterised
samples, densities from ``jax.scipy.stats``)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy import stats

from jaxmod._tensor import base as _b
from jaxmod.distributions import constraints
from jaxmod.distributions.distribution import Distribution, broadcast_all, wants_tensor

__all__ = ["Normal", "Uniform"]


def _batch_shape(values: tuple[Any, ...], array: Any) -> tuple[int, ...]:
    return () if all(isinstance(v, numbers.Number) for v in values) else array.shape


class Normal(Distribution):
    """The normal distribution with mean ``loc`` and standard deviation ``scale``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc: Any, scale: Any, validate_args: bool | None = None) -> None:
        loc_a, scale_a = broadcast_all(loc, scale)
        self._wrap = wants_tensor(loc, scale)
        self._params = {"loc": loc_a, "scale": scale_a}
        super().__init__(_batch_shape((loc, scale), loc_a), validate_args=validate_args)

    @property
    def loc(self) -> Any:
        """The mean."""
        return self._out(self._params["loc"])

    @property
    def scale(self) -> Any:
        """The standard deviation."""
        return self._out(self._params["scale"])

    mean = loc
    mode = loc
    stddev = scale

    @property
    def variance(self) -> Any:
        """``scale ** 2``."""
        return self._out(self._params["scale"] ** 2)

    def _sample(self, shape: tuple[int, ...]) -> Any:
        loc, scale = self._params["loc"], self._params["scale"]
        eps = jax.random.normal(self._key(), shape + loc.shape, loc.dtype)
        return loc + eps * scale

    def log_prob(self, value: Any) -> Any:
        """The log-density at ``value``."""
        v = self._value(value)
        scale = self._params["scale"]
        lp = stats.norm.logpdf(v, self._params["loc"], scale)
        # jax.scipy's density is finite for a negative scale; torch's (log(scale)) is NaN
        return self._out(jnp.where(scale < 0, jnp.nan, lp))

    def cdf(self, value: Any) -> Any:
        """The cumulative distribution function."""
        v = self._value(value)
        return self._out(stats.norm.cdf(v, self._params["loc"], self._params["scale"]))

    def icdf(self, value: Any) -> Any:
        """The quantile function."""
        v = jnp.asarray(_b.unwrap(value))
        return self._out(stats.norm.ppf(v, self._params["loc"], self._params["scale"]))

    def entropy(self) -> Any:
        """``0.5 + 0.5 log(2 pi) + log(scale)``."""
        return self._out(0.5 + 0.5 * math.log(2 * math.pi) + jnp.log(self._params["scale"]))


class Uniform(Distribution):
    """The uniform distribution on ``[low, high)``."""

    has_rsample = True

    def __init__(self, low: Any, high: Any, validate_args: bool | None = None) -> None:
        low_a, high_a = broadcast_all(low, high)
        self._wrap = wants_tensor(low, high)
        self._params = {"low": low_a, "high": high_a}
        super().__init__(_batch_shape((low, high), low_a), validate_args=validate_args)

    @property
    def arg_constraints(self) -> dict[str, constraints.Constraint]:  # type: ignore[override]
        return {"low": constraints.less_than(self.high),
                "high": constraints.greater_than(self.low)}  # fmt: skip

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.interval(self.low, self.high)

    @property
    def low(self) -> Any:
        """The lower bound."""
        return self._out(self._params["low"])

    @property
    def high(self) -> Any:
        """The upper bound (excluded)."""
        return self._out(self._params["high"])

    @property
    def mean(self) -> Any:
        """``(low + high) / 2``."""
        return self._out((self._params["high"] + self._params["low"]) / 2)

    @property
    def mode(self) -> Any:
        """NaN: every point of the interval is a mode (as torch)."""
        return self._out(jnp.full_like(self._params["high"], jnp.nan))

    @property
    def stddev(self) -> Any:
        """``(high - low) / sqrt(12)``."""
        return self._out((self._params["high"] - self._params["low"]) / 12**0.5)

    @property
    def variance(self) -> Any:
        """``(high - low) ** 2 / 12``."""
        return self._out((self._params["high"] - self._params["low"]) ** 2 / 12)

    def _sample(self, shape: tuple[int, ...]) -> Any:
        low, high = self._params["low"], self._params["high"]
        u = jax.random.uniform(self._key(), shape + low.shape, low.dtype)
        return low + u * (high - low)

    def log_prob(self, value: Any) -> Any:
        """``-log(high - low)`` inside ``[low, high)``, ``-inf`` outside (torch's bounds;
        ``jax.scipy.stats.uniform`` also admits ``high``)."""
        v = self._value(value)
        low, high = self._params["low"], self._params["high"]
        inside = ((low <= v) & (high > v)).astype(low.dtype)
        return self._out(jnp.log(inside) - jnp.log(high - low))

    def cdf(self, value: Any) -> Any:
        """``(value - low) / (high - low)``, clamped to ``[0, 1]``."""
        v = self._value(value)
        low, high = self._params["low"], self._params["high"]
        return self._out(jnp.clip((v - low) / (high - low), 0, 1))

    def icdf(self, value: Any) -> Any:
        """``low + value (high - low)``."""
        low, high = self._params["low"], self._params["high"]
        return self._out(_b.unwrap(value) * (high - low) + low)

    def entropy(self) -> Any:
        """``log(high - low)``."""
        return self._out(jnp.log(self._params["high"] - self._params["low"]))
