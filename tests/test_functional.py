"""Parity of ``jaxmod.nn.functional`` with ``torch.nn.functional``: outputs, input gradients
(for the same cotangent) and, for a representative subset, ``jax.jit`` against eager."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _torch_pairs import assert_same_error

import jaxmod
import jaxmod.nn.functional as F
from jaxmod.nn import Parameter

torch = pytest.importorskip("torch")
TF = torch.nn.functional
torch.set_num_threads(2)


def rand(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def assert_close(actual, expected, atol=1e-5, rtol=1e-5):
    a, e = _np(actual), _np(expected)
    assert a.shape == e.shape, (a.shape, e.shape)
    scale = max(1.0, float(np.nanmax(np.abs(e)))) if e.size else 1.0
    np.testing.assert_allclose(a, e, atol=atol * scale, rtol=rtol)


def check(jfn, tfn, *arrays, grad=True, jit=False, atol=1e-5, rtol=1e-5, seed=1):
    """Compare ``jfn(*arrays)`` with ``tfn(*tensors)`` and the gradients of
    ``(out * cotangent).sum()`` with respect to every float input.

    The output and the gradients come from one ``jax.jit``-compiled forward+backward (one
    XLA compilation per case keeps the suite fast); with ``jit=True`` the eager (op by op)
    forward is also checked against the compiled one.
    """
    jargs = [jnp.asarray(a) for a in arrays]
    floats = [i for i, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f"] if grad else []
    targs = [torch.tensor(np.asarray(a), requires_grad=i in floats) for i, a in enumerate(arrays)]
    out_t = tfn(*targs)
    cot = rand(*out_t.shape, seed=seed)

    def fwd_bwd(*a):
        def f(*diff):
            full = list(a)
            for i, d in zip(floats, diff):
                full[i] = d
            return jfn(*full)

        out, vjp = jax.vjp(f, *[a[i] for i in floats])
        return out, vjp(jnp.asarray(cot, out.dtype)) if floats else ()

    out_j, grads_j = jax.jit(fwd_bwd)(*jargs)
    assert_close(out_j, out_t, atol, rtol)
    if jit:
        assert_close(jfn(*jargs), out_j, atol, rtol)
    if floats:
        grads_t = torch.autograd.grad(
            out_t, [targs[i] for i in floats], torch.tensor(cot), allow_unused=True
        )
        for i, g_j, g_t in zip(floats, grads_j, grads_t):
            expected = np.zeros(arrays[i].shape, np.float32) if g_t is None else g_t
            assert_close(g_j, expected, atol, rtol)
    return out_j, grads_j


# ----------------------------------------------------------------------------------------
# linear
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_torch_output_and_grads_on_any_leading_dims(shape, with_bias):
    arrays = [rand(*shape), rand(4, 5, seed=2)] + ([rand(4, seed=3)] if with_bias else [])
    check(F.linear, TF.linear, *arrays, jit=shape == (2, 3, 5))


def test_linear_accepts_parameter_boxes():
    x, w, b = rand(3, 5), rand(4, 5, seed=2), rand(4, seed=3)
    out = F.linear(jnp.asarray(x), Parameter(w), Parameter(b))
    assert_close(out, TF.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)))


@pytest.mark.parametrize("with_bias", [True, False])
def test_bilinear_matches_torch_output_and_grads(with_bias):
    arrays = [rand(2, 3, 4), rand(2, 3, 5, seed=2), rand(6, 4, 5, seed=3)]
    arrays += [rand(6, seed=4)] if with_bias else []
    check(F.bilinear, TF.bilinear, *arrays)


# ----------------------------------------------------------------------------------------
# convolutions
# ----------------------------------------------------------------------------------------

CONV_CASES = [
    # (n, x shape, w shape, kwargs)
    (1, (2, 4, 9), (6, 4, 3), {}),
    (1, (2, 4, 9), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
    (1, (4, 10), (6, 4, 4), dict(padding="same")),
    (1, (2, 4, 10), (6, 4, 4), dict(padding="same", dilation=3)),
    (1, (2, 4, 9), (4, 1, 3), dict(padding="valid", groups=4)),
    (2, (2, 4, 7, 8), (6, 4, 3, 3), {}),
    (2, (2, 4, 7, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), groups=2)),
    (2, (2, 4, 9, 8), (6, 4, 3, 3), dict(stride=3, padding=2, dilation=(2, 1))),
    (2, (3, 7, 8), (6, 3, 2, 4), dict(padding="same")),
    (2, (2, 4, 7, 8), (8, 1, 3, 3), dict(padding="same", dilation=2, groups=4)),
    (3, (2, 2, 5, 6, 5), (4, 2, 3, 2, 3), dict(stride=(1, 2, 1), padding=1)),
    (3, (4, 5, 6, 5), (6, 2, 2, 3, 2), dict(padding="same", groups=2)),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv_matches_torch_output_and_input_grads(case):
    n, xs, ws, kw = CONV_CASES[case]
    with_bias = case % 2 == 0
    jf = getattr(F, f"conv{n}d")
    tf = getattr(TF, f"conv{n}d")
    arrays = [rand(*xs), rand(*ws, seed=2)] + ([rand(ws[0], seed=3)] if with_bias else [])
    check(lambda *a: jf(*a, **kw), lambda *a: tf(*a, **kw), *arrays, jit=case in (1, 8), atol=2e-5)


def test_conv_same_padding_with_stride_raises():
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(jnp.ones((1, 1, 5, 5)), jnp.ones((1, 1, 3, 3)), stride=2, padding="same")


CONV_T_CASES = [
    (1, (2, 4, 6), (4, 3, 3), {}),
    (1, (2, 4, 6), (4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    (1, (4, 6), (4, 2, 4), dict(stride=3, padding=2, groups=2, dilation=2, output_padding=1)),
    (2, (2, 4, 5, 4), (4, 3, 3, 3), {}),
    (2, (2, 4, 5, 4), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2))),
    (2, (2, 4, 5, 4), (4, 1, 3, 3), dict(stride=2, groups=4, dilation=(1, 2), padding=1)),
    (2, (4, 5, 4), (4, 2, 2, 2), dict(stride=2, groups=2)),
    (3, (1, 2, 3, 4, 3), (2, 3, 2, 3, 2), dict(stride=2, padding=(0, 1, 0), output_padding=1)),
]


@pytest.mark.parametrize("case", range(len(CONV_T_CASES)))
def test_conv_transpose_matches_torch_output_and_input_grads(case):
    n, xs, ws, kw = CONV_T_CASES[case]
    with_bias = case % 2 == 0
    jf = getattr(F, f"conv_transpose{n}d")
    tf = getattr(TF, f"conv_transpose{n}d")
    c_out = ws[1] * kw.get("groups", 1)
    arrays = [rand(*xs), rand(*ws, seed=2)] + ([rand(c_out, seed=3)] if with_bias else [])
    check(lambda *a: jf(*a, **kw), lambda *a: tf(*a, **kw), *arrays, jit=case == 5, atol=2e-5)


# ----------------------------------------------------------------------------------------
# pad, unfold, fold
# ----------------------------------------------------------------------------------------

PAD_CASES = [
    ((2, 3, 5), (1, 2), "constant", None),
    ((2, 3, 5), (2, 1), "constant", 1.5),
    ((2, 3, 5, 4), (1, -1, -2, 3), "constant", None),
    ((2, 3, 5, 4), (1, 0, 2, 3, 1, 1), "constant", -2.0),
    ((2, 3, 5), (2, 3), "reflect", None),
    ((2, 3, 5, 4), (1, 3, 2, 0), "reflect", None),
    ((1, 2, 4, 3, 5), (1, 2, 2, 1, 0, 3), "reflect", None),
    ((2, 3, 5), (3, 1), "replicate", None),
    ((2, 3, 5, 4), (2, 2, 0, 3), "replicate", None),
    ((1, 2, 4, 3, 5), (1, 2, 2, 1, 3, 0), "replicate", None),
    ((2, 3, 5), (2, 3), "circular", None),
    ((2, 3, 5, 4), (1, 3, 2, 4), "circular", None),
    ((1, 2, 4, 3, 5), (1, 2, 2, 1, 3, 0), "circular", None),
    ((3, 5, 4), (1, 2, 3, 1), "reflect", None),
]


@pytest.mark.parametrize("shape,pads,mode,value", PAD_CASES)
def test_pad_matches_torch_modes_and_reversed_pad_order(shape, pads, mode, value):
    kw = dict(mode=mode) if value is None else dict(mode=mode, value=value)
    check(
        lambda x: F.pad(x, pads, **kw),
        lambda x: TF.pad(x, pads, **kw),
        rand(*shape),
        jit=mode == "reflect" and len(shape) == 4,
    )


UNFOLD_CASES = [
    ((2, 3, 6, 7), dict(kernel_size=2)),
    ((2, 3, 6, 7), dict(kernel_size=(2, 3), dilation=(2, 1), padding=1, stride=(1, 2))),
    ((3, 7, 6), dict(kernel_size=3, padding=(0, 2), stride=2)),
]


@pytest.mark.parametrize("shape,kw", UNFOLD_CASES)
def test_unfold_matches_torch_channel_major_columns_and_grads(shape, kw):
    check(lambda x: F.unfold(x, **kw), lambda x: TF.unfold(x, **kw), rand(*shape))


@pytest.mark.parametrize("shape,kw", UNFOLD_CASES)
def test_fold_matches_torch_sums_overlaps_and_grads(shape, kw):
    cols = TF.unfold(torch.tensor(rand(*shape)), **kw)
    out_size = shape[-2:]
    check(
        lambda c: F.fold(c, out_size, **kw),
        lambda c: TF.fold(c, out_size, **kw),
        rand(*cols.shape, seed=3),
        jit=shape == (3, 7, 6),
    )


# ----------------------------------------------------------------------------------------
# pooling
# ----------------------------------------------------------------------------------------

MAX_POOL_CASES = [
    (1, (2, 3, 11), dict(kernel_size=3)),
    (1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, (3, 10), dict(kernel_size=2, stride=3, dilation=2, ceil_mode=True)),
    (2, (2, 3, 10, 9), dict(kernel_size=2, stride=2, padding=1, dilation=3, ceil_mode=True)),
    (2, (2, 3, 7, 8), dict(kernel_size=2)),
    (2, (2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 3, 7, 8), dict(kernel_size=(3, 2), stride=2, ceil_mode=True)),
    (2, (2, 3, 6, 6), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    (2, (3, 9, 8), dict(kernel_size=3, stride=(2, 1), padding=1, dilation=2)),
    (3, (1, 2, 5, 6, 7), dict(kernel_size=2, stride=(1, 2, 2), padding=(1, 0, 1))),
    (3, (2, 5, 6, 5), dict(kernel_size=3, stride=2, ceil_mode=True, dilation=(1, 2, 1))),
]


@pytest.mark.parametrize("case", range(len(MAX_POOL_CASES)))
def test_max_pool_matches_torch_output_and_input_grad(case):
    n, shape, kw = MAX_POOL_CASES[case]
    jf, tf = getattr(F, f"max_pool{n}d"), getattr(TF, f"max_pool{n}d")
    check(lambda x: jf(x, **kw), lambda x: tf(x, **kw), rand(*shape), jit=case in (2, 6))


@pytest.mark.parametrize("case", range(len(MAX_POOL_CASES)))
def test_max_pool_return_indices_match_torch_flat_spatial_indices(case):
    n, shape, kw = MAX_POOL_CASES[case]
    x = rand(*shape)
    jf = getattr(F, f"max_pool{n}d")
    out_j, ind_j = jax.jit(lambda a: jf(a, return_indices=True, **kw))(jnp.asarray(x))
    out_t, ind_t = getattr(TF, f"max_pool{n}d")(torch.tensor(x), return_indices=True, **kw)
    assert_close(out_j, out_t)
    np.testing.assert_array_equal(np.asarray(ind_j), ind_t.numpy())


def test_max_unpool2d_inverts_max_pool2d_like_torch():
    x = rand(2, 3, 6, 8)
    out, ind = F.max_pool2d(jnp.asarray(x), 2, return_indices=True)
    out_t, ind_t = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    assert_close(F.max_unpool2d(out, ind, 2), TF.max_unpool2d(out_t, ind_t, 2))
    assert_close(
        F.max_unpool2d(out, ind, 2, output_size=(7, 9)),
        TF.max_unpool2d(out_t, ind_t, 2, output_size=(7, 9)),
    )


AVG_POOL_CASES = [
    (1, (2, 3, 11), dict(kernel_size=3)),
    (1, (2, 3, 11), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)),
    (1, (3, 10), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (2, (2, 3, 7, 8), dict(kernel_size=2)),
    (2, (2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (2, (2, 3, 7, 8), dict(kernel_size=(3, 2), stride=2, ceil_mode=True)),
    (2, (2, 3, 6, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (
        2,
        (2, 3, 6, 7),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    ),
    (2, (3, 7, 8), dict(kernel_size=3, stride=2, padding=1, divisor_override=5)),
    (3, (1, 2, 5, 6, 7), dict(kernel_size=2, stride=(1, 2, 2), padding=(1, 0, 1))),
    (3, (2, 5, 6, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                           count_include_pad=False)),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(AVG_POOL_CASES)))
def test_avg_pool_matches_torch_divisor_rules_and_input_grad(case):
    n, shape, kw = AVG_POOL_CASES[case]
    jf, tf = getattr(F, f"avg_pool{n}d"), getattr(TF, f"avg_pool{n}d")
    check(lambda x: jf(x, **kw), lambda x: tf(x, **kw), rand(*shape), jit=case in (8,))


ADAPTIVE_CASES = [
    (1, (2, 3, 10), 4),
    (1, (3, 7), 3),
    (1, (2, 3, 6), 12),
    (2, (2, 3, 7, 9), (3, 4)),
    (2, (2, 3, 8, 8), 1),
    (2, (2, 3, 8, 6), (None, 4)),
    (2, (3, 5, 7), (5, 2)),
    (3, (1, 2, 5, 6, 7), (2, 3, None)),
]


@pytest.mark.parametrize("case", range(len(ADAPTIVE_CASES)))
def test_adaptive_avg_pool_matches_torch_bins_and_input_grad(case):
    n, shape, size = ADAPTIVE_CASES[case]
    jf, tf = getattr(F, f"adaptive_avg_pool{n}d"), getattr(TF, f"adaptive_avg_pool{n}d")
    check(lambda x: jf(x, size), lambda x: tf(x, size), rand(*shape), jit=case == 3)


@pytest.mark.parametrize("case", range(len(ADAPTIVE_CASES)))
def test_adaptive_max_pool_matches_torch_output_indices_and_grad(case):
    n, shape, size = ADAPTIVE_CASES[case]
    jf, tf = getattr(F, f"adaptive_max_pool{n}d"), getattr(TF, f"adaptive_max_pool{n}d")
    check(lambda x: jf(x, size), lambda x: tf(x, size), rand(*shape), jit=case == 3)
    x = rand(*shape)
    _, ind_j = jax.jit(lambda a: jf(a, size, return_indices=True))(jnp.asarray(x))
    _, ind_t = tf(torch.tensor(x), size, return_indices=True)
    np.testing.assert_array_equal(np.asarray(ind_j), ind_t.numpy())


@pytest.mark.parametrize(
    "norm_type,kw",
    [(2.0, dict(kernel_size=2)), (3.0, dict(kernel_size=(3, 2), stride=2, ceil_mode=True))],
)
def test_lp_pool2d_matches_torch_output_and_grad(norm_type, kw):
    x = np.abs(rand(2, 3, 7, 8)) + 0.1
    check(lambda a: F.lp_pool2d(a, norm_type, **kw), lambda a: TF.lp_pool2d(a, norm_type, **kw), x)


def test_lp_pool1d_matches_torch():
    x = np.abs(rand(2, 3, 9)) + 0.1
    check(lambda a: F.lp_pool1d(a, 2.0, 3, 2), lambda a: TF.lp_pool1d(a, 2.0, 3, 2), x)


# ----------------------------------------------------------------------------------------
# normalisation
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 4, 5)])
def test_batch_norm_matches_torch_batch_and_running_stats(training, affine, shape):
    c = shape[1]
    rm, rv = rand(c, seed=5), np.abs(rand(c, seed=6)) + 0.5
    arrays = [rand(*shape)] + ([rand(c, seed=7), rand(c, seed=8)] if affine else [])

    def jf(x, *wb):
        return F.batch_norm(x, rm, rv, *wb, training=training)

    def tf(x, *wb):
        return TF.batch_norm(x, torch.tensor(rm), torch.tensor(rv), *wb, training=training)

    check(jf, tf, *arrays, jit=training and affine and len(shape) == 4, atol=2e-5)


def test_batch_norm_stats_give_torch_running_stat_update():
    x = rand(4, 3, 5)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.1)
    mean, var, unbiased = F._batch_norm_stats(jnp.asarray(x))
    assert_close(var, x.var(axis=(0, 2)))
    assert_close(0.9 * rm + 0.1 * mean, trm)
    assert_close(0.9 * rv + 0.1 * unbiased, trv)


@pytest.mark.parametrize("fn", ["layer_norm", "rms_norm", "group_norm"])
def test_norms_of_bfloat16_inputs_compute_in_float32_and_keep_the_dtype(fn):
    x = rand(4, 6, 8, scale=3.0) + 100.0  # a large mean: bfloat16 statistics would drift
    args = {"layer_norm": ((8,),), "rms_norm": ((8,),), "group_norm": (3,)}[fn]
    out = getattr(F, fn)(jnp.asarray(x, jnp.bfloat16), *args)
    expected = getattr(TF, fn)(torch.tensor(x).bfloat16().float(), *args)
    assert out.dtype == jnp.bfloat16
    assert_close(out.astype(jnp.float32), expected, atol=2e-2, rtol=2e-2)


def test_batch_norm_training_with_one_value_per_channel_raises():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(jnp.ones((1, 3)), None, None, training=True)


@pytest.mark.parametrize(
    "shape,norm_shape,affine",
    [((2, 3, 5), (5,), True), ((2, 3, 5), (3, 5), True), ((4, 6), 6, False)],
)
def test_layer_norm_matches_torch_output_and_grads(shape, norm_shape, affine):
    ns = (norm_shape,) if isinstance(norm_shape, int) else norm_shape
    arrays = [rand(*shape)] + ([rand(*ns, seed=2), rand(*ns, seed=3)] if affine else [])
    check(
        lambda x, *wb: F.layer_norm(x, norm_shape, *wb),
        lambda x, *wb: TF.layer_norm(x, ns, *wb),
        *arrays,
        jit=affine and len(ns) == 2,
    )


@pytest.mark.parametrize(
    "shape,groups,affine",
    [((2, 6, 5), 3, True), ((2, 6, 4, 3), 2, True), ((3, 4), 2, False), ((2, 6, 4, 3), 1, False)],
)
def test_group_norm_matches_torch_output_and_grads(shape, groups, affine):
    c = shape[1]
    arrays = [rand(*shape)] + ([rand(c, seed=2), rand(c, seed=3)] if affine else [])
    check(
        lambda x, *wb: F.group_norm(x, groups, *wb),
        lambda x, *wb: TF.group_norm(x, groups, *wb),
        *arrays,
        jit=len(shape) == 4 and affine,
    )


@pytest.mark.parametrize("use_input_stats", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5)])
def test_instance_norm_matches_torch_output_and_grads(use_input_stats, shape):
    c = shape[1]
    rm, rv = rand(c, seed=5), np.abs(rand(c, seed=6)) + 0.5
    arrays = [rand(*shape), rand(c, seed=2), rand(c, seed=3)]

    def jf(x, w, b):
        return F.instance_norm(x, rm, rv, w, b, use_input_stats=use_input_stats)

    def tf(x, w, b):
        rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
        return TF.instance_norm(x, rm_t, rv_t, w, b, use_input_stats=use_input_stats)

    check(jf, tf, *arrays, atol=2e-5)


@pytest.mark.parametrize(
    "shape,kw", [((2, 7, 5), dict(size=3)), ((2, 6, 4, 3), dict(size=4, alpha=0.1, beta=0.5, k=2))]
)
def test_local_response_norm_matches_torch(shape, kw):
    check(
        lambda x: F.local_response_norm(x, **kw),
        lambda x: TF.local_response_norm(x, **kw),
        rand(*shape, scale=3.0),
    )


@pytest.mark.parametrize(
    "norm_shape,eps,affine", [((5,), None, True), ((3, 5), 1e-3, False), ((5,), 0.1, False)]
)
def test_rms_norm_matches_torch_including_default_eps(norm_shape, eps, affine):
    arrays = [rand(2, 3, 5, scale=1e-3)] + ([rand(*norm_shape, seed=2)] if affine else [])
    check(
        lambda x, *w: F.rms_norm(x, norm_shape, *w, eps=eps),
        lambda x, *w: TF.rms_norm(x, norm_shape, *w, eps=eps),
        *arrays,
        atol=1e-4,
    )


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1), (3.0, 0), (float("inf"), 1)])
def test_normalize_matches_torch_output_and_grad(p, dim):
    x = rand(3, 4, 5)
    x[0, :, 0] = 0.0  # a zero vector along dim=1: clamped by eps, finite gradient
    check(lambda a: F.normalize(a, p, dim), lambda a: TF.normalize(a, p, dim), x)


# ----------------------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_keeps_fraction_one_minus_p_and_scales_survivors(p):
    jaxmod.manual_seed(0)
    x = jnp.ones((200, 500))
    y = np.asarray(F.dropout(x, p))
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)


def test_dropout_eval_and_p0_are_identity_without_consuming_a_key():
    x = jnp.asarray(rand(4, 5))
    jaxmod.manual_seed(3)
    state = jaxmod.random.default_generator.get_state()
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert F.dropout2d(x[None, None], 0.3, training=False).shape == (1, 1, 4, 5)
    after = jaxmod.random.default_generator.get_state()
    assert np.array_equal(jax.random.key_data(state), jax.random.key_data(after))
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 1.0)), 0.0)


def test_dropout_masks_differ_between_calls_and_repeat_after_manual_seed():
    x = jnp.ones((64, 64))
    jaxmod.manual_seed(7)
    a, b = F.dropout(x, 0.5), F.dropout(x, 0.5)
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    jaxmod.manual_seed(7)
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.5)), np.asarray(a))


def test_dropout_uses_an_explicit_generator():
    x = jnp.ones((32, 32))
    a = F.dropout(x, 0.5, generator=jaxmod.Generator(11))
    b = F.dropout(x, 0.5, generator=jaxmod.Generator(11))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("fn", [F.dropout, F.dropout1d, F.dropout2d, F.dropout3d,
                                F.alpha_dropout, F.feature_alpha_dropout])  # fmt: skip
@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_p_outside_unit_interval_with_torch_message(fn, p):
    msg = f"dropout probability has to be between 0 and 1, but got {p}"
    with pytest.raises(ValueError, match=msg):
        fn(jnp.ones((2, 3, 4, 5, 6)), p)


@pytest.mark.parametrize(
    "fn,shape,mask_dims",
    [
        (F.dropout1d, (8, 50, 16), 2),
        (F.dropout1d, (50, 16), 1),
        (F.dropout2d, (8, 50, 4, 4), 2),
        (F.dropout3d, (4, 50, 2, 3, 2), 2),
        (F.dropout3d, (50, 2, 3, 2), 1),
    ],
)
def test_feature_dropout_zeroes_whole_channels_with_torch_shape_rules(fn, shape, mask_dims):
    jaxmod.manual_seed(1)
    y = np.asarray(fn(jnp.ones(shape), 0.5))
    per_channel = y.reshape(shape[:mask_dims] + (-1,))
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    frac = (per_channel[..., 0] != 0).mean()
    assert 0.3 < frac < 0.7


def test_dropout2d_reads_3d_input_as_batched_1d_like_torch():
    jaxmod.manual_seed(2)
    with pytest.warns(UserWarning, match="3D input to dropout2d"):
        y = np.asarray(F.dropout2d(jnp.ones((6, 40, 5)), 0.5))
    assert np.all((y == 0).all(-1) | (y == 2.0).all(-1))
    assert len({tuple(row) for row in (y[:, :, 0] != 0)}) > 1  # masks differ over dim 0


def test_alpha_dropout_preserves_zero_mean_unit_variance():
    jaxmod.manual_seed(0)
    x = jnp.asarray(rand(400, 500))
    y = np.asarray(F.alpha_dropout(x, 0.2, training=True))
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    assert F.alpha_dropout(x, 0.2) is x  # training defaults to False


def test_rrelu_eval_uses_mean_slope_and_train_uses_random_slopes_in_range():
    x = rand(4, 50)
    check(lambda a: F.rrelu(a), lambda a: TF.rrelu(a), x)
    jaxmod.manual_seed(0)
    xn = -np.abs(x) - 0.1
    y = np.asarray(F.rrelu(jnp.asarray(xn), 0.1, 0.3, training=True))
    slopes = y / xn
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6 and slopes.std() > 0.01


# ----------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------

ACTIVATIONS = [
    ("relu", {}),
    ("relu6", {}),
    ("leaky_relu", {}),
    ("leaky_relu", dict(negative_slope=0.2)),
    ("elu", {}),
    ("elu", dict(alpha=0.5)),
    ("selu", {}),
    ("celu", dict(alpha=2.0)),
    ("gelu", {}),
    ("gelu", dict(approximate="tanh")),
    ("silu", {}),
    ("mish", {}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("softplus", {}),
    ("softplus", dict(beta=2.0, threshold=5.0)),
    ("softsign", {}),
    ("hardtanh", {}),
    ("hardtanh", dict(min_val=-2.0, max_val=3.0)),
    ("hardswish", {}),
    ("hardsigmoid", {}),
    ("hardshrink", {}),
    ("hardshrink", dict(lambd=1.0)),
    ("softshrink", dict(lambd=0.7)),
    ("tanhshrink", {}),
    ("threshold", dict(threshold=0.3, value=-2.0)),
    ("logsigmoid", {}),
    ("glu", {}),
    ("glu", dict(dim=1)),
    ("softmax", dict(dim=1)),
    ("softmax", dict(dim=-1)),
    ("log_softmax", dict(dim=0)),
    ("softmin", dict(dim=2)),
]


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=lambda v: str(v))
def test_activation_matches_torch_output_and_grad(name, kw):
    x = rand(3, 4, 6, scale=4.0)
    x[0, 0, :3] = [25.0, -25.0, 12.0]  # softplus' linear region, saturations
    check(
        lambda a: getattr(F, name)(a, **kw),
        lambda a: getattr(TF, name)(a, **kw),
        x,
        jit=name in ("gelu", "softplus", "glu"),
    )


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_softmax_without_dim_uses_torch_legacy_dim_and_warns(ndim):
    x = rand(*[3, 4, 2, 5][:ndim]) if ndim else np.float32(0.7)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = F.softmax(jnp.asarray(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = TF.softmax(torch.tensor(x))
    assert_close(out, expected)


def test_softmax_dtype_argument_casts_before_the_op():
    x = rand(3, 4)
    out = F.log_softmax(jnp.asarray(x, jnp.bfloat16), dim=1, dtype=jnp.float32)
    assert out.dtype == jnp.float32


@pytest.mark.parametrize("wshape,xshape", [((4,), (3, 4, 5)), ((1,), (3, 4)), ((1,), (6,))])
def test_prelu_broadcasts_weight_over_channel_dim(wshape, xshape):
    check(F.prelu, TF.prelu, rand(*xshape), rand(*wshape, seed=2) * 0.3)


# ----------------------------------------------------------------------------------------
# embeddings
# ----------------------------------------------------------------------------------------


def _emb_grad_check(jfn, tfn, idx, w):
    _, (grad_w,) = check(jfn, tfn, idx, w)
    return grad_w


@pytest.mark.parametrize(
    "kw",
    [{}, dict(padding_idx=2), dict(padding_idx=-1), dict(scale_grad_by_freq=True),
     dict(padding_idx=0, scale_grad_by_freq=True)],
)  # fmt: skip
def test_embedding_matches_torch_weight_grad_with_padding_idx_and_freq_scaling(kw):
    idx = np.array([[0, 2, 1, 2], [5, 3, 2, 0]])
    w = rand(6, 3)
    g = _emb_grad_check(
        lambda i, ww: F.embedding(i, ww, **kw), lambda i, ww: TF.embedding(i, ww, **kw), idx, w
    )
    if "padding_idx" in kw:
        np.testing.assert_array_equal(np.asarray(g)[kw["padding_idx"]], 0.0)


def test_embedding_max_norm_renormalises_returned_rows_not_the_weight():
    idx = np.array([0, 2, 4, 2])
    w = rand(5, 4, scale=2.0)
    wt = torch.tensor(w)
    out_t = TF.embedding(torch.tensor(idx), wt, max_norm=1.5, norm_type=3.0)
    w_box = Parameter(w)
    out_j = F.embedding(jnp.asarray(idx), w_box, max_norm=1.5, norm_type=3.0)
    assert_close(out_j, out_t)
    np.testing.assert_array_equal(np.asarray(w_box.value), w)  # unchanged
    jit_out = jax.jit(lambda i, ww: F.embedding(i, ww, max_norm=1.5, norm_type=3.0))(
        jnp.asarray(idx), jnp.asarray(w)
    )
    assert_close(jit_out, out_t)


EMBEDDING_BAG_CASES = [
    (np.array([[0, 2, 1], [4, 3, 3]]), None, dict(mode="sum")),
    (np.array([[0, 2, 1], [4, 3, 3]]), None, dict(mode="mean")),
    (np.array([[0, 2, 1], [4, 3, 3]]), None, dict(mode="max")),
    (np.array([0, 2, 1, 4, 3, 3, 5]), np.array([0, 3, 3, 5]), dict(mode="mean")),
    (np.array([0, 2, 1, 4, 3, 3, 5]), np.array([0, 3, 3, 5]), dict(mode="max")),
    (np.array([0, 2, 1, 4, 3, 3, 5]), np.array([0, 2, 5, 7]),
     dict(mode="sum", include_last_offset=True)),
    (np.array([0, 2, 1, 4, 2, 2, 5]), np.array([0, 2, 4]), dict(mode="mean", padding_idx=2)),
    (np.array([[0, 2, 1], [4, 3, 3]]), None, dict(mode="max", padding_idx=3)),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(EMBEDDING_BAG_CASES)))
def test_embedding_bag_matches_torch_modes_offsets_and_weight_grad(case):
    idx, offsets, kw = EMBEDDING_BAG_CASES[case]
    w = rand(6, 3)
    j_off = None if offsets is None else jnp.asarray(offsets)
    t_off = None if offsets is None else torch.tensor(offsets)
    _emb_grad_check(
        lambda i, ww: F.embedding_bag(i, ww, j_off, **kw),
        lambda i, ww: TF.embedding_bag(i, ww, t_off, **kw),
        idx,
        w,
    )


def test_embedding_bag_per_sample_weights_match_torch_and_jit():
    idx, offsets = np.array([0, 2, 1, 4, 3]), np.array([0, 2])
    w, psw = rand(6, 3), rand(5, seed=4)
    check(
        lambda ww, ps: F.embedding_bag(
            jnp.asarray(idx), ww, jnp.asarray(offsets), mode="sum", per_sample_weights=ps
        ),
        lambda ww, ps: TF.embedding_bag(
            torch.tensor(idx), ww, torch.tensor(offsets), mode="sum", per_sample_weights=ps
        ),
        w,
        psw,
        jit=True,
    )


def test_embedding_bag_takes_traced_offsets_under_jit():
    idx, offsets, w = np.array([0, 2, 1, 4, 3, 3, 5]), np.array([0, 3, 3, 5]), rand(6, 3)
    out = jax.jit(lambda i, o, ww: F.embedding_bag(i, ww, o, mode="mean"))(
        jnp.asarray(idx), jnp.asarray(offsets), jnp.asarray(w)
    )
    expected = TF.embedding_bag(torch.tensor(idx), torch.tensor(w), torch.tensor(offsets))
    assert_close(out, expected)


def test_one_hot_matches_torch_with_inferred_and_given_num_classes():
    x = np.array([[0, 3], [1, 2]])
    np.testing.assert_array_equal(
        np.asarray(F.one_hot(jnp.asarray(x))), TF.one_hot(torch.tensor(x)).numpy()
    )
    np.testing.assert_array_equal(
        np.asarray(jax.jit(lambda t: F.one_hot(t, 6))(jnp.asarray(x))),
        TF.one_hot(torch.tensor(x), 6).numpy(),
    )


# torch.nn.functional names that are aliases or thin compositions: (name, inputs, kwargs)
ALIAS_CASES = {
    "pdist": ("pdist", [(5, 3)], {}),
    "pdist_p1": ("pdist", [(4, 2)], dict(p=1.0)),
    "upsample_nearest": ("upsample_nearest", [(1, 2, 3, 3)], dict(scale_factor=2)),
    "upsample_bilinear": ("upsample_bilinear", [(1, 2, 3, 4)], dict(size=(5, 7))),
    "max_pool2d_with_indices": ("max_pool2d_with_indices", [(1, 2, 4, 4)], dict(kernel_size=2)),
    "max_pool1d_with_indices": ("max_pool1d_with_indices", [(2, 3, 6)], dict(kernel_size=3)),
    "adaptive_max_pool2d_with_indices": (
        "adaptive_max_pool2d_with_indices", [(1, 2, 5, 5)], dict(output_size=2),
    ),
    "triplet_margin_with_distance_loss": (
        "triplet_margin_with_distance_loss", [(4, 3), (4, 3), (4, 3)], dict(swap=True),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ALIAS_CASES))
@pytest.mark.filterwarnings("ignore:`nn.functional.upsample")
def test_functional_aliases_match_torch(case):
    name, shapes, kwargs = ALIAS_CASES[case]
    xs = [rand(*shape, seed=i) for i, shape in enumerate(shapes)]
    t_out = getattr(TF, name)(*map(torch.from_numpy, xs), **kwargs)
    j_out = getattr(F, name)(*map(jaxmod.from_numpy, xs), **kwargs)
    t_out = t_out if isinstance(t_out, tuple) else (t_out,)
    j_out = j_out if isinstance(j_out, tuple) else (j_out,)
    assert len(j_out) == len(t_out)
    for a, e in zip(j_out, t_out):
        assert isinstance(a, jaxmod.Tensor)
        assert_close(a, e)

    # the gradient of the first output too (pdist: torch gives 0 at equal rows)
    def first(*v):
        out = getattr(F, name)(*v, **kwargs)
        return (out[0] if len(t_out) > 1 else out).sum()

    grad = jaxmod.grad(first)(*map(jnp.asarray, xs))
    ts = [torch.from_numpy(x).requires_grad_() for x in xs]
    out = getattr(TF, name)(*ts, **kwargs)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    assert_close(grad, ts[0].grad, atol=1e-4)


def test_gumbel_softmax_samples_follow_torch_semantics():
    jaxmod.manual_seed(0)
    logits = jaxmod.tensor([[2.0, 0.0, -1.0]]).repeat(4000, 1)
    soft = F.gumbel_softmax(logits, tau=0.5)
    assert isinstance(soft, jaxmod.Tensor)
    assert_close(soft.sum(-1), np.ones(4000))
    hard = F.gumbel_softmax(logits, hard=True)
    assert set(np.unique(hard.numpy())) == {0.0, 1.0}
    assert_close(hard.sum(-1), np.ones(4000))
    # argmax frequencies are softmax(logits): the Gumbel-max trick
    freq = hard.mean(0).numpy()
    np.testing.assert_allclose(freq, TF.softmax(torch.tensor([2.0, 0.0, -1.0]), 0), atol=0.03)
    # straight-through: the hard sample's gradient is the soft sample's
    key_state = jaxmod.random.get_rng_state()
    g_hard = jaxmod.grad(lambda x: (F.gumbel_softmax(x, hard=True) * jnp.arange(3.0)).sum())(
        jnp.zeros(3)
    )
    jaxmod.random.set_rng_state(key_state)
    g_soft = jaxmod.grad(lambda x: (F.gumbel_softmax(x) * jnp.arange(3.0)).sum())(jnp.zeros(3))
    assert_close(g_hard, g_soft)
    assert F.gumbel_softmax(logits[:2]).tolist() != F.gumbel_softmax(logits[:2]).tolist()


# (function, index values, table / logits shape, kwargs): concrete out-of-range indices
INDEX_RANGE_ERRORS = {
    "one_hot_too_big": ("one_hot", [0, 3], None, dict(num_classes=3)),
    "one_hot_negative": ("one_hot", [1, -1], None, {}),
    "embedding_too_big": ("embedding", [0, 3], (3, 2), {}),
    "embedding_negative": ("embedding", [-1], (3, 2), {}),
    "cross_entropy_too_big": ("cross_entropy", [0, 5], (2, 3), {}),
    "cross_entropy_negative_not_ignored": ("cross_entropy", [-1, 0], (2, 3), {}),
    "nll_loss_spatial": ("nll_loss", [[0, 0], [0, 4]], (2, 3, 2), {}),
    "nll_loss_1d": ("nll_loss", 3, (3,), {}),
}


def _index_call(lib, fn, index, shape, kwargs):
    idx = lib.tensor(index)
    if shape is None:
        return getattr(lib.nn.functional, fn)(idx, **kwargs)
    other = lib.ones(shape)
    args = (idx, other) if fn == "embedding" else (other, idx)
    return getattr(lib.nn.functional, fn)(*args, **kwargs)


@pytest.mark.parametrize("case", list(INDEX_RANGE_ERRORS))
def test_out_of_range_indices_raise_torch_error(case):
    fn, index, shape, kwargs = INDEX_RANGE_ERRORS[case]
    assert_same_error(
        lambda: _index_call(torch, fn, index, shape, kwargs),
        lambda: _index_call(jaxmod, fn, index, shape, kwargs),
    )


# (input shape, weight shape, bias shape): F.linear's shape errors, torch's type and text
LINEAR_SHAPE_ERRORS = {
    "weight": ((5, 6), (3, 4), None),
    "weight_batched": ((2, 5, 6), (3, 4), None),
    "weight_vector_input": ((6,), (3, 4), None),
    "bias": ((5, 6), (5, 6), (6,)),
}


@pytest.mark.parametrize("case", list(LINEAR_SHAPE_ERRORS))
def test_linear_shape_errors_match_torch(case):
    x, w, b = LINEAR_SHAPE_ERRORS[case]

    def call(lib):
        return lib.nn.functional.linear(
            lib.ones(x), lib.ones(w), None if b is None else lib.ones(b)
        )

    with pytest.raises(RuntimeError) as theirs:
        call(torch)
    with pytest.raises(RuntimeError) as ours:  # jaxmod's ShapeError is a RuntimeError
        call(jaxmod)
    assert str(ours.value) == str(theirs.value)


# errors users meet porting, as (case, call of a library): torch's type and text
LAYER_ERRORS = {
    "conv1d_channels": lambda L: L.nn.Conv1d(3, 8, 3)(L.ones(2, 4, 8)),
    "conv2d_channels_unbatched": lambda L: L.nn.Conv2d(3, 8, 3)(L.ones(4, 8, 8)),
    "conv2d_groups_channels": lambda L: L.nn.Conv2d(4, 8, 3, groups=2)(L.ones(2, 2, 8, 8)),
    "conv_transpose_channels": lambda L: L.nn.ConvTranspose2d(3, 8, 3)(L.ones(2, 4, 8, 8)),
    "cross_entropy_batch": lambda L: L.nn.functional.cross_entropy(
        L.ones(4, 3), L.zeros(5, dtype=L.long)
    ),
    "cross_entropy_spatial": lambda L: L.nn.functional.cross_entropy(
        L.ones(2, 3, 4), L.zeros(2, 5, dtype=L.long)
    ),
    "layer_norm_shape": lambda L: L.nn.LayerNorm(4)(L.ones(2, 5)),
    "mse_loss_broadcast": lambda L: L.nn.functional.mse_loss(L.ones(2, 3), L.ones(3, 2)),
    "matmul_dtypes": lambda L: L.ones(2, 2) @ L.ones(2, 2, dtype=L.long),
    "mm_bool": lambda L: L.mm(L.ones(2, 2), L.ones(2, 2, dtype=L.bool)),
}


@pytest.mark.filterwarnings("ignore:Using a target size")
@pytest.mark.parametrize("case", list(LAYER_ERRORS))
def test_layer_and_loss_errors_match_torch(case):
    with pytest.raises(Exception) as theirs:
        LAYER_ERRORS[case](torch)
    with pytest.raises(type(theirs.value)) as ours:  # jaxmod's ShapeError subclasses both
        LAYER_ERRORS[case](jaxmod)
    # torch's text; a layer's error then names the layer: "... instead (in Conv1d(3, 8, ...))"
    text = str(theirs.value)
    assert str(ours.value).startswith(text)
    rest = str(ours.value)[len(text) :]
    assert rest == "" or (case.startswith("conv") and rest.startswith(" (in Conv")), rest


def test_out_of_range_indices_under_jit_read_nan_or_zero_rows():
    """Traced values cannot be checked: gathers read NaN (visible), one_hot zero rows."""
    bad = jnp.array([0, 7])
    assert np.isnan(jax.jit(lambda i: F.embedding(i, jnp.ones((3, 2))))(bad)[1]).all()
    assert np.isnan(jax.jit(lambda t: F.cross_entropy(jnp.ones((2, 3)), t))(bad))
    np.testing.assert_array_equal(jax.jit(lambda t: F.one_hot(t, 3))(bad)[1], [0, 0, 0])
    # ignore_index is not out of range
    ce = F.cross_entropy(jaxmod.ones(2, 3), jaxmod.tensor([-100, 1]))
    assert_close(ce, TF.cross_entropy(torch.ones(2, 3), torch.tensor([-100, 1])))


# ----------------------------------------------------------------------------------------
# attention
# ----------------------------------------------------------------------------------------


def _bool_mask(*shape, seed=4):
    m = np.random.default_rng(seed).random(shape) > 0.3
    m[..., 0] = True
    return m


SDPA_CASES = [
    # (q, k, v shapes, mask, kwargs)
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8), None, {}),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8), "bool", {}),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8), "float", dict(scale=0.3)),
    ((2, 3, 6, 8), (2, 3, 6, 8), (2, 3, 6, 8), None, dict(is_causal=True)),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8), None, dict(is_causal=True)),
    ((2, 5, 8), (2, 7, 8), (2, 7, 8), "bool", {}),
    ((2, 5, 8), (2, 7, 8), (2, 7, 8), "float", {}),
    ((2, 4, 5, 8), (2, 2, 7, 8), (2, 2, 7, 8), "bool", dict(enable_gqa=True)),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 6), "bool", {}),  # Ev != E: explicit path
    ((2, 2, 2, 5, 8), (2, 2, 2, 7, 8), (2, 2, 2, 7, 8), "float", {}),  # 5-D: explicit path
    ((5, 8), (7, 8), (7, 8), None, dict(is_causal=True)),
]


@pytest.mark.parametrize("case", range(len(SDPA_CASES)))
def test_scaled_dot_product_attention_matches_torch_output_and_qkv_grads(case):
    qs, ks, vs, mask, kw = SDPA_CASES[case]
    arrays = [rand(*qs), rand(*ks, seed=2), rand(*vs, seed=3)]
    L, S = qs[-2], ks[-2]
    m_np = None
    if mask == "bool":
        m_np = _bool_mask(L, S)
    elif mask == "float":
        m_np = rand(qs[0], 1, L, S, seed=4) if len(qs) == 4 else rand(L, S, seed=4)
    jm = None if m_np is None else jnp.asarray(m_np)
    tm = None if m_np is None else torch.tensor(m_np)
    check(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, jm, **kw),
        lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, tm, **kw),
        *arrays,
        jit=case == 9,
    )


def test_sdpa_broadcasts_single_kv_head_and_rejects_mask_with_is_causal_like_torch():
    q, kv = rand(2, 4, 5, 8), rand(2, 1, 6, 8, seed=2)
    check(
        lambda a, b: F.scaled_dot_product_attention(a, b, b),
        lambda a, b: TF.scaled_dot_product_attention(a, b, b),
        q,
        kv,
    )
    m = jnp.ones((5, 5), bool)
    with pytest.raises(RuntimeError, match="attn_mask should not be set"):
        F.scaled_dot_product_attention(jnp.asarray(q), jnp.asarray(q), jnp.asarray(q), m,
                                       is_causal=True)  # fmt: skip


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("ndim", [3, 4, 5])
def test_sdpa_fully_masked_rows_give_zeros_like_torch(kind, ndim):
    shape = (2, 3, 2, 4, 8)[5 - ndim :]
    q, k, v = rand(*shape), rand(*shape, seed=2), rand(*shape, seed=3)
    m = _bool_mask(4, 4)
    m[1] = False
    mask = m if kind == "bool" else np.where(m, 0.0, -np.inf).astype(np.float32)
    check(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, jnp.asarray(mask)),
        lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, torch.tensor(mask)),
        q,
        k,
        v,
    )


def test_sdpa_dropout_keeps_expected_mass_and_draws_from_the_generator():
    q = jnp.zeros((1, 1, 4, 8))
    v = jnp.ones((1, 1, 64, 8))
    jaxmod.manual_seed(0)
    out = np.asarray(
        F.scaled_dot_product_attention(q, q[..., :1, :].repeat(64, 2), v, dropout_p=0.5)
    )
    assert abs(out.mean() - 1.0) < 0.2 and out.std() > 0
    jaxmod.manual_seed(0)
    again = F.scaled_dot_product_attention(q, q[..., :1, :].repeat(64, 2), v, dropout_p=0.5)
    np.testing.assert_array_equal(out, np.asarray(again))


# ----------------------------------------------------------------------------------------
# interpolation and rearrangement
# ----------------------------------------------------------------------------------------

INTERP_CASES = [
    # (shape, kwargs)
    ((2, 3, 7), dict(size=13, mode="nearest")),
    ((2, 3, 7), dict(scale_factor=1.7, mode="nearest")),
    ((2, 3, 9), dict(scale_factor=0.45, mode="nearest")),
    ((2, 3, 5, 6), dict(scale_factor=2, mode="nearest")),
    ((2, 3, 5, 6), dict(size=(7, 4), mode="nearest")),
    ((2, 3, 5, 6), dict(size=(8, 13), mode="nearest-exact")),
    ((2, 3, 5, 6), dict(scale_factor=(1.5, 0.7), mode="nearest-exact")),
    ((2, 3, 7), dict(size=12, mode="linear")),
    ((2, 3, 7), dict(size=12, mode="linear", align_corners=True)),
    ((2, 3, 7), dict(scale_factor=0.6, mode="linear")),
    ((2, 3, 5, 6), dict(size=(9, 4), mode="bilinear")),
    ((2, 3, 5, 6), dict(size=(9, 4), mode="bilinear", align_corners=True)),
    ((2, 3, 5, 6), dict(scale_factor=1.7, mode="bilinear")),
    ((2, 3, 5, 6), dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)),
    ((2, 3, 5, 6), dict(size=(1, 3), mode="bilinear", align_corners=True)),
    ((2, 3, 5, 6), dict(size=(9, 4), mode="bicubic")),
    ((2, 3, 5, 6), dict(size=(9, 11), mode="bicubic", align_corners=True)),
    ((2, 3, 8, 7), dict(scale_factor=0.6, mode="bicubic")),
    ((1, 2, 3, 4, 5), dict(size=(5, 3, 7), mode="trilinear")),
    ((1, 2, 3, 4, 5), dict(scale_factor=2, mode="trilinear", align_corners=True)),
    ((1, 2, 3, 4, 5), dict(scale_factor=(2, 1.5, 0.5), mode="nearest")),
    ((2, 3, 7, 9), dict(size=(3, 4), mode="area")),
]


@pytest.mark.parametrize("case", range(len(INTERP_CASES)))
def test_interpolate_matches_torch_source_index_rules_and_grad(case):
    shape, kw = INTERP_CASES[case]
    check(
        lambda x: F.interpolate(x, **kw),
        lambda x: TF.interpolate(x, **kw),
        rand(*shape),
        jit=case in (12, 15),
    )


@pytest.mark.parametrize("shape,r", [((2, 8, 3, 4), 2), ((9, 2, 3), 3), ((2, 1, 8, 3, 4), 2)])
def test_pixel_shuffle_and_unshuffle_match_torch(shape, r):
    x, _ = check(
        lambda a: F.pixel_shuffle(a, r), lambda a: TF.pixel_shuffle(a, r), rand(*shape), grad=False
    )
    check(
        lambda a: F.pixel_unshuffle(a, r),
        lambda a: TF.pixel_unshuffle(a, r),
        np.asarray(x),
        grad=False,
    )


@pytest.mark.parametrize("shape,groups", [((2, 6, 3, 4), 3), ((2, 8, 5), 2), ((3, 4, 2), 4)])
def test_channel_shuffle_matches_torch(shape, groups):
    check(
        lambda a: F.channel_shuffle(a, groups),
        lambda a: TF.channel_shuffle(a, groups),
        rand(*shape),
        grad=False,
    )


# ----------------------------------------------------------------------------------------
# distances
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "s1,s2,dim", [((3, 5), (3, 5), 1), ((2, 3, 4), (1, 3, 4), 1), ((4, 6), (6,), -1)]
)
def test_cosine_similarity_matches_torch_output_and_grads(s1, s2, dim):
    check(
        lambda a, b: F.cosine_similarity(a, b, dim),
        lambda a, b: TF.cosine_similarity(a, b, dim),
        rand(*s1),
        rand(*s2, seed=2),
    )


def test_cosine_similarity_clamps_each_norm_separately_like_torch():
    x1 = np.array([[1e-9, 0.0], [3.0, 4.0], [0.0, 0.0]], np.float32)
    x2 = np.array([[2e-9, 0.0], [1e-10, 0.0], [1.0, 2.0]], np.float32)
    check(F.cosine_similarity, TF.cosine_similarity, x1, x2)


@pytest.mark.parametrize("p,keepdim", [(2.0, False), (1.0, True), (3.0, False)])
def test_pairwise_distance_matches_torch_output_and_grads(p, keepdim):
    check(
        lambda a, b: F.pairwise_distance(a, b, p, keepdim=keepdim),
        lambda a, b: TF.pairwise_distance(a, b, p, keepdim=keepdim),
        rand(4, 6),
        rand(4, 6, seed=2),
    )


def test_functions_accept_boxes_for_weights_under_jit():
    x, w, b = rand(2, 4, 9), rand(6, 4, 3, seed=2), rand(6, seed=3)
    expected = TF.conv1d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1)
    out = jax.jit(lambda xx, ww, bb: F.conv1d(xx, ww, bb, padding=1))(
        jnp.asarray(x), Parameter(w), Parameter(b)
    )
    assert_close(out, expected, atol=2e-5)
    assert math.isfinite(float(out.sum()))
