""":class:`RelaxedBernoulli` (the binary Concrete / Gumbel-softmax distribution) and its
logit-space base :class:`LogitRelaxedBernoulli` (``torch.distributions.relaxed_bernoulli``).
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod.distributions import constraints
from jaxmod.distributions.discrete import _BinaryParams, _clamp_probs, _one_of
from jaxmod.distributions.distribution import (
    Distribution,
    as_array,
    broadcast_all,
    sample_size,
    wants_tensor,
)
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import SigmoidTransform

__all__ = ["LogitRelaxedBernoulli", "RelaxedBernoulli"]


class LogitRelaxedBernoulli(_BinaryParams, Distribution):
    """The logit of a :class:`RelaxedBernoulli` sample: ``(logit(U) + logits) /
    temperature`` for a uniform ``U``."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        _one_of(probs, logits)
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        (a,) = broadcast_all(given)
        self._wrap = wants_tensor(temperature, given)
        self._params = {"temperature": as_array(temperature, a.dtype), name: a}
        shape = () if isinstance(given, numbers.Number) else a.shape
        super().__init__(shape, validate_args=validate_args)

    @property
    def temperature(self) -> Any:
        """The relaxation temperature."""
        return self._out(self._params["temperature"])

    @property
    def probs(self) -> Any:
        """The probability of a 1 in the limit of zero temperature."""
        return self._out(self._probs())

    @property
    def logits(self) -> Any:
        """The log-odds."""
        return self._out(self._logits())

    @property
    def param_shape(self) -> Any:
        """The shape of ``probs`` / ``logits``."""
        return self._params.get("probs", self._params.get("logits")).shape

    def _sample(self, shape: tuple[int, ...]) -> Any:
        full = tuple(self._extended_shape(shape))
        probs = _clamp_probs(jnp.broadcast_to(self._probs(), full))
        u = _clamp_probs(jax.random.uniform(self._key(), full, probs.dtype))
        logit = jnp.log(u) - jnp.log1p(-u) + jnp.log(probs) - jnp.log1p(-probs)
        return logit / self._params["temperature"]

    def rsample(self, sample_shape: Any = ()) -> Any:
        """A differentiable sample (torch has no ``has_rsample`` flag here, yet draws)."""
        return self._out(self._sample(sample_size(sample_shape)))

    def log_prob(self, value: Any) -> Any:
        """The log-density of a logit-space value."""
        v = self._value(value)
        t = self._params["temperature"]
        logits, v = jnp.broadcast_arrays(self._logits(), v)
        diff = logits - v * t
        return self._out(jnp.log(t) + diff - 2 * jnp.log1p(jnp.exp(diff)))


class RelaxedBernoulli(TransformedDistribution):
    """A continuous relaxation of :class:`Bernoulli` on ``(0, 1)``: the sigmoid of a
    :class:`LogitRelaxedBernoulli` (reparameterised; lower ``temperature`` is closer to
    0/1)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        base = LogitRelaxedBernoulli(temperature, probs, logits)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)

    @property
    def temperature(self) -> Any:
        """The relaxation temperature."""
        return self.base_dist.temperature

    @property
    def probs(self) -> Any:
        """The probability of a 1 in the zero-temperature limit."""
        return self.base_dist.probs

    @property
    def logits(self) -> Any:
        """The log-odds."""
        return self.base_dist.logits
