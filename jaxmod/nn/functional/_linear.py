"""Linear maps: ``linear`` and ``bilinear``."""

from __future__ import annotations

import jax.numpy as jnp

from jaxmod.nn.functional._util import Array, _a


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
