"""The benchmark models as hand-written pure JAX: a flat dict of parameters (torch's
state_dict names), a flat dict of BatchNorm statistics, and a forward function, in NCHW
(torch's layout, OIHW kernels) or NHWC (HWIO kernels), for ``benchmarks/models.py``'s raw
``jax.jit`` baselines. ``forward(name)`` is ``f(params, stats, x, layout) -> (out, stats)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Params = dict[str, jax.Array]
STATS = ("running_mean", "running_var", "num_batches_tracked")


def split_state(sd: dict[str, np.ndarray], param_names: set[str], layout: str
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:  # fmt: skip
    """A state_dict's parameters and BatchNorm statistics, kernels in ``layout``'s order."""
    params, stats = {}, {}
    for k, v in sd.items():
        if k in param_names:
            params[k] = v.transpose(2, 3, 1, 0) if layout == "NHWC" and v.ndim == 4 else v
        elif k.rsplit(".", 1)[-1] in STATS:
            stats[k] = v
    return params, stats


def _conv(x: jax.Array, w: jax.Array, stride: int, pad: int, layout: str,
          groups: int = 1) -> jax.Array:  # fmt: skip
    dn = ("NCHW", "OIHW", "NCHW") if layout == "NCHW" else ("NHWC", "HWIO", "NHWC")
    return lax.conv_general_dilated(
        x, w, (stride, stride), [(pad, pad), (pad, pad)], dimension_numbers=dn,
        feature_group_count=groups,
    )  # fmt: skip


def _bn(x: jax.Array, p: Params, s: Params, new: Params, pre: str, layout: str) -> jax.Array:
    """Training-mode BatchNorm2d (batch statistics; running statistics updated into new)."""
    axes, shape = ((0, 2, 3), (1, -1, 1, 1)) if layout == "NCHW" else ((0, 1, 2), (1, 1, 1, -1))
    mean = x.mean(axes)
    var = jnp.mean(jnp.square(x - mean.reshape(shape)), axes)
    n = x.size // x.shape[1 if layout == "NCHW" else 3]  # values per channel
    m = 0.1
    new[f"{pre}.running_mean"] = (1 - m) * s[f"{pre}.running_mean"] + m * mean
    new[f"{pre}.running_var"] = (1 - m) * s[f"{pre}.running_var"] + m * var * n / (n - 1)
    new[f"{pre}.num_batches_tracked"] = s[f"{pre}.num_batches_tracked"] + 1
    scale = p[f"{pre}.weight"] * lax.rsqrt(var + 1e-5)
    shift = p[f"{pre}.bias"] - mean * scale
    return x * scale.reshape(shape) + shift.reshape(shape)


def _linear(x: jax.Array, p: Params, pre: str) -> jax.Array:
    y = x @ p[f"{pre}.weight"].T
    b = p.get(f"{pre}.bias")
    return y if b is None else y + b


def _spatial_mean(x: jax.Array, layout: str) -> jax.Array:
    return x.mean((2, 3) if layout == "NCHW" else (1, 2))


def _max_pool(x: jax.Array, layout: str) -> jax.Array:
    """3x3, stride 2, padding 1 (ResNet's stem)."""
    win = (1, 1, 3, 3) if layout == "NCHW" else (1, 3, 3, 1)
    st = (1, 1, 2, 2) if layout == "NCHW" else (1, 2, 2, 1)
    pad = [(0, 0), (0, 0), (1, 1), (1, 1)] if layout == "NCHW" else [(0, 0), (1, 1), (1, 1), (0, 0)]
    return lax.reduce_window(x, -jnp.inf, lax.max, win, st, pad)


def cnn(p: Params, s: Params, x: jax.Array, layout: str) -> tuple[jax.Array, Params]:
    new: Params = {}
    relu = jax.nn.relu
    x = relu(_bn(_conv(x, p["conv1.weight"], 1, 1, layout), p, s, new, "bn1", layout))
    h = relu(_bn(_conv(x, p["conv2.weight"], 1, 1, layout), p, s, new, "bn2", layout))
    x = relu(x + _bn(_conv(h, p["conv3.weight"], 1, 1, layout), p, s, new, "bn3", layout))
    x = relu(_bn(_conv(x, p["conv4.weight"], 2, 1, layout), p, s, new, "bn4", layout))
    return _linear(_spatial_mean(x, layout), p, "fc"), new


def resnet(p: Params, s: Params, x: jax.Array, layout: str) -> tuple[jax.Array, Params]:
    """Torchvision's ResNet (BasicBlock or Bottleneck, stride on the 3x3 conv)."""
    new: Params = {}
    relu = jax.nn.relu
    x = relu(_bn(_conv(x, p["conv1.weight"], 2, 3, layout), p, s, new, "bn1", layout))
    x = _max_pool(x, layout)
    bottleneck = "layer1.0.conv3.weight" in p
    for li in range(1, 5):
        n_blocks = len({k.split(".")[1] for k in p if k.startswith(f"layer{li}.")})
        for bi in range(n_blocks):
            pre = f"layer{li}.{bi}"
            stride = 2 if li > 1 and bi == 0 else 1
            idt = x
            if f"{pre}.downsample.0.weight" in p:
                w = p[f"{pre}.downsample.0.weight"]
                idt = _bn(_conv(x, w, stride, 0, layout), p, s, new, f"{pre}.downsample.1", layout)
            if bottleneck:
                h = relu(_bn(_conv(x, p[f"{pre}.conv1.weight"], 1, 0, layout), p, s, new,
                             f"{pre}.bn1", layout))  # fmt: skip
                h = relu(_bn(_conv(h, p[f"{pre}.conv2.weight"], stride, 1, layout), p, s, new,
                             f"{pre}.bn2", layout))  # fmt: skip
                h = _bn(_conv(h, p[f"{pre}.conv3.weight"], 1, 0, layout), p, s, new,
                        f"{pre}.bn3", layout)  # fmt: skip
            else:
                h = relu(_bn(_conv(x, p[f"{pre}.conv1.weight"], stride, 1, layout), p, s, new,
                             f"{pre}.bn1", layout))  # fmt: skip
                h = _bn(_conv(h, p[f"{pre}.conv2.weight"], 1, 1, layout), p, s, new,
                        f"{pre}.bn2", layout)  # fmt: skip
            x = relu(h + idt)
    return _linear(_spatial_mean(x, layout), p, "fc"), new


def _layer_norm(x: jax.Array, p: Params, pre: str) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + 1e-5) * p[f"{pre}.weight"] + p[f"{pre}.bias"]


def gpt(p: Params, s: Params, idx: jax.Array, layout: str, heads: int = 4
        ) -> tuple[jax.Array, Params]:  # fmt: skip
    del s, layout
    b, t = idx.shape
    n_layers = len({k.split(".")[1] for k in p if k.startswith("blocks.")})
    width = p["wte.weight"].shape[1]
    x = p["wte.weight"][idx] + p["wpe.weight"][:t]
    mask = jnp.tril(jnp.ones((t, t), bool))
    for i in range(n_layers):
        pre = f"blocks.{i}"
        h = _layer_norm(x, p, f"{pre}.ln1")
        q, k, v = jnp.split(_linear(h, p, f"{pre}.attn.qkv"), 3, axis=-1)
        q, k, v = (z.reshape(b, t, heads, width // heads).transpose(0, 2, 1, 3) for z in (q, k, v))
        att = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / np.sqrt(width // heads))
        att = jax.nn.softmax(jnp.where(mask, att, -jnp.inf), axis=-1)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, width)
        x = x + _linear(y, p, f"{pre}.attn.proj")
        h = jax.nn.gelu(_linear(_layer_norm(x, p, f"{pre}.ln2"), p, f"{pre}.fc"), approximate=False)
        x = x + _linear(h, p, f"{pre}.out")
    return _linear(_layer_norm(x, p, "ln_f"), p, "head"), {}


def lstm(p: Params, s: Params, idx: jax.Array, layout: str) -> tuple[jax.Array, Params]:
    del s, layout
    x = jnp.swapaxes(p["emb.weight"][idx], 0, 1)  # time-major
    n_layers = len([k for k in p if k.startswith("lstm.weight_ih_l")])
    for layer in range(n_layers):
        w_ih, w_hh = p[f"lstm.weight_ih_l{layer}"], p[f"lstm.weight_hh_l{layer}"]
        bias = p[f"lstm.bias_ih_l{layer}"] + p[f"lstm.bias_hh_l{layer}"]
        hid = w_hh.shape[1]
        xs = x @ w_ih.T + bias  # the input projection of every step at once

        def cell(carry: tuple, xt: jax.Array, w_hh: jax.Array = w_hh) -> tuple:
            h, c = carry
            i, f, g, o = jnp.split(xt + h @ w_hh.T, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((x.shape[1], hid), x.dtype)
        _, x = lax.scan(cell, (zeros, zeros), xs)
    return _linear(jnp.swapaxes(x, 0, 1), p, "head"), {}


def mlp(p: Params, s: Params, x: jax.Array, layout: str) -> tuple[jax.Array, Params]:
    n = len([k for k in p if k.endswith(".weight")])
    for i in range(n):
        x = _linear(x, p, f"layers.{i}")
        if i < n - 1:
            x = jax.nn.relu(x)
    return x, {}


FORWARDS: dict[str, Callable[..., Any]] = {
    "cnn": cnn, "resnet18": resnet, "resnet50": resnet, "gpt": gpt, "lstm": lstm, "mlp": mlp,
}  # fmt: skip


def forward(name: str, cfg: dict[str, Any]) -> Callable[..., Any] | None:
    """The raw forward of model ``name``, or None where none is written (DenseNet, ...)."""
    if name == "gpt":
        return functools.partial(gpt, heads=cfg["heads"])
    return FORWARDS.get(name)


def loss(name: str, out: jax.Array, y: jax.Array) -> jax.Array:
    import optax

    if name == "mlp":
        return jnp.mean(jnp.square(out - y))
    return optax.softmax_cross_entropy_with_integer_labels(
        out.reshape(-1, out.shape[-1]).astype(jnp.float32), y.reshape(-1)
    ).mean()
