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


# -- torch.func's Jacobians and products: jacrev, jacfwd, hessian, vjp, jvp, linearize
_R = np.random.default_rng(1)
P = _R.standard_normal((3,)).astype(np.float32)
Q = _R.standard_normal((3,)).astype(np.float32)
W = _R.standard_normal((2, 3)).astype(np.float32)


def _lib_tree(lib, spec):
    if isinstance(spec, tuple):
        return tuple(_lib_tree(lib, s) for s in spec)
    if isinstance(spec, dict):
        return {k: _lib_tree(lib, v) for k, v in spec.items()}
    return lib.tensor(spec)


def _same_tree(got, want, path="out"):
    """The same pytree (tuples, dicts), a jaxmod Tensor at each torch tensor, equal values."""
    if isinstance(want, (tuple, list, dict)):
        assert type(got) is type(want) and len(got) == len(want), f"{path}: {type(got)}"
        keys = want.keys() if isinstance(want, dict) else range(len(want))
        for k in keys:
            _same_tree(got[k], want[k], f"{path}[{k!r}]")
        return
    assert isinstance(got, jaxmod.Tensor), f"{path}: {type(got)}"
    assert tuple(got.shape) == tuple(want.shape), path
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-5,
                               err_msg=path)  # fmt: skip


F_FUNCS = {
    "sin": lambda x: x.sin(),
    "prod": lambda x, y: x * y.exp(),
    "matvec": lambda w, x: w @ x,
    "tuple_out": lambda x, y: (x * y, (x**2).sum()),
    "dict_out": lambda x: {"a": x.cos(), "b": x.sum()},
    "dict_in": lambda d: (d["w"] @ d["x"]).tanh(),
    "aux": lambda x, y: ((x * y).sum(), {"y2": y * 2}),
    "scalar": lambda x, y: (x**3 * y).sum(),
    "dict_scalar": lambda d: (d["w"] @ d["x"]).pow(2).sum(),
}

# name: (transform, function, args, kwargs of the transform)
F_CASES = {
    "jacrev": ("jacrev", "sin", (P,), {}),
    "jacrev_argnums1": ("jacrev", "prod", (P, Q), {"argnums": 1}),
    "jacrev_argnums_tuple": ("jacrev", "matvec", (W, P), {"argnums": (0, 1)}),
    "jacrev_negative_argnum": ("jacrev", "prod", (P, Q), {"argnums": -1}),
    "jacrev_tuple_out": ("jacrev", "tuple_out", (P, Q), {"argnums": (0, 1)}),
    "jacrev_dict_out": ("jacrev", "dict_out", (P,), {}),
    "jacrev_dict_in": ("jacrev", "dict_in", ({"w": W, "x": P},), {}),
    "jacrev_aux": ("jacrev", "aux", (P, Q), {"has_aux": True, "argnums": (0, 1)}),
    "jacrev_chunk_size": ("jacrev", "matvec", (W, P), {"argnums": 1, "chunk_size": 1}),
    "jacfwd": ("jacfwd", "sin", (P,), {}),
    "jacfwd_argnums_tuple": ("jacfwd", "matvec", (W, P), {"argnums": (0, 1)}),
    "jacfwd_dict_in": ("jacfwd", "dict_in", ({"w": W, "x": P},), {}),
    "jacfwd_aux": ("jacfwd", "aux", (P, Q), {"has_aux": True}),
    "hessian": ("hessian", "scalar", (P, Q), {}),
    "hessian_argnums_tuple": ("hessian", "scalar", (P, Q), {"argnums": (0, 1)}),
    "hessian_dict_in": ("hessian", "dict_scalar", ({"w": W, "x": P},), {}),
    "grad_argnums_tuple": ("grad", "scalar", (P, Q), {"argnums": (0, 1)}),
    "grad_aux": ("grad", "aux", (P, Q), {"has_aux": True}),
    "grad_and_value_aux": ("grad_and_value", "aux", (P, Q), {"has_aux": True, "argnums": 1}),
    "grad_dict_in": ("grad", "dict_scalar", ({"w": W, "x": P},), {}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(F_CASES))
def test_func_transforms_match_torch(case):
    name, fn, args, kwargs = F_CASES[case]
    want = getattr(tfunc, name)(F_FUNCS[fn], **kwargs)(*_lib_tree(torch, args))
    got = getattr(jaxmod.func, name)(F_FUNCS[fn], **kwargs)(*_lib_tree(jaxmod, args))
    _same_tree(got, want)


# name: (function, primals, cotangents or tangents, has_aux)
PRODUCT_CASES = {
    "one": ("sin", (P,), Q, False),
    "two_inputs": ("prod", (P, Q), Q, False),
    "tuple_out": ("tuple_out", (P, Q), (Q, np.float32(2.0)), False),
    "dict_in": ("dict_in", ({"w": W, "x": P},), Q[:2], False),
    "aux": ("aux", (P, Q), np.float32(3.0), True),
}


def _np_tree(spec):
    return spec if isinstance(spec, (tuple, dict)) else np.asarray(spec, np.float32)


@pytest.mark.parametrize("case", sorted(PRODUCT_CASES))
def test_func_vjp_matches_torch(case):
    fn, primals, ct, has_aux = PRODUCT_CASES[case]
    res = []
    for lib in (torch, jaxmod):
        out = lib.func.vjp(F_FUNCS[fn], *_lib_tree(lib, primals), has_aux=has_aux)
        cts = _lib_tree(lib, _np_tree(ct))
        res.append((out[0], out[1](cts), *out[2:]))
    _same_tree(res[1], res[0])


@pytest.mark.parametrize("case", sorted(PRODUCT_CASES))
def test_func_jvp_and_linearize_match_torch(case):
    fn, primals, _, has_aux = PRODUCT_CASES[case]
    tangents = jax.tree_util.tree_map(lambda a: np.full_like(a, 0.5) + a, primals)
    want = tfunc.jvp(F_FUNCS[fn], _lib_tree(torch, primals), _lib_tree(torch, tangents),
                     has_aux=has_aux)  # fmt: skip
    got = jaxmod.func.jvp(F_FUNCS[fn], _lib_tree(jaxmod, primals),
                          _lib_tree(jaxmod, tangents), has_aux=has_aux)  # fmt: skip
    _same_tree(got, want)
    if not has_aux:
        t_out, t_fn = tfunc.linearize(F_FUNCS[fn], *_lib_tree(torch, primals))
        j_out, j_fn = jaxmod.func.linearize(F_FUNCS[fn], *_lib_tree(jaxmod, primals))
        _same_tree((j_out, j_fn(*_lib_tree(jaxmod, tangents))),
                   (t_out, t_fn(*_lib_tree(torch, tangents))))  # fmt: skip


def test_func_jacobians_of_arrays_stay_arrays():
    jac = jaxmod.func.jacrev(jnp.sin)(jnp.asarray(P))
    assert isinstance(jac, jax.Array) and jac.shape == (3, 3)
    out, fn = jaxmod.func.vjp(jnp.sin, jnp.asarray(P))
    assert isinstance(fn(jnp.ones(3))[0], jax.Array)


def test_func_per_sample_jacobian_over_functional_call():
    t, j = _pair()
    t.eval(), j.eval()

    def t_f(p, x):
        return tfunc.functional_call(t, p, (x,))

    def j_f(p, x):
        return functional_call(j, p, (x,))

    tp = {k: v.detach() for k, v in t.named_parameters()}
    jp = {k: jaxmod.tensor(np.asarray(v.value)) for k, v in j.named_parameters()}
    want = tfunc.vmap(tfunc.jacrev(t_f), in_dims=(None, 0))(tp, _t(X[:, None]))
    got = vmap(jaxmod.func.jacrev(j_f), in_dims=(None, 0))(jp, jaxmod.tensor(X[:, None]))
    _same_tree(got, want)


def _raises_like_torch(call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(type(want.value)) as got:
        call(jaxmod)
    assert str(got.value) == str(want.value)


F_ERRORS = {
    "argnums_out_of_range": lambda lib: lib.func.jacrev(F_FUNCS["sin"], argnums=2)(
        lib.tensor(P)),
    "argnums_empty": lambda lib: lib.func.jacrev(F_FUNCS["prod"], argnums=())(
        lib.tensor(P), lib.tensor(Q)),
    "argnums_repeated": lambda lib: lib.func.jacfwd(F_FUNCS["prod"], argnums=(0, 0))(
        lib.tensor(P), lib.tensor(Q)),
    "argnums_type": lambda lib: lib.func.jacrev(F_FUNCS["sin"], argnums=[0])(lib.tensor(P)),
    "jacrev_aux_not_pair": lambda lib: lib.func.jacrev(F_FUNCS["sin"], has_aux=True)(
        lib.tensor(P)),
    "jacfwd_aux_not_pair": lambda lib: lib.func.jacfwd(F_FUNCS["sin"], has_aux=True)(
        lib.tensor(P)),
    "vjp_aux_not_pair": lambda lib: lib.func.vjp(F_FUNCS["sin"], lib.tensor(P),
                                                 has_aux=True),
    "jvp_primals_not_tuple": lambda lib: lib.func.jvp(F_FUNCS["sin"], lib.tensor(P),
                                                      lib.tensor(P)),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(F_ERRORS))
def test_func_errors_match_torch(case):
    _raises_like_torch(F_ERRORS[case])
