"""Eager kernels (``jaxmod/nn/functional/_eager.py``): outside traces a functional kernel is
one compiled program per call signature; under any staging trace the plain body runs."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
import jaxmod.nn as nn
import jaxmod.nn.functional as F
from jaxmod.nn.functional import _conv, _eager
from jaxmod.nn.functional._eager import eager_kernel, is_eager


class _Compiles(logging.Handler):
    """Counts XLA compilations (jax's ``jax_log_compiles`` messages)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Finished XLA compilation of "):
            self.names.append(msg.split(" in ")[0][len("Finished XLA compilation of ") :])


@pytest.fixture
def compiles():
    handler, logger = _Compiles(), logging.getLogger("jax")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    with jax.log_compiles(True):
        yield handler.names
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture
def op_by_op(monkeypatch):
    """Turn eager kernels off (every call runs its plain body), as before them."""
    monkeypatch.setattr(_eager, "_probe", None)


def _block(c_in: int) -> list:
    return [nn.Conv2d(c_in, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]


def test_eager_forward_compiles_one_program_per_kernel_config_and_shape(compiles):
    jaxmod.manual_seed(0)
    # three conv blocks, the last two of one configuration: they share every program
    model = nn.Sequential(
        *_block(3), *_block(8), *_block(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4),
    )  # fmt: skip
    x = jnp.ones((2, 3, 6, 6))
    del compiles[:]  # construction and the input's own programs
    jax.block_until_ready(model(x))
    # conv 3->8, conv 8->8, batch norm (all three alike), relu, num_batches_tracked + 1,
    # adaptive pool, flatten's reshape, linear: at most 8 programs (op by op: 27)
    assert len(compiles) <= 8, compiles
    del compiles[:]
    jax.block_until_ready(model(x))
    assert compiles == []


def test_eager_gradient_compiles_a_bounded_number_of_programs(compiles):
    jaxmod.manual_seed(0)
    model = nn.Sequential(*_block(3), *_block(8), *_block(8), nn.Flatten(), nn.Linear(288, 4))
    x, y = jnp.ones((2, 3, 6, 6)), jnp.array([0, 3])
    del compiles[:]
    grads = jaxmod.grad(lambda m: F.cross_entropy(m(x), y))(model)
    jax.block_until_ready(dict(grads))
    # six kernel signatures (conv x2, batch norm, relu, linear, cross entropy), each a
    # linearised forward and a transposed backward, plus flatten's reshape both ways
    # (measured: 14; op by op: 80)
    assert len(compiles) <= 16, compiles
    del compiles[:]
    jax.block_until_ready(dict(jaxmod.grad(lambda m: F.cross_entropy(m(x), y))(model)))
    assert compiles == []


def test_eager_gradients_equal_the_op_by_op_ones(monkeypatch):
    jaxmod.manual_seed(0)
    model = nn.Sequential(*_block(3), nn.Flatten(), nn.Linear(8 * 36, 4), nn.LayerNorm(4))
    x, y = jax.random.normal(jax.random.key(1), (2, 3, 6, 6)), jnp.array([0, 3])
    state = {k: np.asarray(v) for k, v in model.state_dict().items()}

    def run() -> tuple:
        model.load_state_dict({k: jnp.asarray(v) for k, v in state.items()})
        g = jaxmod.grad(lambda m: F.cross_entropy(m(x), y))(model)
        return dict(g), np.asarray(model[1].running_var)

    fast, fast_rv = run()
    monkeypatch.setattr(_eager, "_probe", None)
    slow, slow_rv = run()
    assert fast.keys() == slow.keys()
    for k in fast:
        np.testing.assert_allclose(fast[k], slow[k], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(fast_rv, slow_rv, rtol=1e-6)


def test_eager_dropout_draws_fresh_masks_and_the_same_masks_as_op_by_op(monkeypatch):
    x = jnp.ones((4, 64))
    jaxmod.manual_seed(5)
    first, second = np.asarray(F.dropout(x, 0.5)), np.asarray(F.dropout(x, 0.5))
    assert not np.array_equal(first, second)
    assert set(np.unique(first)) == {0.0, 2.0}
    monkeypatch.setattr(_eager, "_probe", None)
    jaxmod.manual_seed(5)
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.5)), first)
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.5)), second)


def test_dropout_under_jaxmod_jit_draws_the_eager_sequence():
    x = jnp.ones((4, 64))
    jaxmod.manual_seed(2)
    eager = [np.asarray(F.dropout(x, 0.25)) for _ in range(2)]
    step = jaxmod.jit(lambda x: F.dropout(x, 0.25))
    jaxmod.manual_seed(2)
    jitted = [np.asarray(step(x)) for _ in range(2)]
    np.testing.assert_array_equal(jitted[0], eager[0])
    np.testing.assert_array_equal(jitted[1], eager[1])


def test_kernels_are_eager_only_outside_staging_traces():
    seen: dict[str, bool] = {}

    def probe(name: str):
        def f(x):  # noqa: ANN001, ANN202
            seen[name] = is_eager()
            return jnp.sum(x * x)

        return f

    x = jnp.ones(3)
    probe("eager")(x)
    jax.grad(probe("grad"))(x)
    jaxmod.grad(probe("jaxmod.grad"))(x)
    jax.jit(probe("jit"))(x)
    jax.jit(jax.grad(probe("grad in jit")))(x)
    jaxmod.jit(probe("jaxmod.jit"))(x)
    jaxmod.jit(jaxmod.grad(probe("jaxmod.grad in jaxmod.jit")))(x)
    jax.vmap(probe("vmap"))(jnp.ones((2, 3)))
    jax.make_jaxpr(probe("make_jaxpr"))(x)
    assert seen == {
        "eager": True, "grad": True, "jaxmod.grad": True, "jit": False, "grad in jit": False,
        "jaxmod.jit": False, "jaxmod.grad in jaxmod.jit": False, "vmap": False,
        "make_jaxpr": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    "call",
    [
        lambda x, w: F.conv2d(x, w, stride=2, padding=1),
        lambda x, w: F.relu(F.batch_norm(x, None, None, training=True)),
        lambda x, w: F.max_pool2d(F.layer_norm(x, (5,)), 2),
    ],
    ids=["conv2d", "batch_norm+relu", "layer_norm+max_pool"],
)
def test_traced_program_is_the_plain_body(call):
    x, w = jnp.ones((2, 3, 5, 5)), jnp.ones((4, 3, 3, 3))
    traced = jax.make_jaxpr(call)(x, w)
    # the same equations as with eager kernels off entirely (no kernel call nested in it)
    old = _eager._probe
    try:
        _eager._probe = None
        plain = jax.make_jaxpr(call)(x, w)
    finally:
        _eager._probe = old
    assert str(traced) == str(plain)


def test_jaxmod_jit_step_of_a_layer_traces_no_nested_kernel_program():
    jaxmod.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    x = jnp.ones((1, 3, 5, 5))
    step = jaxmod.jit(lambda m, x: m(x))
    text = step.lower(conv, x).as_text()
    assert "body" not in text  # an eager kernel would appear as a call named jit(body)
    np.testing.assert_allclose(step(conv, x), conv(x), rtol=1e-6)


def test_constants_compile_apart_by_type():
    # x * 1 keeps an integer dtype, x * 1.0 promotes: one cached program must not serve both
    x = jnp.arange(4)
    assert F.leaky_relu(x, 1).dtype == F.leaky_relu.__wrapped_array_fn__.__eager_body__(x, 1).dtype
    assert F.leaky_relu(x, 1.0).dtype != F.leaky_relu(x, 1).dtype


def test_autocast_policy_is_part_of_the_signature():
    x, w = jnp.ones((2, 4)), jnp.ones((3, 4))
    assert F.linear(x, w).dtype == jnp.float32
    with jaxmod.autocast("cpu", dtype=jnp.bfloat16):
        assert F.linear(x, w).dtype == jnp.bfloat16
    assert F.linear(x, w).dtype == jnp.float32


def test_a_body_needing_concrete_values_runs_op_by_op():
    calls = []

    @eager_kernel
    def positive_part(x):  # noqa: ANN001, ANN202
        calls.append(type(x).__name__)
        if float(jnp.max(x)) <= 0:  # a value-dependent check: cannot be traced
            raise ValueError("no positive entry")
        return jnp.maximum(x, 0)

    np.testing.assert_array_equal(positive_part(jnp.array([-1.0, 2.0])), [0.0, 2.0])
    with pytest.raises(ValueError, match="no positive entry"):
        positive_part(jnp.array([-1.0]))
    assert len(calls) == 3  # the failed trace, then two plain calls (no retrace)


def test_unhashable_or_object_arguments_run_the_plain_body():
    seen = []

    @eager_kernel
    def scaled(x, f):  # noqa: ANN001, ANN202
        seen.append(isinstance(x, jax.core.Tracer))
        return f(x)

    np.testing.assert_array_equal(scaled(jnp.ones(2), lambda v: v * 3), [3.0, 3.0])
    assert seen == [False]


def test_conv_kernel_keeps_its_plain_body_for_inspection():
    assert _conv._conv.__eager_body__.__name__ == "_conv"


def test_bad_input_raises_the_op_by_op_error_without_jax_notes():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).bfloat16()
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype") as info:
        model(jnp.ones((2, 8)))
    assert info.value.__notes__ == ["jaxmod: raised in module '0' (Linear)"]


# ----------------------------------------------- the per-op fast path of tensor methods
_OPS = {
    "x + y": lambda x, y: x + y,
    "x * 2.0": lambda x, y: x * 2.0,
    "2 - x": lambda x, y: 2 - x,
    "x.sum(1)": lambda x, y: x.sum(1),
    "x.mean(-1, keepdim)": lambda x, y: x.mean(-1, keepdim=True),
    "x.var(0)": lambda x, y: x.var(0),
    "x.std(unbiased=False)": lambda x, y: x.std(unbiased=False),
    "x.permute(1, 0)": lambda x, y: x.permute(1, 0),
    "x.transpose(0, 1)": lambda x, y: x.transpose(0, 1),
    "x @ y.T": lambda x, y: x @ y.T,
    "x.max(1)": lambda x, y: tuple(x.max(1)),
}


@pytest.mark.parametrize("op", list(_OPS.values()), ids=list(_OPS))
def test_tensor_fast_path_equals_the_plain_op_and_compiles_once(op, compiles, monkeypatch):
    from jaxmod._tensor import eager, methods_shape

    a = jax.random.normal(jax.random.key(0), (6, 5))
    b = jax.random.normal(jax.random.key(1), (6, 5))
    x, y = jaxmod.Tensor(a), jaxmod.Tensor(b)
    del compiles[:]
    fast = jax.tree_util.tree_map(jaxmod._tensor.base.unwrap, op(x, y), is_leaf=jaxmod.is_tensor)
    n_first = len(compiles)
    op(x, y)
    assert len(compiles) == n_first  # the second call is a cache hit

    def traced(a: jax.Array, b: jax.Array) -> str:
        unwrap = jaxmod._tensor.base.unwrap_tree
        return str(
            jax.make_jaxpr(lambda a, b: unwrap(op(jaxmod.Tensor(a), jaxmod.Tensor(b))))(a, b)
        )

    program = traced(a, b)
    with monkeypatch.context() as m:  # the fast path off: every op calls jnp itself
        m.setattr(eager, "_CONCRETE", set())
        m.setattr(eager, "is_concrete", lambda a: False)
        m.setattr(methods_shape, "_CONCRETE", set())
        plain = jax.tree_util.tree_map(
            jaxmod._tensor.base.unwrap, op(x, y), is_leaf=jaxmod.is_tensor
        )
        assert traced(a, b) == program  # under a trace the plain op runs: the same program
    for f, p in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(plain)):
        assert f.dtype == p.dtype  # values: one fused program may round in another order
        np.testing.assert_allclose(f, p, rtol=1e-6, atol=1e-7)


def test_tensor_fast_path_raises_the_plain_error_on_bad_input():
    x, y = jaxmod.Tensor(jnp.ones((2, 3))), jaxmod.Tensor(jnp.ones((4, 3)))
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(2\) must match"):
        x + y
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        x @ y
