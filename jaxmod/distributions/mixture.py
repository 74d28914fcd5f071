""":class:`MixtureSameFamily`: a mixture whose ``K`` components are the rightmost batch
dimension of one distribution, weighted by a :class:`Categorical`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod.distributions import constraints
from jaxmod.distributions.discrete import Categorical
from jaxmod.distributions.distribution import Distribution

__all__ = ["MixtureSameFamily"]


class _MixtureSameFamilyConstraint(constraints.Constraint):
    """The component support, checked with the mixture dimension reduced (torch's)."""

    def __init__(self, base: constraints.Constraint) -> None:
        self.base_constraint = base
        self.is_discrete = base.is_discrete
        self.event_dim = base.event_dim

    def check(self, value: Any) -> Any:
        result = self.base_constraint.check(jnp.expand_dims(value, -1 - self.event_dim))
        return result.all(-1)

    def __repr__(self) -> str:
        return f"MixtureSameFamilyConstraint({self.base_constraint!r})"


class MixtureSameFamily(Distribution):
    """``mixture_distribution`` (a :class:`Categorical` over ``K``) picks one of the
    ``K`` components of ``component_distribution`` (batch shape ``batch_shape + (K,)``)."""

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = False

    def __init__(self, mixture_distribution: Any, component_distribution: Any,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(
                " The Mixture distribution needs to be an  instance of "
                "torch.distributions.Categorical"
            )
        if not isinstance(component_distribution, Distribution):
            raise ValueError(
                "The Component distribution needs to be an instance of "
                "torch.distributions.Distribution"
            )
        mdbs = tuple(mixture_distribution.batch_shape)
        cdbs = tuple(component_distribution.batch_shape)[:-1]
        for size1, size2 in zip(reversed(mdbs), reversed(cdbs)):
            if size1 != 1 and size2 != 1 and size1 != size2:
                raise ValueError(
                    f"`mixture_distribution.batch_shape` ({mixture_distribution.batch_shape}) "
                    "is not compatible with `component_distribution.batch_shape`"
                    f"({_dt.Size(cdbs)})"
                )
        km = mixture_distribution.param_shape[-1]
        kc = component_distribution.batch_shape[-1]
        if km != kc:
            raise ValueError(
                f"`mixture_distribution component` ({km}) does not equal "
                f"`component_distribution.batch_shape[-1]` ({kc})"
            )
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        self._wrap = mixture_distribution._wrap or component_distribution._wrap
        self._params = {}
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(cdbs, component_distribution.event_shape, validate_args=validate_args)

    @property
    def mixture_distribution(self) -> Categorical:
        """The categorical over the components."""
        return self._mixture_distribution

    @property
    def component_distribution(self) -> Distribution:
        """The components (rightmost batch dimension)."""
        return self._component_distribution

    @constraints.dependent_property
    def support(self) -> constraints.Constraint:
        return _MixtureSameFamilyConstraint(self._component_distribution.support)

    def _weights(self) -> Any:
        """The mixture probabilities, shaped to multiply component event values."""
        p = self._mixture_distribution._probs()
        return p.reshape(p.shape + (1,) * self._event_ndims)

    @property
    def mean(self) -> Any:
        """The probability-weighted component means."""
        m = _b.unwrap(self._component_distribution.mean)
        return self._out((self._weights() * m).sum(-1 - self._event_ndims))

    @property
    def variance(self) -> Any:
        """The law of total variance over the components."""
        d = -1 - self._event_ndims
        w = self._weights()
        m = _b.unwrap(self._component_distribution.mean)
        v = _b.unwrap(self._component_distribution.variance)
        mean = jnp.expand_dims((w * m).sum(d), d)
        return self._out((w * v).sum(d) + (w * (m - mean) ** 2).sum(d))

    def _pad(self, value: Any) -> Any:
        return _b.new(jnp.expand_dims(jnp.asarray(_b.unwrap(value)), -1 - self._event_ndims))

    def log_prob(self, value: Any) -> Any:
        """``logsumexp`` over the components of log weight plus component log-density."""
        if self._validate_args:
            self._validate_sample(value)
        lp = _b.unwrap(self._component_distribution.log_prob(self._pad(value)))
        log_w = jax.nn.log_softmax(self._mixture_distribution._logits(), -1)
        return self._out(jax.scipy.special.logsumexp(lp + log_w, -1))

    def cdf(self, value: Any) -> Any:
        """The probability-weighted component cdfs."""
        if self._validate_args:
            self._validate_sample(value)
        c = _b.unwrap(self._component_distribution.cdf(self._pad(value)))
        return self._out((c * self._mixture_distribution._probs()).sum(-1))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        idx = self._mixture_distribution._sample(shape)
        comps = self._component_distribution._sample(shape)
        n = self._event_ndims
        idx = idx.reshape(idx.shape + (1,) * (n + 1))
        idx = jnp.broadcast_to(idx, comps.shape[: comps.ndim - n - 1] + (1,) + comps.shape[
            comps.ndim - n:])  # fmt: skip
        return jnp.take_along_axis(comps, idx, comps.ndim - n - 1).squeeze(comps.ndim - n - 1)

    def __repr__(self) -> str:
        mix = self._mixture_distribution
        # torch's mixture reads the categorical's logits, which its repr then lists too
        mix_repr = repr(mix)
        if "probs" in mix._params:
            mix_repr = f"Categorical(probs: {mix.param_shape}, logits: {mix.param_shape})"
        return f"{type(self).__name__}(\n  {mix_repr},\n  {self._component_distribution})"
