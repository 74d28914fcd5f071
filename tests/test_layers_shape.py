"""Padding layers, shape utilities, Flatten/Unflatten, Bilinear and LazyLinear against torch."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn as jnn
from tests._layer_parity import (
    check_structure,
    close,
    copy_weights,
    parity,
    rand,
    uniform_bound_stats,
)


def _pair(name, *args, **kwargs):
    return getattr(torch.nn, name)(*args, **kwargs), getattr(jnn, name)(*args, **kwargs)


# ------------------------------------------------------------------------------- padding
PAD_CASES = [
    ("ZeroPad1d", (2,), (2, 3, 5)),
    ("ZeroPad2d", ((1, 0, 2, 1),), (2, 3, 4, 5)),
    ("ZeroPad2d", ((-1, 2, 0, 1),), (3, 4, 5)),  # negative crops, unbatched
    ("ZeroPad3d", (1,), (1, 2, 2, 3, 2)),
    ("ConstantPad1d", ((1, 3), 2.5), (3, 4)),
    ("ConstantPad2d", (2, -1.0), (2, 2, 3, 3)),
    ("ConstantPad3d", ((1, 0, 0, 1, 2, 0), 0.5), (2, 2, 3, 2)),
    ("ReflectionPad1d", ((2, 1),), (2, 3, 5)),
    ("ReflectionPad2d", (2,), (2, 3, 4, 5)),
    ("ReflectionPad2d", ((1, 0, 2, 3),), (2, 4, 5)),
    ("ReflectionPad3d", (1,), (1, 2, 3, 3, 3)),
    ("ReplicationPad1d", ((3, 0),), (3, 4)),
    ("ReplicationPad2d", ((1, 2, 0, 3),), (2, 2, 3, 4)),
    ("ReplicationPad3d", (1,), (2, 2, 3, 2)),
    ("CircularPad1d", ((2, 1),), (2, 3, 4)),
    ("CircularPad2d", ((1, 2, 2, 0),), (2, 2, 3, 4)),
    ("CircularPad2d", ((-1, 1, 0, 2),), (3, 3, 4)),
    ("CircularPad3d", (1,), (1, 2, 2, 3, 3)),
]


@pytest.mark.parametrize("name,args,shape", PAD_CASES)
def test_padding_matches_torch(name, args, shape):
    parity(*_pair(name, *args), rand(*shape))


def test_padding_matches_torch_under_jit():
    parity(*_pair("ReflectionPad2d", (1, 2, 0, 1)), rand(2, 3, 4, 5), jit=True)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (jnn.ReflectionPad2d(1), (4, 4)),
        (jnn.ReplicationPad1d(1), (1, 2, 3, 4)),
        (jnn.CircularPad3d(1), (3, 3, 3)),
        (jnn.ZeroPad2d(1), (4,)),
    ],
)
def test_padding_wrong_input_shape_raises(layer, shape):
    with pytest.raises(ValueError, match=type(layer).__name__):
        layer(np.ones(shape, np.float32))


# -------------------------------------------------------------------------- shape utils
SHAPE_CASES = [
    ("PixelShuffle", (2,), (2, 8, 3, 2)),
    ("PixelShuffle", (3,), (9, 2, 2)),  # unbatched
    ("PixelUnshuffle", (2,), (2, 2, 4, 6)),
    ("PixelUnshuffle", (3,), (1, 3, 3)),
    ("ChannelShuffle", (2,), (2, 6, 3, 2)),
    ("ChannelShuffle", (3,), (1, 6, 4)),
    ("Upsample", dict(scale_factor=2), (2, 3, 4, 5)),
    ("Upsample", dict(size=(7, 5)), (1, 2, 3, 4)),
    ("Upsample", dict(scale_factor=(1.5, 2.0), mode="bilinear"), (2, 2, 4, 5)),
    ("Upsample", dict(size=(7, 9), mode="bilinear", align_corners=True), (1, 2, 4, 5)),
    ("Upsample", dict(scale_factor=2, mode="bicubic"), (1, 2, 4, 4)),
    ("Upsample", dict(size=(5, 7), mode="bicubic", align_corners=True), (1, 1, 3, 4)),
    ("Upsample", dict(scale_factor=3, mode="nearest"), (2, 3, 5)),  # 1-D spatial
    ("Upsample", dict(size=4, mode="linear"), (2, 3, 6)),
    ("UpsamplingNearest2d", dict(scale_factor=2), (1, 2, 3, 3)),
    ("UpsamplingBilinear2d", dict(size=(5, 6)), (1, 2, 3, 4)),
    ("Unfold", dict(kernel_size=2), (2, 3, 4, 5)),
    ("Unfold", dict(kernel_size=(2, 3), dilation=2, padding=1, stride=2), (1, 2, 6, 7)),
    ("Fold", dict(output_size=(4, 5), kernel_size=2), (2, 12, 12)),
    ("Fold", dict(output_size=6, kernel_size=3, padding=1, stride=2), (1, 18, 9)),
]


@pytest.mark.parametrize("name,args,shape", SHAPE_CASES)
def test_shape_layers_match_torch(name, args, shape):
    if isinstance(args, dict):
        parity(*_pair(name, **args), rand(*shape))
    else:
        parity(*_pair(name, *args), rand(*shape))


def test_upsample_matches_torch_under_jit():
    t, j = _pair("Upsample", scale_factor=2, mode="bilinear")
    parity(t, j, rand(1, 2, 3, 4), jit=True)


@pytest.mark.parametrize(
    "name,kwargs,shapes",
    [
        ("CosineSimilarity", {}, [(4, 5), (4, 5)]),
        ("CosineSimilarity", dict(dim=-1, eps=1e-6), [(3, 1, 6), (1, 4, 6)]),
        ("PairwiseDistance", {}, [(4, 5), (4, 5)]),
        ("PairwiseDistance", dict(p=1.0, keepdim=True), [(3, 6), (3, 6)]),
        ("PairwiseDistance", dict(p=3.0, eps=1e-3), [(6,), (6,)]),
    ],
)
def test_distances_match_torch(name, kwargs, shapes):
    inputs = [rand(*s, seed=i + 3) for i, s in enumerate(shapes)]
    parity(*_pair(name, **kwargs), *inputs)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (jnn.PixelShuffle(2), (2, 6, 3, 3)),
        (jnn.PixelShuffle(2), (4, 4)),
        (jnn.PixelUnshuffle(2), (1, 2, 3, 4)),
        (jnn.ChannelShuffle(4), (1, 6, 2)),
        (jnn.Upsample(scale_factor=2), (4, 4)),
    ],
)
def test_shape_layers_wrong_input_shape_raises(layer, shape):
    with pytest.raises(ValueError, match=type(layer).__name__):
        layer(np.ones(shape, np.float32))


# ------------------------------------------------------------------- flatten / unflatten
@pytest.mark.parametrize(
    "name,args,shape",
    [
        ("Flatten", (), (2, 3, 4, 5)),
        ("Flatten", (0, 2), (2, 3, 4, 5)),
        ("Flatten", (-3, -2), (2, 3, 4, 5)),
        ("Flatten", (2, 2), (2, 3, 4)),
        ("Flatten", (0,), (3,)),
        ("Unflatten", (1, (2, 3)), (4, 6, 2)),
        ("Unflatten", (-1, (2, -1, 2)), (3, 12)),
        ("Unflatten", (0, [1, 3]), (3, 2)),
    ],
)
def test_flatten_unflatten_match_torch(name, args, shape):
    parity(*_pair(name, *args), rand(*shape))


@pytest.mark.parametrize(
    "layer,shape",
    [
        (jnn.Flatten(2, 3), (2, 3)),
        (jnn.Flatten(2, 1), (2, 3, 4)),
        (jnn.Unflatten(1, (2, 3)), (2, 5)),
        (jnn.Unflatten(1, (4, -1)), (2, 6)),
        (jnn.Unflatten(3, (2, 2)), (2, 4)),
    ],
)
def test_flatten_unflatten_wrong_input_shape_raises(layer, shape):
    with pytest.raises(ValueError, match=type(layer).__name__):
        layer(np.ones(shape, np.float32))


def test_unflatten_requires_int_tuple():
    with pytest.raises(TypeError, match="tuple of ints"):
        jnn.Unflatten(1, 4)
    with pytest.raises(TypeError, match="pos 1"):
        jnn.Unflatten(1, (2, 2.0))


# -------------------------------------------------------------------------------- Bilinear
@pytest.mark.parametrize(
    "args,shapes",
    [
        ((3, 4, 5), [(6, 3), (6, 4)]),
        ((2, 3, 4, False), [(2, 5, 2), (2, 5, 3)]),
        ((3, 2, 2), [(3,), (2,)]),  # unbatched
    ],
)
def test_bilinear_matches_torch(args, shapes):
    inputs = [rand(*s, seed=i + 5) for i, s in enumerate(shapes)]
    parity(*_pair("Bilinear", *args), *inputs)


def test_bilinear_matches_torch_under_jit():
    parity(*_pair("Bilinear", 3, 4, 5), rand(6, 3), rand(6, 4, seed=2), jit=True)


def test_bilinear_default_init():
    t, j = _pair("Bilinear", 64, 20, 50)
    check_structure(t, j)
    bound = 1 / math.sqrt(64)
    uniform_bound_stats(j.weight, bound)
    assert np.abs(np.asarray(j.bias)).max() <= bound


@pytest.mark.parametrize("shapes", [[(6, 4), (6, 4)], [(6, 3), (5, 4)], [(3,), (6, 4)]])
def test_bilinear_wrong_input_shape_raises(shapes):
    with pytest.raises(ValueError, match="Bilinear"):
        jnn.Bilinear(3, 4, 5)(*[np.ones(s, np.float32) for s in shapes])


# ------------------------------------------------------------------------------ LazyLinear
def test_lazy_linear_infers_in_features_and_becomes_linear():
    t, j = _pair("LazyLinear", 5)
    assert repr(j) == repr(t) == "LazyLinear(in_features=0, out_features=5, bias=True)"
    assert isinstance(j.weight, jnn.UninitializedParameter)
    x = rand(4, 3)
    t(torch.tensor(x))
    w = j.weight
    y = j(x)
    assert type(j) is jnn.Linear and repr(j) == repr(t)
    assert j.weight is w and type(w) is jnn.Parameter  # materialised in place
    assert y.shape == (4, 5) and j.in_features == 3
    assert np.abs(np.asarray(j.weight)).max() <= 1 / math.sqrt(3)
    parity(t, j, x)


def test_lazy_linear_default_init_statistics():
    j = jnn.LazyLinear(200)
    j(np.ones((1, 50), np.float32))
    uniform_bound_stats(j.weight, 1 / math.sqrt(50))


def test_lazy_linear_without_bias_and_with_batch_dims():
    t, j = _pair("LazyLinear", 4, bias=False)
    x = rand(2, 3, 6)
    t(torch.tensor(x))
    j(x)
    assert j.bias is None and repr(j) == repr(t)
    parity(t, j, x)


def test_lazy_linear_load_state_dict_materialises():
    t = torch.nn.Linear(3, 2)
    j = jnn.LazyLinear(2)
    copy_weights(t, j)
    assert j.weight.shape == (2, 3)
    x = rand(4, 3)
    close(j(x), t(torch.tensor(x)))
    assert type(j) is jnn.Linear and j.in_features == 3


def test_lazy_linear_must_be_called_eagerly_first():
    j = jnn.LazyLinear(2)
    with pytest.raises(RuntimeError, match="eagerly"):
        jaxmod.jit(lambda m, x: m(x))(j, jnp.ones((1, 3)))
