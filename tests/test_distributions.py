"""``jaxmod.distributions`` matches ``torch.distributions`` (torch 2.13 is the oracle).

Deterministic quantities (``log_prob``, ``entropy``, ``mean``, ``stddev``, ``variance``,
``probs``/``logits``, ``cdf``, KL divergences, their gradients, shapes, reprs and the
validation errors) are compared with torch's values on the same parameters. Samples come
from a different generator, so for them the tests compare shape and dtype with torch's,
check the statistics, and check that ``rsample``'s gradient is the reparameterisation's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.distributions as td
from _port_checks import assert_close, to_numpy

import jaxmod
import jaxmod.distributions as jd

TOL = 1e-5
RNG = np.random.default_rng(0)
LOC = RNG.standard_normal((2, 3)).astype(np.float32)
SCALE = np.exp(RNG.standard_normal((2, 3))).astype(np.float32)
LOGITS = RNG.standard_normal((2, 4)).astype(np.float32)
PROBS = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.0, 0.25, 0.25]], np.float32)
P01 = np.array([0.2, 0.7, 0.5], np.float32)
LOW = np.array([-1.0, 0.0, 2.0], np.float32)
HIGH = np.array([1.0, 0.5, 4.0], np.float32)
X = RNG.standard_normal((5, 2, 3)).astype(np.float32)
CONC = np.exp(RNG.standard_normal((2, 3))).astype(np.float32)  # positive, some below 1
POS = np.exp(RNG.standard_normal((5, 2, 3))).astype(np.float32)
UNIT = (1 / (1 + np.exp(-X))).astype(np.float32)
COUNTS = np.array([[0, 1, 4], [2, 7, 3]], np.float32)
A = RNG.standard_normal((2, 3, 3)).astype(np.float32)
COV = (A @ A.transpose(0, 2, 1) + np.eye(3, dtype=np.float32)).astype(np.float32)
TRIL = np.linalg.cholesky(COV).astype(np.float32)
_S4 = np.concatenate([POS, POS[..., :1]], -1)
SIMPLEX4 = (_S4 / _S4.sum(-1, keepdims=True)).astype(np.float32)  # (5, 2, 4) on the simplex

LIBS = {"torch": (torch, td), "jaxmod": (jaxmod, jd)}


def _t(lib: Any, a: Any) -> Any:
    return lib.from_numpy(np.asarray(a))


# name -> (build(lib, D) -> distribution, value to score (numpy) or None)
DISTS: dict[str, tuple[Callable[[Any, Any], Any], Any]] = {
    "normal": (lambda L, D: D.Normal(_t(L, LOC), _t(L, SCALE)), X),
    "normal_scalar": (lambda L, D: D.Normal(0.5, 2.0), np.float32(0.3)),
    "normal_mixed": (lambda L, D: D.Normal(_t(L, LOC[0]), 1.5), X[:, 0]),
    "categorical_probs": (lambda L, D: D.Categorical(_t(L, PROBS)), np.array([3, 2], np.int64)),
    "categorical_logits": (
        lambda L, D: D.Categorical(logits=_t(L, LOGITS)),
        np.array([[0, 1], [3, 3], [2, 0]], np.int64),
    ),
    "onehot": (lambda L, D: D.OneHotCategorical(_t(L, PROBS)), np.eye(4, dtype=np.float32)[[1, 2]]),
    "bernoulli_probs": (lambda L, D: D.Bernoulli(_t(L, P01)), np.array([1, 0, 1], np.float32)),
    "bernoulli_logits": (
        lambda L, D: D.Bernoulli(logits=_t(L, LOC)),
        (X[:2] > 0).astype(np.float32)[:, 0],
    ),
    "uniform": (
        lambda L, D: D.Uniform(_t(L, LOW), _t(L, HIGH)),
        np.array([0.0, 0.25, 3.9], np.float32),
    ),
    "independent_normal": (lambda L, D: D.Independent(D.Normal(_t(L, LOC), _t(L, SCALE)), 1), X),
    "independent_bernoulli": (
        lambda L, D: D.Independent(D.Bernoulli(_t(L, P01)), 1),
        np.array([1, 0, 0], np.float32),
    ),
    "beta": (lambda L, D: D.Beta(_t(L, CONC), _t(L, SCALE)), UNIT),
    "beta_scalar": (lambda L, D: D.Beta(2.0, 3.0), np.float32(0.3)),
    "gamma": (lambda L, D: D.Gamma(_t(L, CONC), _t(L, SCALE)), POS),
    "gamma_mixed": (lambda L, D: D.Gamma(_t(L, CONC[0]), 2.0), POS[:, 0]),
    "dirichlet": (lambda L, D: D.Dirichlet(_t(L, CONC)),
                  (POS / POS.sum(-1, keepdims=True)).astype(np.float32)),
    "exponential": (lambda L, D: D.Exponential(_t(L, SCALE)), POS),
    "laplace": (lambda L, D: D.Laplace(_t(L, LOC), _t(L, SCALE)), X),
    "lognormal": (lambda L, D: D.LogNormal(_t(L, LOC), _t(L, SCALE)), POS),
    "poisson": (lambda L, D: D.Poisson(_t(L, SCALE)), COUNTS),
    "mvn_cov": (lambda L, D: D.MultivariateNormal(_t(L, LOC), _t(L, COV)), X),
    "mvn_tril": (lambda L, D: D.MultivariateNormal(_t(L, LOC[0]), scale_tril=_t(L, TRIL)), X),
    "mvn_precision": (
        lambda L, D: D.MultivariateNormal(_t(L, LOC[1]), precision_matrix=_t(L, COV[0])),
        X[:, 0],
    ),
    "cauchy": (lambda L, D: D.Cauchy(_t(L, LOC), _t(L, SCALE)), X),
    "halfnormal": (lambda L, D: D.HalfNormal(_t(L, SCALE)), POS),
    "studentt": (lambda L, D: D.StudentT(_t(L, CONC * 3), _t(L, LOC), _t(L, SCALE)), X),
    "studentt_df": (lambda L, D: D.StudentT(_t(L, np.array([0.5, 1.5, 3.0], np.float32))),
                    X[0, 0]),
    "binomial": (lambda L, D: D.Binomial(10, _t(L, UNIT[0])), COUNTS),
    "binomial_logits": (lambda L, D: D.Binomial(_t(L, np.array([8.0, 8.0], np.float32)),
                                                logits=_t(L, LOC[:, 0])),
                        np.array([3, 5], np.float32)),
    "geometric": (lambda L, D: D.Geometric(_t(L, UNIT[0])), COUNTS),
    "geometric_logits": (lambda L, D: D.Geometric(logits=_t(L, LOC)), COUNTS),
    "multinomial": (lambda L, D: D.Multinomial(6, _t(L, PROBS)),
                    np.array([[1, 2, 0, 3], [4, 0, 1, 1]], np.float32)),
    "mixture": (lambda L, D: D.MixtureSameFamily(D.Categorical(_t(L, CONC)),
                                                 D.Normal(_t(L, LOC), _t(L, SCALE))),
                X[:, :, 0]),
    "mixture_mvn": (lambda L, D: D.MixtureSameFamily(
        D.Categorical(logits=_t(L, LOC[0, :2])), D.MultivariateNormal(_t(L, LOC), _t(L, COV))),
        X[:, 0]),
    # families added with TransformedDistribution (most are subclasses of it in torch)
    "gumbel": (lambda L, D: D.Gumbel(_t(L, LOC), _t(L, SCALE)), X),
    "gumbel_scalar": (lambda L, D: D.Gumbel(0.5, 2.0), np.float32(0.3)),
    "halfcauchy": (lambda L, D: D.HalfCauchy(_t(L, SCALE)), POS),
    "chi2": (lambda L, D: D.Chi2(_t(L, CONC * 3)), POS),
    "weibull": (lambda L, D: D.Weibull(_t(L, SCALE), _t(L, CONC + 0.5)), POS),
    "pareto": (lambda L, D: D.Pareto(_t(L, SCALE * 0.1), _t(L, CONC * 3)), POS + 1),
    "kumaraswamy": (lambda L, D: D.Kumaraswamy(_t(L, CONC + 1), _t(L, SCALE + 1)), UNIT),
    "logistic_normal": (lambda L, D: D.LogisticNormal(_t(L, LOC), _t(L, SCALE)),
                        SIMPLEX4),
    "relaxed_bernoulli": (lambda L, D: D.RelaxedBernoulli(_t(L, np.float32(0.7)), _t(L, P01)),
                          UNIT[:, 0]),
    "relaxed_bernoulli_logits": (lambda L, D: D.RelaxedBernoulli(
        _t(L, np.float32(1.5)), logits=_t(L, LOC)), UNIT[:2]),
    "relaxed_onehot": (lambda L, D: D.RelaxedOneHotCategorical(_t(L, np.float32(0.5)),
                                                              _t(L, PROBS[:1] + 0.1)),
                       SIMPLEX4[:, 0]),
    "negative_binomial": (lambda L, D: D.NegativeBinomial(_t(L, CONC * 4), _t(L, UNIT[0] * 0.9)),
                          COUNTS),
    "negative_binomial_logits": (lambda L, D: D.NegativeBinomial(3.0, logits=_t(L, LOC)),
                                 COUNTS),
    "transformed_affine_exp": (lambda L, D: D.TransformedDistribution(
        D.Normal(_t(L, LOC), _t(L, SCALE)),
        [D.AffineTransform(_t(L, LOC[0]), 2.0), D.ExpTransform()]), POS),
    "transformed_sigmoid": (lambda L, D: D.TransformedDistribution(
        D.Uniform(_t(L, LOW * 0), _t(L, HIGH * 0 + 1)), [D.SigmoidTransform().inv]), X[:, 0]),
    "transformed_stickbreaking": (lambda L, D: D.TransformedDistribution(
        D.Normal(_t(L, LOC), 1.0), D.StickBreakingTransform()), SIMPLEX4),
}  # fmt: skip

# float32 cancellation (a second moment less the squared mean) rounds apart from torch's
LOOSE = {"kumaraswamy": 1e-4}
PROPS = ("mean", "stddev", "variance", "mode", "probs", "logits", "entropy", "perplexity")


def _both(name: str) -> tuple[Any, Any]:
    build = DISTS[name][0]
    return build(torch, td), build(jaxmod, jd)


def _same_dtype(j: Any, t: Any) -> bool:
    """jaxmod's dtype is torch's (``torch.long`` is ``jaxmod.long``: int32 without x64)."""
    expected = {"torch.int64": jaxmod.long, "torch.float64": jaxmod.float64}.get(str(t.dtype))
    return np.dtype(j.dtype) == (expected or np.dtype(str(t.dtype).removeprefix("torch.")))


def _compare(j: Any, t: Any, what: str, tol: float = TOL) -> None:
    a, e = to_numpy(j), to_numpy(t)
    assert isinstance(j, jaxmod.Tensor), f"{what}: {type(j).__name__} is not a jaxmod.Tensor"
    assert _same_dtype(j, t), f"{what}: dtype {j.dtype} vs torch's {t.dtype}"
    odd = ~np.isfinite(e)  # NaN and infinities must sit at the same places
    np.testing.assert_array_equal(a[odd], e[odd], err_msg=what)
    assert_close(np.where(odd, 0, a), np.where(odd, 0, e), tol, what)


@pytest.mark.parametrize("name", DISTS)
def test_values_match_torch(name: str) -> None:
    t, j = _both(name)
    assert repr(j) == repr(t)
    assert j.batch_shape == t.batch_shape and j.event_shape == t.event_shape
    assert type(j.batch_shape) is jaxmod.Size
    for prop in PROPS:
        try:
            expected = getattr(t, prop)
            expected = expected() if callable(expected) else expected
        except (AttributeError, NotImplementedError):
            continue  # torch has no such property (Poisson's entropy, a mixture's mode)
        got = getattr(j, prop)
        tol = LOOSE.get(name, TOL)
        _compare(got() if callable(got) else got, expected, f"{name}.{prop}", tol)
    value = DISTS[name][1]
    _compare(j.log_prob(_t(jaxmod, value)), t.log_prob(_t(torch, value)), f"{name}.log_prob")
    if hasattr(t, "has_enumerate_support") and t.has_enumerate_support:
        for expand in (True, False):
            _compare(j.enumerate_support(expand), t.enumerate_support(expand), "support")


@pytest.mark.parametrize("name", ["normal", "uniform", "exponential", "laplace", "cauchy",
                                  "lognormal", "halfnormal"])  # fmt: skip
def test_cdf_icdf_match_torch(name: str) -> None:
    t, j = _both(name)
    q = np.array([0.1, 0.5, 0.9], np.float32)
    q = np.broadcast_to(q, tuple(t.batch_shape[:-1]) + (3,)).copy() if t.batch_shape else q
    v = t.icdf(torch.from_numpy(q))
    _compare(j.icdf(jaxmod.from_numpy(q)), v, "icdf")
    _compare(j.cdf(jaxmod.from_numpy(v.numpy())), t.cdf(v), "cdf")


@pytest.mark.parametrize("name", ["gamma", "mixture"])
def test_cdf_matches_torch(name: str) -> None:
    t, j = _both(name)
    value = DISTS[name][1]
    _compare(j.cdf(_t(jaxmod, value)), t.cdf(_t(torch, value)), f"{name}.cdf")


@pytest.mark.parametrize("name", ["normal", "beta", "dirichlet", "mvn_cov", "poisson",
                                  "multinomial", "mixture_mvn", "independent_normal"])  # fmt: skip
def test_expand_matches_torch(name: str) -> None:
    t, j = _both(name)
    shape = (4,) + tuple(t.batch_shape)
    te, je = t.expand(torch.Size(shape)), j.expand(shape)
    assert je.batch_shape == te.batch_shape and je.event_shape == te.event_shape
    assert repr(je) == repr(te)
    value = DISTS[name][1][:1]
    _compare(je.log_prob(_t(jaxmod, value)), te.log_prob(_t(torch, value)), f"{name} expanded")
    assert je.sample((2,)).shape == te.sample((2,)).shape


KL_PAIRS = {
    "normal": ("normal", lambda L, D: D.Normal(_t(L, LOC[::-1].copy()), _t(L, SCALE * 0.5))),
    "categorical": ("categorical_probs",
                    lambda L, D: D.Categorical(logits=_t(L, LOGITS))),
    "categorical_zero_q": ("categorical_logits", lambda L, D: D.Categorical(_t(L, PROBS))),
    "onehot": ("onehot", lambda L, D: D.OneHotCategorical(logits=_t(L, LOGITS))),
    "bernoulli": ("bernoulli_probs", lambda L, D: D.Bernoulli(logits=_t(L, LOC[0]))),
    "uniform": ("uniform", lambda L, D: D.Uniform(_t(L, LOW - 1), _t(L, HIGH))),
    "uniform_outside": ("uniform", lambda L, D: D.Uniform(_t(L, LOW + 0.1), _t(L, HIGH))),
    "independent": ("independent_normal", lambda L, D: D.Independent(
        D.Normal(_t(L, LOC * 0), _t(L, SCALE * 2)), 1)),
    "beta": ("beta", lambda L, D: D.Beta(_t(L, SCALE), _t(L, CONC))),
    "gamma": ("gamma", lambda L, D: D.Gamma(_t(L, SCALE), 1.5)),
    "dirichlet": ("dirichlet", lambda L, D: D.Dirichlet(_t(L, SCALE))),
    "exponential": ("exponential", lambda L, D: D.Exponential(_t(L, CONC))),
    "laplace": ("laplace", lambda L, D: D.Laplace(_t(L, LOC * 0), _t(L, CONC))),
    "poisson": ("poisson", lambda L, D: D.Poisson(_t(L, CONC))),
    "mvn": ("mvn_cov", lambda L, D: D.MultivariateNormal(_t(L, LOC[1]), scale_tril=_t(L, TRIL))),
    "mvn_broadcast": ("mvn_tril", lambda L, D: D.MultivariateNormal(_t(L, LOC),
                                                                    _t(L, COV[1]))),
}  # fmt: skip


@pytest.mark.parametrize("pair", KL_PAIRS)
def test_kl_divergence_matches_torch(pair: str) -> None:
    p_name, q_build = KL_PAIRS[pair]
    tp, jp = _both(p_name)
    tq, jq = q_build(torch, td), q_build(jaxmod, jd)
    _compare(jd.kl_divergence(jp, jq), td.kl_divergence(tp, tq), f"kl {pair}")


def test_kl_of_unregistered_pair_raises_torchs_error() -> None:
    errors = []
    for L, D in (LIBS["torch"], LIBS["jaxmod"]):
        with pytest.raises(NotImplementedError) as info:
            D.kl_divergence(D.Normal(0.0, 1.0), D.Categorical(L.ones(2)))
        errors.append(str(info.value))
    assert errors[0] == errors[1]


SAMPLE_SHAPES = [(), (3,), (2, 1)]


@pytest.mark.parametrize("name", DISTS)
def test_sample_shape_and_dtype_match_torch(name: str) -> None:
    t, j = _both(name)
    for shape in SAMPLE_SHAPES:
        ts, js = t.sample(shape), j.sample(torch.Size(shape) if shape else shape)
        assert isinstance(js, jaxmod.Tensor)
        assert js.shape == ts.shape, (name, shape)
        assert _same_dtype(js, ts), (name, js.dtype, ts.dtype)
        assert bool(t.support.check(torch.from_numpy(to_numpy(js).astype(ts.numpy().dtype))).all())
        if t.has_rsample:
            assert j.rsample(shape).shape == t.rsample(shape).shape


def test_sample_statistics() -> None:
    jaxmod.manual_seed(0)
    n = 4000
    cat = jd.Categorical(jaxmod.tensor([0.1, 0.2, 0.7])).sample((n,))
    freq = np.bincount(to_numpy(cat), minlength=3) / n
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.03)
    z = to_numpy(jd.Normal(jaxmod.tensor(2.0), jaxmod.tensor(0.5)).sample((n,)))
    assert abs(z.mean() - 2.0) < 0.05 and abs(z.std() - 0.5) < 0.05
    b = to_numpy(jd.Bernoulli(jaxmod.tensor([0.3])).sample((n,)))
    assert abs(b.mean() - 0.3) < 0.03
    u = to_numpy(jd.Uniform(-1.0, 3.0).sample((n,)))
    assert u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1.0) < 0.1
    oh = to_numpy(jd.OneHotCategorical(logits=jaxmod.zeros(5)).sample((n,)))
    assert (oh.sum(-1) == 1).all() and abs(oh.mean(0) - 0.2).max() < 0.03


def test_sampling_follows_manual_seed_and_jit() -> None:
    d = jd.Normal(jaxmod.zeros(3), jaxmod.ones(3))
    jaxmod.manual_seed(7)
    a = to_numpy(d.sample())
    jaxmod.manual_seed(7)
    b = to_numpy(d.sample())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(to_numpy(d.sample()), b)

    @jaxmod.jit
    def draw(logits: Any) -> Any:
        return jd.Categorical(logits=logits).sample((50,))

    logits = jaxmod.tensor([0.0, 0.0, 0.0, 0.0])
    first, second = to_numpy(draw(logits)), to_numpy(draw(logits))
    assert first.shape == (50,) and not np.array_equal(first, second)  # the key advances


def test_rsample_gradient_is_the_reparameterisation() -> None:
    loc, scale = jaxmod.from_numpy(LOC), jaxmod.from_numpy(SCALE)

    def f(loc: Any, scale: Any) -> Any:
        z = jd.Normal(loc, scale).rsample()
        return (z * z).sum(), z

    jaxmod.manual_seed(3)
    (g_loc, g_scale), z = jaxmod.grad(f, argnums=(0, 1), has_aux=True)(loc, scale)
    z = to_numpy(z)
    eps = (z - LOC) / SCALE
    # torch's rsample is loc + eps * scale: with torch's eps the gradients are these
    t_loc, t_scale = (
        torch.from_numpy(LOC).requires_grad_(),
        torch.from_numpy(SCALE).requires_grad_(),
    )
    t_z = t_loc + torch.from_numpy(eps) * t_scale
    (t_z * t_z).sum().backward()
    assert_close(g_loc, t_loc.grad, 1e-4, "d/dloc")
    assert_close(g_scale, t_scale.grad, 1e-4, "d/dscale")
    # sample() carries no gradient (torch samples under no_grad)
    g = jaxmod.grad(lambda m: jd.Normal(m, 1.0).sample().sum())(jaxmod.zeros(3))
    np.testing.assert_array_equal(to_numpy(g), 0)
    low, high = jaxmod.tensor([0.0, 1.0]), jaxmod.tensor([2.0, 5.0])
    (g_low, g_high), u = jaxmod.grad(
        lambda lo, hi: (lambda s: (s.sum(), s))(jd.Uniform(lo, hi).rsample()),
        argnums=(0, 1), has_aux=True,
    )(low, high)  # fmt: skip
    frac = (to_numpy(u) - [0.0, 1.0]) / [2.0, 4.0]
    np.testing.assert_allclose(to_numpy(g_high), frac, atol=1e-6)
    np.testing.assert_allclose(to_numpy(g_low), 1 - frac, atol=1e-6)


# name -> (class, parameters, keyword of the single parameter) for the gradient test
GRAD_CASES: dict[str, tuple[str, tuple[Any, ...], str | None]] = {
    "beta": ("Beta", (CONC, SCALE), None),
    "gamma": ("Gamma", (CONC, SCALE), None),
    "dirichlet": ("Dirichlet", (CONC,), None),
    "exponential": ("Exponential", (SCALE,), None),
    "laplace": ("Laplace", (LOC, SCALE), None),
    "lognormal": ("LogNormal", (LOC, SCALE), None),
    "cauchy": ("Cauchy", (LOC, SCALE), None),
    "halfnormal": ("HalfNormal", (SCALE,), None),
    "studentt": ("StudentT", (CONC * 3, LOC, SCALE), None),
    "mvn_tril": ("MultivariateNormal", (LOC[0], TRIL), "scale_tril"),
    "geometric": ("Geometric", (UNIT[0],), None),
}


GRAD_CASES.update(
    {
        "gumbel": ("Gumbel", (LOC, SCALE), None),
        "halfcauchy": ("HalfCauchy", (SCALE,), None),
        "chi2": ("Chi2", (CONC * 3,), None),
        "weibull": ("Weibull", (SCALE, CONC + 0.5), None),
        "pareto": ("Pareto", (SCALE * 0.1, CONC * 3), None),
        "kumaraswamy": ("Kumaraswamy", (CONC + 1, SCALE + 1), None),
    }
)


@pytest.mark.parametrize("name", GRAD_CASES)
def test_new_log_prob_and_entropy_gradients_match_torch_under_jit(name: str) -> None:
    make, params, kw = GRAD_CASES[name]
    value = DISTS[name][1]

    def objective(L: Any, D: Any, *ps: Any) -> Any:
        args, kwargs = (ps[:-1], {kw: ps[-1]}) if kw else (ps, {})
        dist = getattr(D, make)(*args, **kwargs)
        return dist.log_prob(_t(L, value)).sum() + dist.entropy().sum()

    t_ps = [torch.from_numpy(p).requires_grad_() for p in params]
    objective(torch, td, *t_ps).backward()
    argnums = tuple(range(len(params)))
    grad = jaxmod.jit(jaxmod.grad(lambda *ps: objective(jaxmod, jd, *ps), argnums=argnums))
    grads = grad(*[jaxmod.from_numpy(p) for p in params])
    for g, tp in zip(grads, t_ps):
        assert_close(g, tp.grad, 1e-4, f"{name} grad")


RSAMPLE_CASES = [k for k in GRAD_CASES if k != "geometric"]


RSAMPLE_CASES += ["gumbel", "halfcauchy", "chi2", "weibull", "pareto", "kumaraswamy"]


@pytest.mark.parametrize("name", RSAMPLE_CASES)
def test_rsample_gradients_exist_and_are_finite(name: str) -> None:
    make, params, kw = GRAD_CASES[name]

    def f(*ps: Any) -> Any:
        args, kwargs = (ps[:-1], {kw: ps[-1]}) if kw else (ps, {})
        return getattr(jd, make)(*args, **kwargs).rsample((3,)).sum()

    jaxmod.manual_seed(1)
    grads = jaxmod.grad(f, argnums=tuple(range(len(params))))(
        *[jaxmod.from_numpy(p) for p in params])  # fmt: skip
    for g in grads:
        g = to_numpy(g)
        assert np.isfinite(g).all() and np.abs(g).sum() > 0, name


# name -> (build(D), expected mean, expected stddev) over 4000 seeded draws
STATS: dict[str, tuple[Callable[[Any], Any], float, float]] = {
    "beta": (lambda D: D.Beta(2.0, 3.0), 0.4, 0.2),
    "gamma": (lambda D: D.Gamma(jaxmod.tensor(3.0), 2.0), 1.5, 3**0.5 / 2),
    "exponential": (lambda D: D.Exponential(jaxmod.tensor(2.0)), 0.5, 0.5),
    "laplace": (lambda D: D.Laplace(1.0, 0.5), 1.0, 0.5 * 2**0.5),
    "lognormal": (lambda D: D.LogNormal(0.0, 0.5), np.exp(0.125),
                  (np.expm1(0.25) * np.exp(0.25)) ** 0.5),
    "poisson": (lambda D: D.Poisson(jaxmod.tensor(4.0)), 4.0, 2.0),
    "halfnormal": (lambda D: D.HalfNormal(2.0), 2 * (2 / np.pi) ** 0.5, 2 * (1 - 2 / np.pi) ** 0.5),
    "studentt": (lambda D: D.StudentT(6.0, 1.0, 2.0), 1.0, 2 * 1.5**0.5),
    "binomial": (lambda D: D.Binomial(10, jaxmod.tensor(0.3)), 3.0, 2.1**0.5),
    "geometric": (lambda D: D.Geometric(jaxmod.tensor(0.25)), 3.0, 12**0.5),
    "dirichlet": (lambda D: D.Dirichlet(jaxmod.tensor([2.0, 6.0])), 0.25, (12 / 576) ** 0.5),
    "mvn": (lambda D: D.MultivariateNormal(jaxmod.ones(2), jaxmod.tensor([[4.0, 1.0],
                                                                          [1.0, 1.0]])),
            1.0, 2.0),
    "multinomial": (lambda D: D.Multinomial(5, jaxmod.tensor([0.2, 0.8])), 1.0, 0.8**0.5),
    "mixture": (lambda D: D.MixtureSameFamily(D.Categorical(jaxmod.tensor([0.5, 0.5])),
                                              D.Normal(jaxmod.tensor([-1.0, 1.0]), 0.5)),
                0.0, 1.25**0.5),
}  # fmt: skip


STATS.update({
    "gumbel": (lambda D: D.Gumbel(1.0, 2.0), 1 + 2 * 0.5772156649, np.pi / 6**0.5 * 2),
    "weibull": (lambda D: D.Weibull(2.0, 3.0), 2 * 0.8929795, 2 * 0.3245792),
    "pareto": (lambda D: D.Pareto(1.0, 5.0), 1.25, (5 / 48) ** 0.5),
    "kumaraswamy": (lambda D: D.Kumaraswamy(2.0, 2.0), 8 / 15, (1 / 3 - 64 / 225) ** 0.5),
    "chi2": (lambda D: D.Chi2(jaxmod.tensor(4.0)), 4.0, 8**0.5),
    "negative_binomial": (lambda D: D.NegativeBinomial(4.0, jaxmod.tensor(0.25)), 4 / 3,
                          (4 / 3 / 0.75) ** 0.5),
})  # fmt: skip


@pytest.mark.parametrize("name", STATS)
def test_new_sample_statistics(name: str) -> None:
    build, mean, std = STATS[name]
    jaxmod.manual_seed(0)
    n = 4000
    x = to_numpy(build(jd).sample((n,))).reshape(n, -1)[:, 0]  # the first coordinate
    assert abs(x.mean() - mean) < 4 * std / n**0.5, (name, x.mean())
    assert abs(x.std() - std) < 0.1 * std, (name, x.std())


@pytest.mark.parametrize("name", ["normal", "categorical_logits", "bernoulli_probs", "uniform"])
def test_log_prob_and_entropy_gradients_match_torch(name: str) -> None:
    params = {"normal": (LOC, SCALE), "categorical_logits": (LOGITS,),
              "bernoulli_probs": (P01,), "uniform": (LOW, HIGH)}[name]  # fmt: skip
    make = {"normal": "Normal", "categorical_logits": "Categorical", "bernoulli_probs":
            "Bernoulli", "uniform": "Uniform"}[name]  # fmt: skip
    kw = {"categorical_logits": "logits"}.get(name)
    value = DISTS[name][1]

    def objective(D: Any, *ps: Any) -> Any:
        dist = getattr(D, make)(**{kw: ps[0]}) if kw else getattr(D, make)(*ps)
        lp = dist.log_prob(value_of[D])
        return lp.sum() + dist.entropy().sum()

    value_of = {td: torch.from_numpy(value), jd: jaxmod.from_numpy(value)}
    t_ps = [torch.from_numpy(p).requires_grad_() for p in params]
    objective(td, *t_ps).backward()
    j_ps = [jaxmod.from_numpy(p) for p in params]
    grads = jaxmod.grad(lambda *ps: objective(jd, *ps), argnums=tuple(range(len(params))))(*j_ps)
    for g, tp in zip(grads, t_ps):
        assert_close(g, tp.grad, 1e-4, f"{name} grad")


# torch's argument errors: (type, message) must equal torch's
ERRORS: dict[str, Callable[[Any, Any], Any]] = {
    "normal_negative_scale": lambda L, D: D.Normal(0.0, -1.0),
    "normal_negative_scale_vector": lambda L, D: D.Normal(L.zeros(2), -L.ones(2)),
    "categorical_not_simplex": lambda L, D: D.Categorical(L.tensor([0.5, -0.1])),
    "categorical_neither": lambda L, D: D.Categorical(),
    "categorical_both": lambda L, D: D.Categorical(L.ones(2), L.zeros(2)),
    "categorical_scalar": lambda L, D: D.Categorical(L.tensor(1.0)),
    "categorical_out_of_support": lambda L, D: D.Categorical(L.ones(3)).log_prob(L.tensor([3])),
    "categorical_fraction": lambda L, D: D.Categorical(L.ones(3)).log_prob(L.tensor([1.5])),
    "bernoulli_above_one": lambda L, D: D.Bernoulli(L.tensor([1.5])),
    "bernoulli_neither": lambda L, D: D.Bernoulli(),
    "bernoulli_not_boolean": lambda L, D: D.Bernoulli(L.tensor([0.5])).log_prob(L.tensor([2.0])),
    "uniform_reversed": lambda L, D: D.Uniform(1.0, 0.0),
    "uniform_outside": lambda L, D: D.Uniform(0.0, 1.0).log_prob(L.tensor(2.0)),
    "log_prob_of_number": lambda L, D: D.Normal(0.0, 1.0).log_prob(1.0),
    "log_prob_not_broadcastable": lambda L, D: D.Normal(L.zeros(2), 1.0).log_prob(L.zeros(3)),
    "log_prob_nan": lambda L, D: D.Normal(0.0, 1.0).log_prob(L.tensor(float("nan"))),
    "event_shape_mismatch": lambda L, D: D.OneHotCategorical(L.ones(3)).log_prob(L.ones(2)),
    "onehot_not_onehot": lambda L, D: D.OneHotCategorical(L.ones(3)).log_prob(
        L.tensor([1.0, 1.0, 0.0])),
    "independent_too_many_dims": lambda L, D: D.Independent(D.Normal(0.0, 1.0), 1),
    "beta_negative": lambda L, D: D.Beta(L.tensor([1.0, -1.0]), L.tensor([1.0, 1.0])),
    "beta_negative_scalar": lambda L, D: D.Beta(-1.0, 1.0),
    "gamma_negative": lambda L, D: D.Gamma(L.tensor([1.0, -1.0]), 1.0),
    "gamma_out_of_support": lambda L, D: D.Gamma(1.0, 1.0).log_prob(L.tensor(-1.0)),
    "dirichlet_negative": lambda L, D: D.Dirichlet(L.tensor([1.0, -1.0])),
    "dirichlet_scalar": lambda L, D: D.Dirichlet(L.tensor(1.0)),
    "dirichlet_not_simplex": lambda L, D: D.Dirichlet(L.ones(2)).log_prob(L.tensor([0.5, 0.6])),
    "exponential_negative": lambda L, D: D.Exponential(-1.0),
    "laplace_negative": lambda L, D: D.Laplace(0.0, -1.0),
    "cauchy_negative": lambda L, D: D.Cauchy(0.0, -1.0),
    "lognormal_negative": lambda L, D: D.LogNormal(0.0, -1.0),
    "lognormal_out_of_support": lambda L, D: D.LogNormal(0.0, 1.0).log_prob(L.tensor(-1.0)),
    "halfnormal_negative": lambda L, D: D.HalfNormal(-1.0),
    "halfnormal_out_of_support": lambda L, D: D.HalfNormal(1.0).log_prob(L.tensor(-1.0)),
    "studentt_negative_df": lambda L, D: D.StudentT(-1.0),
    "studentt_negative_scale": lambda L, D: D.StudentT(1.0, 0.0, -1.0),
    "poisson_negative": lambda L, D: D.Poisson(-1.0),
    "poisson_fraction": lambda L, D: D.Poisson(1.0).log_prob(L.tensor(1.5)),
    "mvn_no_matrix": lambda L, D: D.MultivariateNormal(L.zeros(2)),
    "mvn_two_matrices": lambda L, D: D.MultivariateNormal(L.zeros(2), L.eye(2),
                                                          scale_tril=L.eye(2)),
    "mvn_not_pd": lambda L, D: D.MultivariateNormal(L.zeros(2), -L.eye(2)),
    "mvn_not_tril": lambda L, D: D.MultivariateNormal(L.zeros(2), scale_tril=L.ones(2, 2)),
    "mvn_scalar_loc": lambda L, D: D.MultivariateNormal(L.tensor(0.0), L.eye(2)),
    "mvn_vector_cov": lambda L, D: D.MultivariateNormal(L.zeros(2), L.ones(2)),
    "mvn_vector_tril": lambda L, D: D.MultivariateNormal(L.zeros(2), scale_tril=L.ones(2)),
    "binomial_negative_count": lambda L, D: D.Binomial(L.tensor([-1.0]), L.tensor([0.5])),
    "binomial_above_count": lambda L, D: D.Binomial(3, L.tensor([0.5])).log_prob(
        L.tensor([4.0])),
    "binomial_neither": lambda L, D: D.Binomial(3),
    "geometric_zero": lambda L, D: D.Geometric(L.tensor([0.0])),
    "geometric_above_one": lambda L, D: D.Geometric(L.tensor([1.5])),
    "multinomial_not_simplex": lambda L, D: D.Multinomial(3, L.tensor([0.5, -0.1])),
    "mixture_wrong_k": lambda L, D: D.MixtureSameFamily(
        D.Categorical(L.tensor([0.5, 0.5])), D.Normal(L.tensor([0.0, 1.0, 2.0]), 1.0)),
    "mixture_not_categorical": lambda L, D: D.MixtureSameFamily(
        D.Normal(0.0, 1.0), D.Normal(L.tensor([0.0, 1.0]), 1.0)),
    "mixture_not_distribution": lambda L, D: D.MixtureSameFamily(
        D.Categorical(L.tensor([0.5, 0.5])), 3),
    "mixture_incompatible_batch": lambda L, D: D.MixtureSameFamily(
        D.Categorical(L.ones(3, 2)), D.Normal(L.zeros(4, 2), 1.0)),
}  # fmt: skip


ERRORS.update({
    "gumbel_negative": lambda L, D: D.Gumbel(0.0, -1.0),
    "gumbel_negative_vector": lambda L, D: D.Gumbel(L.zeros(2), L.tensor([1.0, -1.0])),
    "halfcauchy_negative": lambda L, D: D.HalfCauchy(-1.0),
    "halfcauchy_out_of_support": lambda L, D: D.HalfCauchy(1.0).log_prob(L.tensor(-1.0)),
    "chi2_negative": lambda L, D: D.Chi2(L.tensor([-1.0])),
    "weibull_negative": lambda L, D: D.Weibull(1.0, -1.0),
    "weibull_out_of_support": lambda L, D: D.Weibull(1.0, 1.0).log_prob(L.tensor(-1.0)),
    "pareto_negative_alpha": lambda L, D: D.Pareto(1.0, -1.0),
    "pareto_below_scale": lambda L, D: D.Pareto(2.0, 1.0).log_prob(L.tensor(1.0)),
    "kumaraswamy_negative": lambda L, D: D.Kumaraswamy(L.tensor([1.0]), L.tensor([-1.0])),
    "logistic_normal_negative": lambda L, D: D.LogisticNormal(L.zeros(2), -L.ones(2)),
    "relaxed_bernoulli_above_one": lambda L, D: D.RelaxedBernoulli(L.tensor(0.5),
                                                                   L.tensor([1.5])),
    "relaxed_bernoulli_neither": lambda L, D: D.RelaxedBernoulli(L.tensor(0.5)),
    "relaxed_onehot_not_simplex": lambda L, D: D.RelaxedOneHotCategorical(
        L.tensor(0.5), L.tensor([0.5, -0.1])),
    "negative_binomial_one": lambda L, D: D.NegativeBinomial(2.0, L.tensor([1.0])),
    "negative_binomial_negative_count": lambda L, D: D.NegativeBinomial(L.tensor([-1.0]),
                                                                        L.tensor([0.5])),
    "negative_binomial_fraction": lambda L, D: D.NegativeBinomial(2.0, L.tensor([0.5])).log_prob(
        L.tensor([1.5])),
    "transformed_too_few_dims": lambda L, D: D.TransformedDistribution(
        D.Normal(0.0, 1.0), D.StickBreakingTransform()),
    "transformed_out_of_support": lambda L, D: D.TransformedDistribution(
        D.Normal(0.0, 1.0), D.ExpTransform()).log_prob(L.tensor(-1.0)),
})  # fmt: skip


@pytest.mark.parametrize("case", ERRORS)
def test_validation_errors_match_torch(case: str) -> None:
    caught = []
    for L, D in (LIBS["torch"], LIBS["jaxmod"]):
        with pytest.raises(Exception) as info:  # noqa: PT011 - compared with torch's below
            ERRORS[case](L, D)
        caught.append((type(info.value), str(info.value)))
    assert caught[1] == caught[0]


def test_validate_args_false_skips_the_checks() -> None:
    d = jd.Normal(0.0, -1.0, validate_args=False)
    assert np.isnan(to_numpy(d.log_prob(jaxmod.tensor(0.0))))
    jd.Distribution.set_default_validate_args(False)
    try:
        jd.Categorical(jaxmod.ones(3)).log_prob(jaxmod.tensor([5]))  # out of support: no error
    finally:
        jd.Distribution.set_default_validate_args(True)


def test_type_rule_and_pytree() -> None:
    arr = jd.Normal(jnp.zeros(2), jnp.ones(2))
    assert type(arr.sample()) is not jaxmod.Tensor and isinstance(arr.sample(), jax.Array)
    assert isinstance(arr.log_prob(jnp.zeros(2)), jax.Array)
    assert isinstance(jd.Normal(jaxmod.zeros(2), 1.0).log_prob(jnp.zeros(2)), jaxmod.Tensor)
    p = jaxmod.nn.Parameter(jaxmod.zeros(2))
    assert isinstance(jd.Normal(p, 1.0).mean, jaxmod.Tensor)
    d = jd.Independent(jd.Normal(jaxmod.zeros(2), jaxmod.ones(2)), 1)
    doubled = jax.tree_util.tree_map(lambda x: x * 2, d)
    assert type(doubled) is jd.Independent and doubled.event_shape == (2,)
    np.testing.assert_array_equal(to_numpy(doubled.stddev), [2.0, 2.0])
    out = jaxmod.jit(lambda loc: jd.Independent(jd.Normal(loc, 1.0), 1))(jaxmod.ones(2))
    assert repr(out) == "Independent(Normal(loc: torch.Size([2]), scale: torch.Size([2])), 1)"


def test_distribution_returned_by_a_module_keeps_array_parameters() -> None:
    """A module's forward returning a distribution (a Gaussian policy's
    ``Independent(Normal(mu, std), 1)``) passes through the module's Tensor wrapping of its
    outputs: ``mean`` / ``stddev`` are Tensors holding arrays, so a new distribution can be
    built from them (``Normal(dist.mean, dist.stddev)``), with torch's values."""

    class Policy(jaxmod.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mu = jaxmod.nn.Linear(3, 2)
            self.log_std = jaxmod.nn.Parameter(-0.5 * jaxmod.ones(2))

        def forward(self, obs: Any) -> Any:
            return jd.Independent(jd.Normal(self.mu(obs), jaxmod.exp(self.log_std)), 1)

    policy = Policy()
    obs = jaxmod.from_numpy(X[0])
    for ctx in (jaxmod.enable_grad(), jaxmod.no_grad()):
        with ctx:
            dist = policy(obs)
            for v in (dist.mean, dist.stddev, dist.base_dist.scale, dist.variance):
                assert isinstance(v, jaxmod.Tensor) and isinstance(v._value, jax.Array)
            again = jd.Normal(dist.mean, dist.stddev)
        with torch.no_grad():
            t = td.Normal(torch.tensor(to_numpy(dist.mean)), torch.tensor(to_numpy(dist.stddev)))
        _compare(again.log_prob(obs[:, :2]), t.log_prob(torch.from_numpy(X[0][:, :2])), "log_prob")


def _policy_losses(lib: Any) -> tuple[Any, Any]:
    """A REINFORCE / PPO-style loss through distributions built from a layer's outputs,
    one returned by a module call, their properties and kl_divergence."""
    D = lib.distributions
    lin = lib.nn.Linear(3, 4)
    with lib.no_grad():
        lin.weight.copy_(lib.tensor(np.arange(12).reshape(4, 3).astype(np.float32) / 10))
        lin.bias.zero_()

    class Policy(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = lin

        def forward(self, x: Any) -> Any:
            return D.Independent(D.Normal(self.lin(x), lib.exp(self.lin.bias)), 1)

    x = lib.tensor([[0.5, -1.0, 2.0]])
    m = D.Categorical(lin(x).softmax(-1))
    n = Policy()(x)
    old = D.Independent(D.Normal(lib.zeros(1, 4), lib.ones(4)), 1)
    loss = (-m.log_prob(lib.tensor([2])).sum() + n.entropy().sum()
            + D.kl_divergence(old, n).sum() + n.base_dist.log_prob(lib.ones(1, 4)).sum()
            + m.probs[0, 1] + n.mean.pow(2).sum())  # fmt: skip
    return loss, lin


def test_backward_through_distributions_matches_torch() -> None:
    """``loss.backward()`` reaches the parameters through Categorical / Normal /
    Independent built from tensors that require grad (or returned by a module call):
    log_prob, entropy, properties and kl_divergence are recorded on the tape."""
    got = {}
    for lib in (torch, jaxmod):
        loss, lin = _policy_losses(lib)
        loss.backward()
        got[lib] = loss, lin.weight.grad, lin.bias.grad
    for what, a, e in zip(("loss", "weight.grad", "bias.grad"), got[jaxmod], got[torch]):
        assert_close(a, e, 1e-5, what)


# ------------------------------------------------------------ submodules and transforms
def test_every_torch_submodule_of_a_jaxmod_class_imports() -> None:
    """``from torch.distributions.normal import Normal`` ports by the import rewrite: each
    torch submodule defining a name jaxmod has exists here and gives that name."""
    import importlib
    import inspect
    import pkgutil

    checked = 0
    for info in pkgutil.iter_modules(td.__path__):
        t_mod = importlib.import_module(f"torch.distributions.{info.name}")
        names = [n for n in getattr(t_mod, "__all__", [])
                 if hasattr(jd, n) and not inspect.ismodule(getattr(jd, n))]  # fmt: skip
        if not names:
            continue
        j_mod = importlib.import_module(f"jaxmod.distributions.{info.name}")
        for n in names:
            assert getattr(j_mod, n) is getattr(jd, n), f"{info.name}.{n}"
            checked += 1
    assert checked >= 40
    from jaxmod.distributions.kl import kl_divergence, register_kl  # noqa: F401
    from jaxmod.distributions.utils import broadcast_all, lazy_property, probs_to_logits

    a, b = broadcast_all(jaxmod.ones(2), 3.0)
    assert isinstance(b, jaxmod.Tensor) and b.shape == (2,)
    _compare(probs_to_logits(jaxmod.tensor([0.2, 0.8])),
             td.utils.probs_to_logits(torch.tensor([0.2, 0.8])), "probs_to_logits")  # fmt: skip
    assert callable(lazy_property(lambda self: 1).__get__)


# name -> build(lib's distributions module) -> transform, and an input (numpy)
TRANSFORMS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "exp": (lambda D: D.ExpTransform(), X[0]),
    "affine": (lambda D: D.AffineTransform(0.5, -2.0), X[0]),
    "affine_tensor": (lambda D: D.AffineTransform(_t(L_OF[D], LOC[0]), _t(L_OF[D], SCALE)), X[0]),
    "affine_event": (lambda D: D.AffineTransform(1.0, _t(L_OF[D], SCALE[0]), event_dim=1), X[0]),
    "sigmoid": (lambda D: D.SigmoidTransform(), X[0]),
    "tanh": (lambda D: D.TanhTransform(), X[0]),
    "softplus": (lambda D: D.SoftplusTransform(), X[0]),
    "power": (lambda D: D.PowerTransform(_t(L_OF[D], CONC)), POS[0]),
    "abs": (lambda D: D.AbsTransform(), X[0]),
    "softmax": (lambda D: D.SoftmaxTransform(), X[0]),
    "stick_breaking": (lambda D: D.StickBreakingTransform(), X[0]),
    "lower_cholesky": (lambda D: D.LowerCholeskyTransform(), A[0]),
    "compose": (
        lambda D: D.ComposeTransform(
            [D.AffineTransform(0.0, 3.0), D.TanhTransform(), D.AffineTransform(1.0, 2.0)]
        ),
        X[0],
    ),  # fmt: skip
    "compose_event": (
        lambda D: D.ComposeTransform([D.ExpTransform(), D.StickBreakingTransform()]),
        X[0],
    ),
    "independent": (lambda D: D.IndependentTransform(D.SigmoidTransform(), 1), X[0]),
    "reshape": (lambda D: D.ReshapeTransform((2, 3), (6,)), X[0]),
    "inverse": (lambda D: D.ExpTransform().inv, POS[0]),
    "inverse_sigmoid": (lambda D: D.SigmoidTransform().inv, UNIT[0]),
}
L_OF = {td: torch, jd: jaxmod}
NO_LADJ = ("abs", "softmax", "lower_cholesky")


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transforms_match_torch(name: str) -> None:
    build, x = TRANSFORMS[name]
    t, j = build(td), build(jd)
    assert repr(j) == repr(t)
    assert repr(j.domain) == repr(t.domain) and repr(j.codomain) == repr(t.codomain)
    assert j.bijective == t.bijective
    assert tuple(j.forward_shape(x.shape)) == tuple(t.forward_shape(torch.Size(x.shape)))
    ty, jy = t(torch.from_numpy(x)), j(jaxmod.from_numpy(x))
    _compare(jy, ty, f"{name} forward")
    _compare(j.inv(jaxmod.from_numpy(ty.numpy())), t.inv(ty), f"{name} inverse")
    if name not in NO_LADJ:
        got = j.log_abs_det_jacobian(jaxmod.from_numpy(x), jaxmod.from_numpy(ty.numpy()))
        _compare(got, t.log_abs_det_jacobian(torch.from_numpy(x), ty), f"{name} ladj")
    assert (j == build(jd)) == (t == build(td))
    assert j.inv.inv is j


def test_transform_cache_and_errors_match_torch() -> None:
    for D in (td, jd):
        with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
            D.ExpTransform(cache_size=2)
    t = jd.TanhTransform(cache_size=1)
    x = jaxmod.tensor([20.0, -30.0, 0.5])
    y = t(x)
    np.testing.assert_array_equal(to_numpy(t.inv(y)), to_numpy(x))  # not atanh(+-1) = inf
    assert np.isinf(to_numpy(jd.TanhTransform().inv(y))[:2]).all()
    assert t.with_cache(1) is t and jd.TanhTransform().with_cache(1)._cache_size == 1
    for k in range(2):
        messages = []
        for _, D in LIBS.values():
            bad = (3, [D.ExpTransform(), 3])[k]
            with pytest.raises(ValueError) as info:
                D.TransformedDistribution(D.Normal(0.0, 1.0), bad)
            messages.append(str(info.value))
        assert messages[0] == messages[1]


def _sac_log_prob(L: Any, D: Any, mu: Any, std: Any, x: Any) -> Any:
    """SAC's squashed Gaussian: the action is tanh of a reparameterised normal sample,
    scored through the transform's cache."""
    tanh = D.TanhTransform(cache_size=1)
    dist = D.TransformedDistribution(D.Normal(mu, std), [tanh])
    action = tanh(x)
    return dist.log_prob(action).sum(-1)


SAC_MU = np.array([[0.3, -1.0, 4.0], [12.0, 0.0, -0.5]], np.float32)  # 12: tanh saturates
SAC_EPS = RNG.standard_normal((2, 3)).astype(np.float32)


def test_sac_tanh_normal_log_prob_and_gradients_match_torch() -> None:
    t_mu, t_std = (
        torch.from_numpy(SAC_MU).requires_grad_(),
        torch.from_numpy(SCALE).requires_grad_(),
    )
    t_lp = _sac_log_prob(torch, td, t_mu, t_std, t_mu + t_std * torch.from_numpy(SAC_EPS))
    t_lp.sum().backward()
    assert torch.isfinite(t_lp).all()

    def f(mu: Any, std: Any) -> Any:
        lp = _sac_log_prob(jaxmod, jd, mu, std, mu + std * jaxmod.from_numpy(SAC_EPS))
        return lp.sum(), lp

    (g_mu, g_std), lp = jaxmod.grad(f, argnums=(0, 1), has_aux=True)(
        jaxmod.from_numpy(SAC_MU), jaxmod.from_numpy(SCALE))  # fmt: skip
    _compare(lp, t_lp.detach(), "log_prob")
    assert_close(g_mu, t_mu.grad, 1e-4, "d/dmu")
    assert_close(g_std, t_std.grad, 1e-4, "d/dstd")
    # eagerly, with loss.backward() through the tape
    j_mu = jaxmod.from_numpy(SAC_MU).requires_grad_()
    j_std = jaxmod.from_numpy(SCALE).requires_grad_()
    j_lp = _sac_log_prob(jaxmod, jd, j_mu, j_std, j_mu + j_std * jaxmod.from_numpy(SAC_EPS))
    j_lp.sum().backward()
    _compare(j_lp.detach(), t_lp.detach(), "eager log_prob")
    assert_close(j_mu.grad, t_mu.grad, 1e-4, "eager d/dmu")
    assert_close(j_std.grad, t_std.grad, 1e-4, "eager d/dstd")


def test_sac_rsample_then_log_prob_uses_the_cache() -> None:
    """``a = dist.rsample(); dist.log_prob(a)``: finite where tanh saturates, and the
    gradients are torch's for the same noise."""
    mu, std = jaxmod.from_numpy(SAC_MU), jaxmod.from_numpy(SCALE)

    def f(mu: Any, std: Any) -> Any:
        dist = jd.TransformedDistribution(jd.Normal(mu, std), [jd.TanhTransform(cache_size=1)])
        a = dist.rsample()
        x = dist.transforms[0]._cached_x_y[0]
        return dist.log_prob(a).sum(), x

    jaxmod.manual_seed(5)
    (g_mu, g_std), x = jaxmod.grad(f, argnums=(0, 1), has_aux=True)(mu, std)
    eps = (to_numpy(x) - SAC_MU) / SCALE
    t_mu, t_std = (
        torch.from_numpy(SAC_MU).requires_grad_(),
        torch.from_numpy(SCALE).requires_grad_(),
    )
    _sac_log_prob(torch, td, t_mu, t_std, t_mu + t_std * torch.from_numpy(eps)).sum().backward()
    assert np.isfinite(to_numpy(g_mu)).all()
    assert_close(g_mu, t_mu.grad, 1e-4, "d/dmu")
    assert_close(g_std, t_std.grad, 1e-4, "d/dstd")


@pytest.mark.parametrize("name", ["gumbel", "halfcauchy", "weibull", "pareto", "kumaraswamy",
                                  "transformed_affine_exp", "transformed_sigmoid"])  # fmt: skip
def test_transformed_cdf_icdf_match_torch(name: str) -> None:
    t, j = _both(name)
    q = np.broadcast_to(np.array([0.1, 0.5, 0.9], np.float32), tuple(t.batch_shape)).copy()
    v = t.icdf(torch.from_numpy(q))
    _compare(j.icdf(jaxmod.from_numpy(q)), v, f"{name}.icdf", 1e-4)
    _compare(j.cdf(jaxmod.from_numpy(v.detach().numpy())), t.cdf(v), f"{name}.cdf", 1e-4)


NEW_KL_PAIRS = {
    "gumbel": ("gumbel", lambda L, D: D.Gumbel(_t(L, LOC * 0.5), _t(L, CONC))),
    "halfnormal": ("halfnormal", lambda L, D: D.HalfNormal(_t(L, CONC))),
    "pareto": ("pareto", lambda L, D: D.Pareto(_t(L, SCALE * 0.2), _t(L, SCALE))),
    "lognormal": ("lognormal", lambda L, D: D.LogNormal(_t(L, LOC * 0), _t(L, CONC))),
    "transformed": ("transformed_sigmoid", lambda L, D: D.TransformedDistribution(
        D.Uniform(_t(L, LOW * 0 - 1), _t(L, HIGH * 0 + 1)), [D.SigmoidTransform().inv])),
}  # fmt: skip


@pytest.mark.parametrize("pair", NEW_KL_PAIRS)
def test_new_kl_pairs_match_torch(pair: str) -> None:
    p_name, q_build = NEW_KL_PAIRS[pair]
    tp, jp = _both(p_name)
    tq, jq = q_build(torch, td), q_build(jaxmod, jd)
    _compare(jd.kl_divergence(jp, jq), td.kl_divergence(tp, tq), f"kl {pair}")


def test_kl_of_transformed_with_different_transforms_raises() -> None:
    for _, D in LIBS.values():
        p = D.TransformedDistribution(D.Normal(0.0, 1.0), [D.ExpTransform()])
        q = D.TransformedDistribution(D.Normal(0.0, 1.0), [D.SigmoidTransform()])
        with pytest.raises(NotImplementedError):
            D.kl_divergence(p, q)
