"""Convolutions (``conv*d``, ``conv_transpose*d``) and ``unfold``/``fold``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._util import _HIGHEST, Array, _a, _amp, _ntuple, _same_float

CONV_MISMATCH = "Input type ({x}) and weight type ({w}) should be the same"

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


@eager_kernel
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
    if _amp.policy is not None:
        x, w, b = _amp.policy.low(x, w, b)
    _same_float(x, w, CONV_MISMATCH)
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


@eager_kernel
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
    if _amp.policy is not None:
        x, w, b = _amp.policy.low(x, w, b)
    _same_float(x, w, CONV_MISMATCH)
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
