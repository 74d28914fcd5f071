"""Max, average, adaptive, power-average pooling and max-unpooling."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._util import (
    _HIGHEST,
    Array,
    _a,
    _fp32_op,
    _int_dtype,
    _neg_inf,
    _ntuple,
)


def _pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape``: with ceil_mode, the last window must start inside
    the input or the left padding."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    if out < 1:
        raise ValueError(
            f"Output size is too small (input size {size}, kernel {k}, "
            f"stride {s}, padding {p}, dilation {d})"
        )
    return out


def _pool_args(
    x: Array, n: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any, name: str
) -> tuple[tuple[int, ...], ...]:
    if x.ndim < n + 1:
        raise ValueError(f"{name}: expected at least {n + 1}D input, got {x.ndim}D")
    k = _ntuple(kernel_size, n, "kernel_size")
    s = (
        k
        if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
        else (_ntuple(stride, n, "stride"))
    )
    p = _ntuple(padding, n, "padding")
    d = _ntuple(dilation, n, "dilation")
    for ki, pi in zip(k, p):
        if pi > ki // 2:
            raise ValueError(
                f"{name}: pad should be at most half of kernel size, "
                f"but got pad={pi} and kernel_size={ki}"
            )
    return k, s, p, d


def _window_indices(
    size: int, out: int, k: int, s: int, p: int, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``(out, k)`` of each pooling window and whether they are in range."""
    idx = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
    return idx, (idx >= 0) & (idx < size)


def _gather_max(
    x: Array, n: int, idxs: list[np.ndarray], valids: list[np.ndarray], return_indices: bool
) -> Any:
    """Max over explicit windows (per-dim index tables); indices are flat over spatial dims."""
    spatial = x.shape[-n:]
    lead = x.shape[:-n]
    outs = [i.shape[0] for i in idxs]
    flat = np.zeros([1] * (2 * n), np.int64)
    valid = np.ones([1] * (2 * n), bool)
    stride = 1
    for j in reversed(range(n)):
        shape = [1] * (2 * n)
        shape[j], shape[n + j] = idxs[j].shape
        flat = flat + np.clip(idxs[j], 0, spatial[j] - 1).reshape(shape) * stride
        valid = valid & valids[j].reshape(shape)
        stride *= spatial[j]
    kprod = int(np.prod([i.shape[1] for i in idxs]))
    flat = np.broadcast_to(flat, outs + [i.shape[1] for i in idxs]).reshape(-1, kprod)
    valid = np.broadcast_to(valid, outs + [i.shape[1] for i in idxs]).reshape(-1, kprod)
    xf = x.reshape(lead + (-1,))
    vals = jnp.take(xf, jnp.asarray(flat.reshape(-1), jnp.int32), axis=-1)
    vals = vals.reshape(lead + flat.shape)
    vals = jnp.where(jnp.asarray(valid), vals, _neg_inf(x.dtype))
    arg = jnp.argmax(vals, axis=-1)
    out = jnp.take_along_axis(vals, arg[..., None], axis=-1)[..., 0].reshape(lead + tuple(outs))
    if not return_indices:
        return out
    ind = jnp.asarray(flat)[jnp.arange(flat.shape[0]), arg].reshape(lead + tuple(outs))
    return out, ind.astype(_int_dtype())


@eager_kernel
def _max_pool(
    n: int,
    input: Array,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    return_indices: bool,
) -> Any:
    x = _a(input)
    k, s, p, d = _pool_args(x, n, kernel_size, stride, padding, dilation, f"max_pool{n}d")
    spatial = x.shape[-n:]
    outs = [_pool_out_size(L, *a, ceil_mode) for L, *a in zip(spatial, k, s, p, d)]
    if return_indices or any(di != 1 for di in d):
        # reduce_window's VJP does not support window dilation; indices need the argmax.
        tables = [_window_indices(L, o, *a) for L, o, *a in zip(spatial, outs, k, s, p, d)]
        return _gather_max(x, n, [t[0] for t in tables], [t[1] for t in tables], return_indices)
    lead = x.ndim - n
    pads = [(0, 0)] * lead + [
        (pi, max((o - 1) * si + ki - L - pi, 0)) for L, o, ki, si, pi in zip(spatial, outs, k, s, p)
    ]
    return lax.reduce_window(x, _neg_inf(x.dtype), lax.max, (1,) * lead + k, (1,) * lead + s, pads)


def max_pool1d(
    input: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """1-D max pooling over the last dim; indices (with ``return_indices``) index ``L``."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(
    input: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """2-D max pooling over the last two dims; indices are flat into ``H*W`` per channel."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@_fp32_op
def max_pool3d(
    input: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """3-D max pooling over the last three dims; indices are flat into ``D*H*W``."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_divisor(size: int, out: int, k: int, s: int, p: int, count_include_pad: bool):
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    pool = end - start
    valid = np.minimum(end, size) - np.maximum(start, 0)
    return pool if count_include_pad else valid


@eager_kernel
def _avg_pool(
    n: int,
    input: Array,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Array:
    x = _a(input)
    k, s, p, _ = _pool_args(x, n, kernel_size, stride, padding, 1, f"avg_pool{n}d")
    spatial = x.shape[-n:]
    outs = [_pool_out_size(L, ki, si, pi, 1, ceil_mode) for L, ki, si, pi in zip(spatial, k, s, p)]
    lead = x.ndim - n
    pads = [(0, 0)] * lead + [
        (pi, max((o - 1) * si + ki - L - pi, 0)) for L, o, ki, si, pi in zip(spatial, outs, k, s, p)
    ]
    total = lax.reduce_window(
        x, np.array(0, x.dtype), lax.add, (1,) * lead + k, (1,) * lead + s, pads
    )
    if divisor_override:
        return total / jnp.asarray(divisor_override, x.dtype)
    div = np.ones((), np.float64)
    for L, o, ki, si, pi in zip(spatial, outs, k, s, p):
        div = np.multiply.outer(div, _avg_divisor(L, o, ki, si, pi, count_include_pad))
    return total / jnp.asarray(div, x.dtype)


def avg_pool1d(
    input: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Array:
    """1-D average pooling over the last dim."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(
    input: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """2-D average pooling over the last two dims (torch's divisor rules)."""
    return _avg_pool(
        2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


@_fp32_op
def avg_pool3d(
    input: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """3-D average pooling over the last three dims (torch's divisor rules)."""
    return _avg_pool(
        3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def _adaptive_sizes(x: Array, n: int, output_size: Any) -> list[int]:
    if x.ndim < n + 1:
        raise ValueError(f"adaptive pooling: expected at least {n + 1}D input, got {x.ndim}D")
    spatial = x.shape[-n:]
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != n:
            raise ValueError(f"output_size must have {n} elements, got {output_size}")
        sizes = output_size
    else:
        sizes = (output_size,) * n
    return [L if o is None else int(o) for L, o in zip(spatial, sizes)]


def _adaptive_bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    return start, end


@eager_kernel
def _adaptive_avg_pool(n: int, input: Array, output_size: Any) -> Array:
    x = _a(input)
    outs = _adaptive_sizes(x, n, output_size)
    for j, o in enumerate(outs):
        axis = x.ndim - n + j
        size = x.shape[axis]
        if o == size:
            continue
        if size % o == 0:
            shape = x.shape[:axis] + (o, size // o) + x.shape[axis + 1 :]
            x = x.reshape(shape).mean(axis=axis + 1)
            continue
        start, end = _adaptive_bins(size, o)
        pos = np.arange(size)
        mat = ((pos >= start[:, None]) & (pos < end[:, None])) / (end - start)[:, None]
        x = jnp.moveaxis(
            jnp.tensordot(x, jnp.asarray(mat, x.dtype), axes=([axis], [1]), precision=_HIGHEST),
            -1,
            axis,
        )
    return x


def adaptive_avg_pool1d(input: Array, output_size: Any) -> Array:
    """Adaptive average pooling to ``output_size`` over the last dim (torch's bins)."""
    return _adaptive_avg_pool(1, input, output_size)


def adaptive_avg_pool2d(input: Array, output_size: Any) -> Array:
    """Adaptive average pooling over the last two dims; ``None`` keeps a dim's size."""
    return _adaptive_avg_pool(2, input, output_size)


@_fp32_op
def adaptive_avg_pool3d(input: Array, output_size: Any) -> Array:
    """Adaptive average pooling over the last three dims; ``None`` keeps a dim's size."""
    return _adaptive_avg_pool(3, input, output_size)


@eager_kernel
def _adaptive_max_pool(n: int, input: Array, output_size: Any, return_indices: bool) -> Any:
    x = _a(input)
    outs = _adaptive_sizes(x, n, output_size)
    idxs, valids = [], []
    for L, o in zip(x.shape[-n:], outs):
        start, end = _adaptive_bins(L, o)
        kmax = int((end - start).max())
        idx = start[:, None] + np.arange(kmax)[None, :]
        idxs.append(idx)
        valids.append(idx < end[:, None])
    return _gather_max(x, n, idxs, valids, return_indices)


def adaptive_max_pool1d(input: Array, output_size: Any, return_indices: bool = False) -> Any:
    """Adaptive max pooling over the last dim."""
    return _adaptive_max_pool(1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Array, output_size: Any, return_indices: bool = False) -> Any:
    """Adaptive max pooling over the last two dims; indices are flat into ``H*W``."""
    return _adaptive_max_pool(2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Array, output_size: Any, return_indices: bool = False) -> Any:
    """Adaptive max pooling over the last three dims; indices are flat into ``D*H*W``."""
    return _adaptive_max_pool(3, input, output_size, return_indices)


@eager_kernel
def _lp_pool(
    n: int, input: Array, norm_type: float, kernel_size: Any, stride: Any, ceil_mode: bool
) -> Array:
    x = _a(input)
    k = _ntuple(kernel_size, n, "kernel_size")
    out = _avg_pool(n, x**norm_type, k, stride, 0, ceil_mode, True, None)
    out = jnp.sign(out) * jax.nn.relu(jnp.abs(out)) * math.prod(k)
    return out ** (1.0 / norm_type)


def lp_pool1d(
    input: Array, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
) -> Array:
    """Power-average pooling ``(sum x^p)^(1/p)`` over the last dim."""
    return _lp_pool(1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(
    input: Array, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
) -> Array:
    """Power-average pooling ``(sum x^p)^(1/p)`` over the last two dims."""
    return _lp_pool(2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(
    input: Array, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
) -> Array:
    """Power-average pooling ``(sum x^p)^(1/p)`` over the last three dims."""
    return _lp_pool(3, input, norm_type, kernel_size, stride, ceil_mode)


def _max_unpool(
    n: int,
    input: Array,
    indices: Array,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    output_size: Any,
) -> Array:
    x, ind = _a(input), _a(indices)
    k = _ntuple(kernel_size, n, "kernel_size")
    s = k if stride is None else _ntuple(stride, n, "stride")
    p = _ntuple(padding, n, "padding")
    spatial = x.shape[-n:]
    if output_size is None:
        out = tuple((L - 1) * si - 2 * pi + ki for L, ki, si, pi in zip(spatial, k, s, p))
    else:
        out = tuple(int(o) for o in output_size)[-n:]
    lead = x.shape[:-n]
    xf = x.reshape((-1, math.prod(spatial)))
    indf = ind.reshape((-1, math.prod(spatial)))
    rows = jnp.arange(xf.shape[0])[:, None]
    zeros = jnp.zeros((xf.shape[0], math.prod(out)), x.dtype)

    # torch's backward gathers the output gradient at the indices, so inputs that share
    # an index (overlapping pooling windows picked the same maximum) each get it in full
    @jax.custom_jvp
    def unpool(v: Array) -> Array:
        return zeros.at[rows, indf].set(v)

    @unpool.defjvp
    def _unpool_jvp(primals: tuple, tangents: tuple) -> tuple:
        return unpool(primals[0]), zeros.at[rows, indf].add(tangents[0])

    return unpool(xf).reshape(lead + out)


def max_unpool1d(
    input: Array,
    indices: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Array:
    """Inverse of :func:`max_pool1d` given its indices (non-maxima become zero)."""
    return _max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


@_fp32_op
def max_unpool2d(
    input: Array,
    indices: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Array:
    """Inverse of :func:`max_pool2d` given its indices (non-maxima become zero)."""
    return _max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


@_fp32_op
def max_unpool3d(
    input: Array,
    indices: Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Array:
    """Inverse of :func:`max_pool3d` given its indices (non-maxima become zero)."""
    return _max_unpool(3, input, indices, kernel_size, stride, padding, output_size)


def _with_indices(name: str, fn: Any) -> Any:
    def op(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("return_indices", None)
        return fn(*args, **kwargs, return_indices=True)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``{fn.__name__}(..., return_indices=True)``: ``(output, indices)``."
    return op


max_pool1d_with_indices = _with_indices("max_pool1d_with_indices", max_pool1d)
max_pool2d_with_indices = _with_indices("max_pool2d_with_indices", max_pool2d)
max_pool3d_with_indices = _with_indices("max_pool3d_with_indices", max_pool3d)
adaptive_max_pool1d_with_indices = _with_indices(
    "adaptive_max_pool1d_with_indices", adaptive_max_pool1d
)
adaptive_max_pool2d_with_indices = _with_indices(
    "adaptive_max_pool2d_with_indices", adaptive_max_pool2d
)
adaptive_max_pool3d_with_indices = _with_indices(
    "adaptive_max_pool3d_with_indices", adaptive_max_pool3d
)
