"""Continuous distributions: :class:`Normal`, :class:`Uniform`, :class:`Gamma`,
:class:`Beta`, :class:`Dirichlet`, :class:`Exponential`, :class:`Laplace`,
:class:`Cauchy`, :class:`StudentT`, :class:`LogNormal`, :class:`HalfNormal`
(reparameterised samples from ``jax.random``, densities from ``jax.scipy``)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy import stats

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod.distributions import constraints
from jaxmod.distributions.distribution import (
    Distribution,
    as_array,
    broadcast_all,
    check_param,
    wants_tensor,
)
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import AbsTransform, ExpTransform

__all__ = ["Beta", "Cauchy", "Dirichlet", "Exponential", "Gamma", "HalfNormal", "Laplace",
           "LogNormal", "Normal", "StudentT", "Uniform"]  # fmt: skip


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


def _tiny(x: Any) -> Any:
    """Samples clamped away from 0 (the smallest normal number), as torch clamps them."""
    return jnp.maximum(x, jnp.finfo(x.dtype).tiny)


class Gamma(Distribution):
    """The gamma distribution with shape ``concentration`` and inverse scale ``rate``;
    ``rsample`` is differentiable in both (``jax.random.gamma``'s implicit gradient)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration: Any, rate: Any, validate_args: bool | None = None) -> None:
        c, r = broadcast_all(concentration, rate)
        self._wrap = wants_tensor(concentration, rate)
        self._params = {"concentration": c, "rate": r}
        super().__init__(_batch_shape((concentration, rate), c), validate_args=validate_args)

    @property
    def concentration(self) -> Any:
        """The shape parameter."""
        return self._out(self._params["concentration"])

    @property
    def rate(self) -> Any:
        """The inverse scale."""
        return self._out(self._params["rate"])

    @property
    def mean(self) -> Any:
        """``concentration / rate``."""
        return self._out(self._params["concentration"] / self._params["rate"])

    @property
    def mode(self) -> Any:
        """``(concentration - 1) / rate``, at least 0."""
        c, r = self._params["concentration"], self._params["rate"]
        return self._out(jnp.maximum((c - 1) / r, 0))

    @property
    def variance(self) -> Any:
        """``concentration / rate ** 2``."""
        return self._out(self._params["concentration"] / self._params["rate"] ** 2)

    def _sample(self, shape: tuple[int, ...]) -> Any:
        c, r = self._params["concentration"], self._params["rate"]
        return _tiny(jax.random.gamma(self._key(), c, shape + c.shape, c.dtype) / r)

    def log_prob(self, value: Any) -> Any:
        """The log-density (torch's values at 0: ``inf`` for concentration < 1)."""
        v = self._value(value)
        c, r = self._params["concentration"], self._params["rate"]
        xlogy = jax.scipy.special.xlogy
        return self._out(xlogy(c, r) + xlogy(c - 1, v) - r * v - jax.scipy.special.gammaln(c))

    def cdf(self, value: Any) -> Any:
        """The regularised lower incomplete gamma function of ``rate * value``."""
        v = self._value(value)
        c, r = self._params["concentration"], self._params["rate"]
        return self._out(jax.scipy.special.gammainc(c, r * v))

    def entropy(self) -> Any:
        """The differential entropy."""
        c, r = self._params["concentration"], self._params["rate"]
        sp = jax.scipy.special
        return self._out(c - jnp.log(r) + sp.gammaln(c) + (1 - c) * sp.digamma(c))


def _dirichlet_mode(c: Any) -> Any:
    """torch's Dirichlet mode: ``(c - 1)+`` normalised; where every concentration is
    below 1, the corner of the argmax of those (all zero) clamped values: the first."""
    cm1 = jnp.maximum(c - 1, 0)
    mode = cm1 / cm1.sum(-1, keepdims=True)
    corner = jax.nn.one_hot(jnp.argmax(cm1, -1), c.shape[-1], dtype=c.dtype)
    return jnp.where((c < 1).all(-1, keepdims=True), corner, mode)


class Dirichlet(Distribution):
    """The Dirichlet distribution over the simplex, with ``concentration`` of shape
    ``batch_shape + (K,)``; ``rsample`` is differentiable (``jax.random.dirichlet``)."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration: Any, validate_args: bool | None = None) -> None:
        c = as_array(concentration)
        if c.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self._wrap = wants_tensor(concentration)
        self._params = {"concentration": c}
        super().__init__(c.shape[:-1], c.shape[-1:], validate_args=validate_args)

    @property
    def concentration(self) -> Any:
        """The concentration parameters (last dimension: the categories)."""
        return self._out(self._params["concentration"])

    @property
    def mean(self) -> Any:
        """``concentration`` normalised."""
        c = self._params["concentration"]
        return self._out(c / c.sum(-1, keepdims=True))

    @property
    def mode(self) -> Any:
        """The mode (torch's convention where concentrations are below 1)."""
        return self._out(_dirichlet_mode(self._params["concentration"]))

    @property
    def variance(self) -> Any:
        """The per-category variance."""
        c = self._params["concentration"]
        c0 = c.sum(-1, keepdims=True)
        return self._out(c * (c0 - c) / (c0**2 * (c0 + 1)))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        c = self._params["concentration"]
        full = shape + tuple(self.batch_shape)
        return _tiny(jax.random.dirichlet(self._key(), c, full, c.dtype))

    def log_prob(self, value: Any) -> Any:
        """The log-density on the simplex."""
        v = self._value(value)
        c = self._params["concentration"]
        sp = jax.scipy.special
        lp = sp.xlogy(c - 1, v).sum(-1) + sp.gammaln(c.sum(-1)) - sp.gammaln(c).sum(-1)
        return self._out(lp)

    def entropy(self) -> Any:
        """The differential entropy."""
        c = self._params["concentration"]
        sp = jax.scipy.special
        k, c0 = c.shape[-1], c.sum(-1)
        return self._out(sp.gammaln(c).sum(-1) - sp.gammaln(c0) + (c0 - k) * sp.digamma(c0)
                         - ((c - 1) * sp.digamma(c)).sum(-1))  # fmt: skip


class Beta(Distribution):
    """The beta distribution on ``[0, 1]`` (``concentration1`` is alpha,
    ``concentration0`` beta); ``rsample`` is differentiable (``jax.random.beta``)."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}  # fmt: skip
    support = constraints.unit_interval
    has_rsample = True
    _repr_params = False  # torch's Beta holds a Dirichlet: its repr is ``Beta()``

    def __init__(self, concentration1: Any, concentration0: Any,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        a, b = broadcast_all(concentration1, concentration0)
        self._wrap = wants_tensor(concentration1, concentration0)
        self._params = {"concentration1": a, "concentration0": b}
        super().__init__(_batch_shape((concentration1, concentration0), a),
                         validate_args=validate_args)  # fmt: skip

    def _check_params(self) -> None:
        # torch validates the stacked concentrations of its inner Dirichlet
        c = jnp.stack([self._params["concentration1"], self._params["concentration0"]], -1)
        check_param("concentration", c, Dirichlet.arg_constraints["concentration"],
                    f"Dirichlet(concentration: {_dt.Size(c.shape)})")  # fmt: skip

    @property
    def concentration1(self) -> Any:
        """alpha."""
        return self._out(self._params["concentration1"])

    @property
    def concentration0(self) -> Any:
        """beta."""
        return self._out(self._params["concentration0"])

    @property
    def mean(self) -> Any:
        """``alpha / (alpha + beta)``."""
        a, b = self._params["concentration1"], self._params["concentration0"]
        return self._out(a / (a + b))

    @property
    def mode(self) -> Any:
        """The mode (torch's Dirichlet convention where alpha, beta < 1)."""
        a, b = self._params["concentration1"], self._params["concentration0"]
        return self._out(_dirichlet_mode(jnp.stack([a, b], -1))[..., 0])

    @property
    def variance(self) -> Any:
        """``alpha beta / ((alpha + beta) ** 2 (alpha + beta + 1))``."""
        a, b = self._params["concentration1"], self._params["concentration0"]
        t = a + b
        return self._out(a * b / (t**2 * (t + 1)))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        a, b = self._params["concentration1"], self._params["concentration0"]
        x = jax.random.beta(self._key(), a, b, shape + a.shape, a.dtype)
        eps = jnp.finfo(a.dtype).tiny
        return jnp.clip(x, eps, 1 - jnp.finfo(a.dtype).epsneg)

    def log_prob(self, value: Any) -> Any:
        """The log-density."""
        v = self._value(value)
        a, b = self._params["concentration1"], self._params["concentration0"]
        sp = jax.scipy.special
        return self._out(sp.xlogy(a - 1, v) + sp.xlog1py(b - 1, -v) - sp.betaln(a, b))

    def entropy(self) -> Any:
        """The differential entropy."""
        a, b = self._params["concentration1"], self._params["concentration0"]
        sp = jax.scipy.special
        return self._out(sp.betaln(a, b) - (a - 1) * sp.digamma(a) - (b - 1) * sp.digamma(b)
                         + (a + b - 2) * sp.digamma(a + b))  # fmt: skip


class Exponential(Distribution):
    """The exponential distribution with ``rate``."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate: Any, validate_args: bool | None = None) -> None:
        (r,) = broadcast_all(rate)
        self._wrap = wants_tensor(rate)
        self._params = {"rate": r}
        super().__init__(_batch_shape((rate,), r), validate_args=validate_args)

    @property
    def rate(self) -> Any:
        """The rate (inverse mean)."""
        return self._out(self._params["rate"])

    @property
    def mean(self) -> Any:
        """``1 / rate``."""
        return self._out(1 / self._params["rate"])

    stddev = mean

    @property
    def mode(self) -> Any:
        """0."""
        return self._out(jnp.zeros_like(self._params["rate"]))

    @property
    def variance(self) -> Any:
        """``rate ** -2``."""
        return self._out(self._params["rate"] ** -2)

    def _sample(self, shape: tuple[int, ...]) -> Any:
        r = self._params["rate"]
        return jax.random.exponential(self._key(), shape + r.shape, r.dtype) / r

    def log_prob(self, value: Any) -> Any:
        """``log(rate) - rate * value``."""
        v = self._value(value)
        r = self._params["rate"]
        return self._out(jnp.log(r) - r * v)

    def cdf(self, value: Any) -> Any:
        """``1 - exp(-rate * value)``."""
        v = self._value(value)
        return self._out(stats.expon.cdf(v, scale=1 / self._params["rate"]))

    def icdf(self, value: Any) -> Any:
        """``-log(1 - value) / rate``."""
        return self._out(-jnp.log1p(-jnp.asarray(_b.unwrap(value))) / self._params["rate"])

    def entropy(self) -> Any:
        """``1 - log(rate)``."""
        return self._out(1.0 - jnp.log(self._params["rate"]))


class _LocScale(Distribution):
    """A location-scale family built from ``loc`` and a positive ``scale``."""

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
        """The location."""
        return self._out(self._params["loc"])

    @property
    def scale(self) -> Any:
        """The scale."""
        return self._out(self._params["scale"])

    mode = loc

    def _noise(self, shape: tuple[int, ...], dtype: Any) -> Any:
        raise NotImplementedError

    def _sample(self, shape: tuple[int, ...]) -> Any:
        loc, scale = self._params["loc"], self._params["scale"]
        return loc + scale * self._noise(shape + loc.shape, loc.dtype)


class Laplace(_LocScale):
    """The Laplace distribution with location ``loc`` and scale ``scale``."""

    mean = _LocScale.loc

    @property
    def variance(self) -> Any:
        """``2 scale ** 2``."""
        return self._out(2 * self._params["scale"] ** 2)

    @property
    def stddev(self) -> Any:
        """``sqrt(2) scale``."""
        return self._out(2**0.5 * self._params["scale"])

    def _noise(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return jax.random.laplace(self._key(), shape, dtype)

    def log_prob(self, value: Any) -> Any:
        """The log-density."""
        v = self._value(value)
        return self._out(stats.laplace.logpdf(v, self._params["loc"], self._params["scale"]))

    def cdf(self, value: Any) -> Any:
        """The cumulative distribution function."""
        v = self._value(value)
        return self._out(stats.laplace.cdf(v, self._params["loc"], self._params["scale"]))

    def icdf(self, value: Any) -> Any:
        """The quantile function."""
        term = jnp.asarray(_b.unwrap(value)) - 0.5
        loc, scale = self._params["loc"], self._params["scale"]
        return self._out(loc - scale * jnp.sign(term) * jnp.log1p(-2 * jnp.abs(term)))

    def entropy(self) -> Any:
        """``1 + log(2 scale)``."""
        return self._out(1 + jnp.log(2 * self._params["scale"]))


class Cauchy(_LocScale):
    """The Cauchy distribution with location ``loc`` and scale ``scale`` (no mean or
    variance: NaN and infinity, as torch)."""

    @property
    def mean(self) -> Any:
        """NaN."""
        return self._out(jnp.full_like(self._params["loc"], jnp.nan))

    @property
    def variance(self) -> Any:
        """Infinity."""
        return self._out(jnp.full_like(self._params["loc"], jnp.inf))

    def _noise(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return jax.random.cauchy(self._key(), shape, dtype)

    def log_prob(self, value: Any) -> Any:
        """The log-density."""
        v = self._value(value)
        return self._out(stats.cauchy.logpdf(v, self._params["loc"], self._params["scale"]))

    def cdf(self, value: Any) -> Any:
        """The cumulative distribution function."""
        v = self._value(value)
        return self._out(stats.cauchy.cdf(v, self._params["loc"], self._params["scale"]))

    def icdf(self, value: Any) -> Any:
        """The quantile function."""
        v = jnp.asarray(_b.unwrap(value))
        return self._out(stats.cauchy.ppf(v, self._params["loc"], self._params["scale"]))

    def entropy(self) -> Any:
        """``log(4 pi scale)``."""
        return self._out(math.log(4 * math.pi) + jnp.log(self._params["scale"]))


class StudentT(Distribution):
    """Student's t distribution with ``df`` degrees of freedom, ``loc`` and ``scale``."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real,
                       "scale": constraints.positive}  # fmt: skip
    support = constraints.real
    has_rsample = True

    def __init__(self, df: Any, loc: Any = 0.0, scale: Any = 1.0,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        df_a, loc_a, scale_a = broadcast_all(df, loc, scale)
        self._wrap = wants_tensor(df, loc, scale)
        self._params = {"df": df_a, "loc": loc_a, "scale": scale_a}
        super().__init__(_batch_shape((df, loc, scale), df_a), validate_args=validate_args)

    def _check_params(self) -> None:
        # torch checks df first, in the chi-squared distribution it samples from
        check_param("df", self._params["df"], constraints.positive, "Chi2()")
        super()._check_params()

    @property
    def df(self) -> Any:
        """The degrees of freedom."""
        return self._out(self._params["df"])

    @property
    def loc(self) -> Any:
        """The location."""
        return self._out(self._params["loc"])

    @property
    def scale(self) -> Any:
        """The scale."""
        return self._out(self._params["scale"])

    mode = loc

    @property
    def mean(self) -> Any:
        """``loc`` where ``df > 1``, NaN elsewhere."""
        p = self._params
        return self._out(jnp.where(p["df"] <= 1, jnp.nan, p["loc"]))

    @property
    def variance(self) -> Any:
        """``scale ** 2 df / (df - 2)`` for ``df > 2``, infinity for ``1 < df <= 2``,
        NaN for ``df <= 1``."""
        df, scale = self._params["df"], self._params["scale"]
        var = jnp.where(df > 2, scale**2 * df / (df - 2), jnp.inf)
        return self._out(jnp.where(df <= 1, jnp.nan, var))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        df, loc, scale = self._params["df"], self._params["loc"], self._params["scale"]
        return loc + scale * jax.random.t(self._key(), df, shape + df.shape, df.dtype)

    def log_prob(self, value: Any) -> Any:
        """The log-density."""
        v = self._value(value)
        p = self._params
        return self._out(stats.t.logpdf(v, p["df"], p["loc"], p["scale"]))

    def entropy(self) -> Any:
        """The differential entropy."""
        df, scale = self._params["df"], self._params["scale"]
        sp = jax.scipy.special
        lbeta = sp.gammaln(0.5 * df) + math.lgamma(0.5) - sp.gammaln(0.5 * (df + 1))
        return self._out(jnp.log(scale) + 0.5 * (df + 1) * (sp.digamma(0.5 * (df + 1))
                         - sp.digamma(0.5 * df)) + 0.5 * jnp.log(df) + lbeta)  # fmt: skip


class LogNormal(TransformedDistribution):
    """``exp`` of a :class:`Normal` with ``loc`` and ``scale``: a
    :class:`TransformedDistribution` (``ExpTransform``) with closed forms, as torch's
    (repr ``LogNormal()``; parameter errors name the inner ``Normal``)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc: Any, scale: Any, validate_args: bool | None = None) -> None:
        base = Normal(loc, scale, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    @property
    def loc(self) -> Any:
        """The mean of the log."""
        return self.base_dist.loc

    @property
    def scale(self) -> Any:
        """The standard deviation of the log."""
        return self.base_dist.scale

    def _ls(self) -> tuple[Any, Any]:
        return self.base_dist._params["loc"], self.base_dist._params["scale"]

    @property
    def mean(self) -> Any:
        """``exp(loc + scale ** 2 / 2)``."""
        loc, scale = self._ls()
        return self._out(jnp.exp(loc + scale**2 / 2))

    @property
    def mode(self) -> Any:
        """``exp(loc - scale ** 2)``."""
        loc, scale = self._ls()
        return self._out(jnp.exp(loc - scale**2))

    @property
    def variance(self) -> Any:
        """``(exp(scale ** 2) - 1) exp(2 loc + scale ** 2)``."""
        loc, scale = self._ls()
        return self._out(jnp.expm1(scale**2) * jnp.exp(2 * loc + scale**2))

    def log_prob(self, value: Any) -> Any:
        """The normal log-density of ``log(value)`` less ``log(value)``."""
        v = self._value(value)
        loc, scale = self._ls()
        y = jnp.log(v)
        return self._out(stats.norm.logpdf(y, loc, scale) - y)

    def cdf(self, value: Any) -> Any:
        """The normal cdf of ``log(value)``."""
        v = self._value(value)
        loc, scale = self._ls()
        return self._out(stats.norm.cdf(jnp.log(v), loc, scale))

    def icdf(self, value: Any) -> Any:
        """``exp`` of the normal quantile."""
        loc, scale = self._ls()
        return self._out(jnp.exp(stats.norm.ppf(jnp.asarray(_b.unwrap(value)), loc, scale)))

    def entropy(self) -> Any:
        """The normal entropy plus ``loc``."""
        loc, scale = self._ls()
        return self._out(0.5 + 0.5 * math.log(2 * math.pi) + jnp.log(scale) + loc)


class HalfNormal(TransformedDistribution):
    """``|X|`` for ``X ~ Normal(0, scale)``: a :class:`TransformedDistribution`
    (``AbsTransform``) with closed forms, as torch's (repr ``HalfNormal()``)."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale: Any, validate_args: bool | None = None) -> None:
        (s,) = broadcast_all(scale)
        self._params = {"scale": s}
        number = isinstance(scale, numbers.Number)
        base = Normal(0.0 if number else jnp.zeros_like(s), scale if number else s,
                      validate_args=False)  # fmt: skip
        super().__init__(base, AbsTransform(), validate_args=validate_args)
        self._wrap = wants_tensor(scale)

    @property
    def scale(self) -> Any:
        """The scale of the underlying normal."""
        return self._out(self._params["scale"])

    @property
    def mean(self) -> Any:
        """``scale sqrt(2 / pi)``."""
        return self._out(self._params["scale"] * math.sqrt(2 / math.pi))

    @property
    def mode(self) -> Any:
        """0."""
        return self._out(jnp.zeros_like(self._params["scale"]))

    @property
    def variance(self) -> Any:
        """``scale ** 2 (1 - 2 / pi)``."""
        return self._out(self._params["scale"] ** 2 * (1 - 2 / math.pi))

    def log_prob(self, value: Any) -> Any:
        """Twice the normal density on ``[0, inf)``, ``-inf`` below."""
        v = self._value(value)
        lp = stats.norm.logpdf(v, 0.0, self._params["scale"]) + math.log(2)
        return self._out(jnp.where(v >= 0, lp, -jnp.inf))

    def cdf(self, value: Any) -> Any:
        """``2 Phi(value / scale) - 1``."""
        v = self._value(value)
        return self._out(2 * stats.norm.cdf(v, 0.0, self._params["scale"]) - 1)

    def icdf(self, prob: Any) -> Any:
        """The normal quantile of ``(prob + 1) / 2``."""
        q = (jnp.asarray(_b.unwrap(prob)) + 1) / 2
        return self._out(stats.norm.ppf(q, 0.0, self._params["scale"]))

    def entropy(self) -> Any:
        """``0.5 log(pi scale ** 2 / 2) + 0.5``."""
        return self._out(0.5 * jnp.log(math.pi * self._params["scale"] ** 2 / 2) + 0.5)
