"""jaxmod.nn.init against torch.nn.init: formulas, statistics, exact fills and errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod.nn import init
from jaxmod.nn.parameter import Buffer, Parameter

torch = pytest.importorskip("torch")
tinit = torch.nn.init

LINEAR = (512, 512)
CONV = (64, 64, 3, 3)
NONLINEARITIES = [
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
]  # fmt: skip


def box(shape, dtype=jnp.float32):
    return Parameter(jnp.zeros(shape, dtype))


def values(b) -> np.ndarray:
    return np.asarray(b._value, np.float64)


def fans(shape):
    return tinit._calculate_fan_in_and_fan_out(torch.empty(shape))


# ----------------------------------------------------------------------------------------
# gains and fans
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_calculate_gain_matches_torch(nonlinearity):
    assert init.calculate_gain(nonlinearity) == tinit.calculate_gain(nonlinearity)


@pytest.mark.parametrize("param", [None, 0, 0.2, 3, -0.5])
def test_calculate_gain_leaky_relu_param(param):
    assert init.calculate_gain("leaky_relu", param) == tinit.calculate_gain("leaky_relu", param)


@pytest.mark.parametrize("args", [("foo",), ("leaky_relu", True), ("leaky_relu", "0.1"), ("gelu",)])
def test_calculate_gain_errors_match_torch(args):
    with pytest.raises(ValueError) as expected:
        tinit.calculate_gain(*args)
    with pytest.raises(ValueError) as got:
        init.calculate_gain(*args)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("shape", [(3, 5), (7, 2, 3), (8, 4, 3, 3), (2, 6, 2, 3, 4), (1, 1)])
def test_fan_in_and_fan_out_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(box(shape)) == fans(shape)
    assert init._calculate_fan_in_and_fan_out(jnp.zeros(shape)) == fans(shape)


@pytest.mark.parametrize("shape", [(), (5,)])
def test_fan_error_matches_torch(shape):
    with pytest.raises(ValueError) as expected:
        tinit._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError) as got:
        init._calculate_fan_in_and_fan_out(box(shape))
    assert str(got.value) == str(expected.value)


def test_bad_fan_mode_matches_torch():
    with pytest.raises(ValueError) as expected:
        tinit.kaiming_uniform_(torch.empty(4, 4), mode="fan_avg")
    with pytest.raises(ValueError) as got:
        init.kaiming_uniform_(box((4, 4)), mode="fan_avg")
    assert str(got.value) == str(expected.value)


# ----------------------------------------------------------------------------------------
# distributions
# ----------------------------------------------------------------------------------------
def check_uniform(v: np.ndarray, lo: float, hi: float) -> None:
    width = hi - lo
    assert v.max() <= hi and v.min() >= lo
    assert v.max() > hi - 0.01 * width and v.min() < lo + 0.01 * width
    np.testing.assert_allclose(v.mean(), (lo + hi) / 2, atol=0.01 * width)
    np.testing.assert_allclose(v.std(), width / math.sqrt(12), rtol=0.02)


def check_normal(v: np.ndarray, mean: float, std: float) -> None:
    np.testing.assert_allclose(v.mean(), mean, atol=0.02 * std)
    np.testing.assert_allclose(v.std(), std, rtol=0.02)


def test_uniform_():
    b = box(LINEAR)
    assert init.uniform_(b, -0.3, 0.7) is b
    check_uniform(values(b), -0.3, 0.7)
    check_uniform(values(init.uniform_(box(LINEAR))), 0.0, 1.0)


def test_normal_():
    b = box(LINEAR)
    assert init.normal_(b, 0.5, 2.0) is b
    check_normal(values(b), 0.5, 2.0)


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.5, 0.1, 0.4, 1.0)])
def test_trunc_normal_(mean, std, a, b):
    p = init.trunc_normal_(box(LINEAR), mean, std, a, b)
    v = values(p)
    assert v.min() >= a and v.max() <= b
    # Moments of the truncated normal, from torch's own samples.
    ref = tinit.trunc_normal_(torch.empty(LINEAR), mean, std, a, b).double().numpy()
    np.testing.assert_allclose(v.mean(), ref.mean(), atol=0.01 * std)
    np.testing.assert_allclose(v.std(), ref.std(), rtol=0.02)


def test_trunc_normal_warns_like_torch():
    with pytest.warns(UserWarning, match="mean is more than 2 std"):
        init.trunc_normal_(box((4, 4)), mean=10.0)


@pytest.mark.parametrize("shape", [LINEAR, CONV])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_uniform_(shape, gain):
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    check_uniform(values(init.xavier_uniform_(box(shape), gain=gain)), -bound, bound)


@pytest.mark.parametrize("shape", [LINEAR, CONV])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_normal_(shape, gain):
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    check_normal(values(init.xavier_normal_(box(shape), gain=gain)), 0.0, std)


KAIMING = [
    (LINEAR, 0, "fan_in", "leaky_relu"),
    (CONV, 0, "fan_out", "relu"),
    (CONV, 0.2, "fan_in", "leaky_relu"),
    (LINEAR, 0, "fan_out", "linear"),
    (CONV, 0, "fan_in", "tanh"),
]


@pytest.mark.parametrize("shape, a, mode, nonlinearity", KAIMING)
def test_kaiming_uniform_(shape, a, mode, nonlinearity):
    fan = fans(shape)[0 if mode == "fan_in" else 1]
    bound = tinit.calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    b = init.kaiming_uniform_(box(shape), a=a, mode=mode, nonlinearity=nonlinearity)
    check_uniform(values(b), -bound, bound)


@pytest.mark.parametrize("shape, a, mode, nonlinearity", KAIMING)
def test_kaiming_normal_(shape, a, mode, nonlinearity):
    fan = fans(shape)[0 if mode == "fan_in" else 1]
    std = tinit.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    b = init.kaiming_normal_(box(shape), a=a, mode=mode, nonlinearity=nonlinearity)
    check_normal(values(b), 0.0, std)


def test_kaiming_zero_element_warns_like_torch():
    for fn in (init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.warns(UserWarning, match="zero-element tensors is a no-op"):
            fn(box((0, 3)))


@pytest.mark.parametrize("shape", [(64, 64), (32, 96), (96, 32), (16, 8, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_orthogonal_(shape, gain):
    b = init.orthogonal_(box(shape), gain=gain)
    m = values(b).reshape(shape[0], -1)
    rows, cols = m.shape
    gram = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-4)


def test_orthogonal_sign_correction():
    # With Q's signs fixed by diag(R), Q is Haar-distributed: averaged over many draws,
    # each entry has mean 0 (without the fix, diag(Q) is biased).
    jaxmod.manual_seed(3)
    diag = np.stack([np.diag(values(init.orthogonal_(box((4, 4))))) for _ in range(300)])
    assert np.all(np.abs(diag.mean(0)) < 0.15)


def test_sparse_():
    shape, sparsity, std = LINEAR, 0.3, 0.05
    v = values(init.sparse_(box(shape), sparsity, std=std))
    zeros_per_col = (v == 0).sum(0)
    np.testing.assert_array_equal(zeros_per_col, math.ceil(sparsity * shape[0]))
    check_normal(v[v != 0], 0.0, std)
    # Different columns zero different rows.
    assert len({tuple(np.flatnonzero(v[:, j] == 0)) for j in range(10)}) == 10


# ----------------------------------------------------------------------------------------
# exact fills
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (6, 2)])
def test_eye_matches_torch(shape):
    np.testing.assert_array_equal(values(init.eye_(box(shape))), tinit.eye_(torch.empty(shape)))


@pytest.mark.parametrize(
    "shape, groups",
    [((4, 4, 3), 1), ((6, 4, 3, 3), 1), ((4, 6, 3, 3), 1), ((6, 2, 3, 3), 3),
     ((4, 3, 3, 4, 5), 2), ((8, 4, 2, 2), 2)],
)  # fmt: skip
def test_dirac_matches_torch(shape, groups):
    expected = tinit.dirac_(torch.empty(shape), groups=groups).numpy()
    np.testing.assert_array_equal(values(init.dirac_(box(shape), groups=groups)), expected)


def test_constant_ones_zeros():
    b = Buffer(jnp.zeros((3, 4), jnp.bfloat16))
    assert init.constant_(b, 0.25) is b and b.dtype == jnp.bfloat16 and b.shape == (3, 4)
    np.testing.assert_array_equal(values(b), 0.25)
    np.testing.assert_array_equal(values(init.ones_(b)), 1.0)
    np.testing.assert_array_equal(values(init.zeros_(b)), 0.0)


@pytest.mark.parametrize(
    "fn, shape",
    [("eye_", (2, 2, 2)), ("eye_", (3,)), ("dirac_", (3, 3)), ("dirac_", (2, 2, 2, 2, 2, 2)),
     ("orthogonal_", (4,)), ("sparse_", (2, 2, 2))],
)  # fmt: skip
def test_shape_errors_match_torch(fn, shape):
    extra = (0.5,) if fn == "sparse_" else ()
    with pytest.raises(ValueError) as expected:
        getattr(tinit, fn)(torch.empty(shape), *extra)
    with pytest.raises(ValueError) as got:
        getattr(init, fn)(box(shape), *extra)
    assert str(got.value) == str(expected.value)


def test_dirac_groups_error_matches_torch():
    with pytest.raises(ValueError) as expected:
        tinit.dirac_(torch.empty(5, 2, 3), groups=2)
    with pytest.raises(ValueError) as got:
        init.dirac_(box((5, 2, 3)), groups=2)
    assert str(got.value) == str(expected.value)


def test_plain_array_is_rejected():
    with pytest.raises(TypeError, match="in place"):
        init.normal_(jnp.zeros((2, 2)))


# ----------------------------------------------------------------------------------------
# randomness: seeds, generators, dtypes
# ----------------------------------------------------------------------------------------
RANDOM_INITS = [
    ("uniform_", {}),
    ("normal_", {}),
    ("trunc_normal_", {}),
    ("xavier_uniform_", {}),
    ("xavier_normal_", {}),
    ("kaiming_uniform_", {}),
    ("kaiming_normal_", {}),
    ("orthogonal_", {}),
    ("sparse_", {"sparsity": 0.5}),
]


@pytest.mark.parametrize("name, kw", RANDOM_INITS)
def test_manual_seed_repeats_and_generator_is_used(name, kw):
    fn = getattr(init, name)
    jaxmod.manual_seed(0)
    first = values(fn(box((8, 6)), **kw))
    second = values(fn(box((8, 6)), **kw))
    jaxmod.manual_seed(0)
    again = values(fn(box((8, 6)), **kw))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)

    # An explicit generator is used instead of the global one, which does not advance.
    jaxmod.manual_seed(0)
    g1 = values(fn(box((8, 6)), generator=jaxmod.Generator(1), **kw))
    after = values(fn(box((8, 6)), **kw))
    np.testing.assert_array_equal(after, first)
    np.testing.assert_array_equal(values(fn(box((8, 6)), generator=jaxmod.Generator(1), **kw)), g1)
    assert not np.array_equal(g1, first)
    # A raw PRNG key works too.
    k = jax.random.key(7)
    np.testing.assert_array_equal(
        values(fn(box((8, 6)), generator=k, **kw)), values(fn(box((8, 6)), generator=k, **kw))
    )


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_boxes_keep_dtype(dtype):
    b = Parameter(jnp.zeros((256, 256), dtype))
    init.kaiming_normal_(b, nonlinearity="relu")
    assert b.dtype == dtype and b.shape == (256, 256)
    check_normal(values(b), 0.0, math.sqrt(2.0 / 256))


TENSOR_FILLS = [
    ("xavier_uniform_", ()),
    ("kaiming_normal_", ()),
    ("orthogonal_", ()),
    ("trunc_normal_", ()),
    ("constant_", (0.5,)),
    ("uniform_", (-0.1, 0.1)),
]


@pytest.mark.parametrize("fn, args", TENSOR_FILLS)
def test_init_fills_a_tensor_in_place_as_torch_does(fn, args):
    w = jaxmod.empty(8, 6)
    out = getattr(init, fn)(w, *args)
    assert out is w and w.shape == (8, 6) and w.dtype == jnp.float32
    assert float(w.abs().sum()) > 0
    base = jaxmod.zeros(6, 8)
    getattr(init, fn)(base.t(), *args)  # through a view: the base changes
    assert float(base.abs().sum()) > 0
