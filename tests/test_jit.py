"""jaxmod.jit: in-place state semantics, caching, donation, async dispatch, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn
from jaxmod._core import graph as _graph


class MLP(nn.Module):
    def __init__(self, d_in: int = 4, d_hidden: int = 8, d_out: int = 3) -> None:
        super().__init__()
        self.hidden = nn.Linear(d_in, d_hidden)
        self.act = nn.ReLU()
        self.output = nn.Linear(d_hidden, d_out)

    def forward(self, x):
        return self.output(self.act(self.hidden(x)))


class Counter(nn.Module):
    """A BatchNorm-style module: forward mutates a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("calls", jnp.zeros((), jnp.int32))
        self.register_buffer("running", jnp.zeros(2))

    def forward(self, x):
        self.calls = self.calls + 1
        self.running = 0.9 * self.running + 0.1 * x.mean(0)
        return self.lin(x)


def sgd_step(model, grads, lr=0.1):
    for name, p in model.named_parameters():
        if name in grads:
            p.value = p.value - lr * grads[name]


def mse(model, x, y):
    return jnp.mean((model(x) - y) ** 2)


X = jnp.asarray(np.random.default_rng(0).standard_normal((5, 4)), jnp.float32)
Y = jnp.zeros((5, 3))


def test_parameters_updated_in_place_after_each_call():
    model = MLP()
    before = np.asarray(model.hidden.weight.value)

    @jaxmod.jit
    def step(model, x, y):
        loss, grads = jaxmod.value_and_grad(mse)(model, x, y)
        sgd_step(model, grads)
        return loss

    losses = [float(step(model, X, Y)) for _ in range(5)]
    assert losses[-1] < losses[0]
    assert not np.allclose(model.hidden.weight.value, before)
    assert step.trace_count == 1


def test_jit_equals_eager_step_for_step():
    a, b = MLP(), MLP()
    b.load_state_dict(a.state_dict())

    def step(model, x, y):
        loss, grads = jaxmod.value_and_grad(mse)(model, x, y)
        sgd_step(model, grads)
        return loss

    jstep = jaxmod.jit(step)
    for _ in range(3):
        np.testing.assert_allclose(jstep(a, X, Y), step(b, X, Y), rtol=1e-5)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_allclose(va, vb, rtol=1e-5, atol=1e-6, err_msg=k)


def test_buffer_mutation_propagates_out_of_jit():
    m = Counter()
    f = jaxmod.jit(lambda m, x: m(x))
    for _ in range(3):
        f(m, jnp.ones((4, 2)))
    assert int(m.calls.value) == 3
    np.testing.assert_allclose(m.running.value, 1 - 0.9**3, rtol=1e-5)


def test_buffer_mutation_inside_grad_is_written_back():
    m = Counter()
    g = jaxmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(m)
    assert set(g) == {"lin.weight", "lin.bias"}
    assert int(m.calls.value) == 1
    assert not isinstance(m.running.value, jax.core.Tracer)


def test_value_change_never_retraces_structure_change_retraces_once():
    model = MLP()
    f = jaxmod.jit(lambda m, x: m(x))
    f(model, X)
    model.hidden.weight.data = model.hidden.weight.value * 0  # value change
    out = f(model, X)
    assert f.trace_count == 1
    np.testing.assert_allclose(out, model(X), rtol=1e-6)
    model.extra = nn.Linear(3, 3)  # new submodule: new structure
    f(model, X)
    f(model, X)
    assert f.trace_count == 2


def test_train_eval_switch_between_two_cached_versions():
    model = MLP()
    f = jaxmod.jit(lambda m, x: m(x))
    for mode in [True, False, True, False, True]:
        model.train(mode)
        f(model, X)
    assert f.trace_count == 2


def test_steady_state_call_does_not_rewalk_the_graph(monkeypatch):
    big = nn.Sequential(*[nn.Linear(4, 4) for _ in range(500)])  # 1,000 parameters
    f = jaxmod.jit(lambda m, x: m(x))
    f(big, jnp.ones((1, 4)))
    walks = []
    real = _graph._build
    monkeypatch.setattr(_graph, "_build", lambda root: walks.append(root) or real(root))
    for _ in range(5):
        f(big, jnp.ones((1, 4)))
    assert walks == []


def test_closure_and_global_models_are_lifted_and_updated():
    model = MLP()

    @jaxmod.jit
    def step(x, y):
        loss, grads = jaxmod.value_and_grad(mse)(model, x, y)
        sgd_step(model, grads)
        return loss

    w0 = np.asarray(model.output.bias.value)
    step(X, Y)
    assert not np.allclose(model.output.bias.value, w0)
    w1 = np.asarray(model.output.bias.value)
    step(X, Y)
    assert not np.allclose(model.output.bias.value, w1)  # not a stale constant
    assert step.trace_count == 1


GLOBAL_MODEL = MLP()


@jaxmod.jit
def _global_step(x):
    return GLOBAL_MODEL(x)


def test_global_model_value_changes_are_seen():
    out1 = _global_step(X)
    GLOBAL_MODEL.output.bias.data = GLOBAL_MODEL.output.bias.value + 1.0
    out2 = _global_step(X)
    np.testing.assert_allclose(out2, out1 + 1.0, rtol=1e-5)
    assert _global_step.trace_count == 1


def test_state_reached_through_a_called_helper_is_lifted_and_unreachable_state_raises():
    class Holder:
        pass

    holder = Holder()
    holder.net = MLP()

    def helper(x):  # a function the jitted one calls: its closure is searched too
        return holder.net(x)

    f = jaxmod.jit(lambda x: helper(x))
    np.testing.assert_allclose(f(X), holder.net(X), rtol=1e-5, atol=1e-6)
    hidden = lambda: None  # noqa: E731  (a function's attributes are never searched)
    hidden.net = holder.net
    g = jaxmod.jit(lambda x: hidden.net(x))
    with pytest.raises(RuntimeError, match=r"hidden\.net\.hidden\.weight.*not part of"):
        g(X)


def test_method_decorated_with_jit_lifts_self():
    class Model(MLP):
        @jaxmod.jit
        def train_step(self, x, y):
            loss, grads = jaxmod.value_and_grad(mse)(self, x, y)
            sgd_step(self, grads)
            return loss

    m = Model()
    l1 = float(m.train_step(X, Y))
    l2 = float(m.train_step(X, Y))
    assert l2 < l1


def test_state_in_lists_and_dicts_is_lifted():
    a, b = MLP(), MLP()

    @jaxmod.jit
    def step(models, x, y):
        for m in models["pair"]:
            _, g = jaxmod.value_and_grad(mse)(m, x, y)
            sgd_step(m, g)

    wa, wb = np.asarray(a.output.bias.value), np.asarray(b.output.bias.value)
    step({"pair": [a, b]}, X, Y)
    assert not np.allclose(a.output.bias.value, wa)
    assert not np.allclose(b.output.bias.value, wb)


def test_frozen_parameters_get_no_gradient_and_stay_unchanged():
    model = MLP()
    model.hidden.requires_grad_(False)
    w = np.asarray(model.hidden.weight.value)

    @jaxmod.jit
    def step(model, x, y):
        loss, grads = jaxmod.value_and_grad(mse)(model, x, y)
        sgd_step(model, grads)
        return grads

    grads = step(model, X, Y)
    assert list(grads) == ["output.weight", "output.bias"]
    np.testing.assert_array_equal(model.hidden.weight.value, w)


def test_grads_mapping_order_printing_and_pytree():
    model = MLP()
    grads = jaxmod.grad(mse)(model, X, Y)
    assert list(grads) == [n for n, _ in model.named_parameters()]
    assert grads.params["hidden.weight"] is model.hidden.weight
    assert "hidden.weight: float32[8, 4]" in repr(grads)
    doubled = jax.tree_util.tree_map(lambda g: 2 * g, grads)
    assert isinstance(doubled, jaxmod.Grads)
    np.testing.assert_allclose(doubled["output.bias"], 2 * grads["output.bias"])
    assert doubled.params["output.bias"] is model.output.bias


def test_grad_of_tied_weights_matches_torch(torch):
    class TiedNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(4, 4)
            self.dec = nn.Linear(4, 4)
            self.dec.weight = self.enc.weight

        def forward(self, x):
            return self.dec(jnp.tanh(self.enc(x)))

    m = TiedNet()
    t = torch.nn.Module()
    t.enc, t.dec = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    t.dec.weight = t.enc.weight
    t.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in m.state_dict().items()})
    grads = jaxmod.jit(lambda m: jaxmod.grad(lambda m: m(X).sum())(m))(m)
    t.dec(torch.tanh(t.enc(torch.tensor(np.asarray(X))))).sum().backward()
    assert list(grads) == [n for n, _ in t.named_parameters()]
    np.testing.assert_allclose(grads["enc.weight"], t.enc.weight.grad, rtol=1e-5, atol=1e-6)


def test_random_draws_differ_across_calls_and_repeat_with_seed():
    f = jaxmod.jit(lambda x: x + jaxmod.rand(3))
    jaxmod.manual_seed(7)
    a, b = f(jnp.zeros(3)), f(jnp.zeros(3))
    assert not np.allclose(a, b)
    jaxmod.manual_seed(7)
    np.testing.assert_array_equal(f(jnp.zeros(3)), a)
    jaxmod.manual_seed(7)  # eager and jitted draws agree for the same seed
    np.testing.assert_array_equal(jaxmod.rand(3), a)
    assert f.trace_count == 1


def test_global_generator_under_plain_jax_jit_raises():
    with pytest.raises(RuntimeError, match="plain jax.jit"):
        jax.jit(lambda x: x + jaxmod.rand(3))(jnp.zeros(3))


@pytest.mark.parametrize("spelling", ["jnp", "tensor_item", "tensor_bool", "tensor_float"])
def test_traced_control_flow_error_names_module_path(spelling):
    class Branchy(nn.Module):
        def forward(self, x):
            s = x.sum()
            if spelling == "jnp":
                cond = s > 0
            elif spelling == "tensor_item":
                cond = s.item() > 0
            elif spelling == "tensor_bool":
                cond = bool(s > 0)
            else:
                cond = float(s) > 0
            if cond:
                return x
            return -x

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), Branchy())

        def forward(self, x):
            return self.features(x)

    f = jaxmod.jit(lambda model, x: model(x))
    fix = "static_argnums" if spelling == "jnp" else r"torch\.where"
    with pytest.raises(jaxmod.TraceError, match=rf"'model\.features\.2' \(Branchy\).*{fix}"):
        f(Outer(), X if spelling == "jnp" else jaxmod.as_tensor(X))
    np.testing.assert_allclose(Outer()(X).shape, (5, 4))  # runs eagerly


@pytest.mark.parametrize("conv", ["item", "float"])
def test_item_and_float_inside_jit_raise_trace_error(conv):
    f = jaxmod.jit(lambda x: x * (x.sum().item() if conv == "item" else float(x.sum())))
    with pytest.raises(jaxmod.TraceError, match="jax.lax.cond"):
        f(jnp.ones(3))


def test_new_attribute_holding_a_tracer_is_reported():
    class Leaky(nn.Module):
        def forward(self, x):
            self.cache = x * 2
            return x

    with pytest.raises(RuntimeError, match="new attribute 'cache'"):
        jaxmod.jit(lambda m, x: m(x))(Leaky(), X)


def test_static_argnums_and_argnames():
    f = jaxmod.jit(lambda x, n, *, scale: x * n * scale, static_argnums=1,
                   static_argnames="scale")  # fmt: skip
    assert float(f(jnp.ones(()), 3, scale=2)[()]) == 6
    f(jnp.ones(()), 3, scale=2)
    assert f.trace_count == 1
    f(jnp.ones(()), 4, scale=2)
    assert f.trace_count == 2


def test_donation_deletes_old_state_buffers_unless_disabled():
    model = MLP()

    def step(model, x, y):
        _, g = jaxmod.value_and_grad(mse)(model, x, y)
        sgd_step(model, g)

    held = model.hidden.weight.value
    jaxmod.jit(step)(model, X, Y)
    assert held.is_deleted()
    with pytest.raises(RuntimeError, match="deleted"):
        np.asarray(held)
    held = model.hidden.weight.value
    jaxmod.jit(step, donate=False)(model, X, Y)
    assert not held.is_deleted()


def test_call_returns_before_the_device_finishes():
    @jaxmod.jit
    def heavy(x):
        return jax.lax.fori_loop(0, 60, lambda i, a: jnp.tanh(a @ a), x)

    x = jnp.full((1200, 1200), 1e-3)
    heavy(x).block_until_ready()  # compile first
    out = heavy(x)
    assert not out.is_ready()  # control came back while XLA is still computing
    out.block_until_ready()


def test_compile_module_in_place_respects_mode_switches():
    model = MLP()
    expected = model(X)
    model.compile()
    np.testing.assert_allclose(model(X), expected, rtol=1e-6, atol=1e-6)
    jitted = model.__dict__["_jaxmod_compiled"]
    model(X)
    assert jitted.trace_count == 1
    model.eval()
    model(X)
    assert jitted.trace_count == 2
    m2 = jaxmod.compile(MLP())
    assert isinstance(m2, MLP) and m2(X).shape == (5, 3)


def test_forward_hooks_run_at_trace_time_under_jit():
    model = MLP()
    seen = []
    model.hidden.register_forward_hook(lambda m, i, o: seen.append(o.shape) or o * 0)
    out = jaxmod.jit(lambda m, x: m(x))(model, X)
    assert seen == [(5, 8)]
    np.testing.assert_allclose(out, jnp.broadcast_to(model.output.bias.value, (5, 3)), rtol=1e-6)


def test_optimizer_with_frozen_parameters_steps_under_jit():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    frozen = np.asarray(model[0].weight.value)
    opt = jaxmod.optim.Adam(model.parameters(), lr=0.1)

    @jaxmod.jit
    def step(model, opt, x):
        loss, g = jaxmod.value_and_grad(lambda m: m(x).sum())(model)
        opt.step(g)
        return loss

    before = np.asarray(model[1].weight.value)
    for _ in range(3):
        step(model, opt, jnp.ones((3, 4)))
    np.testing.assert_array_equal(model[0].weight.value, frozen)
    assert not np.allclose(model[1].weight.value, before)
    # The first trace finds that the step skips the frozen parameters: the group's state
    # is split per parameter with concrete values and the step traced again (counted once).
    assert step.trace_count == 1
    assert model[0].weight not in opt.state and int(opt.state[model[1].weight]["step"]) == 3


SHARED_MODEL = MLP()


def test_steady_state_path_rechecks_arguments_closure_and_globals():
    # A steady-state call runs straight-line code bound to the last plan's objects; any
    # other object in an argument, a closure cell or a global must not reuse it.
    global SHARED_MODEL
    inner = MLP()

    def run(m, scale, x):
        return m(x) * scale + inner(x) + SHARED_MODEL(x)

    f = jaxmod.jit(run, static_argnums=1)
    a, b = MLP(), MLP()
    for _ in range(2):
        np.testing.assert_allclose(f(a, 2.0, X), run(a, 2.0, X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f(b, 2.0, X), run(b, 2.0, X), rtol=1e-5, atol=1e-6)
    assert f.trace_count == 1  # same structure, other object: same compiled code
    np.testing.assert_allclose(f(b, 3.0, X), run(b, 3.0, X), rtol=1e-5, atol=1e-6)
    assert f.trace_count == 2  # static argument changed
    inner = MLP()  # rebinds the closure cell
    np.testing.assert_allclose(f(b, 3.0, X), run(b, 3.0, X), rtol=1e-5, atol=1e-6)
    old_global, SHARED_MODEL = SHARED_MODEL, MLP()
    try:
        np.testing.assert_allclose(f(b, 3.0, X), run(b, 3.0, X), rtol=1e-5, atol=1e-6)
    finally:
        SHARED_MODEL = old_global
    assert f.trace_count == 2
    for _ in range(2):  # a keyword argument: another signature, one more trace
        np.testing.assert_allclose(f(b, 3.0, x=X), run(b, 3.0, X), rtol=1e-5, atol=1e-6)
    assert f.trace_count == 3


def test_retrace_from_steady_state_still_names_module_path_of_trace_error():
    class Branchy(nn.Module):
        def forward(self, x):
            if x.ndim > 2 and x.sum() > 0:  # only a 3-D input needs a concrete value
                return x
            return -x

    model = nn.Sequential(nn.Linear(4, 4), Branchy())
    f = jaxmod.jit(lambda model, x: model(x))
    f(model, X)
    f(model, X)
    with pytest.raises(jaxmod.TraceError, match=r"'model\.1' \(Branchy\)"):
        f(model, X[None])  # new input shape: jax.jit retraces inside the steady-state call
    f(model, X)  # the cached plan still works
    assert f.trace_count == 2


def test_jit_of_partial_and_callable_object():
    # Callables without __globals__ (functools.partial, objects with __call__) work too.
    import functools

    class Scaled:
        def __call__(self, m, x, scale):
            return m(x) * scale

    model = MLP()
    cases = [
        (jaxmod.jit(functools.partial(lambda m, x, scale: m(x) * scale, scale=2.0)), ()),
        (jaxmod.jit(Scaled(), static_argnums=2), (2.0,)),
    ]
    for f, extra in cases:
        for _ in range(2):
            np.testing.assert_allclose(f(model, X, *extra), model(X) * 2.0, rtol=1e-5, atol=1e-6)
        assert f.trace_count == 1
