"""Conv1d/2d/3d and ConvTranspose1d/2d/3d against torch: outputs, gradients, repr, init."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn as jnn
from tests._layer_parity import check_structure, parity, rand, uniform_bound_stats

CONV_CASES = [
    # (n, args, kwargs, input shape)
    (1, (3, 4, 3), {}, (2, 3, 9)),
    (1, (4, 6, 2), dict(stride=2, padding=1, dilation=2, groups=2), (2, 4, 11)),
    (1, (3, 2, 4), dict(padding="same", padding_mode="reflect"), (3, 10)),  # unbatched
    (1, (2, 2, 3), dict(padding="valid", bias=False), (1, 2, 7)),
    (2, (3, 6, 3), dict(padding=1), (2, 3, 8, 7)),
    (
        2,
        (4, 6, (3, 2)),
        dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
        (2, 4, 9, 8),
    ),
    (2, (3, 4, (4, 3)), dict(padding="same"), (2, 3, 9, 8)),  # asymmetric "same"
    (2, (3, 4, 3), dict(padding=2, padding_mode="circular", bias=False), (2, 3, 6, 7)),
    (2, (3, 4, 3), dict(padding=(1, 2), padding_mode="replicate"), (3, 6, 5)),  # unbatched
    (2, (2, 4, 3), dict(padding="same", padding_mode="reflect"), (1, 2, 5, 6)),
    (2, (4, 4, 3), dict(groups=4, padding=1), (2, 4, 6, 6)),  # depthwise
    (3, (2, 3, 2), dict(stride=(1, 2, 1), padding=1), (2, 2, 4, 5, 4)),
    (3, (2, 2, 3), dict(padding="same", padding_mode="circular"), (2, 4, 4, 3)),  # unbatched
]

CONV_T_CASES = [
    (1, (3, 4, 3), {}, (2, 3, 5)),
    (1, (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2), (2, 4, 6)),
    (1, (2, 3, 2), dict(dilation=2, bias=False), (2, 5)),  # unbatched
    (2, (3, 4, 3), dict(stride=2, padding=1, output_padding=1), (2, 3, 4, 5)),
    (2, (4, 2, (3, 2)), dict(stride=(2, 3), groups=2, dilation=(1, 2)), (1, 4, 3, 4)),
    (2, (3, 2, 3), dict(stride=2, output_padding=(0, 1), dilation=2), (3, 4, 3)),  # unbatched
    (3, (2, 2, 2), dict(stride=2, padding=(0, 1, 0)), (1, 2, 3, 3, 2)),
]

_J = {1: jnn.Conv1d, 2: jnn.Conv2d, 3: jnn.Conv3d}
_T = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
_JT = {1: jnn.ConvTranspose1d, 2: jnn.ConvTranspose2d, 3: jnn.ConvTranspose3d}
_TT = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note
@pytest.mark.parametrize("n,args,kwargs,shape", CONV_CASES)
def test_conv_matches_torch(n, args, kwargs, shape):
    parity(_T[n](*args, **kwargs), _J[n](*args, **kwargs), rand(*shape))


@pytest.mark.parametrize("n,args,kwargs,shape", CONV_T_CASES)
def test_conv_transpose_matches_torch(n, args, kwargs, shape):
    parity(_TT[n](*args, **kwargs), _JT[n](*args, **kwargs), rand(*shape))


@pytest.mark.parametrize("case", [CONV_CASES[5], CONV_CASES[7]])
def test_conv_matches_torch_under_jit(case):
    n, args, kwargs, shape = case
    parity(_T[n](*args, **kwargs), _J[n](*args, **kwargs), rand(*shape), jit=True)


def test_conv_transpose_matches_torch_under_jit():
    n, args, kwargs, shape = CONV_T_CASES[3]
    parity(_TT[n](*args, **kwargs), _JT[n](*args, **kwargs), rand(*shape), jit=True)


@pytest.mark.parametrize("output_size", [[9, 10], [2, 3, 10, 10]])
def test_conv_transpose_output_size(output_size):
    t = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    j = jnn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    parity(t, j, rand(2, 3, 5, 5), kwargs=dict(output_size=output_size))


def test_conv_transpose_output_size_out_of_range():
    j = jnn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    with pytest.raises(ValueError, match="requested an output size"):
        j(rand(1, 3, 5, 5), output_size=[12, 12])


@pytest.mark.parametrize(
    "cls,args,kwargs",
    [
        ("Conv1d", (4, 8, 3), dict(padding=0, dilation=1)),
        ("Conv2d", (4, 8, 3), dict(padding="valid")),
        ("Conv2d", (4, 8, (1, 3)), dict(stride=(2, 1), padding=(0, 1), bias=False)),
        ("Conv2d", (4, 8, 3), dict(padding=1, padding_mode="reflect", groups=4)),
        ("Conv3d", (2, 4, 3), dict(dilation=(1, 2, 1))),
        ("ConvTranspose1d", (4, 2, 3), dict(output_padding=1, stride=2)),
        ("ConvTranspose2d", (4, 2, 3), dict(dilation=2, groups=2, bias=False)),
        ("ConvTranspose3d", (4, 2, 2), dict(padding=(1, 0, 0))),
    ],
)
def test_repr_and_state_dict(cls, args, kwargs):
    check_structure(getattr(torch.nn, cls)(*args, **kwargs), getattr(jnn, cls)(*args, **kwargs))


@pytest.mark.parametrize(
    "cls,args,kwargs",
    [
        ("Conv2d", (16, 32, 5), {}),
        ("Conv1d", (12, 24, 7), dict(groups=3)),
        ("Conv3d", (4, 16, 3), {}),
        ("ConvTranspose2d", (32, 16, 3), dict(groups=2)),
    ],
)
def test_default_init_matches_torch_formula(cls, args, kwargs):
    jaxmod.manual_seed(0)
    t = getattr(torch.nn, cls)(*args, **kwargs)
    j = getattr(jnn, cls)(*args, **kwargs)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(t.weight)
    # kaiming_uniform(a=sqrt(5)): gain sqrt(2 / 6), bound gain * sqrt(3 / fan_in) = 1/sqrt(fan_in)
    bound = 1 / math.sqrt(fan_in)
    assert abs(t.weight.abs().max().item() - bound) < 0.1 * bound  # the oracle agrees
    uniform_bound_stats(j.weight, bound)
    b = np.asarray(j.bias)
    assert np.abs(b).max() <= bound and b.std() > 0.2 * bound
    assert j.weight.dtype == np.float32


def test_reset_parameters_redraws():
    j = jnn.Conv2d(3, 4, 3)
    before = np.asarray(j.weight).copy()
    j.reset_parameters()
    assert not np.allclose(before, np.asarray(j.weight))


@pytest.mark.parametrize(
    "layer,shape",
    [
        (jnn.Conv2d(3, 4, 3), (2, 5, 8, 8)),  # wrong channels
        (jnn.Conv2d(3, 4, 3), (8, 8)),  # too few dims
        (jnn.Conv1d(3, 4, 3), (1, 2, 3, 8)),  # too many dims
        (jnn.ConvTranspose2d(3, 4, 3), (2, 4, 5, 5)),
        (jnn.Conv3d(2, 2, 1), (3, 2, 3, 3)),  # 4D is unbatched: needs C=2 first
    ],
)
def test_wrong_input_shape_raises(layer, shape):
    name = type(layer).__name__
    with pytest.raises(ValueError, match=name):
        layer(np.zeros(shape, np.float32))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(groups=2), "in_channels must be divisible by groups"),
        (dict(padding="full"), "Invalid padding string"),
        (dict(padding="same", stride=2), "not supported for strided"),
        (dict(padding_mode="mirror"), "padding_mode must be one of"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jnn.Conv2d(3, 4, 3, **kwargs)


def test_conv_transpose_rejects_non_zero_padding_mode():
    with pytest.raises(ValueError, match="zeros"):
        jnn.ConvTranspose2d(3, 4, 3, padding_mode="reflect")
