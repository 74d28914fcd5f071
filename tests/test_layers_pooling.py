"""Pooling layers against torch: outputs, indices, input gradients, repr, shape errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jaxmod.nn as jnn
from tests._layer_parity import check_structure, parity, rand

CASES = [
    # (class name, args, kwargs, input shape)
    ("MaxPool1d", (3,), {}, (2, 3, 10)),
    ("MaxPool1d", (3, 2, 1), dict(dilation=2, ceil_mode=True, return_indices=True), (3, 11)),
    ("MaxPool2d", (2,), {}, (2, 3, 6, 7)),
    ("MaxPool2d", ((3, 2),), dict(stride=(2, 1), padding=1, ceil_mode=True), (2, 2, 7, 6)),
    ("MaxPool2d", (3, 2, 1), dict(dilation=2, return_indices=True), (3, 9, 8)),
    ("MaxPool2d", (2,), dict(return_indices=True, ceil_mode=True), (1, 2, 5, 5)),
    ("MaxPool3d", (2,), dict(return_indices=True), (1, 2, 4, 4, 4)),
    ("MaxPool3d", ((2, 3, 2),), dict(stride=2, padding=1, ceil_mode=True), (2, 5, 6, 5)),
    ("AvgPool1d", (2,), {}, (2, 3, 9)),
    ("AvgPool1d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False), (3, 10)),
    ("AvgPool2d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False), (2, 2, 8, 7)),
    ("AvgPool2d", ((2, 3),), dict(divisor_override=4), (2, 2, 6, 6)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1), (3, 7, 7)),
    ("AvgPool3d", (2,), dict(stride=1, padding=1, count_include_pad=False), (1, 2, 3, 4, 3)),
    ("AvgPool3d", (3, 2, 1), dict(ceil_mode=True, divisor_override=5), (2, 6, 5, 5)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 7, 6)),
    ("AdaptiveAvgPool2d", (1,), {}, (3, 5, 5)),
    ("AdaptiveAvgPool3d", ((2, 3, 1),), {}, (1, 2, 5, 7, 3)),
    ("AdaptiveMaxPool1d", (3,), dict(return_indices=True), (2, 3, 10)),
    ("AdaptiveMaxPool2d", ((3, 4),), dict(return_indices=True), (2, 2, 7, 9)),
    ("AdaptiveMaxPool2d", ((None, 2),), {}, (3, 5, 5)),
    ("AdaptiveMaxPool3d", (2,), {}, (1, 2, 5, 4, 3)),
    ("LPPool1d", (2, 3), dict(stride=2), (2, 3, 10)),
    ("LPPool2d", (2, (2, 3)), {}, (2, 2, 6, 7)),
    ("LPPool2d", (1.5, 2), dict(ceil_mode=True), (2, 5, 7)),
    ("LPPool3d", (3, 2), {}, (1, 2, 4, 4, 4)),
]


def _pair(name, args, kwargs):
    return getattr(torch.nn, name)(*args, **kwargs), getattr(jnn, name)(*args, **kwargs)


def _input(name, shape):
    x = rand(*shape)
    if name.startswith("LP"):
        x = np.abs(x) + 0.1  # fractional powers of negative numbers are NaN in both
    return x


@pytest.mark.parametrize("name,args,kwargs,shape", CASES)
def test_pooling_matches_torch(name, args, kwargs, shape):
    parity(*_pair(name, args, kwargs), _input(name, shape))


@pytest.mark.parametrize("case", [CASES[4], CASES[10]])
def test_pooling_matches_torch_under_jit(case):
    name, args, kwargs, shape = case
    parity(*_pair(name, args, kwargs), _input(name, shape), jit=True)


@pytest.mark.parametrize(
    "name,args,kwargs",
    [
        ("MaxPool1d", (3,), {}),
        ("MaxPool2d", ((3, 2),), dict(stride=None, padding=(1, 0), dilation=(1, 2))),
        ("MaxPool3d", (2, 1, 1), dict(ceil_mode=True, return_indices=True)),
        ("AvgPool1d", (3,), {}),
        ("AvgPool1d", ((4,), 2, 1), {}),
        ("AvgPool2d", (3, (2, 1)), dict(count_include_pad=False, divisor_override=3)),
        ("AvgPool3d", (2,), {}),
        ("AdaptiveAvgPool1d", (5,), {}),
        ("AdaptiveAvgPool2d", ((None, 7),), {}),
        ("AdaptiveAvgPool3d", (1,), {}),
        ("AdaptiveMaxPool1d", (3,), dict(return_indices=True)),
        ("AdaptiveMaxPool2d", ((2, 2),), {}),
        ("LPPool1d", (2, 3), {}),
        ("LPPool2d", (1.5, (2, 3), 1, True), {}),
        ("LPPool3d", (2, 2), {}),
    ],
)
def test_repr(name, args, kwargs):
    check_structure(*_pair(name, args, kwargs))


@pytest.mark.parametrize(
    "layer,shape",
    [
        (jnn.MaxPool2d(2), (8, 8)),
        (jnn.MaxPool1d(2), (1, 2, 3, 8)),
        (jnn.AvgPool2d(2), (4,)),
        (jnn.AvgPool3d(2), (1, 1, 1, 4, 4, 4)),
        (jnn.AdaptiveAvgPool2d(2), (1, 2, 3, 4, 4)),
        (jnn.AdaptiveMaxPool1d(2), (4,)),
        (jnn.LPPool2d(2, 2), (4, 4)),
    ],
)
def test_wrong_input_shape_raises(layer, shape):
    with pytest.raises(ValueError, match=type(layer).__name__):
        layer(np.ones(shape, np.float32))


def test_pooling_layers_have_no_state():
    for layer in (jnn.MaxPool2d(2), jnn.AvgPool1d(2), jnn.AdaptiveMaxPool2d(1), jnn.LPPool1d(2, 2)):
        assert layer.state_dict() == {} and list(layer.parameters()) == []


@pytest.mark.parametrize("n, kwargs", [(1, dict(kernel_size=2)), (2, dict(kernel_size=2)),
                                       (2, dict(kernel_size=3, stride=2, padding=1)),
                                       (3, dict(kernel_size=2))])  # fmt: skip
def test_max_unpool_inverts_max_pool_as_torch(n, kwargs):
    shape = (2, 3) + (6,) * n
    x = rand(*shape)
    pool_t = getattr(torch.nn, f"MaxPool{n}d")(**kwargs, return_indices=True)
    out, idx = pool_t(torch.from_numpy(x))
    t_layer = getattr(torch.nn, f"MaxUnpool{n}d")(**kwargs)
    j_layer = getattr(jnn, f"MaxUnpool{n}d")(**kwargs)
    assert repr(j_layer) == repr(t_layer)
    sizes = dict(output_size=list(shape[2:]))
    parity(t_layer, j_layer, out.detach().numpy(), idx.numpy().astype(np.int32), kwargs=sizes)
