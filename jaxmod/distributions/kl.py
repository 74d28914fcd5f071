"""``kl_divergence(p, q)`` and ``register_kl``: KL divergences between distributions,
looked up by the pair of types (the most derived registered pair wins, as in torch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor import base as _b
from jaxmod._tensor import tape as _tape
from jaxmod.distributions import distribution as _dist
from jaxmod.distributions.continuous import (
    Beta,
    Dirichlet,
    Exponential,
    Gamma,
    HalfNormal,
    Laplace,
    Normal,
    Uniform,
)
from jaxmod.distributions.discrete import Bernoulli, Categorical, OneHotCategorical, Poisson
from jaxmod.distributions.distribution import Distribution, sum_rightmost
from jaxmod.distributions.gumbel import Gumbel, euler_constant
from jaxmod.distributions.independent import Independent
from jaxmod.distributions.multivariate_normal import (
    MultivariateNormal,
    batch_mahalanobis,
    half_log_det,
)
from jaxmod.distributions.pareto import Pareto
from jaxmod.distributions.transformed_distribution import TransformedDistribution

__all__ = ["kl_divergence", "register_kl"]

_KL: dict[tuple[type, type], Callable[[Any, Any], Any]] = {}


def register_kl(type_p: type, type_q: type) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn(p, q)`` as the KL divergence of a pair of types.

    The function works on distributions and returns an array or Tensor."""

    def decorator(fn: Callable) -> Callable:
        _KL[type_p, type_q] = fn
        return fn

    return decorator


def _lookup(type_p: type, type_q: type) -> Callable | None:
    for p in type_p.__mro__:
        for q in type_q.__mro__:
            if (p, q) in _KL:
                return _KL[p, q]
    return None


def _kl(p: Any, q: Any) -> Any:
    return kl_divergence(_dist._rebuild(p), _dist._rebuild(q))


def kl_divergence(p: Distribution, q: Distribution) -> Any:
    """``KL(p || q)``, batched over the distributions' batch shape.

    Raises:
        NotImplementedError: no formula is registered for the pair of types (torch's
            message).
    """
    if _dist._wanted(p, (q,), {}):
        return _tape.record(_kl, "KlDivergence", (_dist._ref(p), _dist._ref(q)), {})
    fn = _lookup(type(p), type(q))
    if fn is None:
        raise NotImplementedError(
            f"No KL(p || q) is implemented for p type {p.__class__.__name__} and "
            f"q type {q.__class__.__name__}"
        )
    out = _b.unwrap(fn(p, q))
    return _b.new(out) if p._wrap or q._wrap else out


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> Any:
    ps, qs = p._params["scale"], q._params["scale"]
    var_ratio = (ps / qs) ** 2
    t1 = ((p._params["loc"] - q._params["loc"]) / qs) ** 2
    return 0.5 * (var_ratio + t1 - 1 - jnp.log(var_ratio))


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p: Categorical, q: Categorical) -> Any:
    pp, qp = p._probs(), q._probs()
    t = pp * (p._logits() - q._logits())
    t, qp, pp = jnp.broadcast_arrays(t, qp, pp)
    t = jnp.where(qp == 0, jnp.inf, t)
    t = jnp.where(pp == 0, 0.0, t)
    return t.sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p: OneHotCategorical, q: OneHotCategorical) -> Any:
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p: Bernoulli, q: Bernoulli) -> Any:
    pp, qp, pl, ql = p._probs(), q._probs(), p._logits(), q._logits()
    softplus = jax.nn.softplus
    t1 = pp * (softplus(-ql) - softplus(-pl))
    t1 = jnp.where(qp == 0, jnp.inf, t1)
    t1 = jnp.where(pp == 0, 0.0, t1)
    t2 = (1 - pp) * (softplus(ql) - softplus(pl))
    t2 = jnp.where(qp == 1, jnp.inf, t2)
    t2 = jnp.where(pp == 1, 0.0, t2)
    return t1 + t2


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p: Uniform, q: Uniform) -> Any:
    pl, ph, ql, qh = p._params["low"], p._params["high"], q._params["low"], q._params["high"]
    result = jnp.log((qh - ql) / (ph - pl))
    return jnp.where((ql > pl) | (qh < ph), jnp.inf, result)


@register_kl(Independent, Independent)
def _kl_independent_independent(p: Independent, q: Independent) -> Any:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    result = _b.unwrap(kl_divergence(p.base_dist, q.base_dist))
    return sum_rightmost(result, p.reinterpreted_batch_ndims)


def _sp() -> Any:
    return jax.scipy.special


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p: Gamma, q: Gamma) -> Any:
    pc, pr = p._params["concentration"], p._params["rate"]
    qc, qr = q._params["concentration"], q._params["rate"]
    sp = _sp()
    t1 = qc * jnp.log(pr / qr)
    t2 = sp.gammaln(qc) - sp.gammaln(pc)
    t3 = (pc - qc) * sp.digamma(pc)
    t4 = (qr - pr) * (pc / pr)
    return t1 + t2 + t3 + t4


@register_kl(Beta, Beta)
def _kl_beta_beta(p: Beta, q: Beta) -> Any:
    pa, pb = p._params["concentration1"], p._params["concentration0"]
    qa, qb = q._params["concentration1"], q._params["concentration0"]
    sp = _sp()
    t1 = sp.betaln(qa, qb) - sp.betaln(pa, pb)
    t2 = (pa - qa) * sp.digamma(pa) + (pb - qb) * sp.digamma(pb)
    return t1 + t2 + (qa - pa + qb - pb) * sp.digamma(pa + pb)


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p: Dirichlet, q: Dirichlet) -> Any:
    pc, qc = p._params["concentration"], q._params["concentration"]
    sp = _sp()
    p0, q0 = pc.sum(-1), qc.sum(-1)
    t1 = sp.gammaln(p0) - sp.gammaln(q0)
    t2 = (sp.gammaln(qc) - sp.gammaln(pc)).sum(-1)
    t3 = ((pc - qc) * (sp.digamma(pc) - sp.digamma(p0)[..., None])).sum(-1)
    return t1 + t2 + t3


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p: Exponential, q: Exponential) -> Any:
    ratio = q._params["rate"] / p._params["rate"]
    return ratio - 1 - jnp.log(ratio)


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p: Laplace, q: Laplace) -> Any:
    ps, qs = p._params["scale"], q._params["scale"]
    diff = jnp.abs(p._params["loc"] - q._params["loc"])
    return -jnp.log(ps / qs) + diff / qs + ps / qs * jnp.exp(-diff / ps) - 1


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p: Poisson, q: Poisson) -> Any:
    pr, qr = p._params["rate"], q._params["rate"]
    return _sp().xlogy(pr, pr / qr) - (pr - qr)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Any:
    if p.event_shape != q.event_shape:
        raise ValueError(
            "KL-divergence between two Multivariate Normals with different event shapes "
            "cannot be computed"
        )
    pl, ql = p._tril(), q._tril()
    batch = jnp.broadcast_shapes(pl.shape[:-2], ql.shape[:-2])
    pl, ql = (
        jnp.broadcast_to(pl, batch + pl.shape[-2:]),
        jnp.broadcast_to(ql, batch + ql.shape[-2:]),
    )
    trace = (jax.scipy.linalg.solve_triangular(ql, pl, lower=True) ** 2).sum((-2, -1))
    mahal = batch_mahalanobis(ql, q._params["loc"] - p._params["loc"])
    n = p.event_shape[0]
    return half_log_det(ql) - half_log_det(pl) + 0.5 * (trace + mahal - n)


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p: TransformedDistribution, q: TransformedDistribution) -> Any:
    if p.transforms != q.transforms or p.event_shape != q.event_shape:
        raise NotImplementedError
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p: HalfNormal, q: HalfNormal) -> Any:
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p: Gumbel, q: Gumbel) -> Any:
    ratio = p._params["scale"] / q._params["scale"]
    q_loc = q._params["loc"] / q._params["scale"]
    p_loc = p._params["loc"] / q._params["scale"]
    t1 = -jnp.log(ratio) - q_loc + p_loc
    t3 = jnp.exp(q_loc + _sp().gammaln(1 + ratio) - p_loc)
    return t1 + ratio * euler_constant + t3 - (1 + euler_constant)


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p: Pareto, q: Pareto) -> Any:
    ps, qs = p._params["scale"], q._params["scale"]
    pa, qa = p._params["alpha"], q._params["alpha"]
    alpha_ratio = qa / pa
    result = qa * jnp.log(ps / qs) - jnp.log(alpha_ratio) + alpha_ratio - 1
    return jnp.where(ps < qs, jnp.inf, result)
