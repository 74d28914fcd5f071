"""Dropout layers: repr and args as torch, eval identity, keep fraction, scaling,
channel-wise masks, fresh masks per (jitted) call, reproducibility with manual_seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn as jnn
from tests._step_parity import Step, check_structure, randn

tnn = torch.nn

NAMES = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
SHAPES = {
    "Dropout": (4, 6, 50),
    "Dropout1d": (8, 50, 20),
    "Dropout2d": (8, 50, 4, 5),
    "Dropout3d": (8, 50, 2, 2, 5),
    "AlphaDropout": (4, 6, 50),
    "FeatureAlphaDropout": (8, 50, 4, 5),
}


@pytest.mark.parametrize("name", NAMES)
def test_repr_state_and_eval_identity(name: str) -> None:
    for args in ((), (0.2,), (0.3, True), (0.0,), (1.0,)):
        tm, jm = getattr(tnn, name)(*args), getattr(jnn, name)(*args)
        check_structure(tm, jm)
        assert list(jm.state_dict()) == []
    tm, jm = getattr(tnn, name)(0.4), getattr(jnn, name)(0.4)
    tm.eval()
    jm.eval()
    x = randn(2, 3, 4) if name == "Dropout1d" else randn(2, 3, 4, 5)
    np.testing.assert_array_equal(np.asarray(jm(x)), x)
    Step(jm, 1, None, jit=False)(tm, x)  # output and input gradient as torch (identity)


@pytest.mark.parametrize("name", NAMES)
def test_bad_probability(name: str) -> None:
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            getattr(jnn, name)(p)
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            getattr(tnn, name)(p)


@pytest.mark.parametrize(
    ("name", "p"),
    [
        ("Dropout", 0.2),
        ("Dropout", 0.5),
        ("Dropout1d", 0.5),
        ("Dropout2d", 0.2),
        ("Dropout3d", 0.5),
    ],  # fmt: skip
)
def test_keep_fraction_scaling_and_masks(name: str, p: float) -> None:
    shape = SHAPES[name]
    x = np.abs(randn(*shape)) + 0.5
    y = np.asarray(getattr(jnn, name)(p)(x))
    kept = y != 0
    # survivors are scaled by 1 / (1 - p)
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    if name == "Dropout":
        units = kept.reshape(-1)
    else:  # one decision per (sample, channel): the mask is constant over the rest
        flat = kept.reshape(shape[0], shape[1], -1)
        assert np.all(flat.all(-1) | ~flat.any(-1))
        units = flat[..., 0].reshape(-1)
    n = units.size
    sd = np.sqrt(p * (1 - p) / n)
    assert abs(units.mean() - (1 - p)) < 5 * sd
    # E[y] = x
    assert abs(y.mean() / x.mean() - 1) < 5 * sd / (1 - p) + 0.02


@pytest.mark.parametrize(("name", "shape"), [("Dropout1d", (50, 20)), ("Dropout3d", (50, 2, 2, 5))])
def test_unbatched_channel_masks(name: str, shape: tuple) -> None:
    y = np.asarray(getattr(jnn, name)(0.5)(np.ones(shape, np.float32)))
    flat = (y != 0).reshape(shape[0], -1)
    assert np.all(flat.all(-1) | ~flat.any(-1))
    assert 0 < flat[:, 0].sum() < shape[0]


def test_dropout2d_three_dim_input_warns_like_torch() -> None:
    x = np.ones((4, 30, 6), np.float32)
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        y = np.asarray(jnn.Dropout2d(0.5)(x))
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        tnn.Dropout2d(0.5)(torch.ones(4, 30, 6))
    flat = y != 0
    assert np.all(flat.all(-1) | ~flat.any(-1))


def test_dropout1d_rejects_bad_rank() -> None:
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input"):
        jnn.Dropout1d()(randn(2, 3, 4, 5))


@pytest.mark.parametrize("name", ["AlphaDropout", "FeatureAlphaDropout"])
def test_alpha_dropout_keeps_selu_statistics(name: str) -> None:
    x = randn(*SHAPES[name], seed=1)
    y = np.asarray(getattr(jnn, name)(0.2)(x))
    assert abs(y.mean() - x.mean()) < 0.05 and abs(y.std() - x.std()) < 0.05
    assert not np.allclose(y, x)
    # dropped entries take one common value, -alpha' * a + b
    alpha, p = 1.7580993408473766, 0.2
    a = 1 / np.sqrt((alpha**2 * p + 1) * (1 - p))
    values, counts = np.unique(np.round(y, 5), return_counts=True)
    np.testing.assert_allclose(values[counts.argmax()], -alpha * a + alpha * a * p, rtol=1e-4)
    if name == "FeatureAlphaDropout":
        dropped = np.isclose(y, values[counts.argmax()], atol=1e-5)
        flat = dropped.reshape(y.shape[0], y.shape[1], -1)
        assert np.all(flat.all(-1) | ~flat.any(-1))


def test_extreme_probabilities() -> None:
    x = randn(3, 4, 5) + 2
    np.testing.assert_array_equal(np.asarray(jnn.Dropout(0.0)(x)), x)
    np.testing.assert_array_equal(np.asarray(jnn.Dropout(1.0)(x)), np.zeros_like(x))
    np.testing.assert_array_equal(np.asarray(jnn.Dropout2d(1.0)(x[None])), np.zeros((1, 3, 4, 5)))


def test_gradient_is_mask_over_keep_probability() -> None:
    m = jnn.Dropout(0.25)
    x = randn(40, 10) + 3

    def f(m: object, x: np.ndarray) -> object:
        y = m(x)
        return (y * y).sum() / 2, y

    (_, y), (_, gx) = jaxmod.value_and_grad(f, argnums=(0, 1), has_aux=True)(m, x)
    y, gx = np.asarray(y), np.asarray(gx)
    np.testing.assert_allclose(gx, y / 0.75, rtol=1e-5)  # d/dx (mask * x / q)^2 / 2


@pytest.mark.parametrize("name", ["Dropout", "FeatureAlphaDropout"])
def test_masks_differ_across_jitted_calls_and_repeat_with_seed(name: str) -> None:
    m = getattr(jnn, name)(0.5)
    f = jaxmod.jit(lambda m, x: m(x))
    x = np.ones((4, 8, 3, 3), np.float32)
    jaxmod.manual_seed(11)
    a, b = np.asarray(f(m, x)), np.asarray(f(m, x))
    assert not np.array_equal(a, b)
    jaxmod.manual_seed(11)
    np.testing.assert_array_equal(np.asarray(f(m, x)), a)
    np.testing.assert_array_equal(np.asarray(f(m, x)), b)
    assert f.trace_count == 1
    # eager calls draw from the same generator sequence as the compiled ones
    jaxmod.manual_seed(11)
    np.testing.assert_array_equal(np.asarray(m(x)), a)
    m.eval()
    np.testing.assert_array_equal(np.asarray(f(m, x)), x)


def test_eager_masks_fresh_and_generator_reproducible() -> None:
    m = jnn.Dropout(0.5)
    x = np.ones((200,), np.float32)
    jaxmod.manual_seed(5)
    a, b = np.asarray(m(x)), np.asarray(m(x))
    assert not np.array_equal(a, b)
    jaxmod.manual_seed(5)
    np.testing.assert_array_equal(np.asarray(m(x)), a)


def test_dropout_in_sequential_train_eval() -> None:
    net = jnn.Sequential(jnn.Linear(4, 8), jnn.ReLU(), jnn.Dropout(0.5), jnn.Linear(8, 2))
    x = randn(16, 4)
    assert repr(net).count("Dropout(p=0.5, inplace=False)") == 1
    net.eval()
    np.testing.assert_array_equal(np.asarray(net(x)), np.asarray(net(x)))
    net.train()
    assert not np.array_equal(np.asarray(net(x)), np.asarray(net(x)))
