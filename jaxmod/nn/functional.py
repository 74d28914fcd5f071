"""``torch.nn.functional`` on ``jax.numpy``, ``jax.lax`` and ``jax.nn``.

Every function keeps torch's name, signature, defaults and layout conventions (channels
first: ``NCL``/``NCHW``/``NCDHW``; ``dim=`` keywords) and is jit-compatible: shapes and
hyper-parameters are static, values may be traced. Weights and biases may be jaxmod
boxes (:class:`~jaxmod.nn.Parameter`, :class:`~jaxmod.nn.Buffer`); they are unwrapped.

Differences from torch that follow from JAX having immutable arrays:

* nothing is modified in place: ``inplace=True`` is accepted and ignored, ``batch_norm``
  and ``instance_norm`` do not update running statistics (modules do that with
  :func:`_batch_norm_stats`), and ``embedding(max_norm=...)`` renormalises the rows it
  returns but leaves the weight unchanged;
* random functions (dropout, ``rrelu`` in training) draw a key from
  :func:`jaxmod.random.next_key` (the global generator, or ``generator=``), and only when
  they actually randomise;
* integer results (``one_hot``, pooling indices) use JAX's default integer dtype
  (``int32`` unless ``jax_enable_x64`` is on) instead of ``int64``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmod.nn.parameter import _unwrap

Array = jax.Array
_HIGHEST = lax.Precision.HIGHEST

# fmt: off
__all__ = [
    # linear
    "linear", "bilinear",
    # convolution
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "unfold", "fold", "pad",
    # pooling
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "lp_pool1d", "lp_pool2d", "lp_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d",
    # normalisation
    "batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm",
    "rms_norm", "normalize",
    # dropout
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout",
    # activations
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu",
    "mish", "sigmoid", "tanh", "softmax", "log_softmax", "softmin", "softplus", "softsign",
    "hardtanh", "hardswish", "hardsigmoid", "hardshrink", "softshrink", "tanhshrink",
    "threshold", "glu", "logsigmoid",
    # sparse
    "embedding", "embedding_bag", "one_hot",
    # attention
    "scaled_dot_product_attention",
    # vision / distances
    "interpolate", "upsample", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    "cosine_similarity", "pairwise_distance",
]
# fmt: on


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def _a(x: Any) -> Any:
    """``x`` as a JAX array (boxes unwrapped); ``None`` stays ``None``."""
    if x is None:
        return None
    return jnp.asarray(_unwrap(x))


def _ntuple(x: Any, n: int, name: str = "argument") -> tuple[int, ...]:
    if isinstance(x, (tuple, list)):
        if len(x) == 1:
            return tuple(int(x[0]) for _ in range(n))
        if len(x) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {x}")
        return tuple(int(v) for v in x)
    return (int(x),) * n


def _neg_inf(dtype: Any) -> Any:
    """The identity of ``max`` as a concrete numpy scalar (reduce_window needs it concrete
    to recognise a differentiable max-pool)."""
    if jnp.issubdtype(dtype, jnp.floating):
        return np.array(-np.inf, dtype)
    return np.array(jnp.iinfo(dtype).min, dtype)


def _up(x: Array) -> Array:
    """Half-precision inputs are normalised in float32 (torch accumulates in float too)."""
    return x.astype(jnp.float32) if x.dtype in (jnp.bfloat16, jnp.float16) else x


def _int_dtype() -> Any:
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def _axis(dim: int, ndim: int) -> int:
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(
            f"Dimension out of range (expected to be in range of "
            f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {dim})"
        )
    return dim % max(ndim, 1)


# ----------------------------------------------------------------------------------------
# linear
# ----------------------------------------------------------------------------------------


def linear(input: Array, weight: Array, bias: Array | None = None) -> Array:
    """``y = input @ weight.T + bias`` over any leading dimensions."""
    x, w, b = _a(input), _a(weight), _a(bias)
    y = jnp.matmul(x, w.T)
    return y if b is None else y + b


def bilinear(input1: Array, input2: Array, weight: Array, bias: Array | None = None) -> Array:
    """``y[..., o] = input1[..., i] weight[o, i, j] input2[..., j] + bias[o]``."""
    x1, x2, w, b = _a(input1), _a(input2), _a(weight), _a(bias)
    y = jnp.einsum("...i,oij,...j->...o", x1, w, x2)
    return y if b is None else y + b


# ----------------------------------------------------------------------------------------
# convolution
# ----------------------------------------------------------------------------------------

_SPATIAL = {1: "H", 2: "HW", 3: "DHW"}


def _dimension_numbers(n: int) -> tuple[str, str, str]:
    s = _SPATIAL[n]
    return ("NC" + s, "OI" + s, "NC" + s)


def _batched(x: Array, n: int, name: str) -> tuple[Array, bool]:
    """Add a batch dimension to an unbatched ``(C, *spatial)`` input."""
    if x.ndim == n + 1:
        return x[None], True
    if x.ndim != n + 2:
        raise ValueError(
            f"{name}: expected {n + 1}D (unbatched) or {n + 2}D (batched) input, "
            f"got input of shape {tuple(x.shape)}"
        )
    return x, False


def _add_bias(y: Array, b: Array | None, n: int) -> Array:
    if b is None:
        return y
    return y + b.reshape((-1,) + (1,) * n)


def _conv(
    n: int,
    input: Array,
    weight: Array,
    bias: Array | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> Array:
    name = f"conv{n}d"
    x, w, b = _a(input), _a(weight), _a(bias)
    x, unbatched = _batched(x, n, name)
    stride = _ntuple(stride, n, "stride")
    dilation = _ntuple(dilation, n, "dilation")
    ksize = w.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * n
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            pads = []
            for k, d in zip(ksize, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))  # extra on the right, as torch
        else:
            raise ValueError(
                f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
            )
    else:
        pads = [(p, p) for p in _ntuple(padding, n, "padding")]
    y = lax.conv_general_dilated(
        x,
        w.astype(x.dtype) if w.dtype != x.dtype else w,
        window_strides=stride,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(n),
        feature_group_count=groups,
    )
    y = _add_bias(y, b, n)
    return y[0] if unbatched else y


def conv1d(
    input: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Array:
    """1-D convolution over ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in/g, k)``.

    ``padding`` is an int, a tuple, ``'valid'`` or ``'same'`` (extra padding goes on the
    right, as in torch).
    """
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(
    input: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Array:
    """2-D convolution over ``(N, C_in, H, W)`` or ``(C_in, H, W)``; weight ``OIHW``."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(
    input: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Array:
    """3-D convolution over ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight ``OIDHW``."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(
    n: int,
    input: Array,
    weight: Array,
    bias: Array | None,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
) -> Array:
    name = f"conv_transpose{n}d"
    x, w, b = _a(input), _a(weight), _a(bias)
    x, unbatched = _batched(x, n, name)
    stride = _ntuple(stride, n, "stride")
    padding = _ntuple(padding, n, "padding")
    output_padding = _ntuple(output_padding, n, "output_padding")
    dilation = _ntuple(dilation, n, "dilation")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise ValueError(
                "output padding must be smaller than either stride or dilation, "
                f"got output_padding={output_padding}"
            )
    # torch layout (C_in, C_out/g, *k) -> forward-conv layout (C_out, C_in/g, *k), flipped.
    c_in, c_out_g = w.shape[0], w.shape[1]
    ksize = w.shape[2:]
    w = w.reshape((groups, c_in // groups, c_out_g) + ksize)
    w = jnp.swapaxes(w, 1, 2).reshape((groups * c_out_g, c_in // groups) + ksize)
    w = jnp.flip(w, axis=tuple(range(2, 2 + n)))
    pads = [
        (d * (k - 1) - p, d * (k - 1) - p + op)
        for k, p, op, d in zip(ksize, padding, output_padding, dilation)
    ]
    y = lax.conv_general_dilated(
        x,
        w.astype(x.dtype) if w.dtype != x.dtype else w,
        window_strides=(1,) * n,
        padding=pads,
        lhs_dilation=stride,
        rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(n),
        feature_group_count=groups,
    )
    y = _add_bias(y, b, n)
    return y[0] if unbatched else y


def conv_transpose1d(
    input: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Array:
    """Transposed 1-D convolution; weight ``(C_in, C_out/groups, k)`` as in torch."""
    return _conv_transpose(
        1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose2d(
    input: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Array:
    """Transposed 2-D convolution; weight ``(C_in, C_out/groups, kH, kW)`` as in torch."""
    return _conv_transpose(
        2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(
    input: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Array:
    """Transposed 3-D convolution; weight ``(C_in, C_out/groups, kD, kH, kW)`` as in torch."""
    return _conv_transpose(
        3, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def unfold(
    input: Array,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> Array:
    """im2col: ``(N, C, H, W) -> (N, C*kH*kW, L)``, columns ordered channel-major."""
    x = _a(input)
    x, unbatched = _batched(x, 2, "unfold")
    k = _ntuple(kernel_size, 2, "kernel_size")
    d = _ntuple(dilation, 2, "dilation")
    p = _ntuple(padding, 2, "padding")
    s = _ntuple(stride, 2, "stride")
    patches = lax.conv_general_dilated_patches(
        x,
        filter_shape=k,
        window_strides=s,
        padding=[(pi, pi) for pi in p],
        rhs_dilation=d,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=_HIGHEST,
    )
    y = patches.reshape(patches.shape[:2] + (-1,))
    return y[0] if unbatched else y


def fold(
    input: Array,
    output_size: Any,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> Array:
    """col2im, the adjoint of :func:`unfold`: ``(N, C*kH*kW, L) -> (N, C, H, W)``.

    Overlapping values are summed, as in torch.
    """
    x = _a(input)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"fold: expected 2D or 3D input, got shape {tuple(x.shape)}")
    k = _ntuple(kernel_size, 2, "kernel_size")
    out_hw = _ntuple(output_size, 2, "output_size")
    kk = k[0] * k[1]
    if x.shape[1] % kk:
        raise ValueError(
            f"fold: expected size of input's dimension 1 to be divisible by the "
            f"product of kernel_size, got {x.shape[1]}"
        )
    c = x.shape[1] // kk
    target = jax.ShapeDtypeStruct((x.shape[0], c) + out_hw, x.dtype)
    transpose = jax.linear_transpose(lambda img: unfold(img, k, dilation, padding, stride), target)
    (y,) = transpose(x)
    return y[0] if unbatched else y


def pad(input: Array, pad: Sequence[int], mode: str = "constant", value: float | None = None):
    """Pad with torch's convention: ``pad`` lists (left, right) pairs from the LAST dim back.

    Modes: ``'constant'`` (negative pads crop), ``'reflect'``, ``'replicate'``,
    ``'circular'``.
    """
    x = _a(input)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > x.ndim:
        raise ValueError(
            "Padding length should be less than or equal to two times the input dimension"
        )
    pairs = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pairs[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        fill = jnp.array(0 if value is None else value, x.dtype)
        return lax.pad(x, fill, [(lo, hi, 0) for lo, hi in pairs])
    if value not in (None, 0):
        raise ValueError(f"Padding mode {mode!r} doesn't take in value argument")
    jmode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}.get(mode)
    if jmode is None:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        # crop first, then pad what is left (torch allows negative circular padding)
        crop = tuple(
            slice(max(-lo, 0), x.shape[i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pairs)
        )
        x = x[crop]
        pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    if mode == "reflect":
        for (lo, hi), size in zip(pairs, x.shape):
            if lo >= size or hi >= size:
                raise ValueError(
                    "Padding size should be less than the corresponding input "
                    f"dimension, but got padding ({lo}, {hi}) for a dimension "
                    f"of size {size}"
                )
    return jnp.pad(x, pairs, mode=jmode)


# ----------------------------------------------------------------------------------------
# pooling
# ----------------------------------------------------------------------------------------


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


def adaptive_avg_pool3d(input: Array, output_size: Any) -> Array:
    """Adaptive average pooling over the last three dims; ``None`` keeps a dim's size."""
    return _adaptive_avg_pool(3, input, output_size)


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
    y = jnp.zeros((xf.shape[0], math.prod(out)), x.dtype).at[rows, indf].set(xf)
    return y.reshape(lead + out)


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


# ----------------------------------------------------------------------------------------
# normalisation
# ----------------------------------------------------------------------------------------


def _channel_shape(x: Array) -> tuple[int, ...]:
    return (1, -1) + (1,) * (x.ndim - 2)


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
        raise ValueError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size "
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


def _abs(x: Array) -> Array:
    """``|x|`` whose derivative at 0 is 0 (``sign``), as torch's, not JAX's 1."""
    return x * lax.stop_gradient(jnp.sign(x))


def _vector_norm(x: Array, p: float, axis: int, keepdims: bool) -> Array:
    """p-norm with torch's gradients: zero at the zero vector (not NaN) and at zero entries."""
    if p == float("inf"):
        return jnp.max(jnp.abs(x), axis=axis, keepdims=keepdims)
    if p == float("-inf"):
        return jnp.min(jnp.abs(x), axis=axis, keepdims=keepdims)
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


def normalize(input: Array, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Array:
    """``input / max(||input||_p, eps)`` along ``dim``."""
    x = _a(input)
    norm = _vector_norm(x, p, _axis(dim, x.ndim), keepdims=True)
    return x / jnp.maximum(norm, eps)


# ----------------------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------------------


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(x: Array, p: float, mask_shape: tuple[int, ...], generator: Any) -> Array:
    from jaxmod.random import next_key

    return jax.random.bernoulli(next_key(generator), 1.0 - p, mask_shape)


def _apply_dropout(x: Array, p: float, training: bool, mask_shape: Any, generator: Any):
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return jnp.zeros_like(x)
    keep = _dropout_mask(x, p, mask_shape, generator)
    return jnp.where(keep, x / jnp.asarray(1.0 - p, x.dtype), jnp.zeros((), x.dtype))


def dropout(
    input: Array,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    generator: Any = None,
) -> Array:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    Identity when ``training`` is false or ``p == 0`` (no key is drawn then).
    """
    _check_p(p)
    x = _a(input)
    return _apply_dropout(x, p, training, x.shape, generator)


def _feature_mask_shape(x: Array, batched: bool) -> tuple[int, ...]:
    keep = 2 if batched else 1
    return tuple(x.shape[:keep]) + (1,) * (x.ndim - keep)


def dropout1d(
    input: Array,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    generator: Any = None,
) -> Array:
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` inputs with probability ``p``."""
    _check_p(p)
    x = _a(input)
    if x.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {x.ndim}D input.")
    return _apply_dropout(x, p, training, _feature_mask_shape(x, x.ndim == 3), generator)


def dropout2d(
    input: Array,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    generator: Any = None,
) -> Array:
    """Zero whole channels of ``(N, C, H, W)`` inputs with probability ``p``.

    As in torch, a 3-D input is read as ``(N, C, L)`` (channel-wise 1-D dropout), with a
    warning.
    """
    _check_p(p)
    x = _a(input)
    if x.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is "
            "deprecated; use dropout instead.",
            stacklevel=2,
        )
    if x.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that "
            "channel-wise 1D dropout behavior is desired - input is interpreted as "
            "shape (N, C, L), where C is the channel dim.",
            stacklevel=2,
        )
    return _apply_dropout(x, p, training, _feature_mask_shape(x, x.ndim >= 2), generator)


def dropout3d(
    input: Array,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    generator: Any = None,
) -> Array:
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` inputs."""
    _check_p(p)
    x = _a(input)
    if x.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is "
            "deprecated; use dropout instead.",
            stacklevel=2,
        )
    return _apply_dropout(x, p, training, _feature_mask_shape(x, x.ndim != 4), generator)


_SELU_ALPHA_PRIME = 1.7580993408473766  # scale * alpha of SELU


def _alpha_dropout(x: Array, p: float, training: bool, mask_shape: Any, generator: Any):
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return jnp.zeros_like(x)
    keep = _dropout_mask(x, p, mask_shape, generator).astype(x.dtype)
    alpha = _SELU_ALPHA_PRIME
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    b = (keep - 1) * (alpha * a) + alpha * a * p
    return x * (keep * a) + b


def alpha_dropout(
    input: Array,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    generator: Any = None,
) -> Array:
    """Dropout that keeps SELU's self-normalising mean and variance."""
    _check_p(p)
    x = _a(input)
    return _alpha_dropout(x, p, training, x.shape, generator)


def feature_alpha_dropout(
    input: Array,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    generator: Any = None,
) -> Array:
    """Channel-wise :func:`alpha_dropout` (masks of shape ``(N, C, 1, ...)``)."""
    _check_p(p)
    x = _a(input)
    return _alpha_dropout(x, p, training, _feature_mask_shape(x, True), generator)


# ----------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------


def relu(input: Array, inplace: bool = False) -> Array:
    """``max(x, 0)``."""
    return jax.nn.relu(_a(input))


def relu6(input: Array, inplace: bool = False) -> Array:
    """``min(max(x, 0), 6)``."""
    return jnp.clip(_a(input), 0, 6)


def leaky_relu(input: Array, negative_slope: float = 0.01, inplace: bool = False) -> Array:
    """``x`` if ``x > 0`` else ``negative_slope * x``."""
    x = _a(input)
    return jnp.where(x > 0, x, x * negative_slope)


def prelu(input: Array, weight: Array) -> Array:
    """Leaky ReLU with learnt slopes ``weight`` (one, or one per channel of dim 1)."""
    x, w = _a(input), _a(weight)
    if x.ndim >= 2 and w.size > 1:
        w = w.reshape((-1,) + (1,) * (x.ndim - 2))
    elif w.size == 1:
        w = w.reshape(())
    return jnp.where(x > 0, x, w * x)


def rrelu(
    input: Array,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
    *,
    generator: Any = None,
) -> Array:
    """Randomised leaky ReLU: slopes ~ U(lower, upper) in training, their mean otherwise."""
    x = _a(input)
    if not training:
        return jnp.where(x >= 0, x, x * ((lower + upper) / 2))
    from jaxmod.random import next_key

    slope = jax.random.uniform(next_key(generator), x.shape, x.dtype, lower, upper)
    return jnp.where(x >= 0, x, x * slope)


def elu(input: Array, alpha: float = 1.0, inplace: bool = False) -> Array:
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return jax.nn.elu(_a(input), alpha)


def selu(input: Array, inplace: bool = False) -> Array:
    """Scaled ELU with the self-normalising constants."""
    return jax.nn.selu(_a(input))


def celu(input: Array, alpha: float = 1.0, inplace: bool = False) -> Array:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    return jax.nn.celu(_a(input), alpha)


def gelu(input: Array, approximate: str = "none") -> Array:
    """GELU, exact (``'none'``) or with the tanh approximation (``'tanh'``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate}")
    return jax.nn.gelu(_a(input), approximate=approximate == "tanh")


def silu(input: Array, inplace: bool = False) -> Array:
    """``x * sigmoid(x)``."""
    return jax.nn.silu(_a(input))


def mish(input: Array, inplace: bool = False) -> Array:
    """``x * tanh(softplus(x))``."""
    x = _a(input)
    return x * jnp.tanh(jax.nn.softplus(x))


def sigmoid(input: Array) -> Array:
    """Logistic sigmoid."""
    return jax.nn.sigmoid(_a(input))


def tanh(input: Array) -> Array:
    """Hyperbolic tangent."""
    return jnp.tanh(_a(input))


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to "
        "include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_prep(input: Array, dim: int | None, dtype: Any, name: str, stacklevel: int):
    x = _a(input)
    if dtype is not None:
        x = x.astype(dtype)
    if dim is None:
        dim = _softmax_dim(name, x.ndim, stacklevel + 1)
    if x.ndim == 0:
        return x, None
    return x, _axis(dim, x.ndim)


def softmax(input: Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None):
    """Softmax along ``dim`` (torch's legacy implicit dim, with a warning, when omitted)."""
    x, axis = _softmax_prep(input, dim, dtype, "softmax", _stacklevel)
    return jnp.ones_like(x) if axis is None else jax.nn.softmax(x, axis=axis)


def log_softmax(input: Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None):
    """Log of the softmax along ``dim``."""
    x, axis = _softmax_prep(input, dim, dtype, "log_softmax", _stacklevel)
    return jnp.zeros_like(x) if axis is None else jax.nn.log_softmax(x, axis=axis)


def softmin(input: Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None):
    """``softmax(-input)`` along ``dim``."""
    x, axis = _softmax_prep(input, dim, dtype, "softmin", _stacklevel)
    return jnp.ones_like(x) if axis is None else jax.nn.softmax(-x, axis=axis)


def softplus(input: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``."""
    x = _a(input)
    bx = x * beta
    return jnp.where(bx > threshold, x, jnp.logaddexp(bx, 0.0) / beta)


def softsign(input: Array) -> Array:
    """``x / (1 + |x|)``."""
    x = _a(input)
    return x / (1 + jnp.abs(x))


def hardtanh(
    input: Array, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Array:
    """Clip to ``[min_val, max_val]``."""
    return jnp.clip(_a(input), min_val, max_val)


def hardswish(input: Array, inplace: bool = False) -> Array:
    """``x * relu6(x + 3) / 6``."""
    x = _a(input)
    return x * jnp.clip(x + 3, 0, 6) / 6


def hardsigmoid(input: Array, inplace: bool = False) -> Array:
    """``relu6(x + 3) / 6``."""
    return jnp.clip(_a(input) + 3, 0, 6) / 6


def hardshrink(input: Array, lambd: float = 0.5) -> Array:
    """``x`` where ``|x| > lambd``, else 0."""
    x = _a(input)
    return jnp.where(jnp.abs(x) > lambd, x, jnp.zeros((), x.dtype))


def softshrink(input: Array, lambd: float = 0.5) -> Array:
    """Shrink towards zero by ``lambd``; 0 inside ``[-lambd, lambd]``."""
    x = _a(input)
    zero = jnp.zeros((), x.dtype)
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, zero))


def tanhshrink(input: Array) -> Array:
    """``x - tanh(x)``."""
    x = _a(input)
    return x - jnp.tanh(x)


def threshold(input: Array, threshold: float, value: float, inplace: bool = False) -> Array:
    """``x`` where ``x > threshold``, else ``value``."""
    x = _a(input)
    return jnp.where(x > threshold, x, jnp.asarray(value, x.dtype))


def glu(input: Array, dim: int = -1) -> Array:
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves of ``dim``."""
    x = _a(input)
    axis = _axis(dim, x.ndim)
    if x.shape[axis] % 2:
        raise RuntimeError(
            f"Halving dimension must be even, but dimension {axis} is size {x.shape[axis]}"
        )
    a, b = jnp.split(x, 2, axis=axis)
    return a * jax.nn.sigmoid(b)


def logsigmoid(input: Array) -> Array:
    """``log(sigmoid(x))``, computed stably."""
    return jax.nn.log_sigmoid(_a(input))


# ----------------------------------------------------------------------------------------
# sparse
# ----------------------------------------------------------------------------------------


def _renorm_rows(rows: Array, max_norm: float, norm_type: float) -> Array:
    # torch renormalises under no_grad: the scale is a constant for autodiff
    norm = _vector_norm(rows, norm_type, rows.ndim - 1, keepdims=True)
    scale = jnp.where(norm > max_norm, max_norm / (norm + 1e-7), 1.0)
    return rows * lax.stop_gradient(scale).astype(rows.dtype)


def _scale_grad_by_freq(rows: Array, idx: Array, num: int) -> Array:
    counts = jnp.zeros((num,), rows.dtype).at[idx.reshape(-1)].add(1)
    freq = counts[idx][..., None]
    frozen = lax.stop_gradient(rows)
    return frozen + (rows - frozen) / freq


def embedding(
    input: Array,
    weight: Array,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Array:
    """Look up rows of ``weight`` by integer ``input``.

    ``padding_idx`` rows get no gradient. With ``max_norm``, the returned rows are
    renormalised to at most ``max_norm`` but ``weight`` itself is not changed in place (as
    torch does). ``sparse`` is accepted and ignored.
    """
    idx, w = _a(input), _a(weight)
    num = w.shape[0]
    rows = jnp.take(w, idx, axis=0)
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError("Padding_idx must be within num_embeddings")
        pad_i = padding_idx % num
        frozen = jnp.take(lax.stop_gradient(w), idx, axis=0)
        rows = jnp.where((idx == pad_i)[..., None], frozen, rows)
    if scale_grad_by_freq:
        rows = _scale_grad_by_freq(rows, idx, num)
    if max_norm is not None:
        rows = _renorm_rows(rows, max_norm, norm_type)
    return rows


def embedding_bag(
    input: Array,
    weight: Array,
    offsets: Array | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Array | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Array:
    """Sum, mean or max of bags of embeddings.

    ``input`` is ``(B, N)`` (one bag per row) or 1-D with ``offsets`` giving each bag's
    start. Empty bags give zeros; ``padding_idx`` entries are left out of their bag.
    """
    idx, w = _a(input), _a(weight)
    psw = _a(per_sample_weights)
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode}")
    if psw is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. "
            f"per_sample_weights is only supported for mode='sum' "
            f"(got mode='{mode}')."
        )
    num = w.shape[0]
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None")
        bags = idx.shape[0]
        seg = jnp.repeat(jnp.arange(bags), idx.shape[1])
        idx = idx.reshape(-1)
        if psw is not None:
            psw = psw.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        off = _a(offsets)
        bags = off.shape[0] - (1 if include_last_offset else 0)
        seg = jnp.searchsorted(off, jnp.arange(idx.shape[0]), side="right") - 1
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    rows = jnp.take(w, idx, axis=0)
    if scale_grad_by_freq:
        rows = _scale_grad_by_freq(rows, idx, num)
    if max_norm is not None:
        rows = _renorm_rows(rows, max_norm, norm_type)
    keep = jnp.ones(idx.shape, bool)
    if padding_idx is not None:
        keep = idx != padding_idx % num
    seg = jnp.where(keep, seg, bags)  # dropped: out of range
    if mode == "max":
        out = jax.ops.segment_max(rows, seg, num_segments=bags)
        counts = jax.ops.segment_sum(keep.astype(jnp.int32), seg, num_segments=bags)
        return jnp.where((counts > 0)[:, None], out, jnp.zeros((), w.dtype))
    if psw is not None:
        rows = rows * psw[:, None]
    out = jax.ops.segment_sum(rows, seg, num_segments=bags)
    if mode == "mean":
        counts = jax.ops.segment_sum(keep.astype(w.dtype), seg, num_segments=bags)
        out = out / jnp.maximum(counts, 1)[:, None]
    return out


def one_hot(tensor: Array, num_classes: int = -1) -> Array:
    """One-hot encoding of integer ``tensor`` with a trailing ``num_classes`` dim.

    ``num_classes=-1`` needs a concrete ``tensor`` (it uses ``max + 1``). Out-of-range
    values give all-zero rows instead of raising.
    """
    x = _a(tensor)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise RuntimeError("one_hot is only applicable to index tensor.")
    if num_classes == -1:
        if isinstance(x, jax.core.Tracer):
            raise ValueError(
                "one_hot with num_classes=-1 needs a concrete input; pass num_classes under jit"
            )
        num_classes = int(jnp.max(x)) + 1 if x.size else 0
    return jax.nn.one_hot(x, num_classes, dtype=_int_dtype())


# ----------------------------------------------------------------------------------------
# attention
# ----------------------------------------------------------------------------------------


def _safe_softmax(scores: Array) -> Array:
    """Softmax whose fully masked (all ``-inf``) rows are zero, as torch's math path."""
    row_ok = jnp.isfinite(jnp.max(scores, axis=-1, keepdims=True))
    probs = jax.nn.softmax(jnp.where(row_ok, scores, 0.0), axis=-1)
    return jnp.where(row_ok, probs, 0.0)


def _sdpa_reference(q, k, v, mask, dropout_p, is_causal, scale):
    scores = jnp.einsum("...le,...se->...ls", q, k) * jnp.asarray(scale, q.dtype)
    L, S = scores.shape[-2:]
    neg = jnp.array(-jnp.inf, scores.dtype)
    if is_causal:
        scores = jnp.where(jnp.tril(jnp.ones((L, S), bool)), scores, neg)
    if mask is not None:
        if mask.dtype == jnp.bool_:
            scores = jnp.where(mask, scores, neg)
        else:
            scores = scores + mask.astype(scores.dtype)
    probs = _safe_softmax(scores)
    if dropout_p > 0.0:
        probs = dropout(probs, dropout_p, True)
    return jnp.einsum("...ls,...sv->...lv", probs, v)


def scaled_dot_product_attention(
    query: Array,
    key: Array,
    value: Array,
    attn_mask: Array | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Array:
    """Attention over torch's ``(..., L, E)`` layout.

    ``attn_mask`` is boolean (``True`` = takes part) or float (added to the scores);
    ``is_causal`` uses the top-left aligned lower-triangular mask; fully masked rows give
    zeros. ``enable_gqa`` repeats key/value heads (dim -3) to match the query heads.
    Without dropout and with 3-D/4-D inputs of one head size this calls
    ``jax.nn.dot_product_attention`` (fused kernels on GPU); otherwise an explicit einsum
    path. Dropout draws a key from the global generator.
    """
    q, k, v, mask = _a(query), _a(key), _a(value), _a(attn_mask)
    if is_causal and mask is not None:
        raise RuntimeError(
            "_scaled_dot_product_attention: Explicit attn_mask should not be set when "
            "is_causal=True"
        )
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        hq, hk = q.shape[-3], k.shape[-3]
        if hq % hk:
            raise ValueError(
                f"number of query heads ({hq}) must be a multiple of key/value heads ({hk})"
            )
        rep = hq // hk
    else:
        rep = 1
    fast = (
        dropout_p == 0.0
        and q.ndim in (3, 4)
        and k.ndim == q.ndim
        and v.ndim == q.ndim
        and v.shape[-1] == q.shape[-1]
        and q.dtype == k.dtype == v.dtype
        and (mask is None or mask.ndim <= q.ndim)
        and q.shape[:-3] == k.shape[:-3] == v.shape[:-3]
        and (q.ndim == 4 or q.shape[0] == k.shape[0] == v.shape[0])
    )
    if not fast:
        if rep > 1:
            k = jnp.repeat(k, rep, axis=-3)
            v = jnp.repeat(v, rep, axis=-3)
        return _sdpa_reference(q, k, v, mask, dropout_p, is_causal, scale)

    three = q.ndim == 3
    if three:  # (B, L, E) -> one head
        q, k, v = q[:, :, None], k[:, :, None], v[:, :, None]
    else:  # (B, H, L, E) -> (B, L, H, E)
        q, k, v = (jnp.swapaxes(t, 1, 2) for t in (q, k, v))
    bias = bmask = row_ok = None
    if mask is not None:
        m4 = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
        if three and mask.ndim == 3:
            m4 = mask[:, None]
        if m4.dtype == jnp.bool_:
            bmask = m4
            row_ok = jnp.any(m4, axis=-1)
        else:
            row_ok = jnp.any(m4 > -jnp.inf, axis=-1)
            bias = jnp.maximum(m4.astype(q.dtype), jnp.finfo(q.dtype).min / 2)
    out = jax.nn.dot_product_attention(
        q, k, v, bias=bias, mask=bmask, scale=float(scale), is_causal=is_causal
    )
    out = out[:, :, 0] if three else jnp.swapaxes(out, 1, 2)
    if row_ok is not None:
        row_ok = row_ok[:, 0] if three else row_ok
        out = jnp.where(row_ok[..., None], out, jnp.zeros((), out.dtype))
    return out


# ----------------------------------------------------------------------------------------
# vision: interpolation and pixel rearrangement
# ----------------------------------------------------------------------------------------


def _interp_scale(in_size: int, out_size: int, align_corners: bool, scale: float | None):
    """torch's ``area_pixel_compute_scale`` in float32."""
    f32 = np.float32
    if align_corners:
        return f32(in_size - 1) / f32(out_size - 1) if out_size > 1 else f32(0)
    if scale is not None and scale > 0:
        return f32(1.0 / scale)
    return f32(in_size) / f32(out_size)


def _linear_taps(in_size, out_size, align_corners, scale):
    f32 = np.float32
    s = _interp_scale(in_size, out_size, align_corners, scale)
    dst = np.arange(out_size, dtype=f32)
    if align_corners:
        src = s * dst
    else:
        src = np.maximum(s * (dst + f32(0.5)) - f32(0.5), f32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lam = np.clip(src - i0.astype(f32), 0, 1).astype(f32)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return [i0, i1], [f32(1) - lam, lam]


def _cubic_taps(in_size, out_size, align_corners, scale):
    f32 = np.float32
    A = f32(-0.75)
    s = _interp_scale(in_size, out_size, align_corners, scale)
    dst = np.arange(out_size, dtype=f32)
    src = s * dst if align_corners else s * (dst + f32(0.5)) - f32(0.5)
    i = np.floor(src).astype(np.int64)
    t = (src - i.astype(f32)).astype(f32)

    def c1(x):  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def c2(x):  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    weights = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]
    idxs = [np.clip(i + j, 0, in_size - 1) for j in (-1, 0, 1, 2)]
    return idxs, weights


def _nearest_taps(in_size, out_size, scale, exact):
    if out_size == in_size:
        return np.arange(out_size)
    if not exact and out_size == 2 * in_size:
        return np.arange(out_size) >> 1
    if scale is not None and scale > 0:
        s = np.float32(1.0 / scale)
    else:
        s = np.float32(in_size) / np.float32(out_size)
    if exact:
        src = np.floor((np.arange(out_size, dtype=np.float64) + 0.5) * np.float64(s))
    else:
        src = np.floor(np.arange(out_size, dtype=np.float32) * s)
    return np.minimum(src.astype(np.int64), in_size - 1)


def _apply_taps(x: Array, axis: int, idxs: list, weights: list) -> Array:
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for i, w in zip(idxs, weights):
        term = jnp.take(x, jnp.asarray(i, jnp.int32), axis=axis) * jnp.asarray(w, x.dtype).reshape(
            shape
        )
        out = term if out is None else out + term
    return out


_MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(
    input: Array,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Array:
    """Resize ``(N, C, *spatial)`` with torch's index formulas.

    Modes: ``'nearest'`` (source ``floor(i * scale)``), ``'nearest-exact'``, ``'linear'``,
    ``'bilinear'``, ``'trilinear'``, ``'bicubic'`` (A = -0.75, clamped borders) and
    ``'area'`` (adaptive average pooling). ``antialias`` is not supported.
    """
    x = _a(input)
    n = x.ndim - 2
    if n < 1:
        raise ValueError(f"Input Error: expected at least 3D input, got {x.ndim}D")
    if mode in _MODE_DIMS and _MODE_DIMS[mode] != n:
        raise NotImplementedError(
            f"Got {x.ndim}D input, but {mode} mode needs {_MODE_DIMS[mode] + 2}D input"
        )
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    align_corners = bool(align_corners)
    spatial = x.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError("either size or scale_factor should be defined, not both")
    if size is not None:
        outs = _ntuple(size, n, "size")
        scales = [None] * n
    else:
        sf = (
            tuple(float(s) for s in scale_factor)
            if isinstance(scale_factor, (tuple, list))
            else (float(scale_factor),) * n
        )
        if len(sf) != n:
            raise ValueError(
                f"scale_factor shape must match input shape. Input is {n}D, "
                f"scale_factor size is {len(sf)}"
            )
        outs = tuple(math.floor(L * s) for L, s in zip(spatial, sf))
        scales = [None] * n if recompute_scale_factor else list(sf)
    if mode == "area":
        return _adaptive_avg_pool(n, x, outs)
    for j, (L, o, s) in enumerate(zip(spatial, outs, scales)):
        axis = 2 + j
        if mode in ("nearest", "nearest-exact"):
            idx = _nearest_taps(L, o, s, mode == "nearest-exact")
            x = jnp.take(x, jnp.asarray(idx, jnp.int32), axis=axis)
        elif mode in ("linear", "bilinear", "trilinear"):
            x = _apply_taps(x, axis, *_linear_taps(L, o, align_corners, s))
        elif mode == "bicubic":
            x = _apply_taps(x, axis, *_cubic_taps(L, o, align_corners, s))
        else:
            raise NotImplementedError(f"Input Error: unsupported interpolation mode {mode!r}")
    return x


def upsample(
    input: Array,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Array:
    """Deprecated alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def pixel_shuffle(input: Array, upscale_factor: int) -> Array:
    """``(*, C*r*r, H, W) -> (*, C, H*r, W*r)``."""
    x = _a(input)
    r = int(upscale_factor)
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise RuntimeError(
            f"pixel_shuffle expects its input's 'channel' dimension to be "
            f"divisible by the square of upscale_factor, but input.size(-3)={c} "
            f"is not divisible by {r * r}"
        )
    nl = len(lead)
    x = x.reshape((*lead, c // (r * r), r, r, h, w))
    x = jnp.transpose(x, (*range(nl), nl, nl + 3, nl + 1, nl + 4, nl + 2))
    return x.reshape((*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Array, downscale_factor: int) -> Array:
    """``(*, C, H*r, W*r) -> (*, C*r*r, H, W)``."""
    x = _a(input)
    r = int(downscale_factor)
    *lead, c, h, w = x.shape
    if h % r or w % r:
        raise RuntimeError(
            f"pixel_unshuffle expects height and width to be divisible by "
            f"downscale_factor, got {h}x{w} and {r}"
        )
    nl = len(lead)
    x = x.reshape((*lead, c, h // r, r, w // r, r))
    x = jnp.transpose(x, (*range(nl), nl, nl + 2, nl + 4, nl + 1, nl + 3))
    return x.reshape((*lead, c * r * r, h // r, w // r))


def channel_shuffle(input: Array, groups: int) -> Array:
    """Interleave channels of ``(N, C, *)``: ``(g, C/g)`` channel blocks are transposed."""
    x = _a(input)
    n, c = x.shape[0], x.shape[1]
    if c % groups:
        raise RuntimeError(
            f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups."
        )
    rest = x.shape[2:]
    x = x.reshape((n, groups, c // groups) + rest)
    return jnp.swapaxes(x, 1, 2).reshape((n, c) + rest)


# ----------------------------------------------------------------------------------------
# distances
# ----------------------------------------------------------------------------------------


def cosine_similarity(x1: Array, x2: Array, dim: int = 1, eps: float = 1e-8) -> Array:
    """Cosine similarity along ``dim``, as torch 2.x computes it.

    Each input is divided by its own norm clamped to at least ``eps`` (the clamp is not
    differentiated), then the products are summed: ``sum(x1/max(|x1|,eps) *
    x2/max(|x2|,eps))``.
    """
    a, b = _a(x1), _a(x2)
    a, b = jnp.broadcast_arrays(a, b)
    axis = _axis(dim, a.ndim)

    def unit(t: Array) -> Array:
        n = _vector_norm(t, 2, axis, keepdims=True)
        n = n + lax.stop_gradient(jnp.maximum(n, eps) - n)
        return t / n

    return jnp.sum(unit(a) * unit(b), axis=axis)


def pairwise_distance(
    x1: Array, x2: Array, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Array:
    """``||x1 - x2 + eps||_p`` over the last dim."""
    a, b = _a(x1), _a(x2)
    d = a - b + eps
    if d.ndim == 0:
        d = d[None]
    return _vector_norm(d, p, d.ndim - 1, keepdims=keepdim)


# Losses live in their own file; ``F.cross_entropy`` etc. come from here as in torch.
from jaxmod.nn._functional_losses import *  # noqa: E402, F403
from jaxmod.nn._functional_losses import __all__ as _loss_names  # noqa: E402

__all__ = [*__all__, *_loss_names]  # noqa: PLE0605
