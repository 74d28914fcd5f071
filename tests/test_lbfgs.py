"""``jaxmod.optim.LBFGS`` against ``torch.optim.LBFGS``: iterates, counters and state.

Two tables. In float64 (jax's x64 mode, closures returning ``(loss, grads)``) rounding is
too small to matter, so jaxmod must make exactly torch's closure calls: the same
``func_evals`` and ``n_iter`` and the same parameters, with and without the strong-Wolfe
search, for several ``history_size`` / ``max_iter`` / ``max_eval`` / tolerances. In
float32, with torch's closure (``zero_grad(); loss.backward(); return loss``) over jaxmod
models, losses and parameters equal torch's to 1e-5 over several steps on problems where
float32 rounding is not amplified (L-BFGS on an ill-conditioned problem amplifies it,
torch's against itself included).
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from _port_checks import load_torch_weights

import jaxmod
from jaxmod import optim

_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((32, 6))
Y = X @ _RNG.standard_normal((6, 2)) + 0.1 * _RNG.standard_normal((32, 2))
XM = _RNG.uniform(-1, 1, (24, 2))
YM = np.sin(2 * XM[:, :1]) * XM[:, 1:]
_INIT_RNG = np.random.default_rng(1)
INIT = {
    "lstsq": [_INIT_RNG.standard_normal((6, 2)) * 0.3, np.zeros(2)],
    "rosenbrock": [np.array([-1.5, 2.0])],
    "mlp": [_INIT_RNG.standard_normal((2, 8)), np.zeros(8),
            _INIT_RNG.standard_normal((8, 1)) * 0.5, np.zeros(1)],
}  # fmt: skip


def _losses(asarray: Any, tanh: Any) -> dict[str, Any]:
    """The three objectives as functions of a list of arrays, for torch or jax.numpy."""

    def lstsq(p: list) -> Any:
        w, b = p
        return ((asarray(X) @ w + b - asarray(Y)) ** 2).mean()

    def rosenbrock(p: list) -> Any:
        (v,) = p
        return (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2

    def mlp(p: list) -> Any:
        w1, b1, w2, b2 = p
        return ((tanh(asarray(XM) @ w1 + b1) @ w2 + b2 - asarray(YM)) ** 2).mean()

    return {"lstsq": lstsq, "rosenbrock": rosenbrock, "mlp": mlp}


TORCH_F = _losses(lambda a: torch.from_numpy(np.asarray(a)), torch.tanh)
JAX_F = _losses(jnp.asarray, jnp.tanh)


def _torch_run(name: str, steps: int, **kw: Any) -> tuple:
    """float64, torch's closure."""
    ps = [torch.tensor(a, requires_grad=True) for a in INIT[name]]
    opt = torch.optim.LBFGS(ps, **kw)

    def closure() -> Any:
        opt.zero_grad()
        loss = TORCH_F[name](ps)
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    return losses, [p.detach().numpy().copy() for p in ps], opt


def _jax_run(name: str, steps: int, **kw: Any) -> tuple:
    """float64 (the caller enables x64): a closure returning ``(loss, [grads])``."""
    ps = [jaxmod.nn.Parameter(jnp.asarray(a)) for a in INIT[name]]
    vg = jax.value_and_grad(JAX_F[name])
    opt = optim.LBFGS(ps, **kw)
    losses = [float(opt.step(lambda: vg([p._value for p in ps]))) for _ in range(steps)]
    return losses, [np.asarray(p._value) for p in ps], opt


CONFIGS = [(50, 20), (3, 10), (1, 4), (10, 5)]  # (history_size, max_iter)
CASES64 = [
    (name, ls, dict(history_size=h, max_iter=m))
    for name in ("lstsq", "rosenbrock", "mlp")
    for ls in (None, "strong_wolfe")
    for h, m in CONFIGS
] + [
    ("mlp", "strong_wolfe", dict(max_iter=20, max_eval=7)),
    ("mlp", None, dict(max_iter=20, max_eval=7, lr=0.05)),
    ("lstsq", "strong_wolfe", dict(tolerance_change=1e-4, tolerance_grad=1e-3)),
    ("rosenbrock", "strong_wolfe", dict(lr=0.3, history_size=5)),
    ("lstsq", None, dict(tolerance_change=1e-4, lr=0.2)),
]


IDS64 = [f"{n}-{ls}-{'-'.join(map(str, k.values()))}" for n, ls, k in CASES64]


@pytest.mark.parametrize("name,ls,kw", CASES64, ids=IDS64)
def test_float64_closure_calls_and_iterates_are_torchs(name, ls, kw) -> None:
    kw = {"lr": 1 if ls else (1e-3 if name == "rosenbrock" else 0.1), **kw}
    t_losses, t_params, t_opt = _torch_run(name, 4, line_search_fn=ls, **kw)
    with jax.enable_x64(True):
        j_losses, j_params, j_opt = _jax_run(name, 4, line_search_fn=ls, **kw)
    ts, js = t_opt.state_dict()["state"][0], j_opt.state_dict()["state"][0]
    assert (js["func_evals"], js["n_iter"]) == (ts["func_evals"], ts["n_iter"])
    assert len(js["old_dirs"]) == len(ts["old_dirs"])
    # relative to the first loss: near a minimum the loss is all rounding
    np.testing.assert_allclose(j_losses, t_losses, rtol=1e-6, atol=1e-7 * t_losses[0])
    scale = max(np.abs(p).max() for p in t_params)
    for j, t in zip(j_params, t_params):
        np.testing.assert_allclose(j, t, rtol=0, atol=1e-6 * scale)


# float32, torch's closure over jaxmod models: (problem, line search, history, max_iter, steps)
CASES32 = [
    ("lstsq", None, 3, 10, 5),
    ("lstsq", None, 1, 4, 5),
    ("lstsq", None, 10, 5, 5),
    ("lstsq", "strong_wolfe", 50, 20, 5),
    ("lstsq", "strong_wolfe", 10, 5, 5),
    ("rosenbrock", None, 50, 20, 5),
    ("rosenbrock", None, 3, 10, 5),
    ("rosenbrock", None, 1, 4, 5),
    ("mlp", None, 1, 4, 5),
    ("mlp", None, 10, 5, 5),
    ("mlp", None, 3, 10, 3),
    ("mlp", None, 50, 20, 2),
    ("mlp", "strong_wolfe", 10, 5, 2),
    ("mlp", "strong_wolfe", 1, 4, 1),
]


def _module_problem(lib: Any, name: str) -> tuple[list, Any]:
    """``name`` as a module (or a bare Parameter) of ``lib``: its parameters and loss."""
    if name == "rosenbrock":
        v = lib.nn.Parameter(lib.tensor([-1.5, 2.0]))
        return [v], lambda: (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2
    torch.manual_seed(0)
    if name == "lstsq":
        x, y = X, Y
        model = tm = torch.nn.Linear(6, 2)
        if lib is jaxmod:
            model = jaxmod.nn.Linear(6, 2)
    else:
        x, y = XM, YM
        model = tm = torch.nn.Sequential(
            torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
        )
        if lib is jaxmod:
            model = jaxmod.nn.Sequential(
                jaxmod.nn.Linear(2, 8), jaxmod.nn.Tanh(), jaxmod.nn.Linear(8, 1)
            )
    if model is not tm:
        load_torch_weights(tm, model)
    x, y = lib.tensor(x.astype(np.float32)), lib.tensor(y.astype(np.float32))
    return list(model.parameters()), lambda: lib.nn.functional.mse_loss(model(x), y)


def _backward_run(lib: Any, name: str, steps: int, **kw: Any) -> tuple[list, list, dict]:
    params, loss_fn = _module_problem(lib, name)
    opt = lib.optim.LBFGS(params, **kw)

    def closure() -> Any:
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    losses.append(float(closure().detach()))
    out = [np.array(p.detach().numpy()) for p in params]
    return losses, out, opt.state_dict()["state"][0]


@pytest.mark.parametrize(
    "name,ls,history_size,max_iter,steps", CASES32, ids=["-".join(map(str, c)) for c in CASES32]
)
def test_float32_backward_closure_matches_torch(name, ls, history_size, max_iter, steps) -> None:
    kw = dict(lr=1 if ls else (1e-3 if name == "rosenbrock" else 0.1), max_iter=max_iter,
              history_size=history_size, line_search_fn=ls)  # fmt: skip
    t_losses, t_params, ts = _backward_run(torch, name, steps, **kw)
    j_losses, j_params, js = _backward_run(jaxmod, name, steps, **kw)
    assert (js["func_evals"], js["n_iter"]) == (ts["func_evals"], ts["n_iter"])
    np.testing.assert_allclose(j_losses, t_losses, rtol=1e-5)
    scale = max(np.abs(p).max() for p in t_params)
    for j, t in zip(j_params, t_params):
        assert j.dtype == np.float32
        np.testing.assert_allclose(j, t, rtol=0, atol=1e-5 * scale)


def test_value_and_grad_closure_matches_torch() -> None:
    """The closure jaxmod documented before: ``jaxmod.value_and_grad(loss_fn)(model)``."""
    torch.manual_seed(0)
    tm = torch.nn.Linear(6, 2)
    model = jaxmod.nn.Linear(6, 2)
    load_torch_weights(tm, model)
    x32, y32 = X.astype(np.float32), Y.astype(np.float32)
    kw = dict(lr=1, max_iter=20, history_size=50, line_search_fn="strong_wolfe")
    t_opt = torch.optim.LBFGS(tm.parameters(), **kw)
    j_opt = optim.LBFGS(model.parameters(), **kw)

    def t_closure() -> Any:
        t_opt.zero_grad()
        loss = torch.nn.functional.mse_loss(tm(torch.from_numpy(x32)), torch.from_numpy(y32))
        loss.backward()
        return loss

    def loss_fn(m: Any) -> Any:
        return jnp.mean((m(jnp.asarray(x32)) - jnp.asarray(y32)) ** 2)

    for _ in range(3):
        t_loss = float(t_opt.step(t_closure).detach())
        j_loss = float(j_opt.step(lambda: jaxmod.value_and_grad(loss_fn)(model)))
        np.testing.assert_allclose(j_loss, t_loss, rtol=1e-5)
    for (_, tp), jp in zip(tm.named_parameters(), model.parameters()):
        np.testing.assert_allclose(np.asarray(jp._value), tp.detach().numpy(), atol=1e-5)


# -- state -------------------------------------------------------------------------------
def _as_np(v: Any) -> Any:
    if isinstance(v, list):
        return [_as_np(x) for x in v]
    if isinstance(v, torch.Tensor):
        return v.detach().numpy()
    return v if v is None or isinstance(v, (int, float)) else np.asarray(v)


def _assert_state_equal(j: dict, t: dict, rtol: float = 1e-9) -> None:
    assert sorted(j) == sorted(t)
    for k in t:
        jv, tv = _as_np(j[k]), _as_np(t[k])
        if isinstance(tv, list):
            assert len(jv) == len(tv), k
            assert [x is None for x in jv] == [x is None for x in tv], k
            for a, b in zip(jv, tv):
                if b is not None:
                    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, err_msg=k)
        else:
            np.testing.assert_allclose(jv, tv, rtol=rtol, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_state_dict_is_torchs_layout_and_values(ls) -> None:
    kw = dict(lr=1 if ls else 0.1, max_iter=5, history_size=3, line_search_fn=ls)
    _, _, t_opt = _torch_run("mlp", 3, **kw)
    with jax.enable_x64(True):
        _, _, j_opt = _jax_run("mlp", 3, **kw)
    t_sd, j_sd = t_opt.state_dict(), j_opt.state_dict()
    assert list(j_sd["state"]) == list(t_sd["state"]) == [0]
    assert j_sd["param_groups"] == t_sd["param_groups"]
    _assert_state_equal(j_sd["state"][0], t_sd["state"][0])
    assert j_opt.state[j_opt.param_groups[0]["params"][0]] is not None
    assert set(j_opt.state[j_opt.param_groups[0]["params"][0]]) == set(t_sd["state"][0])


def test_state_dict_round_trips_and_training_continues_identically() -> None:
    kw = dict(lr=1, max_iter=6, history_size=4, line_search_fn="strong_wolfe")
    torch.manual_seed(0)
    model = jaxmod.nn.Sequential(jaxmod.nn.Linear(2, 8), jaxmod.nn.Tanh(), jaxmod.nn.Linear(8, 1))
    twin = copy.deepcopy(model)
    x, y = jaxmod.tensor(XM.astype(np.float32)), jaxmod.tensor(YM.astype(np.float32))

    def closure_for(m: Any, opt: Any) -> Any:
        def closure() -> Any:
            opt.zero_grad()
            loss = jaxmod.nn.functional.mse_loss(m(x), y)
            loss.backward()
            return loss

        return closure

    opt = optim.LBFGS(model.parameters(), **kw)
    assert opt.state_dict()["state"] == {}
    for _ in range(2):
        opt.step(closure_for(model, opt))
    saved = copy.deepcopy(opt.state_dict())
    snapshot = copy.deepcopy(saved)
    twin.load_state_dict(model.state_dict())
    twin_opt = optim.LBFGS(twin.parameters(), lr=0.01, max_iter=1)
    twin_opt.load_state_dict(saved)
    assert twin_opt.param_groups[0]["max_iter"] == 6
    _assert_state_equal(twin_opt.state_dict()["state"][0], saved["state"][0], rtol=0)
    for _ in range(2):
        a = float(opt.step(closure_for(model, opt)))
        b = float(twin_opt.step(closure_for(twin, twin_opt)))
        assert a == b
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(np.asarray(p._value), np.asarray(q._value))
    _assert_state_equal(twin_opt.state_dict()["state"][0], opt.state_dict()["state"][0], rtol=0)
    # a state dict is a snapshot: later steps do not change it
    _assert_state_equal(saved["state"][0], snapshot["state"][0], rtol=0)


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_torchs_state_dict_loads_and_continues_as_torch(ls) -> None:
    kw = dict(lr=1 if ls else 0.1, max_iter=5, history_size=3, line_search_fn=ls)
    _, t_params, t_opt = _torch_run("mlp", 2, **kw)
    with jax.enable_x64(True):
        ps = [jaxmod.nn.Parameter(jnp.asarray(p)) for p in t_params]
        j_opt = optim.LBFGS(ps, **kw)
        j_opt.load_state_dict(t_opt.state_dict())
        vg = jax.value_and_grad(JAX_F["mlp"])
        t_ps = t_opt.param_groups[0]["params"]

        def t_closure() -> Any:
            t_opt.zero_grad()
            loss = TORCH_F["mlp"](t_ps)
            loss.backward()
            return loss

        for _ in range(2):
            t_opt.step(t_closure)
            j_opt.step(lambda: vg([p._value for p in ps]))
        _assert_state_equal(j_opt.state_dict()["state"][0], t_opt.state_dict()["state"][0], 1e-7)
        for p, t in zip(ps, t_ps):
            np.testing.assert_allclose(np.asarray(p._value), t.detach().numpy(), atol=1e-9)


def test_already_optimal_returns_after_one_evaluation_like_torch() -> None:
    for lib in (torch, jaxmod):
        w = lib.nn.Parameter(lib.zeros(3))
        opt = lib.optim.LBFGS([w])

        def closure(w: Any = w, opt: Any = opt) -> Any:
            opt.zero_grad()
            loss = (w**2).sum()
            loss.backward()
            return loss

        assert float(opt.step(closure)) == 0.0
        assert opt.state_dict()["state"] == {0: {"func_evals": 1, "n_iter": 0}}
        assert float(w.detach().sum()) == 0.0


def test_parameter_without_gradient_stays_put() -> None:
    a, b = jaxmod.nn.Parameter(jnp.array([2.0, -1.0])), jaxmod.nn.Parameter(jnp.array([5.0]))
    opt = optim.LBFGS([a, b], line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = (a**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert float(jnp.abs(a._value).max()) < 1e-4
    assert float(b._value[0]) == 5.0


# -- errors ------------------------------------------------------------------------------
def _stepped(history_size: int = 3, out: int = 1) -> Any:
    m = jaxmod.nn.Linear(2, out)
    opt = optim.LBFGS(m.parameters(), history_size=history_size, max_iter=4)
    x = jnp.asarray(XM.astype(np.float32))
    opt.step(lambda: jaxmod.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(m))
    return opt


def test_errors() -> None:
    opt = _stepped()
    with pytest.raises(ValueError, match="needs a closure"):
        opt.step()
    with pytest.raises(ValueError, match="only 'strong_wolfe'"):
        optim.LBFGS([jaxmod.nn.Parameter(jnp.ones(2))], line_search_fn="backtracking")
    with pytest.raises(ValueError, match="per-parameter options"):
        optim.LBFGS([{"params": [jaxmod.nn.Parameter(jnp.ones(1))]},
                     {"params": [jaxmod.nn.Parameter(jnp.ones(1))]}])  # fmt: skip
    with pytest.raises(TypeError, match="real parameters"):
        optim.LBFGS([jaxmod.nn.Parameter(jnp.ones(2, jnp.complex64))])
    m = jaxmod.nn.Linear(2, 1)
    jopt = optim.LBFGS(m.parameters())

    @jaxmod.jit
    def jitted(m: Any, jopt: Any) -> Any:
        return jopt.step(lambda: jaxmod.value_and_grad(lambda m: m(jnp.ones((1, 2))).sum())(m))

    with pytest.raises(RuntimeError, match="outside jaxmod.jit"):
        jitted(m, jopt)


def _edit(sd: dict, key: str, value: Any) -> dict:
    sd = copy.deepcopy(sd)
    sd["state"][0][key] = value
    return sd


def _without(sd: dict, key: str) -> dict:
    sd = copy.deepcopy(sd)
    del sd["state"][0][key]
    return sd


def _doubled(sd: dict) -> dict:
    """More curvature pairs than ``history_size`` (with consistent lengths)."""
    for k in ("old_dirs", "old_stps", "ro"):
        sd = _edit(sd, k, sd["state"][0][k] * 2)
    return sd


LOAD_ERRORS = [
    ("other-shapes", lambda sd: _stepped(out=2).state_dict(),
        "has shape (6,), but the optimizer's is (3,)"),
    ("foreign", lambda sd: optim.Adam(jaxmod.nn.Linear(2, 1).parameters()).state_dict(),
        "has no 'max_iter'"),
    ("extra-key", lambda sd: _edit(sd, "exp_avg", np.zeros(3)), "another optimizer"),
    ("missing", lambda sd: _without(sd, "d"), "lacks ['d']"),
    ("lengths", lambda sd: _edit(sd, "ro", sd["state"][0]["ro"][:-1]), "different lengths"),
    ("history", _doubled, "more than history_size=3"),
    ("index", lambda sd: {**sd, "state": {1: sd["state"][0]}}, "first parameter"),
    ("count", lambda sd: _edit(sd, "n_iter", 2.5), "whole number"),
]  # fmt: skip


@pytest.mark.parametrize("case", LOAD_ERRORS, ids=[c[0] for c in LOAD_ERRORS])
def test_bad_state_dict_is_refused_and_changes_nothing(case) -> None:
    _, make, text = case
    opt = _stepped()
    good = copy.deepcopy(opt.state_dict())
    bad = make(opt.state_dict())
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(bad)
    assert text in str(info.value), str(info.value)
    _assert_state_equal(opt.state_dict()["state"][0], good["state"][0], rtol=0)
    assert opt.param_groups[0]["history_size"] == 3
