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


def test_inplace_returns_new_array() -> None:
    x = jaxmod.randn(3)
    y = jnn.ReLU(inplace=True)(x)
    assert y is not x
    np.testing.assert_array_equal(np.asarray(y), np.maximum(np.asarray(x), 0))
