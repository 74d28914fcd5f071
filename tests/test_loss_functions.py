"""Parity of jaxmod's functional losses with torch.nn.functional: values and gradients."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmod.nn import functional as L
from jaxmod.nn.parameter import Parameter

torch = pytest.importorskip("torch")
F = torch.nn.functional

ATOL = 1e-5
RTOL = 1e-5
REDUCTIONS = ["none", "mean", "sum"]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _to_torch(x, grad: bool):
    if isinstance(x, np.ndarray):
        if np.issubdtype(x.dtype, np.floating):
            return torch.tensor(x, requires_grad=grad)
        return torch.tensor(x, dtype=torch.long if x.dtype.kind == "i" else None)
    return x


def _to_jax(x):
    return jnp.asarray(x) if isinstance(x, np.ndarray) else x


def parity(name, args, kwargs=None, diff=(0,), jit=False, atol=ATOL, rtol=RTOL, tname=None):
    """Compare ``L.<name>`` with ``F.<tname or name>``: value, and grads for ``args[diff]``."""
    kwargs = kwargs or {}
    jfn = getattr(L, name)
    tfn = getattr(F, tname or name)

    t_args = [_to_torch(a, i in diff) for i, a in enumerate(args)]
    t_kwargs = {k: _to_torch(v, False) for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_out = tfn(*t_args, **t_kwargs)
    t_out.sum().backward()
    t_grads = [t_args[i].grad.numpy() for i in diff]

    j_args = [_to_jax(a) for a in args]
    j_kwargs = {k: _to_jax(v) for k, v in kwargs.items()}

    def f(*dargs):
        full = list(j_args)
        for i, a in zip(diff, dargs):
            full[i] = a
        return jfn(*full, **j_kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (_, j_out), j_grads = jax.value_and_grad(
            lambda *d: (jnp.sum(out := f(*d)), out), argnums=tuple(range(len(diff))), has_aux=True
        )(*[j_args[i] for i in diff])
    assert j_out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(np.asarray(j_out), t_out.detach().numpy(), atol=atol, rtol=rtol)
    for jg, tg in zip(j_grads, t_grads):
        np.testing.assert_allclose(np.asarray(jg), tg, atol=atol, rtol=rtol)
    if jit:
        j_jit = jax.jit(f)(*[j_args[i] for i in diff])
        np.testing.assert_allclose(np.asarray(j_jit), t_out.detach().numpy(), atol=atol, rtol=rtol)


# ----------------------------------------------------------------------------------------
# cross_entropy / nll_loss
# ----------------------------------------------------------------------------------------
CE_SHAPES = [(5,), (4, 5), (3, 5, 2, 3)]


def _class_target(r, shape, ignore=False):
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = r.integers(0, c, size=tshape)
    if ignore and t.ndim:
        t.flat[::3] = -100  # every third target ignored
    return np.asarray(t, dtype=np.int64)


CE_VARIANTS = [
    *[(s, r, w, w, 0.0) for s in CE_SHAPES for r in REDUCTIONS for w in (False, True)],
    *[(s, r, w, w, 0.15) for s in CE_SHAPES for r in REDUCTIONS for w in (False, True)],
    *[((4, 5), r, w, not w, ls) for r in REDUCTIONS for w in (False, True) for ls in (0.0, 0.15)],
]


@pytest.mark.parametrize("shape, reduction, weighted, ignore, smoothing", CE_VARIANTS)
def test_cross_entropy_class_indices(shape, reduction, weighted, ignore, smoothing):
    r = rng(1)
    x = r.standard_normal(shape).astype(np.float32)
    c = shape[0] if len(shape) == 1 else shape[1]
    t = _class_target(r, shape, ignore)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    if weighted:
        kw["weight"] = (r.random(c) + 0.2).astype(np.float32)
    parity("cross_entropy", (x, t), kw)


def test_cross_entropy_custom_ignore_index_jit():
    r = rng(2)
    x = r.standard_normal((6, 4)).astype(np.float32)
    t = np.array([0, 3, 2, 2, 1, 3])
    w = (r.random(4) + 0.5).astype(np.float32)
    kw = dict(weight=w, ignore_index=2, label_smoothing=0.1)
    parity("cross_entropy", (x, t), kw, jit=True)


@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted, smoothing", [(False, 0.0), (True, 0.2)])
def test_cross_entropy_probability_targets(shape, reduction, weighted, smoothing):
    r = rng(3)
    x = r.standard_normal(shape).astype(np.float32)
    class_dim = 0 if len(shape) == 1 else 1
    c = shape[class_dim]
    t = np.asarray(jax.nn.softmax(r.standard_normal(shape), axis=class_dim), np.float32)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    if weighted:
        kw["weight"] = (r.random(c) + 0.2).astype(np.float32)
    parity("cross_entropy", (x, t), kw, jit=reduction == "mean")


def test_cross_entropy_errors():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="label_smoothing must be between"):
        L.cross_entropy(x, jnp.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        L.cross_entropy(x, jnp.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="Expected floating point type"):
        L.cross_entropy(x, jnp.zeros((2, 3), jnp.int32))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_all_ignored_is_nan_with_zero_grad_like_torch(smoothing, weighted):
    x = np.ones((2, 3), np.float32)
    t = np.array([-100, -100])
    w = np.array([1.0, 2.0, 3.0], np.float32) if weighted else None
    tx = torch.tensor(x, requires_grad=True)
    tw = None if w is None else torch.tensor(w)
    t_out = F.cross_entropy(tx, torch.tensor(t), weight=tw, label_smoothing=smoothing)
    t_out.backward()
    kw = dict(weight=w, label_smoothing=smoothing)
    out, grad = jax.value_and_grad(lambda x: L.cross_entropy(x, t, **kw))(jnp.asarray(x))
    assert np.isnan(float(out)) and np.isnan(t_out.item())
    np.testing.assert_array_equal(np.asarray(grad), tx.grad.numpy())


def test_cross_entropy_accepts_boxes_and_legacy_args():
    r = rng(4)
    x = r.standard_normal((4, 5)).astype(np.float32)
    t = np.array([0, 3, 1, 4])
    box = Parameter(jnp.asarray(x))
    np.testing.assert_allclose(
        float(L.cross_entropy(box, t)), F.cross_entropy(torch.tensor(x), torch.tensor(t)).item(),
        rtol=RTOL,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="size_average and reduce"):
        out = L.cross_entropy(x, t, size_average=False)
    np.testing.assert_allclose(
        float(out), F.cross_entropy(torch.tensor(x), torch.tensor(t), reduction="sum").item(),
        rtol=RTOL,
    )  # fmt: skip


@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted, ignore", [(False, False), (True, True), (False, True)])
def test_nll_loss(shape, reduction, weighted, ignore):
    r = rng(5)
    class_dim = 0 if len(shape) == 1 else 1
    x = np.asarray(jax.nn.log_softmax(r.standard_normal(shape), axis=class_dim), np.float32)
    t = _class_target(r, shape, ignore)
    kw = dict(reduction=reduction)
    if weighted:
        kw["weight"] = (r.random(shape[class_dim]) + 0.2).astype(np.float32)
    parity("nll_loss", (x, t), kw, jit=weighted and ignore and reduction == "mean")


# ----------------------------------------------------------------------------------------
# binary cross entropy
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(reduction, weighted):
    r = rng(6)
    x = r.uniform(0.05, 0.95, (4, 5)).astype(np.float32)
    y = r.random((4, 5)).astype(np.float32)
    kw = dict(reduction=reduction)
    if weighted:
        kw["weight"] = r.random(5).astype(np.float32)  # broadcasts like torch
    parity("binary_cross_entropy", (x, y), kw, jit=weighted)


def test_binary_cross_entropy_saturated():
    x = np.array([0.0, 1.0, 1e-30, 1 - 1e-7, 0.5], np.float32)
    y = np.array([1.0, 0.0, 0.3, 1.0, 0.5], np.float32)
    parity("binary_cross_entropy", (x, y), dict(reduction="none"), atol=1e-4)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_binary_cross_entropy_with_logits(reduction, weighted, pos_weighted):
    r = rng(7)
    x = (3 * r.standard_normal((4, 5))).astype(np.float32)
    y = r.random((4, 5)).astype(np.float32)
    kw = dict(reduction=reduction)
    if weighted:
        kw["weight"] = r.random((4, 5)).astype(np.float32)
    if pos_weighted:
        kw["pos_weight"] = (r.random(5) * 3).astype(np.float32)
    parity("binary_cross_entropy_with_logits", (x, y), kw, diff=(0, 1), jit=pos_weighted)


def test_binary_cross_entropy_with_logits_is_stable():
    x = np.array([-200.0, -50.0, 0.0, 50.0, 200.0], np.float32)
    y = np.array([1.0, 0.0, 0.5, 1.0, 0.0], np.float32)
    parity("binary_cross_entropy_with_logits", (x, y), dict(reduction="none"))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_multilabel_soft_margin_loss(reduction, weighted):
    r = rng(8)
    x = r.standard_normal((4, 5)).astype(np.float32)
    y = (r.random((4, 5)) > 0.5).astype(np.float32)
    kw = dict(reduction=reduction)
    if weighted:
        kw["weight"] = r.random(5).astype(np.float32)
    parity("multilabel_soft_margin_loss", (x, y), kw)


@pytest.mark.parametrize(
    "reduction, p, weighted, batched",
    [(r, p, w, b) for r in REDUCTIONS for p in (1, 2) for w, b in ((False, True), (True, False))]
    + [("mean", 2, True, True)],
)
def test_multi_margin_loss(reduction, p, weighted, batched):
    r = rng(9)
    x = r.standard_normal((5, 4) if batched else (4,)).astype(np.float32)
    t = np.asarray(r.integers(0, 4, size=(5,) if batched else ()), np.int64)
    kw = dict(reduction=reduction, p=p, margin=0.7)
    if weighted:
        kw["weight"] = r.random(4).astype(np.float32)
    parity("multi_margin_loss", (x, t), kw, jit=weighted and batched)


@pytest.mark.parametrize("reduction, batched", [("none", True), ("mean", True), ("sum", False)])
def test_multilabel_margin_loss(reduction, batched):
    r = rng(10)
    x = r.standard_normal((3, 5)).astype(np.float32)
    t = np.array([[3, 0, -1, 1, 2], [1, 1, 4, 2, -1], [0, 1, 2, 3, 4]], np.int64)
    if not batched:
        x, t = x[0], t[0]
    parity("multilabel_margin_loss", (x, t), dict(reduction=reduction), jit=batched)


# ----------------------------------------------------------------------------------------
# regression
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_mse_l1(name, reduction, weighted):
    r = rng(11)
    x = r.standard_normal((4, 5)).astype(np.float32)
    y = r.standard_normal((4, 5)).astype(np.float32)
    kw = dict(reduction=reduction)
    if weighted:
        kw["weight"] = r.random((4, 5)).astype(np.float32)
    parity(name, (x, y), kw, diff=(0, 1), jit=weighted)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
def test_smooth_l1_loss(reduction, beta):
    r = rng(12)
    x = (2 * r.standard_normal((4, 5))).astype(np.float32)
    y = r.standard_normal((4, 5)).astype(np.float32)
    parity("smooth_l1_loss", (x, y), dict(reduction=reduction, beta=beta), diff=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_huber_loss(reduction, delta, weighted):
    r = rng(13)
    x = (2 * r.standard_normal((4, 5))).astype(np.float32)
    y = r.standard_normal((4, 5)).astype(np.float32)
    kw = dict(reduction=reduction, delta=delta)
    if weighted:
        kw["weight"] = r.random((4, 5)).astype(np.float32)
    parity("huber_loss", (x, y), kw, diff=(0, 1), jit=delta == 2.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_loss(reduction, log_input, full):
    r = rng(14)
    x = r.standard_normal((4, 5)).astype(np.float32)
    if not log_input:
        x = np.exp(x)
    y = r.poisson(2.0, (4, 5)).astype(np.float32)
    kw = dict(reduction=reduction, log_input=log_input, full=full)
    parity("poisson_nll_loss", (x, y), kw, jit=full)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", [(4, 5), (4,), (4, 1), "float"])
def test_gaussian_nll_loss(reduction, full, var_shape):
    r = rng(15)
    x = r.standard_normal((4, 5)).astype(np.float32)
    y = r.standard_normal((4, 5)).astype(np.float32)
    if var_shape == "float":
        var, diff = 0.7, (0, 1)
    else:
        var = (r.random(var_shape) + 0.1).astype(np.float32)
        var.flat[0] = 1e-8  # below eps: clamped, gradient passes through as in torch
        diff = (0, 1, 2)
    kw = dict(reduction=reduction, full=full)
    parity("gaussian_nll_loss", (x, y, var), kw, diff=diff, jit=full, rtol=1e-4)


def test_gaussian_nll_loss_errors():
    x = jnp.zeros((4, 5))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        L.gaussian_nll_loss(x, x, jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="var has negative"):
        L.gaussian_nll_loss(x, x, -jnp.ones((4, 5)))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    r = rng(16)
    x = np.asarray(jax.nn.log_softmax(r.standard_normal((4, 5))), np.float32)
    y = np.array(jax.nn.softmax(r.standard_normal((4, 5))), np.float32)
    y[0, 0] = 0.0  # xlogy(0, 0) = 0
    if log_target:
        y = np.log(y + 1e-3).astype(np.float32)
    kw = dict(reduction=reduction, log_target=log_target)
    parity("kl_div", (x, y), kw, diff=(0, 1), jit=reduction == "batchmean")


# ----------------------------------------------------------------------------------------
# embeddings, ranking, margins
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
@pytest.mark.parametrize("batched", [False, True])
def test_cosine_embedding_loss(reduction, margin, batched):
    r = rng(17)
    a = r.standard_normal((6, 4)).astype(np.float32)
    b = r.standard_normal((6, 4)).astype(np.float32)
    t = np.array([1, -1, 1, -1, -1, 1], np.int64)
    if not batched:
        a, b, t = a[1], b[1], np.asarray(t[1])
    kw = dict(reduction=reduction, margin=margin)
    parity("cosine_embedding_loss", (a, b, t), kw, diff=(0, 1), jit=batched)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_loss(reduction, margin):
    r = rng(18)
    a = r.standard_normal(6).astype(np.float32)
    b = r.standard_normal(6).astype(np.float32)
    t = np.array([1, -1, 1, -1, -1, 1], np.float32)
    kw = dict(reduction=reduction, margin=margin)
    parity("margin_ranking_loss", (a, b, t), kw, diff=(0, 1), jit=margin == 0.5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p, swap", [(1, False), (2, True), (3, False), (2, False)])
@pytest.mark.parametrize("batched", [False, True])
def test_triplet_margin_loss(reduction, p, swap, batched):
    r = rng(19)
    shape = (5, 4) if batched else (4,)
    a, pos, neg = (r.standard_normal(shape).astype(np.float32) for _ in range(3))
    kw = dict(reduction=reduction, p=p, swap=swap, margin=1.5)
    parity("triplet_margin_loss", (a, pos, neg), kw, diff=(0, 1, 2), jit=swap and p == 2)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.5, 1.0])
def test_hinge_embedding_loss(reduction, margin):
    r = rng(20)
    x = r.standard_normal((4, 5)).astype(np.float32)
    t = np.where(r.random((4, 5)) > 0.5, 1, -1).astype(np.float32)
    parity("hinge_embedding_loss", (x, t), dict(reduction=reduction, margin=margin), jit=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_margin_loss(reduction):
    r = rng(21)
    x = r.standard_normal((4, 5)).astype(np.float32)
    t = np.where(r.random((4, 5)) > 0.5, 1, -1).astype(np.float32)
    parity("soft_margin_loss", (x, t), dict(reduction=reduction), jit=True)


# ----------------------------------------------------------------------------------------
# ctc_loss
# ----------------------------------------------------------------------------------------
def _ctc_inputs(seed, concatenated):
    r = rng(seed)
    T, N, C, S = 12, 3, 5, 4
    logits = r.standard_normal((T, N, C)).astype(np.float32)
    target_lengths = np.array([4, 2, 3], np.int64)
    input_lengths = np.array([12, 9, 10], np.int64)
    targets = r.integers(1, C, size=(N, S)).astype(np.int64)
    targets[0, 1] = targets[0, 2]  # a repeated label needs a blank in between
    if concatenated:
        targets = np.concatenate([targets[i, :n] for i, n in enumerate(target_lengths)])
    return logits, targets, input_lengths, target_lengths


def _ctc_both(logits, targets, input_lengths, target_lengths, **kw):
    """Loss and gradient w.r.t. the raw logits (log_softmax inside) in torch and jax."""
    tl = torch.tensor(logits, requires_grad=True)
    t_out = F.ctc_loss(
        torch.log_softmax(tl, -1), torch.tensor(targets), torch.tensor(input_lengths),
        torch.tensor(target_lengths), **kw,
    )  # fmt: skip
    t_out.sum().backward()

    def f(x):
        return L.ctc_loss(jax.nn.log_softmax(x, -1), targets, input_lengths, target_lengths, **kw)

    j_out = f(jnp.asarray(logits))
    j_grad = jax.grad(lambda x: jnp.sum(f(x)))(jnp.asarray(logits))
    return (t_out.detach().numpy(), tl.grad.numpy()), (np.asarray(j_out), np.asarray(j_grad)), f


@pytest.mark.parametrize(
    "reduction, concatenated", [("none", False), ("mean", True), ("sum", True), ("mean", False)]
)
def test_ctc_loss(reduction, concatenated):
    args = _ctc_inputs(22, concatenated)
    (t_out, t_grad), (j_out, j_grad), f = _ctc_both(*args, reduction=reduction)
    np.testing.assert_allclose(j_out, t_out, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(j_grad, t_grad, rtol=1e-4, atol=1e-5)
    if reduction == "mean":
        np.testing.assert_allclose(np.asarray(jax.jit(f)(args[0])), t_out, rtol=1e-4)


def test_ctc_loss_grad_wrt_log_probs_and_blank():
    logits, targets, il, tl = _ctc_inputs(23, False)
    lp = np.asarray(jax.nn.log_softmax(logits, -1), np.float32)
    targets = np.where(targets == 2, 0, targets)  # blank=2 must not appear as a label
    parity("ctc_loss", (lp, targets, il, tl), dict(blank=2), rtol=1e-4, atol=1e-4)


def test_ctc_loss_unbatched():
    logits, targets, il, tl = _ctc_inputs(24, False)
    lp = np.asarray(jax.nn.log_softmax(logits[:, 0], -1), np.float32)
    args = (lp, targets[0], np.asarray(il[0]), np.asarray(tl[0]))
    for reduction in REDUCTIONS:
        parity("ctc_loss", args, dict(reduction=reduction), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_loss_impossible_alignment(zero_infinity):
    logits, targets, il, tl = _ctc_inputs(25, False)
    il = np.array([12, 1, 10], np.int64)  # sequence 1 has 2 labels but a single frame
    kw = dict(reduction="none", zero_infinity=zero_infinity)
    (t_out, t_grad), (j_out, j_grad), _ = _ctc_both(logits, targets, il, tl, **kw)
    np.testing.assert_allclose(j_out, t_out, rtol=1e-4)
    if zero_infinity:
        np.testing.assert_allclose(j_grad, t_grad, rtol=1e-4, atol=1e-5)
    else:
        assert np.isinf(j_out[1])


# ----------------------------------------------------------------------------------------
# jit with traced targets, errors
# ----------------------------------------------------------------------------------------
def test_jit_with_traced_targets_and_lengths():
    r = rng(26)
    x = r.standard_normal((6, 5)).astype(np.float32)
    t = np.array([0, 4, -100, 2, 2, 1])
    w = (r.random(5) + 0.5).astype(np.float32)

    @jax.jit
    def ce(x, t, w):
        return L.cross_entropy(x, t, weight=w, label_smoothing=0.1)

    expected = F.cross_entropy(
        torch.tensor(x), torch.tensor(t), weight=torch.tensor(w), label_smoothing=0.1
    )
    np.testing.assert_allclose(float(ce(x, t, w)), expected.item(), rtol=RTOL, atol=ATOL)

    logits, targets, il, tl = _ctc_inputs(27, True)
    lp = np.asarray(jax.nn.log_softmax(logits, -1), np.float32)
    ctc = jax.jit(lambda lp, tg, il, tl: L.ctc_loss(lp, tg, il, tl, reduction="none"))
    expected = F.ctc_loss(
        torch.tensor(lp), torch.tensor(targets), torch.tensor(il), torch.tensor(tl),
        reduction="none",
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(ctc(lp, targets, il, tl)), expected, rtol=1e-4)


@pytest.mark.parametrize(
    "name, args, kwargs",
    [
        ("triplet_margin_loss", ((2, 3), (2, 3), (2, 3)), dict(margin=0.0)),
        ("multi_margin_loss", ((2, 3), "idx2"), dict(p=3)),
        ("mse_loss", ((2, 3), (2, 3)), dict(reduction="avg")),
        ("poisson_nll_loss", ((2, 3), (2, 3)), dict(reduction="avg")),
        ("binary_cross_entropy", ((2, 3), (3, 2)), {}),
    ],
)
def test_errors_match_torch(name, args, kwargs):
    def make(a, lib):
        if a == "idx2":
            return lib.zeros(2, dtype=lib.int64 if lib is torch else jnp.int32)
        return lib.full(a, 0.5) if lib is torch else jnp.full(a, 0.5)

    with pytest.raises(ValueError) as expected:
        getattr(F, name)(*[make(a, torch) for a in args], **kwargs)
    with pytest.raises(ValueError) as got:
        getattr(L, name)(*[make(a, jnp) for a in args], **kwargs)
    torch_msg = str(expected.value).replace("torch.Size([", "(").replace("])", ")")
    assert str(got.value) == torch_msg
