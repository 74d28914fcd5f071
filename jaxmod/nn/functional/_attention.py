"""Scaled dot-product attention."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxmod.nn.functional._dropout import dropout
from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._util import Array, _a, _amp


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
    # Dropout draws its key inside (from the global generator): that path runs op by op.
    kernel = _sdpa if dropout_p == 0.0 else _sdpa.__eager_body__
    return kernel(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)


@eager_kernel
def _sdpa(
    query: Array,
    key: Array,
    value: Array,
    attn_mask: Array | None,
    dropout_p: float,
    is_causal: bool,
    scale: float | None,
    enable_gqa: bool,
) -> Array:
    q, k, v, mask = _a(query), _a(key), _a(value), _a(attn_mask)
    if _amp.policy is not None:
        q, k, v = _amp.policy.low(q, k, v)
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
