"""Normalisation layers' arithmetic and torch-gradient p-norms."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmod._tensor.errors import ShapeError
from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._util import Array, _a, _abs, _axis, _clamp_min, _fp32_op, _up


def _channel_shape(x: Array) -> tuple[int, ...]:
    return (1, -1) + (1,) * (x.ndim - 2)


@eager_kernel
def _batch_norm_stats(input: Array) -> tuple[Array, Array, Array]:
    """Per-channel ``(mean, biased_var, unbiased_var)`` of an ``(N, C, *)`` input.

    ``batch_norm`` normalises with the biased variance; a BatchNorm module updates its
    ``running_var`` with the unbiased one::

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * unbiased_var
    """
    x = _up(_a(input))
    axes = (0,) + tuple(range(2, x.ndim))
    n = math.prod(x.shape[a] for a in axes)
    mean = jnp.mean(x, axis=axes)
    var = jnp.var(x, axis=axes)
    unbiased = var * (n / max(n - 1, 1)) if n > 1 else jnp.full_like(var, jnp.nan)
    return mean, var, unbiased


@eager_kernel
def batch_norm(
    input: Array,
    running_mean: Array | None,
    running_var: Array | None,
    weight: Array | None = None,
    bias: Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array:
    """Batch normalisation over ``(N, C, *)``.

    With ``training=True`` the batch statistics normalise the input; the running statistics
    are NOT updated (JAX arrays are immutable): use :func:`_batch_norm_stats` for that.
    """
    x0 = _a(input)
    x = _up(x0)
    w, b = _a(weight), _a(bias)
    cs = _channel_shape(x)
    if training:
        per_channel = x.size // x.shape[1] if x.ndim > 1 else x.size
        if per_channel <= 1:
            raise ValueError(
                "Expected more than 1 value per channel when training, got "
                f"input size {tuple(x.shape)}"
            )
        axes = (0,) + tuple(range(2, x.ndim))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.var(x, axis=axes, keepdims=True)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean and running_var must be given when training=False")
        mean = _a(running_mean).reshape(cs)
        var = _a(running_var).reshape(cs)
    y = (x - mean) * lax.rsqrt(var + eps)
    if w is not None:
        y = y * w.reshape(cs)
    if b is not None:
        y = y + b.reshape(cs)
    return y.astype(x0.dtype)


@eager_kernel
@_fp32_op
def layer_norm(
    input: Array,
    normalized_shape: Any,
    weight: Array | None = None,
    bias: Array | None = None,
    eps: float = 1e-5,
) -> Array:
    """Normalise over the trailing ``normalized_shape`` dims (biased variance)."""
    x0, w, b = _a(input), _a(weight), _a(bias)
    x = _up(x0)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape) :]) != tuple(shape):
        raise ShapeError(  # torch's text (no space before the size) and RuntimeError
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size"
            f"{list(x.shape)}"
        )
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.var(x, axis=axes, keepdims=True)
    y = (x - mean) * lax.rsqrt(var + eps)
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y.astype(x0.dtype)


@eager_kernel
@_fp32_op
def group_norm(
    input: Array,
    num_groups: int,
    weight: Array | None = None,
    bias: Array | None = None,
    eps: float = 1e-5,
) -> Array:
    """Group normalisation of ``(N, C, *)``: statistics per sample over each channel group."""
    x0, w, b = _a(input), _a(weight), _a(bias)
    x = _up(x0)
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise ValueError(
            f"Expected number of channels in input to be divisible by "
            f"num_groups, but got input of shape {tuple(x.shape)} and "
            f"num_groups={num_groups}"
        )
    xg = x.reshape((n, num_groups, -1))
    mean = jnp.mean(xg, axis=-1, keepdims=True)
    var = jnp.var(xg, axis=-1, keepdims=True)
    y = ((xg - mean) * lax.rsqrt(var + eps)).reshape(x.shape)
    cs = _channel_shape(x)
    if w is not None:
        y = y * w.reshape(cs)
    if b is not None:
        y = y + b.reshape(cs)
    return y.astype(x0.dtype)


@eager_kernel
def instance_norm(
    input: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    weight: Array | None = None,
    bias: Array | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array:
    """Instance normalisation of ``(N, C, *)``: statistics per sample and channel.

    With ``use_input_stats=False`` the running statistics are used instead. Running
    statistics are never updated in place.
    """
    x0, w, b = _a(input), _a(weight), _a(bias)
    x = _up(x0)
    cs = _channel_shape(x)
    if use_input_stats:
        axes = tuple(range(2, x.ndim))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.var(x, axis=axes, keepdims=True)
    else:
        mean = _a(running_mean).reshape(cs)
        var = _a(running_var).reshape(cs)
    y = (x - mean) * lax.rsqrt(var + eps)
    if w is not None:
        y = y * w.reshape(cs)
    if b is not None:
        y = y + b.reshape(cs)
    return y.astype(x0.dtype)


@eager_kernel
def local_response_norm(
    input: Array, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Array:
    """Local response normalisation across channels (dim 1) of ``(N, C, *)``."""
    x = _a(input)
    if x.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {x.ndim} dimensions)")
    sq = x * x
    pads = [(0, 0)] * x.ndim
    pads[1] = (size // 2, (size - 1) // 2)
    window = [1] * x.ndim
    window[1] = size
    div = lax.reduce_window(sq, np.array(0, x.dtype), lax.add, window, (1,) * x.ndim, pads)
    div = (div / size * alpha + k) ** beta
    return x / div


@eager_kernel
def rms_norm(
    input: Array,
    normalized_shape: Any,
    weight: Array | None = None,
    eps: float | None = None,
) -> Array:
    """RMS normalisation over the trailing dims; ``eps`` defaults to ``finfo(dtype).eps``."""
    x0, w = _a(input), _a(weight)
    x = _up(x0)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if eps is None:
        eps = float(jnp.finfo(x0.dtype).eps)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    y = x * lax.rsqrt(jnp.mean(x * x, axis=axes, keepdims=True) + eps)
    return (y if w is None else y * w).astype(x0.dtype)


def _vector_norm(x: Array, p: float, axis: int, keepdims: bool) -> Array:
    """p-norm with torch's gradients: zero at the zero vector (not NaN) and at zero entries."""
    if p == float("inf"):
        return jnp.max(_abs(x), axis=axis, keepdims=keepdims)
    if p == float("-inf"):
        return jnp.min(_abs(x), axis=axis, keepdims=keepdims)
    if p == 0:
        return jnp.sum(x != 0, axis=axis, keepdims=keepdims).astype(x.dtype)
    if p == 1:
        return jnp.sum(_abs(x), axis=axis, keepdims=keepdims)
    if p == 2:
        s = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    else:
        s = jnp.sum(_abs(x) ** p, axis=axis, keepdims=keepdims)
    pos = s > 0
    safe = jnp.where(pos, s, 1)
    return jnp.where(pos, jnp.sqrt(safe) if p == 2 else safe ** (1.0 / p), 0)


@eager_kernel
@_fp32_op
def normalize(input: Array, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Array:
    """``input / max(||input||_p, eps)`` along ``dim``."""
    x = _a(input)
    norm = _vector_norm(x, p, _axis(dim, x.ndim), keepdims=True)
    return x / _clamp_min(norm, eps)
