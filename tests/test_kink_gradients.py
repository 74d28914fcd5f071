"""Gradients exactly at the breakpoints of piecewise functions equal torch's subgradients.

Every case is evaluated at each breakpoint and one float32 ulp to its left and right, in
the functional form (``jaxmod.nn.functional`` against ``torch.nn.functional``) and, where
torch has one, the layer form (``jaxmod.nn.X`` against ``torch.nn.X``). Forward values are
compared too, so a kink fix cannot change them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from _layer_parity import parity

import jaxmod
import jaxmod.nn.functional as F

TF = torch.nn.functional
torch.set_num_threads(1)


def around(*points: float) -> np.ndarray:
    """Each point and its float32 neighbours on both sides (for 0: the smallest normal
    numbers, since XLA on CPU flushes subnormals to zero)."""
    out = []
    tiny = np.finfo(np.float32).tiny
    for p in np.asarray(points, np.float32):
        if p == 0:
            out += [-tiny, p, tiny]
        else:
            out += [np.nextafter(p, np.float32(-np.inf)), p, np.nextafter(p, np.float32(np.inf))]
    return np.asarray(out, np.float32)


def same(actual: Any, expected: torch.Tensor) -> None:
    np.testing.assert_allclose(np.asarray(actual), expected.detach().numpy(), rtol=1e-6, atol=1e-7)


def check_unary(jf: Any, tf: Any, x: np.ndarray) -> None:
    """Values and input gradients of ``sum(f(x))`` equal torch's."""
    xt = torch.tensor(x, requires_grad=True)
    yt = tf(xt)
    yt.sum().backward()
    value_and_grad = jax.jit(jax.value_and_grad(lambda v: jf(v).sum(), has_aux=False))
    same(jax.jit(jf)(jnp.asarray(x)), yt)
    same(value_and_grad(jnp.asarray(x))[1], xt.grad)


# (functional name, kwargs, layer name or None, layer kwargs, breakpoints)
ACTIVATIONS = [
    ("relu", {}, "ReLU", {}, [0.0]),
    ("relu6", {}, "ReLU6", {}, [0.0, 6.0]),
    ("hardtanh", {}, "Hardtanh", {}, [-1.0, 1.0]),
    ("hardtanh", {"min_val": -2.0, "max_val": 3.0}, "Hardtanh", {"min_val": -2.0, "max_val": 3.0},
     [-2.0, 3.0]),
    ("hardswish", {}, "Hardswish", {}, [-3.0, 0.0, 3.0]),
    ("hardsigmoid", {}, "Hardsigmoid", {}, [-3.0, 3.0]),
    ("leaky_relu", {}, "LeakyReLU", {}, [0.0]),
    ("leaky_relu", {"negative_slope": 0.2}, "LeakyReLU", {"negative_slope": 0.2}, [0.0]),
    ("elu", {}, "ELU", {}, [0.0]),
    ("elu", {"alpha": 2.0}, "ELU", {"alpha": 2.0}, [0.0]),
    ("celu", {"alpha": 2.0}, "CELU", {"alpha": 2.0}, [0.0]),
    ("selu", {}, "SELU", {}, [0.0]),
    ("threshold", {"threshold": 0.5, "value": -1.0}, "Threshold",
     {"threshold": 0.5, "value": -1.0}, [0.5]),
    ("softplus", {}, "Softplus", {}, [20.0]),
    ("softplus", {"beta": 2.0, "threshold": 10.0}, "Softplus", {"beta": 2.0, "threshold": 10.0},
     [5.0]),
    ("rrelu", {"training": False}, "RReLU", {}, [0.0]),
    ("hardshrink", {}, "Hardshrink", {}, [-0.5, 0.5]),
    ("softshrink", {"lambd": 0.25}, "Softshrink", {"lambd": 0.25}, [-0.25, 0.25]),
    ("tanhshrink", {}, "Tanhshrink", {}, [0.0]),
    ("gelu", {}, "GELU", {}, [0.0]),
    ("gelu", {"approximate": "tanh"}, "GELU", {"approximate": "tanh"}, [0.0]),
    ("silu", {}, "SiLU", {}, [0.0]),
    ("mish", {}, "Mish", {}, [0.0]),
    ("softsign", {}, "Softsign", {}, [0.0]),
    ("logsigmoid", {}, "LogSigmoid", {}, [0.0]),
]  # fmt: skip


def _id(case: tuple) -> str:
    return f"{case[0]}-{'-'.join(f'{k}={v}' for k, v in case[1].items())}".rstrip("-")


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[_id(c) for c in ACTIVATIONS])
def test_activation_gradient_at_kinks_matches_torch(case):
    name, kw, _, _, points = case
    check_unary(
        lambda v: getattr(F, name)(v, **kw), lambda v: getattr(TF, name)(v, **kw), around(*points)
    )


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[_id(c) for c in ACTIVATIONS])
def test_activation_layer_gradient_at_kinks_matches_torch(case):
    _, _, layer, kw, points = case
    t_layer, j_layer = getattr(torch.nn, layer)(**kw).eval(), getattr(jaxmod.nn, layer)(**kw)
    x = around(*points).reshape(1, -1)
    parity(t_layer, j_layer.eval(), x, jit=True, atol=1e-7, rtol=1e-6)


def test_mobilenet_style_relu6_after_batchnorm_matches_torch_at_zero():
    """The case issue 18 found: many activations exactly 0 feeding ReLU6 / Hardswish."""
    x = np.zeros((2, 3, 4, 4), np.float32)
    x[:, :, :2] = 6.0
    for layer in ("ReLU6", "Hardswish", "Hardsigmoid"):
        parity(getattr(torch.nn, layer)(), getattr(jaxmod.nn, layer)(), x, jit=True, atol=0, rtol=0)


def test_prelu_input_and_weight_gradients_at_zero_match_torch():
    x = around(0.0)
    w = np.asarray([0.25], np.float32)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    TF.prelu(xt, wt).sum().backward()
    gx, gw = jax.jit(jax.grad(lambda a, b: F.prelu(a, b).sum(), argnums=(0, 1)))(x, w)
    same(gx, xt.grad)
    same(gw, wt.grad)
    parity(torch.nn.PReLU(), jaxmod.nn.PReLU(), x.reshape(1, -1), jit=True, atol=1e-7, rtol=1e-6)


def test_rrelu_training_gradient_at_zero_is_the_drawn_slope_as_torch():
    """torch draws a slope for every x <= 0, so the gradient at 0 is that slope, not 1."""
    x = jnp.zeros((64,), jnp.float32)
    g = jaxmod.jit(jaxmod.grad(lambda v: F.rrelu(v, training=True).sum()))(x)
    assert bool(jnp.all((g >= 1 / 8) & (g <= 1 / 3)))


# -- losses: torch's clamp_min (gradient 1 at the hinge), sgn (0 at 0), dedicated kernels
LOSSES = [
    # (name, [inputs...], kwargs): gradients w.r.t. every float input
    ("l1_loss", [around(0.0), np.zeros(3, np.float32)], {}),
    ("l1_loss", [around(0.0), np.zeros(3, np.float32)], {"reduction": "sum"}),
    ("smooth_l1_loss", [around(-1.0, 0.0, 1.0), np.zeros(9, np.float32)], {}),
    ("smooth_l1_loss", [around(0.0), np.zeros(3, np.float32)], {"beta": 0.0}),
    ("huber_loss", [around(-1.0, 0.0, 1.0), np.zeros(9, np.float32)], {}),
    ("mse_loss", [around(0.0), np.zeros(3, np.float32)], {}),
    ("margin_ranking_loss",
     [around(1.0), np.ones(3, np.float32), np.ones(3, np.float32)], {"margin": 0.0}),
    ("hinge_embedding_loss", [around(1.0), -np.ones(3, np.float32)], {}),
    ("cosine_embedding_loss",
     [np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32)[::-1].copy(),
      -np.ones(2, np.float32)], {}),
    ("triplet_margin_loss",
     [np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32),
      np.asarray([[1, 0, 0], [0, 0, 1]], np.float32)], {"p": 1, "eps": 0.0}),
    ("triplet_margin_loss",
     [np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32),
      np.asarray([[1, 0, 0], [0, 0, 1]], np.float32)], {"p": 2, "eps": 0.0}),
    ("triplet_margin_loss",
     [np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32),
      np.asarray([[1, 0, 0], [0, 0, 1]], np.float32)], {"p": float("inf"), "eps": 0.0}),
    ("multi_margin_loss", [np.asarray([[1.0, 0.0, -1.0]], np.float32), np.asarray([0])], {}),
    ("multilabel_margin_loss",
     [np.asarray([[1.0, 0.0, 0.5]], np.float32), np.asarray([[0, -1, -1]])], {}),
]  # fmt: skip


def _loss_id(case: tuple) -> str:
    return f"{case[0]}-{'-'.join(f'{k}={v}' for k, v in case[2].items())}".rstrip("-")


@pytest.mark.parametrize("case", LOSSES, ids=[_loss_id(c) for c in LOSSES])
def test_loss_gradient_at_hinges_matches_torch(case):
    name, inputs, kw = case
    floats = [i for i, a in enumerate(inputs) if a.dtype.kind == "f"]
    t_in = [
        torch.tensor(a, requires_grad=True) if a.dtype.kind == "f" else torch.tensor(a)
        for a in inputs
    ]
    t_out = getattr(TF, name)(*t_in, **kw)
    t_out.sum().backward()

    def loss(*xs):
        full = list(inputs)
        for i, x in zip(floats, xs):
            full[i] = x
        return getattr(F, name)(*full, **kw).sum()

    same(jax.jit(lambda *a: getattr(F, name)(*a, **kw))(*inputs), t_out)
    grad = jax.jit(jax.grad(loss, argnums=tuple(range(len(floats)))))
    grads = grad(*(inputs[i] for i in floats))
    compared = [i for i in floats if t_in[i].grad is not None]  # torch: targets get none
    assert compared
    for g, i in zip(grads, floats):
        if i in compared:
            same(g, t_in[i].grad)


@pytest.mark.parametrize(
    "name,x,kw",
    [
        ("normalize", np.asarray([[0.5], [0.25]], np.float32), {"p": 1, "dim": 1, "eps": 0.5}),
        ("normalize", np.zeros((2, 3), np.float32), {"p": float("inf")}),
        ("pairwise_distance", np.zeros((2, 3), np.float32), {"p": 1.0, "eps": 0.0}),
        ("pairwise_distance", np.zeros((2, 3), np.float32), {"p": float("inf"), "eps": 0.0}),
    ],
)
def test_norm_gradient_at_clamp_and_zero_matches_torch(name, x, kw):
    def jf(v):
        return (
            getattr(F, name)(v, jnp.zeros_like(v), **kw)
            if name == "pairwise_distance"
            else (getattr(F, name)(v, **kw))
        )

    def tf(v):
        return (
            getattr(TF, name)(v, torch.zeros_like(v), **kw)
            if name == "pairwise_distance"
            else (getattr(TF, name)(v, **kw))
        )

    check_unary(jf, tf, x)


# -- max pooling: torch routes a tie's whole gradient to the first maximum of each window
POOL_INPUTS = {
    "flat": np.ones((1, 2, 4, 4), np.float32),
    "plateau": np.asarray([[[[0, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 0], [2, 2, 0, 0]]]], np.float32),
}
POOLS = [
    ("max_pool2d", {"kernel_size": 2}),
    ("max_pool2d", {"kernel_size": 2, "stride": 1}),
    ("max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("max_pool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
    ("max_pool2d", {"kernel_size": 2, "stride": 1, "dilation": 2}),
    ("max_pool2d", {"kernel_size": 2, "stride": 1, "return_indices": True}),
    ("adaptive_max_pool2d", {"output_size": 3}),
    ("adaptive_max_pool2d", {"output_size": (2, 3), "return_indices": True}),
]


@pytest.mark.parametrize("inp", sorted(POOL_INPUTS))
@pytest.mark.parametrize("name,kw", POOLS, ids=[f"{n}-{kw}" for n, kw in POOLS])
def test_max_pool_tie_gradient_goes_to_torchs_element(name, kw, inp):
    x = POOL_INPUTS[inp]

    def first(out: Any) -> Any:
        return out[0] if isinstance(out, tuple) else out

    check_unary(lambda v: first(getattr(F, name)(v, **kw)),
                lambda v: first(getattr(TF, name)(v, **kw)), x)  # fmt: skip


@pytest.mark.parametrize(
    "name,kw,shape",
    [
        ("max_pool1d", {"kernel_size": 2, "stride": 1}, (1, 2, 5)),
        ("max_pool3d", {"kernel_size": 2, "stride": 1}, (1, 1, 3, 3, 3)),
        ("adaptive_max_pool1d", {"output_size": 2}, (1, 2, 5)),
        ("adaptive_max_pool3d", {"output_size": 2}, (1, 1, 3, 3, 3)),
    ],
)
def test_max_pool_1d_3d_tie_gradient_matches_torch(name, kw, shape):
    check_unary(
        lambda v: getattr(F, name)(v, **kw),
        lambda v: getattr(TF, name)(v, **kw),
        np.ones(shape, np.float32),
    )


@pytest.mark.parametrize("layer,kw", [("MaxPool2d", {"kernel_size": 2, "stride": 1}),
                                      ("AdaptiveMaxPool2d", {"output_size": 3})])  # fmt: skip
def test_max_pool_layer_tie_gradient_matches_torch(layer, kw):
    parity(getattr(torch.nn, layer)(**kw), getattr(jaxmod.nn, layer)(**kw),
           POOL_INPUTS["plateau"], jit=True, atol=0, rtol=0)  # fmt: skip


# -- reductions: jnp's max/min split a tie evenly, as torch's amax/amin and full max()/min()
@pytest.mark.parametrize(
    "jf,tf",
    [
        (lambda v: jnp.max(v), lambda v: v.max()),
        (lambda v: jnp.min(v), lambda v: v.min()),
        (lambda v: jnp.max(v, axis=1), lambda v: torch.amax(v, dim=1)),
        (lambda v: jnp.min(v, axis=0), lambda v: torch.amin(v, dim=0)),
        (lambda v: jnp.maximum(v, 1.0), lambda v: torch.maximum(v, torch.tensor(1.0))),
    ],
    ids=["max", "min", "amax", "amin", "maximum"],
)
def test_jnp_reduction_ties_split_like_torch(jf, tf):
    check_unary(jf, tf, np.asarray([[1, 1, 0], [1, 0, 0]], np.float32))


def test_kink_fixes_keep_the_forward_program_small():
    """``relu`` is JAX's own (one ``max``); the hardtanh family lowers to the same clamp
    as ``jnp.clip`` (the custom JVP is gone after lowering), so forwards cost nothing."""
    x = jnp.zeros((8,), jnp.float32)

    def ops(f: Any) -> int:
        return jax.jit(f).lower(x).as_text().count("stablehlo.")

    assert ops(F.relu) == ops(jax.nn.relu)
    assert ops(F.hardtanh) == ops(lambda v: jnp.clip(v, -1.0, 1.0))
    assert ops(F.relu6) == ops(lambda v: jnp.clip(v, 0, 6))
