""":class:`NegativeBinomial`: failures before ``total_count`` successes
(``torch.distributions.negative_binomial``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from jaxmod._tensor import dtypes as _dt
from jaxmod.distributions import constraints
from jaxmod.distributions.discrete import _BinaryParams, _one_of
from jaxmod.distributions.distribution import Distribution, broadcast_all, wants_tensor

__all__ = ["NegativeBinomial"]


class NegativeBinomial(_BinaryParams, Distribution):
    """The number of failures before ``total_count`` successes, each trial failing with
    probability ``probs`` (torch's convention; or log-odds ``logits``). Samples are floats
    drawn as a gamma-Poisson mixture, as torch draws them."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0),
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}  # fmt: skip
    support = constraints.nonnegative_integer

    def __init__(self, total_count: Any, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        _one_of(probs, logits)
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        n, p = broadcast_all(total_count, given)
        self._wrap = wants_tensor(total_count, given)
        self._params = {"total_count": n.astype(p.dtype), name: p}
        super().__init__(p.shape, validate_args=validate_args)

    @property
    def total_count(self) -> Any:
        """The number of successes to wait for."""
        return self._out(self._params["total_count"])

    @property
    def probs(self) -> Any:
        """The failure probability of a trial."""
        return self._out(self._probs())

    @property
    def logits(self) -> Any:
        """The log-odds of a failure."""
        return self._out(self._logits())

    @property
    def param_shape(self) -> _dt.Size:
        """The shape of ``probs`` / ``logits``."""
        return _dt.Size(self._probs().shape)

    @property
    def mean(self) -> Any:
        """``total_count * exp(logits)``."""
        return self._out(self._params["total_count"] * jnp.exp(self._logits()))

    @property
    def mode(self) -> Any:
        """``floor((total_count - 1) exp(logits))``, at least 0."""
        n = self._params["total_count"]
        return self._out(jnp.maximum(jnp.floor((n - 1) * jnp.exp(self._logits())), 0.0))

    @property
    def variance(self) -> Any:
        """``mean / sigmoid(-logits)``."""
        logits = self._logits()
        mean = self._params["total_count"] * jnp.exp(logits)
        return self._out(mean / jax.nn.sigmoid(-logits))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        n, logits = self._params["total_count"], self._logits()
        full = shape + tuple(self.batch_shape)
        k1, k2 = jax.random.split(self._key())
        g = jax.random.gamma(k1, jnp.broadcast_to(n, full), full, n.dtype)
        rate = jnp.maximum(g * jnp.exp(logits), jnp.finfo(n.dtype).tiny)
        return jax.random.poisson(k2, rate, full).astype(n.dtype)

    def log_prob(self, value: Any) -> Any:
        """The log-probability of ``value`` failures."""
        v = self._value(value)
        n, logits = self._params["total_count"], self._logits()
        unnorm = n * jax.nn.log_sigmoid(-logits) + v * jax.nn.log_sigmoid(logits)
        norm = -gammaln(n + v) + gammaln(1.0 + v) + gammaln(n)
        norm = jnp.where(n + v == 0.0, 0.0, norm)
        return self._out(unnorm - norm)
