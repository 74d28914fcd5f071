"""Linear maps: ``linear`` and ``bilinear``."""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxmod._tensor.errors import ShapeError, expand_error
from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._util import Array, _a, _amp, _same_float

LINEAR_MISMATCH = "mat1 and mat2 must have the same dtype, but got {x} and {w}"


@eager_kernel
def linear(input: Array, weight: Array, bias: Array | None = None) -> Array:
    """``y = input @ weight.T + bias`` over any leading dimensions."""
    x, w, b = _a(input), _a(weight), _a(bias)
    if _amp.policy is not None:
        x, w, b = _amp.policy.low(x, w, b)
    _same_float(x, w, LINEAR_MISMATCH)
    xs, ws = tuple(x.shape), tuple(w.shape)
    if len(ws) == 2 and xs and xs[-1] != ws[1]:
        rows = math.prod(xs[:-1]) if len(xs) > 1 else 1
        raise ShapeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{xs[-1]} and {ws[1]}x{ws[0]})"
        )
    y = jnp.matmul(x, w.T)
    if b is None:
        return y
    try:
        jnp.broadcast_shapes(tuple(b.shape), tuple(y.shape))
    except ValueError:
        raise expand_error(tuple(b.shape), tuple(y.shape)) from None
    return y + b


@eager_kernel
def bilinear(input1: Array, input2: Array, weight: Array, bias: Array | None = None) -> Array:
    """``y[..., o] = input1[..., i] weight[o, i, j] input2[..., j] + bias[o]``."""
    x1, x2, w, b = _a(input1), _a(input2), _a(weight), _a(bias)
    _same_float(x1, w, LINEAR_MISMATCH)
    y = jnp.einsum("...i,oij,...j->...o", x1, w, x2)
    return y if b is None else y + b
