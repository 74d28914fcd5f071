"""A failed ``Optimizer.load_state_dict`` changes nothing and the optimizer keeps working
(issue 15.8).

Each case trains a model one jitted step, offers its optimizer a bad state dict (whose
``lr`` also differs, so a partial load would show), checks the error, compares every
array and hyper-parameter bit for bit before and after, then takes a jitted step and
compares it with a twin that never saw the bad load. Errors torch has keep torch's type
and message.
"""

from __future__ import annotations

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jaxmod
import jaxmod.nn as jnn
from jaxmod import optim

_X = jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4)


def _loss(m):
    return jnp.sum(jnp.tanh(m(_X)) ** 2)


@jaxmod.jit
def _train_step(model, opt):
    loss, grads = jaxmod.value_and_grad(_loss)(model)
    opt.step(grads)
    return loss


def _make(kind: str, out: int = 4):
    jaxmod.manual_seed(3)
    model = jnn.Linear(4, out)
    if kind == "Adam":
        opt = optim.Adam(model.parameters(), lr=0.1)
    elif kind == "AdamAms":
        opt = optim.Adam(model.parameters(), lr=0.1, amsgrad=True)
    elif kind == "SGD":
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    elif kind == "optax":
        opt = optim.from_optax(model.parameters(), optax.adam(1e-2))
    else:
        opt = optim.LBFGS(model.parameters(), lr=0.5, max_iter=1, history_size=2)
    _step(model, opt)
    return model, opt


def _step(model, opt):
    if isinstance(opt, optim.LBFGS):
        closure = opt.__dict__.setdefault("_closure", lambda: jaxmod.value_and_grad(_loss)(model))
        return opt.step(closure=closure)
    return _train_step(model, opt)


def _snapshot(model, opt) -> bytes:
    """Every parameter and state array (the cells a jitted step reads), the torch-layout
    state, and the param groups, as one byte string."""
    cells = [c for c in opt._jaxmod_cells_() if not getattr(c, "_jaxmod_readonly", False)]
    leaves = jax.tree.leaves([c._value for c in cells] + [p._value for p in model.parameters()])
    sd = opt.state_dict()
    sd_leaves = jax.tree.leaves(sd["state"])
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    arrays = [np.asarray(x).tobytes() + str(np.asarray(x).dtype).encode() for x in leaves]
    arrays += [np.asarray(x).tobytes() for x in sd_leaves]
    return pickle.dumps((arrays, groups, sd["param_groups"], len(cells)))


def _good(opt) -> dict:
    """A deep copy of ``opt``'s state dict with another lr (a partial load would show)."""
    sd = copy.deepcopy(opt.state_dict())
    for g in sd["param_groups"]:
        g["lr"] = 0.5
    return sd


def _with(path: tuple, value):
    def make(opt):
        sd = _good(opt)
        node = sd
        for k in path[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return sd

    return make


_DELETE = object()


def _from(kind: str, out: int = 4):
    return lambda opt: _good(_make(kind, out)[1])


def _lbfgs_state_for(opt, out: int) -> dict:
    """``opt``'s state dict with the state (flat vectors) of an L-BFGS over a ``Linear(4, out)``."""
    sd = _good(opt)
    sd["state"][0] = _good(_make("LBFGS", out)[1])["state"][0]
    return sd


def _donated(opt):
    sd = opt.state_dict()  # references into the state a jitted step donates
    model, other = _make("Adam")
    other.load_state_dict(sd)
    sd = other.state_dict()
    _train_step(model, other)
    return sd


# (id, optimizer kind, bad state dict from the optimizer, text the ValueError contains)
CASES = [
    ("other-shapes", "Adam", _from("Adam", out=1),
        "has shape (1, 4), but its parameter's shape is (4, 4)"),
    ("sgd-into-adam", "Adam", _from("SGD"), "has no 'betas', a hyper-parameter of Adam"),
    ("adam-into-sgd", "SGD", _from("Adam"), "has no 'momentum', a hyper-parameter of SGD"),
    ("optax-into-adam", "Adam", _from("optax"), "has no 'betas', a hyper-parameter of Adam"),
    ("string-moment", "Adam", _with(("state", 0, "exp_avg"), np.array([["a"] * 4] * 4)),
        "dtype <U1"),
    ("none-moment", "Adam", _with(("state", 1, "exp_avg_sq"), np.array([None] * 4)),
        "dtype object"),
    ("python-moment", "Adam", _with(("state", 1, "exp_avg"), "0.1"), "dtype <U3"),
    ("missing-moment", "Adam", _with(("state", 1, "exp_avg_sq"), _DELETE), "lacks 'exp_avg_sq'"),
    ("missing-amsgrad-max", "AdamAms", _with(("state", 0, "max_exp_avg_sq"), _DELETE),
        "lacks 'max"),
    ("donated-moment", "Adam", _donated, "its arrays were deleted: a jitted step donated them"),
    ("nan-step", "Adam", _with(("state", 0, "step"), np.float32("nan")), "is nan; a step count"),
    ("fraction-step", "Adam", _with(("state", 0, "step"), 2.5), "is 2.5; a step count"),
    ("vector-step", "Adam", _with(("state", 0, "step"), np.ones(2)), "a step count is one number"),
    ("string-lr", "Adam", _with(("param_groups", 0, "lr"), "fast"),
        "['lr'] is 'fast', not a number"),
    ("three-betas", "Adam", _with(("param_groups", 0, "betas"), (0.9, 0.99, 0.5)),
        "needs 2 numbers"),
    ("no-lr", "Adam", _with(("param_groups", 0, "lr"), _DELETE), "has no 'lr'"),
    ("extra-state-key", "Adam", _with(("state", 0, "momentum_buffer"), np.zeros((4, 4))),
        "does not keep"),
    ("unknown-index", "Adam", _with(("state", 7), {}), "state for parameter 7"),
    ("duplicate-index", "Adam", _with(("param_groups", 0, "params"), [0, 0]),
        "distinct parameter indices"),
    ("model-state-dict", "Adam", lambda opt: dict(jnn.Linear(4, 4).state_dict()),
        "no 'state' entry"),
    ("optax-other-shapes", "optax", _from("optax", out=1), "has shape (1, 4)"),
    ("optax-foreign", "optax", _from("Adam"), "which FromOptax does not keep"),
    ("lbfgs-other-shapes", "LBFGS", lambda opt: _lbfgs_state_for(opt, out=1),
        "['d'] has shape (5,), but the optimizer's is (20,)"),
    ("lbfgs-foreign", "LBFGS", _from("Adam"), "has no 'max_iter'"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_failed_optimizer_load_changes_nothing_and_training_goes_on(case):
    _, kind, make_bad, text = case
    model, opt = _make(kind)
    bad = make_bad(opt)
    before = _snapshot(model, opt)
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(bad)
    assert text in str(info.value), str(info.value)
    assert _snapshot(model, opt) == before
    if kind == "LBFGS":  # eager and slow: one step, no twin
        assert np.isfinite(float(_step(model, opt)))
        return
    twin_model, twin = _make(kind)
    assert _snapshot(twin_model, twin) == before
    _step(model, opt)
    _step(twin_model, twin)
    assert _snapshot(model, opt) == _snapshot(twin_model, twin)


def _torch_and_jaxmod(kind: str):
    tm = torch.nn.Linear(4, 4)
    topt = getattr(torch.optim, kind)(tm.parameters(), lr=0.1)
    model, opt = _make(kind)
    return topt, opt, model


@pytest.mark.parametrize(
    "edit",
    [
        lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0], params=[])),
        lambda sd: sd["param_groups"][0]["params"].pop(),
        lambda sd: sd["param_groups"].clear(),
    ],
    ids=["more-groups", "smaller-group", "no-groups"],
)
@pytest.mark.parametrize("kind", ["Adam", "SGD"])
def test_group_structure_errors_are_torchs(kind, edit):
    topt, opt, model = _torch_and_jaxmod(kind)
    errors = []
    for o in (topt, opt):
        sd = copy.deepcopy(o.state_dict())
        edit(sd)
        with pytest.raises(Exception) as info:
            o.load_state_dict(sd)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1]
    assert errors[1][0] is ValueError


def test_torch_state_for_a_smaller_model_is_refused_where_torch_fails_later():
    tm_small, tm = torch.nn.Linear(4, 1), torch.nn.Linear(4, 4)
    small_opt = torch.optim.Adam(tm_small.parameters(), lr=0.1)
    tm_small(torch.ones(2, 4)).sum().backward()
    small_opt.step()
    topt = torch.optim.Adam(tm.parameters(), lr=0.1)
    topt.load_state_dict(small_opt.state_dict())  # torch loads it ...
    tm(torch.ones(2, 4)).sum().backward()
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        topt.step()  # ... and fails at the next step
    model, opt = _make("Adam")
    with pytest.raises(ValueError, match=r"has shape \(1, 4\)"):
        opt.load_state_dict(small_opt.state_dict())  # jaxmod refuses it at the load


def test_older_checkpoint_without_new_options_loads_with_their_defaults():
    model, opt = _make("Adam")
    sd = _good(opt)
    for k in ("foreach", "differentiable", "fused", "capturable", "decoupled_weight_decay"):
        del sd["param_groups"][0][k]
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["fused"] is None
    assert opt.param_groups[0]["decoupled_weight_decay"] is False
    _train_step(model, opt)


def test_torch_state_loads_and_moments_follow_the_parameters_placement():
    tm = torch.nn.Linear(4, 4)
    topt = torch.optim.Adam(tm.parameters(), lr=0.1)
    tm(torch.ones(2, 4)).sum().backward()
    topt.step()
    model, opt = _make("Adam")
    dev = jax.devices()[0]
    for p in model.parameters():
        p._value = jax.device_put(p._value, dev)
    opt.load_state_dict(topt.state_dict())
    state = opt.state[model.weight]
    np.testing.assert_array_equal(
        np.asarray(state["exp_avg"]), topt.state_dict()["state"][0]["exp_avg"]
    )
    assert state["exp_avg"].committed


def test_an_error_while_writing_puts_everything_back(monkeypatch):
    model, opt = _make("Adam")
    sd = _good(opt)
    before = _snapshot(model, opt)
    calls = []

    def failing(self, struct, opt_state, entry, step):
        calls.append(step)
        if len(calls) == 2:  # after the first parameter's state was written
            raise RuntimeError("device out of memory")
        return optim.Optimizer._apply_saved(self, struct, opt_state, entry, step)

    monkeypatch.setattr(optim.Adam, "_apply_saved", failing, raising=False)
    with pytest.raises(RuntimeError, match="device out of memory"):
        opt.load_state_dict(sd)
    monkeypatch.undo()
    assert len(calls) == 2 and _snapshot(model, opt) == before
    twin_model, twin = _make("Adam")
    _step(model, opt)
    _step(twin_model, twin)
    assert _snapshot(model, opt) == _snapshot(twin_model, twin)
