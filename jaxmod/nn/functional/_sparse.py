"""Embedding look-ups and one-hot encoding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._norm import _vector_norm
from jaxmod.nn.functional._util import Array, _a, _check_index_range, _int_dtype
from jaxmod.nn.parameter import _unwrap


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
    torch does). ``sparse`` is accepted and ignored. Concrete indices outside
    ``[0, num_embeddings)`` raise torch's ``IndexError``; under a trace they read NaN rows.
    """
    _check_index_range(input, np.shape(_unwrap(weight))[0], "index out of range in self")
    return _embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq)


@eager_kernel
def _embedding(
    input: Array,
    weight: Array,
    padding_idx: int | None,
    max_norm: float | None,
    norm_type: float,
    scale_grad_by_freq: bool,
) -> Array:
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

    ``num_classes=-1`` needs a concrete ``tensor`` (it uses ``max + 1``). Concrete
    values outside ``[0, num_classes)`` raise torch's ``RuntimeError``; under a trace
    they cannot be checked and give all-zero rows.
    """
    x = _a(tensor)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise RuntimeError("one_hot is only applicable to index tensor.")
    if not isinstance(x, jax.core.Tracer) and x.size:
        values = np.asarray(x)
        if values.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if num_classes != -1 and values.max() >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    if num_classes == -1:
        if isinstance(x, jax.core.Tracer):
            raise ValueError(
                "one_hot with num_classes=-1 needs a concrete input; pass num_classes under jit"
            )
        num_classes = int(jnp.max(x)) + 1 if x.size else 0
    return jax.nn.one_hot(x, num_classes, dtype=_int_dtype())
