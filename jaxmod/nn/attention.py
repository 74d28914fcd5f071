"""``MultiheadAttention`` with torch's parameters, masks and return values.

Follows ``torch.nn.MultiheadAttention`` and ``F.multi_head_attention_forward``
(torch 2.13): packed ``in_proj_weight`` (or ``q/k/v_proj_weight`` when ``kdim``/``vdim``
differ from ``embed_dim``), ``in_proj_bias``, optional ``bias_k``/``bias_v``, and an
``out_proj`` shown as ``NonDynamicallyQuantizableLinear``. Boolean masks mark positions
that may *not* be attended (``True`` = masked), float masks are added to the scores.

Inside, the layout is batch-major (``(B, L, E)``); with ``need_weights=False`` the
attention itself is :func:`jaxmod.nn.functional.scaled_dot_product_attention`
(``jax.nn.dot_product_attention``), with ``need_weights=True`` an explicit softmax.
torch's eval-mode "fast path" is not reproduced; its numbers are the same.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmod.amp._state import S as _amp
from jaxmod.nn import _typerule, init
from jaxmod.nn import functional as F
from jaxmod.nn.linear import Linear
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Parameter, _unwrap

__all__ = ["MultiheadAttention"]

Array = jax.Array


class NonDynamicallyQuantizableLinear(Linear):
    """A :class:`Linear` under torch's name for ``MultiheadAttention.out_proj``."""


def _canonical_mask(
    mask: Any,
    mask_name: str,
    other_type: Any,
    other_name: str,
    target_type: Any,
    check_other: bool = True,
) -> Array | None:
    """torch's ``F._canonical_mask``: a bool mask becomes a float mask with ``-inf``."""
    if mask is None:
        return None
    m = jnp.asarray(_unwrap(mask))
    is_float = jnp.issubdtype(m.dtype, jnp.floating)
    if m.dtype != jnp.bool_ and not is_float:
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and m.dtype != other_type:
        warnings.warn(
            f"Support for mismatched {mask_name} and {other_name} is deprecated. "
            "Use same type for both instead.",
            stacklevel=3,
        )
    if not is_float:
        m = jnp.where(m, jnp.asarray(-jnp.inf, target_type), jnp.zeros((), target_type))
    return m


def _none_or_dtype(x: Any) -> Any:
    if x is None:
        return None
    return jnp.asarray(_unwrap(x)).dtype


class _Config(NamedTuple):
    """Static settings of one attention call (part of the compiled function's key)."""

    num_heads: int
    same: bool
    need_weights: bool
    average_attn_weights: bool
    is_causal: bool
    add_zero_attn: bool
    dropout_p: float


def _in_projection(
    q: Array, k: Array, v: Array, p: dict[str, Any], same: bool
) -> tuple[Array, Array, Array]:
    E = q.shape[-1]
    b = p["in_proj_bias"]
    bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
    w = p["in_proj_weight"]
    if w is not None:
        if same:  # self-attention: one packed matmul
            qkv = F.linear(q, w, b)
            return qkv[..., :E], qkv[..., E : 2 * E], qkv[..., 2 * E :]
        wq, wk, wv = w[:E], w[E : 2 * E], w[2 * E :]
    else:
        wq, wk, wv = p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]
    return F.linear(q, wq, bq), F.linear(k, wk, bk), F.linear(v, wv, bv)


def _attention(
    q_in: Array,
    k_in: Array,
    v_in: Array,
    mask: Array | None,
    kpm: Array | None,
    p: dict[str, Any],
    cfg: _Config,
) -> tuple[Array, Array | None]:
    """Batch-major multi-head attention: ``(B, L, E)`` in, ``(B, L, E)`` out, plus weights."""
    B, L, E = q_in.shape
    S = k_in.shape[1]
    H = cfg.num_heads
    hd = E // H

    q, k, v = _in_projection(q_in, k_in, v_in, p, cfg.same)
    if mask is not None:
        if mask.ndim == 2:
            if mask.shape != (L, S):
                raise RuntimeError(
                    f"The shape of the 2D attn_mask is {tuple(mask.shape)}, but should be {(L, S)}."
                )
            mask = mask[None, None]
        elif mask.ndim == 3:
            if mask.shape != (B * H, L, S):
                raise RuntimeError(
                    f"The shape of the 3D attn_mask is {tuple(mask.shape)}, but should be "
                    f"{(B * H, L, S)}."
                )
            mask = mask.reshape(B, H, L, S)
        else:
            raise RuntimeError(f"attn_mask's dimension {mask.ndim} is not supported")
    extra = 0
    if p["bias_k"] is not None and p["bias_v"] is not None:
        k = jnp.concatenate([k, jnp.broadcast_to(p["bias_k"], (B, 1, E))], 1)
        v = jnp.concatenate([v, jnp.broadcast_to(p["bias_v"], (B, 1, E))], 1)
        extra += 1
    if cfg.add_zero_attn:
        k = jnp.concatenate([k, jnp.zeros((B, 1, E), k.dtype)], 1)
        v = jnp.concatenate([v, jnp.zeros((B, 1, E), v.dtype)], 1)
        extra += 1
    if extra:
        pad = ((0, 0),) * 3 + ((0, extra),)
        if mask is not None:
            mask = jnp.pad(mask, pad)
        if kpm is not None:
            kpm = jnp.pad(kpm, ((0, 0), (0, extra)))
    S = k.shape[1]
    if kpm is not None:
        if kpm.shape != (B, S):
            raise AssertionError(
                f"expecting key_padding_mask shape of {(B, S)}, but got {tuple(kpm.shape)}"
            )
        kpm = kpm[:, None, None, :]
        mask = kpm if mask is None else mask + kpm
    dropout_p = cfg.dropout_p

    q = q.reshape(B, L, H, hd)
    k = k.reshape(B, S, H, hd)
    v = v.reshape(B, S, H, hd)
    weights = None
    if cfg.need_weights:
        scores = jnp.einsum("blhd,bshd->bhls", q * math.sqrt(1.0 / hd), k)
        if mask is not None:
            scores = scores + mask
        amp = _amp.policy
        if amp is not None:
            (scores,) = amp.fp32("softmax", scores)
        weights = jax.nn.softmax(scores, axis=-1)
        if dropout_p > 0.0:
            weights = F.dropout(weights, dropout_p, True)
        out = jnp.einsum("bhls,bshd->blhd", *(amp.low(weights, v) if amp else (weights, v)))
        if cfg.average_attn_weights:
            weights = weights.mean(axis=1)
    else:
        out = F.scaled_dot_product_attention(
            jnp.swapaxes(q, 1, 2),
            jnp.swapaxes(k, 1, 2),
            jnp.swapaxes(v, 1, 2),
            mask,
            dropout_p,
            cfg.is_causal,
        )
        out = jnp.swapaxes(out, 1, 2)
    out = F.linear(out.reshape(B, L, E), p["out_w"], p["out_b"])
    return out, weights


_attention_jit = jax.jit(_attention, static_argnums=6)


class MultiheadAttention(Module):
    """Attention over ``num_heads`` heads of size ``embed_dim // num_heads``.

    Args:
        embed_dim: model width (query features and output features).
        num_heads: parallel heads; must divide ``embed_dim``.
        dropout: dropout on the attention weights (training only).
        bias: whether the input and output projections have biases.
        add_bias_kv: learn a bias row appended to keys and values (``bias_k``, ``bias_v``).
        add_zero_attn: append a zero key/value row after the projections.
        kdim: key features (default ``embed_dim``).
        vdim: value features (default ``embed_dim``).
        batch_first: inputs and outputs are ``(batch, seq, feature)``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != self.embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        dtype = dtype or jnp.float32
        E = embed_dim
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(init._filled((E, E), 0, dtype))
            self.k_proj_weight = Parameter(init._filled((E, self.kdim), 0, dtype))
            self.v_proj_weight = Parameter(init._filled((E, self.vdim), 0, dtype))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(init._filled((3 * E, E), 0, dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(init._filled(3 * E, 0, dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(E, E, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(init._filled((1, 1, E), 0, dtype))
            self.bias_v = Parameter(init._filled((1, 1, E), 0, dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()
        if device is not None:
            self.to(device)

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        query: Any,
        key: Any,
        value: Any,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Array, Array | None]:
        """Attend from ``query`` to ``key``/``value``.

        Shapes: ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or unbatched
        ``(L, E)``; ``key_padding_mask`` ``(N, S)``; ``attn_mask`` ``(L, S)`` or
        ``(N * num_heads, L, S)``. Returns ``(attn_output, attn_weights)``, the weights
        averaged over heads (``(N, L, S)``) or per head (``(N, H, L, S)``), or ``None``
        when ``need_weights=False``.
        """
        same = query is key and key is value  # self-attention: one packed projection
        q_in, k_in, v_in = (jnp.asarray(_unwrap(t)) for t in (query, key, value))
        is_batched = self._check_shapes(q_in, k_in, v_in, key_padding_mask, attn_mask)
        kpm = _canonical_mask(
            key_padding_mask,
            "key_padding_mask",
            _none_or_dtype(attn_mask),
            "attn_mask",
            q_in.dtype,
        )
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        if is_causal and kpm is None and not need_weights:
            mask = None  # the causal hint replaces the (causal) mask
        else:
            mask = _canonical_mask(attn_mask, "attn_mask", None, "", q_in.dtype, False)
            is_causal = False
        # batch-major (B, L, E) inside
        if not is_batched:
            q_in, k_in, v_in = q_in[None], k_in[None], v_in[None]
            if kpm is not None:
                kpm = kpm[None]
        elif not self.batch_first:
            q_in, k_in, v_in = (jnp.swapaxes(t, 0, 1) for t in (q_in, k_in, v_in))
        if q_in.shape[-1] != self.embed_dim:
            raise AssertionError(
                f"was expecting embedding dimension of {self.embed_dim}, but got {q_in.shape[-1]}"
            )
        params = {
            "in_proj_weight": self.in_proj_weight,
            "q_proj_weight": self.q_proj_weight,
            "k_proj_weight": self.k_proj_weight,
            "v_proj_weight": self.v_proj_weight,
            "in_proj_bias": self.in_proj_bias,
            "bias_k": self.bias_k,
            "bias_v": self.bias_v,
            "out_w": self.out_proj.weight,
            "out_b": self.out_proj.bias,
        }
        params = {k: None if v is None else _unwrap(v) for k, v in params.items()}
        dropout_p = float(self.dropout) if self.training else 0.0
        cfg = _Config(
            self.num_heads, same, need_weights, average_attn_weights, is_causal,
            self.add_zero_attn, dropout_p,
        )  # fmt: skip
        # Compiled once per configuration and shape (fast eager calls and gradients);
        # with active dropout it runs op by op, drawing its key from the global generator.
        # Under autocast too: the policy is read while tracing, which this cache ignores.
        core = _attention if dropout_p > 0.0 or _amp.policy is not None else _attention_jit
        out, weights = core(q_in, k_in, v_in, mask, kpm, params, cfg)
        if not is_batched:
            return out[0], (None if weights is None else weights[0])
        if not self.batch_first:
            out = jnp.swapaxes(out, 0, 1)
        return out, weights

    def _check_shapes(self, q: Array, k: Array, v: Array, kpm: Any, mask: Any) -> bool:
        """torch's ``_mha_shape_check``: whether the inputs are batched."""
        if q.ndim == 3:
            if k.ndim != 3 or v.ndim != 3:
                raise AssertionError(
                    "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                    f"{k.ndim}-D and {v.ndim}-D tensors respectively"
                )
            if kpm is not None and jnp.ndim(_unwrap(kpm)) != 2:
                raise AssertionError(
                    "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or "
                    f"2-D but found {jnp.ndim(_unwrap(kpm))}-D tensor instead"
                )
            if mask is not None and jnp.ndim(_unwrap(mask)) not in (2, 3):
                raise AssertionError(
                    "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                    f"but found {jnp.ndim(_unwrap(mask))}-D tensor instead"
                )
            return True
        if q.ndim == 2:
            if k.ndim != 2 or v.ndim != 2:
                raise AssertionError(
                    "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but "
                    f"found {k.ndim}-D and {v.ndim}-D tensors respectively"
                )
            if kpm is not None and jnp.ndim(_unwrap(kpm)) != 1:
                raise AssertionError(
                    "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or "
                    f"1-D but found {jnp.ndim(_unwrap(kpm))}-D tensor instead"
                )
            if mask is not None:
                m = jnp.asarray(_unwrap(mask))
                if m.ndim not in (2, 3):
                    raise AssertionError(
                        "For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D "
                        f"or 3-D but found {m.ndim}-D tensor instead"
                    )
                if m.ndim == 3:
                    expected = (self.num_heads, q.shape[0], k.shape[0])
                    if tuple(m.shape) != expected:
                        raise AssertionError(
                            f"Expected `attn_mask` shape to be {expected} but got {tuple(m.shape)}"
                        )
            return False
        raise AssertionError(
            f"query should be unbatched 2D or batched 3D tensor but received {q.ndim}-D "
            "query tensor"
        )


_typerule.tensor_forwards(globals())
