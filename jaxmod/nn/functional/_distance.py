"""Distance functions: ``cosine_similarity``, ``pairwise_distance`` and ``pdist``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmod.nn.functional._norm import _vector_norm
from jaxmod.nn.functional._util import Array, _a, _axis, _fp32_op


@_fp32_op
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


def pdist(input: Array, p: float = 2.0) -> Array:
    """The ``p``-norm distances between every pair of rows ``i < j`` of an ``(N, M)``
    input, in row-major order of the upper triangle: ``N * (N - 1) / 2`` values."""
    x = _a(input)
    if x.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {x.ndim}D")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    i, j = np.triu_indices(x.shape[0], k=1)
    return _vector_norm(x[i] - x[j], p, 1, keepdims=False)
