"""jaxmod.func.functional_call against torch.func.functional_call: partial dicts, tied
weights, strict errors, write-back of updated buffers, JAX transforms over the dict, and
the module unchanged afterwards; torch.func's grad / grad_and_value / vmap /
stack_module_state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn
from jaxmod.func import functional_call, grad, grad_and_value, stack_module_state, vmap

torch = pytest.importorskip("torch")
tfunc = torch.func


_CLASSES: dict = {}


def _build(lib, tied: bool = False):
    if (lib.__name__, tied) not in _CLASSES:
        _CLASSES[lib.__name__, tied] = _net_class(lib, tied)
    return _CLASSES[lib.__name__, tied]()


def _net_class(lib, tied: bool):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = lib.nn.Linear(3, 3)
            self.bn = lib.nn.BatchNorm1d(3)
            self.b = lib.nn.Linear(3, 3)
            if tied:
                self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.bn(self.a(x)))

    return Net


def _pair(tied: bool = False):
    torch.manual_seed(0)
    t = _build(torch, tied)
    j = _build(jaxmod, tied)
    j.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return t, j


X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)


def _t(v):
    return torch.from_numpy(np.asarray(v))


def _snapshot(m):
    return {k: np.array(v.value) for k, v in [*m.named_parameters(), *m.named_buffers()]}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# Each case: (tied, tie_weights, names given (value: ones * i), mode)
CASES = {
    "full_dict": (False, True, ["a.weight", "a.bias", "b.weight", "b.bias"], "eval"),
    "partial_dict": (False, True, ["a.weight"], "eval"),
    "buffers_only": (False, True, ["bn.running_mean", "bn.running_var"], "eval"),
    "tied_one_name": (True, True, ["a.weight"], "eval"),
    "tied_untied": (True, False, ["a.weight"], "eval"),
    "tied_untied_both": (True, False, ["a.weight", "b.weight"], "eval"),
    "train_mode_batch_stats": (False, True, ["a.weight"], "train"),
}


@pytest.mark.parametrize("case", CASES)
def test_functional_call_matches_torch(case):
    tied, tie_weights, names, mode = CASES[case]
    t, j = _pair(tied)
    getattr(t, mode)()
    getattr(j, mode)()
    vals = {n: np.full(dict(t.named_parameters(remove_duplicate=False),
                            **dict(t.named_buffers()))[n].shape, 0.1 * (i + 1), np.float32)
            for i, n in enumerate(names)}  # fmt: skip
    before = _snapshot(j)
    with torch.no_grad():
        want = tfunc.functional_call(t, {k: _t(v) for k, v in vals.items()}, (_t(X),),
                                     tie_weights=tie_weights).numpy()  # fmt: skip
    got = functional_call(j, {k: jnp.asarray(v) for k, v in vals.items()}, (X,),
                          tie_weights=tie_weights)  # fmt: skip
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    if mode == "eval":
        _same(_snapshot(j), before)  # the module is unchanged
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(j(X)), t(_t(X)).numpy(), rtol=1e-5, atol=1e-6)


def test_tied_weights_with_different_values_raise_torch_message():
    t, j = _pair(tied=True)
    two = {"a.weight": np.ones((3, 3), np.float32), "b.weight": np.zeros((3, 3), np.float32)}
    with pytest.raises(ValueError) as te:
        tfunc.functional_call(t, {k: _t(v) for k, v in two.items()}, (_t(X),))
    with pytest.raises(ValueError) as je:
        functional_call(j, {k: jnp.asarray(v) for k, v in two.items()}, (X,))
    assert str(je.value) == str(te.value)
    out = functional_call(j, {k: jnp.asarray(v) for k, v in two.items()}, (X,), tie_weights=False)
    with torch.no_grad():
        want = tfunc.functional_call(t, {k: _t(v) for k, v in two.items()}, (_t(X),),
                                     tie_weights=False)  # fmt: skip
    np.testing.assert_allclose(np.asarray(out), want.numpy(), rtol=1e-5, atol=1e-6)
    assert j.a.weight is j.b.weight  # still tied afterwards


@pytest.mark.parametrize(
    "given",
    [
        {"a.weight": np.ones((3, 3), np.float32)},  # missing keys
        {"nope": np.ones(3, np.float32)},  # missing and unexpected
    ],
    ids=["missing", "unexpected"],
)
def test_strict_errors_match_torch(given):
    t, j = _pair()
    with pytest.raises(RuntimeError) as te:
        tfunc.functional_call(t, {k: _t(v) for k, v in given.items()}, (_t(X),), strict=True)
    with pytest.raises(RuntimeError) as je:
        functional_call(j, given, (X,), strict=True)
    assert str(je.value) == str(te.value)


def test_several_dicts_and_their_errors_match_torch():
    t, j = _pair()
    t.eval(), j.eval()
    params = {k: v.detach().numpy() * 2 for k, v in t.named_parameters()}
    buffers = {k: v.numpy() + 1 for k, v in t.named_buffers() if v.dtype == torch.float32}
    with torch.no_grad():
        want = tfunc.functional_call(
            t, ({k: _t(v) for k, v in params.items()}, {k: _t(v) for k, v in buffers.items()}),
            _t(X),
        )  # fmt: skip
    got = functional_call(j, (params, buffers), X)
    np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-5, atol=1e-6)
    for bad in [({"a.bias": params["a.bias"]}, {"a.bias": params["a.bias"]}), [params, 3], 3]:
        with pytest.raises(ValueError) as te:
            tfunc.functional_call(
                t, jax.tree.map(_t, bad) if not isinstance(bad, int) else bad, _t(X)
            )
        with pytest.raises(ValueError) as je:
            functional_call(j, bad, X)
        assert str(je.value) == str(te.value)


def test_updated_buffers_are_written_back_like_torch():
    t, j = _pair()
    t.train(), j.train()
    bufs_t = {k: v.clone() for k, v in t.named_buffers()}
    bufs_j = {k: v.value for k, v in j.named_buffers()}
    before = _snapshot(j)
    with torch.no_grad():
        tfunc.functional_call(t, bufs_t, (_t(X),))
    functional_call(j, bufs_j, (X,))
    for k in ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked"):
        np.testing.assert_allclose(np.asarray(bufs_j[k]), bufs_t[k].numpy(), rtol=1e-6, err_msg=k)
    _same(_snapshot(j), before)  # the module's own buffers did not move


def test_buffers_not_in_the_dict_update_the_module_eagerly_like_torch():
    t, j = _pair()
    t.train(), j.train()
    with torch.no_grad():
        tfunc.functional_call(t, {"a.bias": torch.zeros(3)}, (_t(X),))
    functional_call(j, {"a.bias": jnp.zeros(3)}, (X,))
    np.testing.assert_allclose(
        np.asarray(j.bn.running_mean.value), t.bn.running_mean.numpy(), rtol=1e-5, atol=1e-7
    )
    assert np.asarray(j.a.bias.value).any()  # the parameter itself was restored


def test_grad_over_the_dict_matches_torch_func_grad():
    t, j = _pair()
    t.eval(), j.eval()
    y = np.ones((4, 3), np.float32)

    def t_loss(p):
        return ((tfunc.functional_call(t, p, (_t(X),)) - _t(y)) ** 2).mean()

    def j_loss(p):
        return ((functional_call(j, p, (X,)) - y) ** 2).mean()

    want = tfunc.grad(t_loss)({k: v.detach() for k, v in t.named_parameters()})
    params = {k: v.value for k, v in j.named_parameters()}
    buffers = {k: v.value for k, v in j.named_buffers()}
    # jitted: one compile (eager grad compiles every op); buffers are arguments too
    got = jax.jit(jax.grad(lambda p, b: j_loss((p, b))))(params, buffers)
    assert sorted(got) == sorted(want)  # a JAX dict pytree comes back with sorted keys
    for k in want:
        np.testing.assert_allclose(np.asarray(got[k]), want[k].numpy(), rtol=1e-4, atol=1e-6)
    g2, v2 = grad_and_value(j_loss)(params)  # torch.func's order: (grad, value)
    np.testing.assert_allclose(np.asarray(g2["a.weight"]), np.asarray(got["a.weight"]), rtol=1e-6)
    assert float(v2) == pytest.approx(float(((np.asarray(j(X)) - y) ** 2).mean()), rel=1e-5)
    partial = jax.grad(j_loss)({"b.bias": params["b.bias"]})  # a partial dict under jax.grad
    np.testing.assert_allclose(np.asarray(partial["b.bias"]), want["b.bias"].numpy(), rtol=1e-4)
    boxes = grad(j_loss)(dict(j.named_parameters()))  # the module's own boxes as the dict
    np.testing.assert_allclose(np.asarray(boxes["a.bias"]), want["a.bias"].numpy(), rtol=1e-4)


def test_jit_and_vmap_over_the_dict():
    j = _build(jaxmod).eval()
    params = {k: v.value for k, v in j.named_parameters()}
    buffers = {k: v.value for k, v in j.named_buffers()}
    f = jax.jit(lambda p, b, x: functional_call(j, (p, b), (x,)))
    np.testing.assert_allclose(np.asarray(f(params, buffers, X)), np.asarray(j(X)), rtol=1e-6)
    models = [_build(jaxmod).eval() for _ in range(3)]
    sp, sb = stack_module_state(models)
    assert sp["a.weight"].shape == (3, 3, 3)
    ens = jax.vmap(lambda p, b: functional_call(j, (p, b), (X,)))(sp, sb)
    for i, m in enumerate(models):
        np.testing.assert_allclose(np.asarray(ens[i]), np.asarray(m(X)), rtol=1e-5, atol=1e-6)
    ens2 = vmap(lambda p, b: functional_call(j, (p, b), (X,)))(sp, sb)  # torch.func.vmap
    np.testing.assert_allclose(np.asarray(ens2), np.asarray(ens), rtol=1e-6)


def test_stack_module_state_matches_torch():
    torch.manual_seed(0)
    tms = [torch.nn.Linear(3, 2) for _ in range(2)]
    jms = [nn.Linear(3, 2) for _ in range(2)]
    for tm, jm in zip(tms, jms):
        jm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    tp, tb = tfunc.stack_module_state(tms)
    jp, jb = stack_module_state(jms)
    assert list(jp) == list(tp) and list(jb) == list(tb)
    np.testing.assert_array_equal(np.asarray(jp["weight"]), tp["weight"].detach().numpy())


def test_partial_dict_under_plain_jit_raises_instead_of_baking_a_constant():
    j = _build(jaxmod).eval()
    f = jax.jit(lambda w, x: functional_call(j, {"a.weight": w}, (x,)))
    with pytest.raises(jaxmod.StaleStateError, match="'a.bias', 'bn.weight'.* are not in the"):
        f(j.a.weight.value, X)


def test_jaxmod_jit_lifts_what_the_dict_leaves_out():
    j = _build(jaxmod).eval()
    f = jaxmod.jit(lambda w, x: functional_call(j, {"a.weight": w}, (x,)))
    w = jnp.zeros((3, 3))
    first = np.asarray(f(w, X))
    j.b.bias.value = j.b.bias.value + 1.0  # the module changes: no stale constant
    np.testing.assert_allclose(np.asarray(f(w, X)), first + 1.0, rtol=1e-6)
    assert f.trace_count == 1


def test_tracer_leaks_raise_and_lose_nothing():
    j = _build(jaxmod).train()
    params = {k: v.value for k, v in j.named_parameters()}
    outside = {k: v.value for k, v in j.named_buffers()}  # made outside the trace
    before = _snapshot(j)
    with pytest.raises(jaxmod.TracerLeakError, match="'bn.running_mean' with a traced value"):
        jax.jit(lambda p: functional_call(j, (p, outside), (X,)))(params)
    with pytest.raises(jaxmod.TracerLeakError, match="'bn.running_mean', 'bn.running_var' of"):
        jax.vmap(lambda x: functional_call(j, {"a.bias": jnp.zeros(3)}, (x,)))(X[None])
    _same(_snapshot(j), before)
    assert not any(isinstance(v, jax.core.Tracer) for v in outside.values())
    b = {k: v.value for k, v in j.named_buffers()}
    jax.grad(lambda p: functional_call(j, (p, b), (X,)).sum())(params)  # eager grad: concrete
    assert not any(isinstance(v, jax.core.Tracer) for v in b.values())


def test_func_vmap_randomness_error_like_torch():
    drop = nn.Dropout(0.5).train()
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(drop)(jnp.ones((2, 3)))
    assert vmap(drop, randomness="different")(jnp.ones((2, 3))).shape == (2, 3)
    assert vmap(lambda x: x * 2)(jnp.ones((2, 3))).shape == (2, 3)
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        vmap(drop, randomness="nope")
