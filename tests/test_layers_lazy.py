"""Lazy modules (LazyConv*, LazyConvTranspose*, LazyBatchNorm*, LazyInstanceNorm*) against
torch: repr and state_dict before and after the first call, the class they become, their
initialisation, outputs and gradients, load_state_dict materialisation, the eager-only
first call, and a d2l-style network trained one jitted SGD step."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from _layer_parity import check_structure, close, parity, rand

import jaxmod
import jaxmod.nn as jnn

# (class, constructor kwargs, input shape)
CASES = [
    (
        "LazyConv1d",
        dict(out_channels=4, kernel_size=2, stride=2, padding=1, groups=2, bias=False),
        (4, 7),  # unbatched: in_channels from dim 0
    ),
    (
        "LazyConv2d",
        dict(out_channels=4, kernel_size=3, padding_mode="reflect", padding=1),
        (2, 3, 4, 4),
    ),  # fmt: skip
    ("LazyConv3d", dict(out_channels=2, kernel_size=2), (1, 2, 3, 3, 3)),
    ("LazyConvTranspose1d", dict(out_channels=4, kernel_size=3, stride=2), (2, 3, 4)),
    (
        "LazyConvTranspose2d",
        dict(out_channels=6, kernel_size=3, stride=2, output_padding=1, groups=3),
        (2, 3, 3, 3),
    ),
    ("LazyConvTranspose3d", dict(out_channels=2, kernel_size=2, bias=False), (1, 2, 2, 2, 2)),
    ("LazyBatchNorm1d", {}, (4, 3)),
    ("LazyBatchNorm2d", dict(affine=False, momentum=None, eps=1e-3), (2, 3, 4, 4)),
    ("LazyBatchNorm3d", dict(track_running_stats=False), (2, 2, 2, 3, 3)),
    ("LazyInstanceNorm1d", {}, (2, 3, 5)),
    ("LazyInstanceNorm2d", dict(affine=False), (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", dict(bias=False), (2, 2, 2, 3, 3)),
]
IDS = [f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)]


def _pair(name, kw):
    return getattr(torch.nn, name)(**kw), getattr(jnn, name)(**kw)


def _lazy_boxes(m):
    return [b for b in [*m._parameters.values(), *m._buffers.values()] if b is not None]


def _kinds(m):
    """Which state_dict entries are uninitialised (jaxmod's buffers are Buffer boxes with
    keep_vars, torch's plain tensors: only the lazy kinds are compared)."""
    return {
        k: type(v).__name__ if "Uninitialized" in type(v).__name__ else "-"
        for k, v in m.state_dict(keep_vars=True).items()
    }


def _call_both(t, j, x):
    return t(torch.tensor(x)), j(x)


@pytest.mark.parametrize("name,kw,shape", CASES, ids=IDS)
def test_lazy_structure_init_and_parity(name, kw, shape):
    t, j = _pair(name, kw)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict())
    assert _kinds(j) == _kinds(t)
    assert j.has_uninitialized_params() == t.has_uninitialized_params()
    boxes = {k: v for k, v in j.state_dict(keep_vars=True).items()}
    x = rand(*shape)
    _call_both(t, j, x)
    # becomes the concrete class, its boxes materialised in place
    assert type(j) is getattr(jnn, type(t).__name__) and type(j).__name__ == name[4:]
    for k, v in j.state_dict(keep_vars=True).items():
        assert v is boxes[k] and type(v) in (jnn.Parameter, jnn.Buffer), k
    check_structure(t, j)
    # torch's initialisation, drawn once the shapes are known
    if "Conv" in name:
        w = np.asarray(j.weight)
        fan_in = w.shape[1] * math.prod(w.shape[2:])
        assert np.abs(w).max() <= 1 / math.sqrt(fan_in) and np.abs(w).max() > 0
        if j.bias is not None:
            assert np.abs(np.asarray(j.bias)).max() <= 1 / math.sqrt(fan_in)
    else:
        if j.weight is not None:
            np.testing.assert_array_equal(j.weight, np.ones(j.num_features))
        if j.bias is not None:
            np.testing.assert_array_equal(j.bias, np.zeros(j.num_features))
        for n, b in t.named_buffers():  # the first call's running statistics: input only
            close(j.get_buffer(n), b.numpy())
    parity(t, j, x)


@pytest.mark.parametrize("name,kw,shape", CASES[::2], ids=IDS[::2])
def test_lazy_load_state_dict_materialises_shapes(name, kw, shape):
    t, j = _pair(name, kw)
    x = rand(*shape)
    t(torch.tensor(x))
    sd = {k: v.detach().numpy().copy() for k, v in t.state_dict().items()}
    t2 = getattr(torch.nn, name)(**kw)
    t2.load_state_dict(t.state_dict())
    j.load_state_dict(sd)
    assert type(j).__name__ == type(t2).__name__ == name and not j.has_uninitialized_params()
    assert repr(j) == repr(t2)
    for k, v in t2.state_dict().items():
        assert tuple(j.state_dict()[k].shape) == tuple(v.shape), k
    try:
        expected = t2(torch.tensor(x))
    except Exception as e:  # a loaded lazy instance norm keeps num_features 0 in torch
        with pytest.raises(type(e)):
            j(x)
        return
    close(j(x), expected)
    assert type(j).__name__ == type(t2).__name__ and repr(j) == repr(t2)


@pytest.mark.parametrize("name,kw,shape", CASES[1::3], ids=IDS[1::3])
def test_lazy_failed_load_leaves_boxes_uninitialised(name, kw, shape):
    t, j = _pair(name, kw)
    t(torch.tensor(rand(*shape)))
    sd = {k: v.detach().numpy().copy() for k, v in t.state_dict().items()}
    sd["junk"] = np.zeros(1, np.float32)
    was = {k: type(v) for k, v in j.state_dict(keep_vars=True).items()}
    with pytest.raises(RuntimeError, match="Unexpected key"):
        j.load_state_dict(sd)
    assert {k: type(v) for k, v in j.state_dict(keep_vars=True).items()} == was
    assert j.has_uninitialized_params() == any(
        issubclass(c, (jnn.UninitializedParameter, jnn.UninitializedBuffer)) for c in was.values()
    )


@pytest.mark.parametrize("name,kw,shape", CASES[::4], ids=IDS[::4])
def test_lazy_first_call_must_be_eager(name, kw, shape):
    j = getattr(jnn, name)(**kw)
    with pytest.raises(RuntimeError, match="eagerly"):
        jaxmod.jit(lambda m, x: m(x))(j, jnp.asarray(rand(*shape)))
    assert type(j).__name__ == name
    j(rand(*shape))  # still usable eagerly afterwards
    assert type(j).__name__ == name[4:]


def test_lazy_conv_input_errors_match_torch():
    for args, x in [((16, 3), rand(3, 4)), ((16, 3, 1, 0, 1, 2), rand(1, 3, 5, 5))]:
        t, j = torch.nn.LazyConv2d(*args), jnn.LazyConv2d(*args)
        with pytest.raises(Exception) as te:
            t(torch.tensor(x))
        with pytest.raises(type(te.value)) as je:
            j(x)
        assert str(je.value) == str(te.value)
        assert type(j).__name__ == "LazyConv2d" and j.has_uninitialized_params()


def test_uninitialized_buffer_and_names():
    b = jnn.UninitializedBuffer()
    assert repr(b) == repr(torch.nn.UninitializedBuffer()) == "<UninitializedBuffer>"
    b.materialize((3,))
    assert type(b) is jnn.Buffer and b.shape == (3,)
    p = jnn.UninitializedParameter()
    p.materialize((2, 2))
    assert type(p) is jnn.Parameter and p.shape == (2, 2)
    lazy = {n for n in dir(torch.nn) if n.startswith(("Lazy", "Uninitialized"))}
    assert lazy <= set(jnn.__all__) and all(hasattr(jnn, n) for n in lazy)


def _d2l_net(nn):
    def block(c):
        return [nn.LazyConv2d(c, 3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(4), nn.Flatten(), nn.LazyLinear(5))


def test_d2l_style_lazy_net_trains_one_jitted_sgd_step_like_torch():
    torch.manual_seed(0)
    t, j = _d2l_net(torch.nn), _d2l_net(jnn)
    x, y = rand(4, 1, 8, 8), np.array([0, 3, 1, 4])
    t(torch.tensor(x)), j(x)  # the dry run that creates the state
    assert repr(j) == repr(t)
    j.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    topt = torch.optim.SGD(t.parameters(), lr=0.1)
    jopt = jaxmod.optim.SGD(j.parameters(), lr=0.1)
    tl = torch.nn.functional.cross_entropy(t(torch.tensor(x)), torch.tensor(y))
    topt.zero_grad()
    tl.backward()
    topt.step()

    @jaxmod.jit
    def step(m, opt, x, y):
        loss, g = jaxmod.value_and_grad(lambda m: jnn.functional.cross_entropy(m(x), y))(m)
        opt.step(g)
        return loss

    jl = step(j, jopt, jnp.asarray(x), jnp.asarray(y))
    close(jl, tl.detach().numpy(), atol=1e-5)
    for k, v in t.state_dict().items():
        close(j.state_dict()[k], v.numpy(), atol=1e-5)
