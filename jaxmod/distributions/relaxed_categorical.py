""":class:`RelaxedOneHotCategorical` (the Concrete / Gumbel-softmax distribution) and its
log-space base :class:`ExpRelaxedCategorical`
(``torch.distributions.relaxed_categorical``)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxmod.distributions import constraints
from jaxmod.distributions.discrete import Categorical, _clamp_probs
from jaxmod.distributions.distribution import Distribution, as_array, wants_tensor
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import ExpTransform

__all__ = ["ExpRelaxedCategorical", "RelaxedOneHotCategorical"]


class ExpRelaxedCategorical(Distribution):
    """The log of a :class:`RelaxedOneHotCategorical` sample: log-softmax of
    ``(logits + Gumbel noise) / temperature``."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True
    _repr_params = False

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        self._categorical = Categorical(probs, logits)
        self._wrap = wants_tensor(temperature, probs if probs is not None else logits)
        dtype = self._categorical._logits().dtype
        self._params = {"temperature": as_array(temperature, dtype)}
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)  # fmt: skip

    @property
    def temperature(self) -> Any:
        """The relaxation temperature."""
        return self._out(self._params["temperature"])

    @property
    def param_shape(self) -> Any:
        """The shape of ``probs`` / ``logits``."""
        return self._categorical.param_shape

    @property
    def probs(self) -> Any:
        """The category probabilities."""
        return self._categorical.probs

    @property
    def logits(self) -> Any:
        """The normalised log-probabilities."""
        return self._categorical.logits

    def _sample(self, shape: tuple[int, ...]) -> Any:
        logits = self._categorical._logits()
        full = tuple(self._extended_shape(shape))
        u = _clamp_probs(jax.random.uniform(self._key(), full, logits.dtype))
        scores = (logits - jnp.log(-jnp.log(u))) / self._params["temperature"]
        return scores - logsumexp(scores, -1, keepdims=True)

    def log_prob(self, value: Any) -> Any:
        """The log-density of a log-simplex value."""
        v = self._value(value)
        k = self._categorical._num_events
        t = self._params["temperature"]
        logits, v = jnp.broadcast_arrays(self._categorical._logits(), v)
        log_scale = math.lgamma(k) + jnp.log(t) * (k - 1)
        score = logits - v * t
        score = (score - logsumexp(score, -1, keepdims=True)).sum(-1)
        return self._out(score + log_scale)


class RelaxedOneHotCategorical(TransformedDistribution):
    """A continuous relaxation of :class:`OneHotCategorical` on the simplex: ``exp`` of
    an :class:`ExpRelaxedCategorical` (reparameterised)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature: Any, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    @property
    def temperature(self) -> Any:
        """The relaxation temperature."""
        return self.base_dist.temperature

    @property
    def probs(self) -> Any:
        """The category probabilities."""
        return self.base_dist.probs

    @property
    def logits(self) -> Any:
        """The normalised log-probabilities."""
        return self.base_dist.logits
