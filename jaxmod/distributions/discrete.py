"""Discrete distributions: :class:`Categorical`, :class:`OneHotCategorical`,
:class:`Bernoulli`, :class:`Poisson`, :class:`Binomial`, :class:`Geometric`,
:class:`Multinomial` (torch's parameterisations, shapes and formulas, on ``jax.random`` and
``jax.nn``)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod.distributions import constraints
from jaxmod.distributions.distribution import (
    Distribution,
    as_array,
    broadcast_all,
    concrete,
    wants_tensor,
)

__all__ = ["Bernoulli", "Binomial", "Categorical", "Geometric", "Multinomial",
           "OneHotCategorical", "Poisson", "probs_to_logits"]  # fmt: skip


def _clamp_probs(probs: Any) -> Any:
    eps = jnp.finfo(probs.dtype).eps
    return jnp.clip(probs, eps, 1 - eps)


def probs_to_logits(probs: Any, is_binary: bool = False) -> Any:
    """Log-probabilities (log-odds when ``is_binary``) of clamped ``probs``, as torch."""
    p = _clamp_probs(probs)
    return jnp.log(p) - jnp.log1p(-p) if is_binary else jnp.log(p)


def _one_of(probs: Any, logits: Any) -> None:
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


class Categorical(Distribution):
    """Categories ``0 .. K-1`` with probabilities ``probs`` (normalised over the last
    dimension) or unnormalised log-probabilities ``logits``; samples are ``int64``
    (``torch.long``)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        _one_of(probs, logits)
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        a = as_array(given)
        if a.ndim < 1:
            raise ValueError(f"`{name}` parameter must be at least one-dimensional.")
        if name == "probs":
            a = a / a.sum(-1, keepdims=True)
        else:
            a = a - jax.scipy.special.logsumexp(a, axis=-1, keepdims=True)
        self._wrap = wants_tensor(given)
        self._params = {name: a}
        self._num_events = a.shape[-1]
        super().__init__(a.shape[:-1], validate_args=validate_args)

    def _probs(self) -> Any:
        p = self._params
        return p["probs"] if "probs" in p else jax.nn.softmax(p["logits"], axis=-1)

    def _logits(self) -> Any:
        p = self._params
        return p["logits"] if "logits" in p else probs_to_logits(p["probs"])

    @property
    def probs(self) -> Any:
        """The normalised event probabilities."""
        return self._out(self._probs())

    @property
    def logits(self) -> Any:
        """The normalised event log-probabilities."""
        return self._out(self._logits())

    @property
    def param_shape(self) -> _dt.Size:
        """The shape of ``probs`` / ``logits``."""
        return _dt.Size(next(iter(self._params.values())).shape)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.integer_interval(0, self._num_events - 1)

    @property
    def mean(self) -> Any:
        """NaN (a categorical has no mean), as in torch."""
        return self._out(jnp.full(self._extended_shape(), jnp.nan, self._probs().dtype))

    variance = mean

    @property
    def mode(self) -> Any:
        """The most probable category."""
        return self._out(jnp.argmax(self._probs(), -1).astype(_dt.wide("long")))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        p = self._params
        logits = p["logits"] if "logits" in p else jnp.log(p["probs"])
        out = jax.random.categorical(self._key(), logits, -1, shape + tuple(self.batch_shape))
        return out.astype(_dt.wide("long"))

    def log_prob(self, value: Any) -> Any:
        """The log-probability of category ``value`` (broadcast with the batch)."""
        v = self._value(value).astype(_dt.wide("long"))[..., None]
        v, log_pmf = jnp.broadcast_arrays(v, self._logits())
        return self._out(jnp.take_along_axis(log_pmf, v[..., :1], -1)[..., 0])

    def entropy(self) -> Any:
        """``-sum(p log p)`` over the categories."""
        logits = self._logits()
        logits = jnp.maximum(logits, jnp.finfo(logits.dtype).min)
        return self._out(-(logits * self._probs()).sum(-1))

    def enumerate_support(self, expand: bool = True) -> Any:
        """``0 .. K-1`` along dimension 0, expanded over the batch shape."""
        batch = tuple(self.batch_shape)
        values = jnp.arange(self._num_events, dtype=_dt.wide("long"))
        values = values.reshape((-1,) + (1,) * len(batch))
        return self._out(jnp.broadcast_to(values, (self._num_events,) + batch) if expand
                         else values)  # fmt: skip


class OneHotCategorical(Distribution):
    """A :class:`Categorical` whose samples are one-hot vectors of length ``K`` (in the
    parameters' dtype)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        self._wrap = self._categorical._wrap
        self._params = {}
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)  # fmt: skip

    @property
    def probs(self) -> Any:
        """The normalised event probabilities."""
        return self._categorical.probs

    @property
    def logits(self) -> Any:
        """The normalised event log-probabilities."""
        return self._categorical.logits

    @property
    def param_shape(self) -> _dt.Size:
        """The shape of ``probs`` / ``logits``."""
        return self._categorical.param_shape

    @property
    def mean(self) -> Any:
        """The event probabilities."""
        return self._categorical.probs

    @property
    def mode(self) -> Any:
        """The most probable category, one-hot."""
        p = self._categorical._probs()
        return self._out(jax.nn.one_hot(jnp.argmax(p, -1), p.shape[-1], dtype=p.dtype))

    @property
    def variance(self) -> Any:
        """``p (1 - p)`` per category."""
        p = self._categorical._probs()
        return self._out(p * (1 - p))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        p = self._categorical._probs()
        return jax.nn.one_hot(self._categorical._sample(shape), p.shape[-1], dtype=p.dtype)

    def log_prob(self, value: Any) -> Any:
        """The log-probability of the category that one-hot ``value`` marks."""
        v = self._value(value)
        return self._categorical.log_prob(self._out(jnp.argmax(v, -1)))

    def entropy(self) -> Any:
        """The categorical entropy."""
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Any:
        """The ``K`` one-hot vectors along dimension 0."""
        n = self.event_shape[0]
        p = self._categorical._probs()
        values = jnp.eye(n, dtype=p.dtype).reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        return self._out(jnp.broadcast_to(values, (n,) + tuple(self.batch_shape) + (n,))
                         if expand else values)  # fmt: skip


class _BinaryParams:
    """``_probs`` / ``_logits`` of a distribution given one of ``probs`` and ``logits`` of
    a success (``self._params`` holds whichever was given)."""

    _params: dict[str, Any]

    def _probs(self) -> Any:
        p = self._params
        return p["probs"] if "probs" in p else jax.nn.sigmoid(p["logits"])

    def _logits(self) -> Any:
        p = self._params
        return p["logits"] if "logits" in p else probs_to_logits(p["probs"], is_binary=True)


class Bernoulli(_BinaryParams, Distribution):
    """0/1 outcomes that are 1 with probability ``probs`` (or log-odds ``logits``);
    samples have the parameters' dtype."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        _one_of(probs, logits)
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        (a,) = broadcast_all(given)
        self._wrap = wants_tensor(given)
        self._params = {name: a}
        shape = () if isinstance(given, numbers.Number) else a.shape
        super().__init__(shape, validate_args=validate_args)

    @property
    def probs(self) -> Any:
        """The probability of a 1."""
        return self._out(self._probs())

    @property
    def logits(self) -> Any:
        """The log-odds of a 1."""
        return self._out(self._logits())

    @property
    def param_shape(self) -> _dt.Size:
        """The shape of ``probs`` / ``logits``."""
        return _dt.Size(next(iter(self._params.values())).shape)

    @property
    def mean(self) -> Any:
        """``probs``."""
        return self.probs

    @property
    def mode(self) -> Any:
        """1 where ``probs > 0.5``, 0 where below, NaN at exactly 0.5 (as torch)."""
        p = self._probs()
        return self._out(jnp.where(p == 0.5, jnp.nan, (p >= 0.5).astype(p.dtype)))

    @property
    def variance(self) -> Any:
        """``p (1 - p)``."""
        p = self._probs()
        return self._out(p * (1 - p))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        p = self._probs()
        full = shape + tuple(self.batch_shape)
        return jax.random.bernoulli(self._key(), p, full).astype(p.dtype)

    def log_prob(self, value: Any) -> Any:
        """``log p`` at 1 and ``log(1 - p)`` at 0 (computed from the logits)."""
        v = self._value(value)
        logits, v = jnp.broadcast_arrays(self._logits(), v.astype(self._logits().dtype))
        return self._out(v * jax.nn.log_sigmoid(logits) + (1 - v) * jax.nn.log_sigmoid(-logits))

    def entropy(self) -> Any:
        """The binary entropy of ``probs``."""
        logits, p = self._logits(), self._probs()
        return self._out(-(p * jax.nn.log_sigmoid(logits) + (1 - p) * jax.nn.log_sigmoid(-logits)))

    def enumerate_support(self, expand: bool = True) -> Any:
        """``0., 1.`` along dimension 0, expanded over the batch shape."""
        batch = tuple(self.batch_shape)
        values = jnp.arange(2, dtype=self._probs().dtype).reshape((-1,) + (1,) * len(batch))
        return self._out(jnp.broadcast_to(values, (2,) + batch) if expand else values)


class Poisson(Distribution):
    """Counts with mean ``rate``; samples are floats (the rate's dtype), as torch's."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate: Any, validate_args: bool | None = None) -> None:
        (r,) = broadcast_all(rate)
        self._wrap = wants_tensor(rate)
        self._params = {"rate": r}
        shape = () if isinstance(rate, numbers.Number) else r.shape
        super().__init__(shape, validate_args=validate_args)

    @property
    def rate(self) -> Any:
        """The mean count."""
        return self._out(self._params["rate"])

    mean = rate
    variance = rate

    @property
    def mode(self) -> Any:
        """``floor(rate)``."""
        return self._out(jnp.floor(self._params["rate"]))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        r = self._params["rate"]
        return jax.random.poisson(self._key(), r, shape + r.shape).astype(r.dtype)

    def log_prob(self, value: Any) -> Any:
        """``value log(rate) - rate - log(value!)``."""
        v = self._value(value)
        r = self._params["rate"]
        sp = jax.scipy.special
        return self._out(sp.xlogy(v, r) - r - sp.gammaln(v + 1))


class Binomial(_BinaryParams, Distribution):
    """The number of successes in ``total_count`` trials of probability ``probs`` (or
    log-odds ``logits``); samples are floats, as torch's."""

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}  # fmt: skip
    has_enumerate_support = True

    def __init__(self, total_count: Any = 1, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        _one_of(probs, logits)
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        n, p = broadcast_all(total_count, given)
        self._wrap = wants_tensor(total_count, given)
        self._params = {"total_count": n.astype(p.dtype), name: p}
        scalar = all(isinstance(v, numbers.Number) for v in (total_count, given))
        super().__init__(() if scalar else p.shape, validate_args=validate_args)

    @property
    def total_count(self) -> Any:
        """The number of trials (floats, as torch)."""
        return self._out(self._params["total_count"])

    @property
    def probs(self) -> Any:
        """The success probability."""
        return self._out(self._probs())

    @property
    def logits(self) -> Any:
        """The success log-odds."""
        return self._out(self._logits())

    @property
    def param_shape(self) -> _dt.Size:
        """The shape of ``probs`` / ``logits``."""
        return _dt.Size(self._probs().shape)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self) -> Any:
        """``total_count * probs``."""
        return self._out(self._params["total_count"] * self._probs())

    @property
    def mode(self) -> Any:
        """``floor((total_count + 1) probs)``, at most ``total_count``."""
        n = self._params["total_count"]
        return self._out(jnp.minimum(jnp.floor((n + 1) * self._probs()), n))

    @property
    def variance(self) -> Any:
        """``total_count p (1 - p)``."""
        p = self._probs()
        return self._out(self._params["total_count"] * p * (1 - p))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        n, p = self._params["total_count"], self._probs()
        full = shape + tuple(self.batch_shape)
        return jax.random.binomial(self._key(), n, p, full, p.dtype)

    def log_prob(self, value: Any) -> Any:
        """The log-probability of ``value`` successes (computed from the logits)."""
        v = self._value(value)
        n, logits = self._params["total_count"], self._logits()
        sp = jax.scipy.special
        log_binom = sp.gammaln(n + 1) - sp.gammaln(v + 1) - sp.gammaln(n - v + 1)
        # log p^v (1-p)^(n-v) = v logits - n softplus(logits) (probs are clamped first)
        return self._out(log_binom + v * logits - n * jax.nn.softplus(logits))

    def entropy(self) -> Any:
        """``-sum p log p`` over ``0 .. total_count`` (one count for the whole batch, as
        torch requires)."""
        n = np.asarray(self._params["total_count"])
        if n.size and not (n == n.flat[0]).all():
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        lp = _b.unwrap(self.log_prob(self.enumerate_support(False)))
        return self._out(-(jnp.exp(lp) * lp).sum(0))

    def enumerate_support(self, expand: bool = True) -> Any:
        """``0 .. total_count`` along dimension 0 (one count for the whole batch)."""
        n = np.asarray(self._params["total_count"])
        if n.size and not (n == n.flat[0]).all():
            raise NotImplementedError("Inhomogeneous total count not supported by "
                                      "`enumerate_support`.")  # fmt: skip
        batch = tuple(self.batch_shape)
        p = self._probs()
        values = jnp.arange(1 + int(n.flat[0]) if n.size else 1, dtype=p.dtype)
        values = values.reshape((-1,) + (1,) * len(batch))
        return self._out(jnp.broadcast_to(values, values.shape[:1] + batch) if expand
                         else values)  # fmt: skip


class Geometric(Distribution):
    """The number of failures before the first success of probability ``probs`` (or
    log-odds ``logits``); samples are floats, as torch's."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        _one_of(probs, logits)
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        (a,) = broadcast_all(given)
        self._wrap = wants_tensor(given)
        self._params = {name: a}
        shape = () if isinstance(given, numbers.Number) else a.shape
        super().__init__(shape, validate_args=validate_args)

    def _check_params(self) -> None:
        if "probs" in self._params and concrete(self._params["probs"]):
            p = self._params["probs"]
            if not bool(np.all(np.asarray(p > 0))):
                raise ValueError(
                    f"Expected parameter probs (Tensor of shape {tuple(p.shape)}) of "
                    f"distribution {self!r} to be positive but found invalid values:\n"
                    f"{constraints.fmt(p)}"
                )
        super()._check_params()

    _probs = Bernoulli._probs
    _logits = Bernoulli._logits
    probs = Bernoulli.probs
    logits = Bernoulli.logits

    @property
    def mean(self) -> Any:
        """``1 / p - 1``."""
        return self._out(1 / self._probs() - 1)

    @property
    def mode(self) -> Any:
        """0."""
        return self._out(jnp.zeros_like(self._probs()))

    @property
    def variance(self) -> Any:
        """``(1 / p - 1) / p``."""
        p = self._probs()
        return self._out((1 / p - 1) / p)

    def _sample(self, shape: tuple[int, ...]) -> Any:
        p = self._probs()
        full = shape + tuple(self.batch_shape)
        return (jax.random.geometric(self._key(), p, full) - 1).astype(p.dtype)

    def log_prob(self, value: Any) -> Any:
        """``value log(1 - p) + log p`` (0 at ``p = 1, value = 0``)."""
        v = self._value(value)
        p = self._probs()
        v, p = jnp.broadcast_arrays(v, p)
        return self._out(jax.scipy.special.xlog1py(v, -p) + jnp.log(p))

    def entropy(self) -> Any:
        """The binary entropy of ``p`` over ``p``."""
        logits, p = self._logits(), self._probs()
        bce = -(p * jax.nn.log_sigmoid(logits) + (1 - p) * jax.nn.log_sigmoid(-logits))
        return self._out(bce / p)


class Multinomial(Distribution):
    """Counts of ``total_count`` draws from a :class:`Categorical` over the last dimension
    of ``probs`` / ``logits`` (event shape ``(K,)``; torch's repr: ``Multinomial()``)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    _repr_params = False

    def __init__(self, total_count: int = 1, probs: Any = None, logits: Any = None,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        if not isinstance(total_count, numbers.Number):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = int(total_count)
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        self._wrap = self._categorical._wrap
        self._params = {}
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)  # fmt: skip

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self) -> constraints.Constraint:
        return constraints.multinomial(self.total_count)

    probs = OneHotCategorical.probs
    logits = OneHotCategorical.logits
    param_shape = OneHotCategorical.param_shape

    @property
    def mean(self) -> Any:
        """``total_count * probs``."""
        return self._out(self.total_count * self._categorical._probs())

    @property
    def variance(self) -> Any:
        """``total_count p (1 - p)`` per category."""
        p = self._categorical._probs()
        return self._out(self.total_count * p * (1 - p))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        p = self._categorical._probs()
        draws = self._categorical._sample((self.total_count, *shape))
        return jax.nn.one_hot(draws, p.shape[-1], dtype=p.dtype).sum(0)

    def log_prob(self, value: Any) -> Any:
        """The multinomial log-probability of the count vector ``value``."""
        v = self._value(value)
        logits = self._categorical._logits()
        logits, v = jnp.broadcast_arrays(logits, v.astype(logits.dtype))
        sp = jax.scipy.special
        terms = jnp.where((v == 0) & jnp.isneginf(logits), 0.0, v * logits)
        norm = sp.gammaln(v.sum(-1) + 1) - sp.gammaln(v + 1).sum(-1)
        return self._out(norm + terms.sum(-1))

    def entropy(self) -> Any:
        """The entropy (each count's binomial expectation of ``log(x!)``)."""
        n = self.total_count
        p = self._categorical._probs()
        counts = jnp.arange(n + 1, dtype=p.dtype).reshape((-1,) + (1,) * p.ndim)
        binom = Binomial(n, p, validate_args=False)
        log_pmf = _b.unwrap(binom.log_prob(counts))
        sp = jax.scipy.special
        expected = (jnp.exp(log_pmf) * sp.gammaln(counts + 1)).sum((0, -1))
        logits = self._categorical._logits()
        cross = -(p * jnp.where(p == 0, 0.0, logits)).sum(-1)
        return self._out(n * cross - math.lgamma(n + 1) + expected)
