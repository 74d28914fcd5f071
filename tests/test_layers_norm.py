"""torch parity of the normalisation layers: BatchNorm, InstanceNorm, LayerNorm, GroupNorm,
LocalResponseNorm, RMSNorm (outputs, gradients, running statistics, repr, state_dict)."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn as jnn
from tests._step_parity import (
    Step,
    check_buffers,
    check_structure,
    close,
    load_from_torch,
    parity,
    randn,
)

tnn = torch.nn

BN_SHAPES = {1: (4, 3), 2: (2, 3, 2, 2), 3: (2, 3, 2, 2, 2)}
BN_KWARGS = [
    {},
    {"momentum": None},
    {"momentum": 0.3, "eps": 1e-3},
    {"affine": False},
    {"bias": False},
    {"track_running_stats": False},
    {"affine": False, "track_running_stats": False, "momentum": None},
]


def _perturb(tm: torch.nn.Module) -> None:
    """Non-default weights so that affine gradients are not trivially symmetric."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in tm.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("kwargs", BN_KWARGS, ids=lambda k: ",".join(map(str, k.items())) or "d")
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_batchnorm_train_then_eval(dim: int, kwargs: dict) -> None:
    tm = getattr(tnn, f"BatchNorm{dim}d")(3, **kwargs)
    jm = getattr(jnn, f"BatchNorm{dim}d")(3, **kwargs)
    check_structure(tm, jm)
    _perturb(tm)
    shape = BN_SHAPES[dim]
    parity(tm, jm, randn(*shape), steps=3, fresh=lambda s: (randn(*shape, seed=s, scale=2),))
    if tm.track_running_stats:
        assert int(jm.num_batches_tracked) == int(tm.num_batches_tracked) == 3
        assert jm.num_batches_tracked._value.dtype == jnp.int32
    tm.eval()
    jm.eval()
    Step(jm, 1, None, jit=False)(tm, randn(*shape, seed=9))
    check_buffers(tm, jm)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4), (2, 3, 2, 2), (2, 3, 2, 2, 2)])
def test_sync_batchnorm_is_batchnorm_over_the_whole_batch(shape: tuple) -> None:
    tm, jm = tnn.SyncBatchNorm(3, momentum=0.2), jnn.SyncBatchNorm(3, momentum=0.2)
    check_structure(tm, jm)
    _perturb(tm)
    parity(tm, jm, randn(*shape), steps=2, fresh=lambda s: (randn(*shape, seed=s),))
    with pytest.raises(ValueError, match=re.escape("expected at least 2D input (got 1D input)")):
        jm(jnp.ones(3))


def test_convert_sync_batchnorm_matches_torch_and_shares_state() -> None:
    def build(nn):
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                             nn.Sequential(nn.BatchNorm1d(2, affine=False)))  # fmt: skip

    tm, jm = build(tnn), build(jnn)
    tm.eval(), jm.eval()
    tc = tnn.SyncBatchNorm.convert_sync_batchnorm(tm)
    jc = jnn.SyncBatchNorm.convert_sync_batchnorm(jm)
    assert repr(jc) == repr(tc)
    assert list(jc.state_dict()) == list(tc.state_dict())
    assert jc[1].weight is jm[1].weight and jc[1].training is False


def test_batchnorm1d_3d_input() -> None:
    tm, jm = tnn.BatchNorm1d(3, momentum=None), jnn.BatchNorm1d(3, momentum=None)
    parity(tm, jm, randn(2, 3, 4), steps=2, fresh=lambda s: (randn(2, 3, 4, seed=s),))


@pytest.mark.parametrize("kwargs", [{}, {"momentum": None}, {"track_running_stats": False}])
def test_batchnorm_jit_three_steps(kwargs: dict) -> None:
    """After 3 jitted train steps the running stats and the batch count equal torch's."""
    tm, jm = tnn.BatchNorm2d(3, **kwargs), jnn.BatchNorm2d(3, **kwargs)
    _perturb(tm)
    load_from_torch(jm, tm)
    step = Step(jm, 1, None, jit=True)
    for s in range(3):
        step(tm, randn(2, 3, 2, 2, seed=s, scale=1 + s))
    check_buffers(tm, jm)
    assert step._fn.trace_count == 1
    if tm.track_running_stats:
        assert int(jm.num_batches_tracked) == 3
    tm.eval()
    jm.eval()
    step = Step(jm, 1, None, jit=True)
    step(tm, randn(2, 3, 2, 2, seed=5))
    check_buffers(tm, jm)


def test_batchnorm_plain_forward_under_jit_updates_state() -> None:
    tm, jm = tnn.BatchNorm1d(3), jnn.BatchNorm1d(3)
    f = jaxmod.jit(lambda m, x: m(x))
    for s in range(3):
        x = randn(5, 3, seed=s)
        close(f(jm, x), tm(torch.tensor(x)))
    check_buffers(tm, jm)


def test_batchnorm_default_init_and_buffers() -> None:
    jm = jnn.BatchNorm2d(4)
    np.testing.assert_array_equal(np.asarray(jm.weight), np.ones(4))
    np.testing.assert_array_equal(np.asarray(jm.bias), np.zeros(4))
    np.testing.assert_array_equal(np.asarray(jm.running_mean), np.zeros(4))
    np.testing.assert_array_equal(np.asarray(jm.running_var), np.ones(4))
    assert int(jm.num_batches_tracked) == 0 and jm.num_batches_tracked.shape == ()
    assert [n for n, _ in jm.named_buffers()] == ["running_mean", "running_var",
                                                 "num_batches_tracked"]  # fmt: skip
    jm.running_mean = jnp.ones(4)
    jm.num_batches_tracked = jnp.asarray(5, jnp.int32)
    jm.reset_running_stats()
    assert float(jm.running_mean.sum()) == 0 and int(jm.num_batches_tracked) == 0
    off = jnn.BatchNorm1d(2, affine=False, track_running_stats=False)
    assert off.weight is None and off.bias is None and off.running_mean is None
    assert list(off.state_dict()) == []


def test_batchnorm_loads_checkpoint_without_num_batches_tracked() -> None:
    tm, jm = tnn.BatchNorm1d(3), jnn.BatchNorm1d(3)
    sd = {k: v.clone() for k, v in tm.state_dict().items() if k != "num_batches_tracked"}
    tm.load_state_dict(sd)
    jm.load_state_dict({k: v.numpy() for k, v in sd.items()})
    assert int(jm.num_batches_tracked) == int(tm.num_batches_tracked) == 0


@pytest.mark.parametrize(
    ("cls", "shape", "msg"),
    [
        ("BatchNorm1d", (3,), "expected 2D or 3D input (got 1D input)"),
        ("BatchNorm1d", (2, 3, 4, 5), "expected 2D or 3D input (got 4D input)"),
        ("BatchNorm2d", (2, 3, 4), "expected 4D input (got 3D input)"),
        ("BatchNorm3d", (2, 3, 4, 4), "expected 5D input (got 4D input)"),
    ],
)
def test_batchnorm_input_dim_errors(cls: str, shape: tuple, msg: str) -> None:
    for lib in (tnn, jnn):
        with pytest.raises(ValueError, match=re.escape(msg)):
            getattr(lib, cls)(3)(np.zeros(shape, np.float32) if lib is jnn else torch.zeros(shape))


def test_batchnorm_value_errors_match_torch() -> None:
    x = randn(1, 3)
    for lib, arr in ((tnn, torch.tensor(x)), (jnn, x)):
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            lib.BatchNorm1d(3)(arr)
    with pytest.raises(RuntimeError, match="running_mean should contain 4 elements not 3"):
        jnn.BatchNorm1d(3)(randn(4, 4))
    with pytest.raises(RuntimeError, match="running_mean should contain 4 elements not 3"):
        tnn.BatchNorm1d(3)(torch.zeros(4, 4))


# ---------------------------------------------------------------------- instance norm
IN_SHAPES = {1: (2, 3, 4), 2: (2, 3, 2, 2), 3: (2, 3, 2, 2, 2)}
IN_CASES = [
    (1, {}),
    (1, {"affine": True, "bias": False}),
    (1, {"track_running_stats": True}),
    (1, {"affine": True, "track_running_stats": True, "momentum": 0.3}),
    (2, {"affine": True}),
    (2, {"affine": True, "track_running_stats": True}),
    (3, {"track_running_stats": True}),
]


@pytest.mark.parametrize(("dim", "kwargs"), IN_CASES)
def test_instancenorm(dim: int, kwargs: dict) -> None:
    tm = getattr(tnn, f"InstanceNorm{dim}d")(3, **kwargs)
    jm = getattr(jnn, f"InstanceNorm{dim}d")(3, **kwargs)
    check_structure(tm, jm)
    _perturb(tm)
    shape = IN_SHAPES[dim]
    parity(tm, jm, randn(*shape), steps=2, fresh=lambda s: (randn(*shape, seed=s, scale=2),))
    tm.eval()
    jm.eval()
    Step(jm, 1, None, jit=False)(tm, randn(*shape, seed=4))
    # unbatched input
    Step(jm, 1, None, jit=False)(tm, randn(*shape[1:], seed=5))
    tm.train()
    jm.train()
    Step(jm, 1, None, jit=False)(tm, randn(*shape[1:], seed=6))
    check_buffers(tm, jm)


def test_instancenorm_jit_running_stats() -> None:
    kw = {"affine": True, "track_running_stats": True}
    tm, jm = tnn.InstanceNorm1d(3, **kw), jnn.InstanceNorm1d(3, **kw)
    parity(tm, jm, randn(2, 3, 4), jit=True, steps=3, fresh=lambda s: (randn(2, 3, 4, seed=s),))
    assert int(jm.num_batches_tracked) == int(tm.num_batches_tracked) == 0


def test_instancenorm_errors_and_warnings() -> None:
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        jnn.InstanceNorm1d(3)(randn(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        jnn.InstanceNorm2d(3)(randn(3, 4))
    with pytest.raises(ValueError, match=r"to match num_features \(3\), but got: 4"):
        jnn.InstanceNorm1d(3, affine=True)(randn(2, 4, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        jnn.InstanceNorm1d(3)(randn(2, 4, 5))


def test_instancenorm_rejects_running_stats_when_not_tracking() -> None:
    src = {"running_mean": np.zeros(3, np.float32), "running_var": np.ones(3, np.float32)}
    for m in (tnn.InstanceNorm1d(3), jnn.InstanceNorm1d(3)):
        with pytest.raises(RuntimeError, match="Unexpected running stats buffer"):
            m.load_state_dict(dict(src))


# ------------------------------------------------------------------ layer/group norm
@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [
        (4, {}),
        ([3, 4], {"eps": 1e-3}),
        ((4,), {"bias": False}),
        (4, {"elementwise_affine": False}),
        ([3, 4], {"elementwise_affine": False, "bias": False}),
    ],
)
def test_layernorm(shape: object, kwargs: dict) -> None:
    tm, jm = tnn.LayerNorm(shape, **kwargs), jnn.LayerNorm(shape, **kwargs)
    check_structure(tm, jm)
    _perturb(tm)
    parity(tm, jm, randn(2, 3, 4))
    tm.eval()
    jm.eval()
    Step(jm, 1, None, jit=False)(tm, randn(3, 4, seed=1))  # fewer leading dims


def test_layernorm_jit_and_error() -> None:
    tm, jm = tnn.LayerNorm([2, 3]), jnn.LayerNorm([2, 3])
    _perturb(tm)
    parity(tm, jm, randn(4, 2, 3), jit=True, steps=2, fresh=lambda s: (randn(4, 2, 3, seed=s),))
    with pytest.raises(ValueError, match=r"Given normalized_shape=\[2, 3\]"):
        jm(randn(2, 6))


@pytest.mark.parametrize(
    ("groups", "channels", "kwargs", "shape"),
    [
        (2, 4, {}, (2, 4, 3)),
        (1, 4, {"eps": 1e-3}, (2, 4, 3)),
        (4, 4, {"affine": False}, (2, 4, 3)),
        (2, 4, {"bias": False}, (2, 4)),
    ],
)
def test_groupnorm(groups: int, channels: int, kwargs: dict, shape: tuple) -> None:
    tm = tnn.GroupNorm(groups, channels, **kwargs)
    jm = jnn.GroupNorm(groups, channels, **kwargs)
    check_structure(tm, jm)
    _perturb(tm)
    parity(tm, jm, randn(*shape))


def test_groupnorm_jit_and_errors() -> None:
    tm, jm = tnn.GroupNorm(2, 4), jnn.GroupNorm(2, 4)
    _perturb(tm)
    parity(tm, jm, randn(2, 4, 3), jit=True)
    with pytest.raises(ValueError, match=r"num_channels \(4\) must be divisible by num_groups"):
        jnn.GroupNorm(3, 4)
    with pytest.raises(RuntimeError, match="Expected weight to be a vector of size equal"):
        jm(randn(2, 6))


# ---------------------------------------------------------------- LRN and RMSNorm
@pytest.mark.parametrize(
    ("args", "shape"),
    [((2,), (2, 5, 3)), ((3, 1e-2, 0.5, 2.0), (2, 5, 3)), ((4,), (1, 6, 2, 2, 2))],
)
def test_local_response_norm(args: tuple, shape: tuple) -> None:
    tm, jm = tnn.LocalResponseNorm(*args), jnn.LocalResponseNorm(*args)
    check_structure(tm, jm)
    parity(tm, jm, randn(*shape, scale=3))


def test_local_response_norm_jit() -> None:
    tm, jm = tnn.LocalResponseNorm(3), jnn.LocalResponseNorm(3)
    parity(tm, jm, randn(2, 5, 4, scale=3), jit=True)


@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [(4, {}), ([3, 4], {"eps": 1e-5}), (4, {"elementwise_affine": False})],
)
def test_rmsnorm(shape: object, kwargs: dict) -> None:
    tm, jm = tnn.RMSNorm(shape, **kwargs), jnn.RMSNorm(shape, **kwargs)
    check_structure(tm, jm)
    _perturb(tm)
    parity(tm, jm, randn(2, 3, 4))


def test_rmsnorm_jit_unbatched() -> None:
    tm, jm = tnn.RMSNorm([3, 4]), jnn.RMSNorm([3, 4])
    _perturb(tm)
    parity(tm, jm, randn(3, 4, seed=2), jit=True)


def test_norm_default_init() -> None:
    for m in (jnn.LayerNorm([3, 2]), jnn.GroupNorm(2, 6), jnn.InstanceNorm1d(6, affine=True)):
        np.testing.assert_array_equal(np.asarray(m.weight), np.ones(m.weight.shape))
        np.testing.assert_array_equal(np.asarray(m.bias), np.zeros(m.bias.shape))
        assert m.weight.dtype == jnp.float32 and m.weight.requires_grad
    np.testing.assert_array_equal(np.asarray(jnn.RMSNorm(5).weight), np.ones(5))
    m = jnn.LayerNorm(3)
    m.weight.fill_(2.0)
    m.reset_parameters()
    np.testing.assert_array_equal(np.asarray(m.weight), np.ones(3))


def test_norm_reprs_match_torch() -> None:
    cases = [
        ("BatchNorm1d", (5,), {"eps": 1e-3, "momentum": None}),
        ("BatchNorm3d", (2,), {"affine": False, "track_running_stats": False}),
        ("InstanceNorm2d", (3,), {"affine": True, "bias": False}),
        ("LayerNorm", ([2, 3],), {"elementwise_affine": False}),
        ("GroupNorm", (1, 3), {"affine": False}),
        ("LocalResponseNorm", (3,), {"k": 2}),
        ("RMSNorm", ([4],), {"eps": 1e-6}),
    ]
    for name, args, kwargs in cases:
        assert repr(getattr(jnn, name)(*args, **kwargs)) == repr(
            getattr(tnn, name)(*args, **kwargs)
        )


def test_load_state_dict_does_not_alias_numpy_source() -> None:
    tm, jm = tnn.BatchNorm1d(3), jnn.BatchNorm1d(3)
    jm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    with torch.no_grad():
        tm.running_mean.add_(1.0)
    np.testing.assert_array_equal(np.asarray(jm.running_mean), np.zeros(3))
