"""``nn.utils.parametrize`` and ``nn.utils.parametrizations`` (weight_norm, spectral_norm,
orthogonal) against torch 2.13: structure, gradients w.r.t. the originals, jitted SGD steps,
the right-inverse setter, caching and removal."""

from __future__ import annotations

import copy
import pickle
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from test_weight_norm import LAYERS, _close, _input, _run_steps, _state

import jaxmod
from jaxmod import nn

torch.set_num_threads(1)

P, PZ = nn.utils.parametrize, nn.utils.parametrizations
TP, TPZ = torch.nn.utils.parametrize, torch.nn.utils.parametrizations

KINDS = [
    ("weight_norm-dim0", lambda Z, m: Z.weight_norm(m, dim=0)),
    ("weight_norm-dim1", lambda Z, m: Z.weight_norm(m, dim=1)),
    ("weight_norm-dimNone", lambda Z, m: Z.weight_norm(m, dim=None)),
    ("spectral_norm", lambda Z, m: Z.spectral_norm(m)),
]
CASES = [(k, w, *layer) for k, w in KINDS for layer in LAYERS]


def _pair(build, wrap):
    torch.manual_seed(0)
    tm = wrap(TPZ, build(torch.nn))
    jm = wrap(PZ, build(nn))
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    jm.load_state_dict(_state(tm))
    return tm, jm


@pytest.mark.parametrize(
    "kind,wrap,name,build,shape,is_float", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES]
)
def test_parametrizations_match_torch_under_jit(kind, wrap, name, build, shape, is_float):
    tm, jm = _pair(build, wrap)
    assert type(jm).__name__ == f"Parametrized{name}"
    x = _input(shape, is_float)
    _run_steps(tm, jm, x, jit=True, steps=2)
    _close(jm.weight._jx(), tm.weight, "parametrized weight")
    if kind == "spectral_norm":  # eval: u, v stay
        tm.eval()
        jm.eval()
        u = np.asarray(jm.parametrizations.weight[0]._u._value)
        _close(jm(jnp.asarray(x)), tm(torch.tensor(x)), "eval forward")
        np.testing.assert_array_equal(np.asarray(jm.parametrizations.weight[0]._u._value), u)
    TP.remove_parametrizations(tm, "weight")
    P.remove_parametrizations(jm, "weight")
    assert type(jm) is type(build(nn))
    assert list(jm.state_dict()) == list(tm.state_dict())
    assert isinstance(jm._parameters["weight"], nn.Parameter)
    _close(jm.weight._value, tm.weight, "weight after remove")


def test_parametrization_eager_step_and_spectral_norm_of_a_bias():
    tm, jm = _pair(lambda M: M.Linear(4, 3), lambda Z, m: Z.spectral_norm(m, "bias"))
    assert list(jm.state_dict()) == ["weight", "parametrizations.bias.original"]
    _run_steps(tm, jm, _input((2, 4), True), jit=False, steps=1)
    _close(jm.bias._jx(), tm.bias, "normalised bias")


ORTH = [
    ((4, 4), None, True),
    ((4, 4), "cayley", False),
    ((5, 3), "householder", True),
    ((5, 3), "matrix_exp", False),
    ((3, 5), "householder", False),
    ((3, 5), "cayley", True),
]


@pytest.mark.parametrize(
    "shape,omap,triv", ORTH, ids=[f"{s[0]}x{s[1]}-{m}-{t}" for s, m, t in ORTH]
)
def test_orthogonal_matches_torch(shape, omap, triv):
    torch.manual_seed(0)
    tm = TPZ.orthogonal(
        torch.nn.Linear(shape[1], shape[0]), orthogonal_map=omap, use_trivialization=triv
    )
    jm = PZ.orthogonal(nn.Linear(shape[1], shape[0]), orthogonal_map=omap, use_trivialization=triv)
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    jm.load_state_dict(_state(tm))
    w = np.asarray(jm.weight._jx())
    _close(w, tm.weight, "orthogonal weight")
    eye = np.eye(min(shape), dtype=np.float32)
    np.testing.assert_allclose(w @ w.T if shape[0] < shape[1] else w.T @ w, eye, atol=1e-5)
    # torch's float32 matrix_exp backward away from 0 is off by ~1e-4 from a float64
    # reference (jax's expm by ~1e-6), and the two drift apart: one step there
    exp = (omap or ("matrix_exp" if shape[0] == shape[1] else "")) == "matrix_exp"
    _run_steps(tm, jm, _input((2, shape[1]), True), jit=True, steps=1 if exp else 2)


def test_orthogonal_errors():
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices"):
        PZ.orthogonal(nn.Linear(3, 3), "bias")
    with pytest.raises(ValueError, match="orthogonal_map has to be one of"):
        PZ.orthogonal(nn.Linear(3, 3), orthogonal_map="qr")
    m = PZ.orthogonal(nn.Linear(3, 3), use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        m.weight = jnp.eye(3)


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).T

    def right_inverse(self, A):
        return A.triu()


class TSymmetric(torch.nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).T

    def right_inverse(self, A):
        return A.triu()


TSymmetric.__name__ = TSymmetric.__qualname__ = "Symmetric"  # the same repr


class NoInverse(nn.Module):
    def forward(self, X):
        return X * 2


def test_custom_parametrization_setter_and_removal_like_torch():
    torch.manual_seed(0)
    tm = TP.register_parametrization(torch.nn.Linear(3, 3), "weight", TSymmetric())
    jm = nn.Linear(3, 3)
    box = jm.weight
    P.register_parametrization(jm, "weight", Symmetric())
    assert repr(jm) == repr(tm)
    assert jm.parametrizations.weight.original is box
    jm.load_state_dict(_state(tm))
    w = np.asarray(jm.weight._jx())
    np.testing.assert_allclose(w, w.T)
    _close(w, tm.weight)
    assert isinstance(jm.weight, jaxmod.Tensor)
    a = np.arange(9, dtype=np.float32).reshape(3, 3)
    tm.weight = torch.tensor(a)
    jm.weight = jnp.asarray(a)
    _close(box._value, tm.parametrizations.weight.original, "original after assignment")
    _close(jm.weight._jx(), tm.weight)
    assert P.is_parametrized(jm) and P.is_parametrized(jm, "weight")
    assert not P.is_parametrized(jm, "bias")
    assert P.type_before_parametrizations(jm) is nn.Linear
    with pytest.raises(ValueError, match="does not have a parametrization on bias"):
        P.remove_parametrizations(jm, "bias")
    with pytest.raises(RuntimeError, match="only supported through state_dict"):
        pickle.dumps(jm)
    twin = copy.deepcopy(jm)
    P.remove_parametrizations(twin, "weight", leave_parametrized=False)
    assert P.is_parametrized(jm) and not P.is_parametrized(twin)  # its own class
    _close(twin.weight._value, np.triu(a))
    TP.remove_parametrizations(tm, "weight")
    P.remove_parametrizations(jm, "weight")
    assert jm.weight is box  # the same Parameter, with the parametrized value
    _close(box._value, tm.weight)
    assert type(jm) is nn.Linear and "parametrizations" not in jm._modules


def test_registration_errors_like_torch():
    with pytest.raises(ValueError, match="does not have a parameter, a buffer"):
        P.register_parametrization(nn.Linear(3, 3), "nope", NoInverse())
    m = P.register_parametrization(nn.Linear(3, 3), "weight", NoInverse())
    with pytest.raises(RuntimeError, match="NoInverse does not implement right_inverse"):
        m.weight = jnp.ones((3, 3))

    class Shrink(nn.Module):
        def forward(self, X):
            return X[:2]

    with pytest.raises(ValueError, match="may not change the shape"):
        P.register_parametrization(nn.Linear(3, 3), "weight", Shrink())
    P.register_parametrization(m, "weight", Symmetric())  # appended: applied after
    w = np.asarray(m.weight._jx())
    np.testing.assert_allclose(w, w.T)


def test_assignment_inside_jit_writes_the_original_back():
    m = P.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())

    @jaxmod.jit
    def set_and_use(m, a, x):
        m.weight = a
        return m(x)

    a = jnp.arange(9.0).reshape(3, 3)
    x = jnp.ones((1, 3))
    out = set_and_use(m, a, x)
    sym = np.triu(a) + np.triu(a, 1).T
    np.testing.assert_allclose(np.asarray(m.parametrizations.weight.original._value), np.triu(a))
    np.testing.assert_allclose(np.asarray(out), np.asarray(x) @ sym.T + np.asarray(m.bias._value))
    assert not isinstance(m.parametrizations.weight.original._value, jax.core.Tracer)


def test_cached_caches_eagerly_and_recomputes_under_transforms():
    calls = []

    class Counted(Symmetric):
        def forward(self, X):
            calls.append(1)
            return super().forward(X)

    m = P.register_parametrization(nn.Linear(3, 3), "weight", Counted())
    calls.clear()
    with P.cached():
        a, b = m.weight, m.weight
        assert a is b and len(calls) == 1
        g = jaxmod.grad(lambda m: jnp.sum(m(jnp.ones((2, 3)))))(m)
        assert float(jnp.abs(g["parametrizations.weight.original"]).sum()) > 0  # not cut
        assert len(calls) == 2
    assert not P._cache


def test_old_weight_norm_checkpoint_loads_into_the_parametrization():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        old = torch.nn.utils.weight_norm(torch.nn.Linear(4, 3))
    jm = PZ.weight_norm(nn.Linear(4, 3))
    jm.load_state_dict(_state(old))
    _close(jm.weight._jx(), old.weight, "weight from an old checkpoint")
