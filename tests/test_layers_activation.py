"""torch parity of the activation layers (outputs, gradients, repr, PReLU's parameter)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn as jnn
from tests._step_parity import Step, check_structure, close, parity, randn

tnn = torch.nn

# (class name, args, kwargs); inputs avoid the kinks' exact points
CASES = [
    ("ReLU", (), {}),
    ("ReLU", (True,), {}),
    ("ReLU6", (), {"inplace": True}),
    ("LeakyReLU", (), {}),
    ("LeakyReLU", (0.2, True), {}),
    ("ELU", (), {}),
    ("ELU", (0.5, True), {}),
    ("SELU", (), {}),
    ("SELU", (True,), {}),
    ("CELU", (), {}),
    ("CELU", (2.0,), {"inplace": True}),
    ("GELU", (), {}),
    ("GELU", (), {"approximate": "tanh"}),
    ("SiLU", (), {}),
    ("SiLU", (True,), {}),
    ("Mish", (), {}),
    ("Mish", (), {"inplace": True}),
    ("Sigmoid", (), {}),
    ("Tanh", (), {}),
    ("Softmax", (), {"dim": 1}),
    ("Softmax", (-1,), {}),
    ("LogSoftmax", (), {"dim": 2}),
    ("Softmin", (), {"dim": 0}),
    ("Softplus", (), {}),
    ("Softplus", (2.0, 1.0), {}),
    ("Softsign", (), {}),
    ("Hardtanh", (), {}),
    ("Hardtanh", (-2.0, 0.5, True), {}),
    ("Hardswish", (), {}),
    ("Hardswish", (True,), {}),
    ("Hardsigmoid", (), {"inplace": True}),
    ("Hardshrink", (), {}),
    ("Hardshrink", (1.1,), {}),
    ("Softshrink", (), {}),
    ("Softshrink", (0.3,), {}),
    ("Tanhshrink", (), {}),
    ("Threshold", (0.1, 20.0), {}),
    ("Threshold", (-0.5, 2), {"inplace": True}),
    ("GLU", (), {}),
    ("GLU", (1,), {}),
    ("LogSigmoid", (), {}),
    ("Softmax2d", (), {}),
    ("RReLU", (), {}),  # eval mode only (random slopes in training)
    ("RReLU", (0.1, 0.3, True), {}),
    ("PReLU", (), {}),
    ("PReLU", (4, 0.1), {}),
]


def _x(seed: int = 0, shape: tuple[int, ...] = (2, 4, 6)) -> np.ndarray:
    x = randn(*shape, seed=seed, scale=2.0)
    return np.where(np.abs(x) < 1e-3, 0.5, x).astype(np.float32)


def _ids(case: tuple) -> str:
    name, args, kwargs = case
    return name + "-" + ",".join([*map(str, args), *(f"{k}={v}" for k, v in kwargs.items())])


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_activation_parity(case: tuple) -> None:
    name, args, kwargs = case
    tm, jm = getattr(tnn, name)(*args, **kwargs), getattr(jnn, name)(*args, **kwargs)
    check_structure(tm, jm)
    if name == "RReLU":
        tm.eval()
        jm.eval()
    x = _x()
    parity(tm, jm, x)
    if name in ("Softmax2d", "GLU") or kwargs.get("dim") or name == "PReLU" and args:
        return
    # any-rank input (unbatched / 1-D)
    Step(jm, 1, None, jit=False)(tm, _x(1, (4,)))


@pytest.mark.parametrize(
    "case",
    [
        ("GELU", (), {"approximate": "tanh"}),
        ("PReLU", (4,), {}),
        ("Softmax", (), {"dim": -1}),
        ("ELU", (0.5,), {}),
        ("Hardswish", (), {}),
    ],  # fmt: skip
    ids=_ids,
)
def test_activation_parity_jit(case: tuple) -> None:
    name, args, kwargs = case
    tm, jm = getattr(tnn, name)(*args, **kwargs), getattr(jnn, name)(*args, **kwargs)
    parity(tm, jm, _x(), jit=True, steps=2, fresh=lambda s: (_x(s),))


def test_prelu_default_init_and_state() -> None:
    for n, init in ((1, 0.25), (5, 0.25), (3, -0.7)):
        m = jnn.PReLU(n, init) if init != 0.25 else jnn.PReLU(n)
        assert m.weight.shape == (n,) and m.weight.requires_grad
        np.testing.assert_allclose(np.asarray(m.weight), np.full(n, init, np.float32))
        assert list(m.state_dict()) == ["weight"]
    m = jnn.PReLU(2)
    m.weight.fill_(1.0)
    m.reset_parameters()
    np.testing.assert_allclose(np.asarray(m.weight), [0.25, 0.25])


def test_prelu_per_channel_gradient_after_training_step() -> None:
    tm, jm = tnn.PReLU(4), jnn.PReLU(4)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor([0.1, -0.2, 0.3, 2.0]))
    parity(tm, jm, _x(), steps=2, fresh=lambda s: (_x(s),))


def test_rrelu_training_is_random_and_bounded() -> None:
    m = jnn.RReLU(0.1, 0.3)
    x = -np.ones((2000,), np.float32)
    y1, y2 = np.asarray(m(x)), np.asarray(m(x))
    assert not np.array_equal(y1, y2)
    assert np.all(y1 <= -0.1 + 1e-6) and np.all(y1 >= -0.3 - 1e-6)
    assert abs(y1.mean() + 0.2) < 0.01
    pos = np.abs(randn(10))
    np.testing.assert_array_equal(np.asarray(m(pos)), pos)
    jaxmod.manual_seed(3)
    a = np.asarray(m(x))
    jaxmod.manual_seed(3)
    np.testing.assert_array_equal(a, np.asarray(m(x)))
    m.eval()
    np.testing.assert_allclose(np.asarray(m(x)), np.full(2000, -0.2), rtol=1e-6)


def test_rrelu_training_under_jit_fresh_slopes() -> None:
    m = jnn.RReLU()
    f = jaxmod.jit(lambda m, x: m(x))
    x = -np.ones((50,), np.float32)
    assert not np.array_equal(np.asarray(f(m, x)), np.asarray(f(m, x)))


def test_hardtanh_checks_and_deprecated_names() -> None:
    with pytest.raises(AssertionError, match=r"max_val \(0\) must be greater than min_val \(1\)"):
        jnn.Hardtanh(1, 0)
    with pytest.warns(FutureWarning, match="min_value` is deprecated"):
        m = jnn.Hardtanh(min_value=-2.0)
    assert repr(m) == repr(tnn.Hardtanh(-2.0)) == "Hardtanh(min_val=-2.0, max_val=1.0)"


def test_softmax_implicit_dim_warns_like_torch() -> None:
    x = _x()
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = jnn.Softmax()(x)
    with pytest.warns(UserWarning):
        ty = tnn.Softmax()(torch.tensor(x))
    close(y, ty)


def test_activation_errors() -> None:
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        jnn.GLU()(randn(2, 3))
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        tnn.GLU()(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D"):
        jnn.Softmax2d()(randn(2, 3))
    with pytest.raises(ValueError, match="approximate argument must be either none or tanh"):
        jnn.GELU("fast")(randn(2))


# inplace=True, as torch: the result is stored in the input Tensor (a view writes through to
# its base) and the input itself is returned. (layer, args) or (F function name, args)
INPLACE_LAYERS = [
    ("ReLU", (True,)),
    ("ReLU6", (True,)),
    ("LeakyReLU", (0.2, True)),
    ("ELU", (0.5, True)),
    ("SELU", (True,)),
    ("CELU", (2.0, True)),
    ("SiLU", (True,)),
    ("Mish", (True,)),
    ("Hardtanh", (-0.5, 0.5, True)),
    ("Hardswish", (True,)),
    ("Hardsigmoid", (True,)),
    ("Threshold", (0.1, 20.0, True)),
]
INPLACE_FUNCTIONS = [
    ("relu", (), {"inplace": True}),
    ("relu6", (True,), {}),
    ("leaky_relu", (0.3, True), {}),
    ("elu", (), {"alpha": 0.7, "inplace": True}),
    ("hardtanh", (-0.5, 0.5, True), {}),
    ("threshold", (0.1, 20.0, True), {}),
    ("silu", (), {"inplace": True}),
    ("relu_", (), {}),
    ("leaky_relu_", (0.3,), {}),
    ("hardtanh_", (-0.5, 0.5), {}),
    ("elu_", (), {}),
    ("selu_", (), {}),
    ("celu_", (), {"alpha": 2.0}),
    ("threshold_", (0.1, 20.0), {}),
]
_INPLACE_X = [[-1.5, 0.25, -0.75, 2.0], [3.0, -0.125, 0.5, -4.0]]


def _through_view(lib, call) -> tuple:  # noqa: ANN001
    """(input after the call, whether the call returned it, the base of a view called on)."""
    x = lib.tensor(_INPLACE_X)
    returned = call(x) is x
    base = lib.tensor(_INPLACE_X)
    call(base[:, 1:])
    return x.tolist(), returned, base.tolist()


@pytest.mark.parametrize(("name", "args"), INPLACE_LAYERS)
def test_inplace_layer_writes_its_tensor_input_like_torch(name: str, args: tuple) -> None:
    mine = _through_view(jaxmod, getattr(jnn, name)(*args))
    ref = _through_view(torch, getattr(tnn, name)(*args))
    assert mine[1] and ref[1]
    close(mine[0], ref[0])
    close(mine[2], ref[2])


@pytest.mark.parametrize(("name", "args", "kwargs"), INPLACE_FUNCTIONS)
def test_inplace_function_writes_its_tensor_input_like_torch(
    name: str, args: tuple, kwargs: dict
) -> None:
    mine = _through_view(jaxmod, lambda x: getattr(jaxmod.nn.functional, name)(x, *args, **kwargs))
    ref = _through_view(torch, lambda x: getattr(torch.nn.functional, name)(x, *args, **kwargs))
    assert mine[1] and ref[1]
    close(mine[0], ref[0])
    close(mine[2], ref[2])


def test_inplace_dropout_writes_its_tensor_input_in_train_and_eval() -> None:
    x = jaxmod.ones(64)
    assert jnn.Dropout(0.5, inplace=True)(x) is x
    assert set(np.unique(np.asarray(x))) <= {0.0, 2.0} and float(x.sum()) > 0
    x = jaxmod.ones(8)
    assert jnn.Dropout(0.5, inplace=True).eval()(x) is x
    assert jaxmod.nn.functional.dropout(x, 0.5, True, inplace=True) is x


def test_inplace_branch_sees_the_new_values_under_jit_and_grad() -> None:
    """A branch that reads the input again after an in-place layer (DANN's classifier and
    domain heads on one feature): the values and the gradient are torch's."""

    def branches(lib, f):  # noqa: ANN001, ANN202
        relu = (jnn if lib is jaxmod else tnn).ReLU(True)
        return (relu(f) * 2).sum() + (f * f).sum()

    feature = [[-1.0, 2.0], [0.5, -3.0]]
    tf = torch.tensor(feature, requires_grad=True)
    tloss = branches(torch, tf * 1)
    tloss.backward()
    loss, grad = jaxmod.jit(jaxmod.value_and_grad(lambda f: branches(jaxmod, f * 1)))(
        jaxmod.tensor(feature)
    )
    close(loss, tloss.detach())
    close(grad, tf.grad)


def test_inplace_on_a_jax_array_returns_a_new_array_and_underscore_raises() -> None:
    import jax.numpy as jnp

    x = jnp.asarray(_INPLACE_X)
    y = jnn.ReLU(inplace=True)(x)
    assert y is not x
    np.testing.assert_array_equal(np.asarray(y), np.maximum(np.asarray(x), 0))
    np.testing.assert_array_equal(np.asarray(x), np.asarray(_INPLACE_X, np.float32))
    with pytest.raises(TypeError, match=r"F\.relu_ changes its input in place.*use F\.relu"):
        jaxmod.nn.functional.relu_(x)
