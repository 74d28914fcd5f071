"""Loss functions with the names, signatures and numerics of ``torch.nn.functional``.

This file holds the shared helpers and the classification and sequence losses; the
regression, embedding and ranking losses are in :mod:`._loss_regression`.

Every function accepts JAX arrays, numpy arrays or jaxmod boxes (:class:`Parameter`,
:class:`Buffer`, ...), is differentiable with ``jax.grad`` and traceable by ``jax.jit``:
``ignore_index`` and padding are handled with masks, never with data-dependent Python
control flow. ``reduction`` is one of ``'none'``, ``'mean'`` and ``'sum'`` (``kl_div``
also takes ``'batchmean'``); the deprecated ``size_average``/``reduce`` arguments are
accepted and override ``reduction`` as they do in torch.

Checks that torch performs on values (targets in range, probabilities in ``[0, 1]``) are
not performed, because they would need the data on the host; shapes are checked.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmod._tensor.errors import ShapeError, check_broadcast
from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._util import _check_index_range, _fp32_op
from jaxmod.nn.parameter import _unwrap

Array = jax.Array
ArrayLike = Any  # jax/numpy arrays, Python scalars, or jaxmod boxes

_EPSILON = 1e-12  # torch's EPSILON in Loss.cpp (cosine_embedding_loss, bce backward)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _arr(x: ArrayLike) -> Array:
    return jnp.asarray(_unwrap(x))


def _float(x: ArrayLike) -> Array:
    """As an array, promoting integers and bools to float32 as torch's float ops do."""
    x = _arr(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    return x


def _legacy(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's handling of the deprecated ``size_average``/``reduce`` arguments."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
        stacklevel=3,
    )
    return ret


def _check_reduction(reduction: str) -> None:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduce(loss: Array, reduction: str) -> Array:
    _check_reduction(reduction)
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _warn_size(input: Array, target: Array) -> None:
    """torch's warning for differently sized input and target, then torch's error when
    they do not broadcast at all."""
    if jnp.shape(input) != jnp.shape(target):
        warnings.warn(
            f"Using a target size ({tuple(jnp.shape(target))}) that is different to the input "
            f"size ({tuple(jnp.shape(input))}). This will likely lead to incorrect results due "
            "to broadcasting. Please ensure they have the same size.",
            stacklevel=3,
        )
        check_broadcast(tuple(jnp.shape(input)), tuple(jnp.shape(target)))


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _weighted(loss: Array, weight: Any, input: Array, reduction: str, mean_by_weight: bool):
    """The optional per-element ``weight`` path of mse/l1/huber (torch 2.6+)."""
    weight = _float(weight)
    if weight.shape != input.shape:
        raise ValueError("Weights and input must have the same size.")
    loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return jnp.sum(loss)
    if reduction == "mean":
        return jnp.sum(loss) / jnp.sum(weight) if mean_by_weight else jnp.mean(loss)
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")


def _div_total(total: Array, weight_sum: Array) -> Array:
    """``total / weight_sum``; NaN when nothing counts, as torch, but with zero gradients."""
    empty = weight_sum == 0
    return total / jnp.where(empty, 1.0, weight_sum) + jnp.where(empty, jnp.nan, 0.0)


def _class_weight_shape(ndim: int, class_dim: int, n_classes: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[class_dim] = n_classes
    return tuple(shape)


# --------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------
def _nll(
    logp: Array,
    target: Array,
    weight: Array | None,
    ignore_index: int,
    reduction: str,
) -> Array:
    """Negative log likelihood of ``target`` classes in ``logp`` (class axis 1, or 0)."""
    _check_reduction(reduction)
    class_dim = 0 if logp.ndim == 1 else 1
    want = logp.shape[:class_dim] + logp.shape[class_dim + 1 :]
    if target.shape != want:  # torch's two checks, in its order, with its types
        if logp.ndim >= 2 and target.ndim >= 1 and target.shape[0] != logp.shape[0]:
            raise ValueError(
                f"Expected input batch_size ({logp.shape[0]}) to match target batch_size "
                f"({target.shape[0]})."
            )
        raise ShapeError(f"Expected target size {list(want)}, got {list(target.shape)}")
    target = target.astype(jnp.int32)
    keep = target != ignore_index
    safe = jnp.where(keep, target, 0)
    picked = jnp.take_along_axis(logp, jnp.expand_dims(safe, class_dim), axis=class_dim)
    picked = jnp.squeeze(picked, class_dim)
    if weight is None:
        w = keep.astype(logp.dtype)
    else:
        w = jnp.where(keep, weight.astype(logp.dtype)[safe], 0.0)
    loss = -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return jnp.sum(loss)
    return _div_total(jnp.sum(loss), jnp.sum(w))


def _check_targets(input: ArrayLike, target: ArrayLike, ignore_index: int) -> None:
    """Class-index targets outside ``[0, C)`` (other than ``ignore_index``) raise torch's
    error when the targets are concrete."""
    shape = np.shape(_unwrap(input))
    if shape:
        classes = shape[0] if len(shape) == 1 else shape[1]
        _check_index_range(target, classes, "Target {} is out of bounds.", ignore_index)


@_fp32_op
def nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """Negative log likelihood loss on log-probabilities ``input`` of shape (N, C, ...) or (C,).

    With ``weight``, ``'mean'`` divides by the summed weights of the non-ignored targets.
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_targets(input, target, ignore_index)
    return _nll_loss(input, target, weight, ignore_index, reduction)


@eager_kernel
def _nll_loss(
    input: ArrayLike, target: ArrayLike, weight: ArrayLike | None, ignore_index: int, reduction: str
) -> Array:
    input = _float(input)
    weight = None if weight is None else _float(weight)
    return _nll(input, _arr(target), weight, ignore_index, reduction)


@_fp32_op
def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    """Cross entropy between logits ``input`` (N, C, d1, ...) or (C,) and ``target``.

    ``target`` holds class indices (shape of ``input`` without the class axis) or, when it
    has the same shape as ``input``, class probabilities. ``weight``, ``ignore_index``
    and ``label_smoothing`` combine exactly as in torch.
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_targets(input, target, ignore_index)
    return _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


@eager_kernel
def _cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> Array:
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    input = _float(input)
    target = _arr(target)
    weight = None if weight is None else _float(weight).astype(input.dtype)
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = jax.nn.log_softmax(input, axis=class_dim)
    w_b = (
        None
        if weight is None
        else weight.reshape(_class_weight_shape(input.ndim, class_dim, n_classes))
    )

    if target.shape == input.shape:  # class probabilities
        if not jnp.issubdtype(target.dtype, jnp.floating):
            raise ValueError(
                "Expected floating point type for target with class probabilities, "
                f"got {target.dtype}"
            )
        if ignore_index >= 0:
            raise ValueError("ignore_index is not supported for floating point target")
        target = target.astype(input.dtype)
        if label_smoothing > 0.0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        prod = logp * target if w_b is None else logp * target * w_b
        if reduction == "none":
            return -jnp.sum(prod, axis=class_dim)
        if reduction == "sum":
            return -jnp.sum(prod)
        return -jnp.sum(prod) / (input.size / n_classes)

    nll = _nll(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0.0:
        return nll
    target = target.astype(jnp.int32)
    ignored = target == ignore_index
    smooth = -jnp.sum(logp if w_b is None else logp * w_b, axis=class_dim)
    smooth = jnp.where(ignored, 0.0, smooth)
    if reduction == "none":
        ret = smooth
    elif reduction == "sum":
        ret = jnp.sum(smooth)
    elif weight is None:
        ret = _div_total(jnp.sum(smooth), jnp.sum(~ignored).astype(smooth.dtype))
    else:
        kept_weight = jnp.where(ignored, 0.0, weight[jnp.where(ignored, 0, target)])
        ret = _div_total(jnp.sum(smooth), jnp.sum(kept_weight))
    return (1 - label_smoothing) * nll + ret * (label_smoothing / n_classes)


@jax.custom_jvp
def _bce(x: Array, y: Array) -> Array:
    log_x = jnp.maximum(jnp.log(x), -100.0)
    log_1mx = jnp.maximum(jnp.log1p(-x), -100.0)
    return (y - 1) * log_1mx - y * log_x


@_bce.defjvp
def _bce_jvp(primals: tuple[Array, Array], tangents: tuple[Array, Array]):
    x, y = primals
    dx, dy = tangents
    # torch's backward: (x - y) / max(x (1 - x), EPSILON), finite even at x = 0 or 1.
    gx = (x - y) / jnp.maximum((1 - x) * x, _EPSILON)
    gy = jnp.maximum(jnp.log1p(-x), -100.0) - jnp.maximum(jnp.log(x), -100.0)
    return _bce(x, y), gx * dx + gy * dy


@_fp32_op
def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """Binary cross entropy between probabilities ``input`` and ``target``.

    Logarithms are clamped to ``>= -100`` and the gradient uses torch's formula
    ``(x - y) / max(x (1 - x), 1e-12)``, so saturated inputs give finite values.
    """
    reduction = _legacy(size_average, reduce, reduction)
    input = _float(input)
    target = _float(target).astype(input.dtype)
    if target.shape != input.shape:
        raise ValueError(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}) is deprecated. Please ensure they have the same size."
        )
    loss = _bce(input, target)
    if weight is not None:
        loss = loss * _float(weight)
    return _reduce(loss, reduction)


@_fp32_op
def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: ArrayLike | None = None,
) -> Array:
    """Sigmoid + binary cross entropy in one numerically stable expression.

    ``pos_weight`` multiplies the positive term and broadcasts along the last axis.
    """
    reduction = _legacy(size_average, reduce, reduction)
    input = _float(input)
    target = _float(target).astype(input.dtype)
    if target.shape != input.shape:
        raise ValueError(
            f"Target size ({target.shape}) must be the same as input size ({input.shape})"
        )
    log_sig = jax.nn.log_sigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * ((_float(pos_weight) - 1) * target + 1)
    loss = (1 - target) * input - log_sig
    if weight is not None:
        loss = loss * _float(weight)
    return _reduce(loss, reduction)


@_fp32_op
def multilabel_soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """One-versus-all logistic loss, averaged over the classes (last axis)."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    input = _float(input)
    target = _float(target)
    loss = -(target * jax.nn.log_sigmoid(input) + (1 - target) * jax.nn.log_sigmoid(-input))
    if weight is not None:
        loss = loss * _float(weight)
    loss = jnp.sum(loss, axis=-1) / input.shape[-1]
    return _reduce(loss, reduction)


@_fp32_op
def multi_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    p: int = 1,
    margin: float = 1.0,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """Multi-class hinge loss on ``input`` (N, C) or (C,) with class-index ``target``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    input = _float(input)
    target = _arr(target).astype(jnp.int32)
    if input.ndim not in (1, 2) or target.shape != input.shape[:-1]:
        raise ValueError(
            "Expected non-empty vector or matrix input and a target of the batch shape, got "
            f"input {input.shape} and target {target.shape}"
        )
    n_classes = input.shape[-1]
    x_y = jnp.take_along_axis(input, target[..., None], axis=-1)
    z = jax.nn.relu(margin - x_y + input)
    h = z if p == 1 else z * z
    if weight is not None:
        h = h * _float(weight)[target][..., None]
    not_target = jnp.arange(n_classes) != target[..., None]
    loss = jnp.sum(jnp.where(not_target, h, 0.0), axis=-1) / n_classes
    return _reduce(loss, reduction)


@_fp32_op
def multilabel_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """Multi-label hinge loss; ``target`` lists class indices, ended by the first ``-1``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    input = _float(input)
    target = _arr(target).astype(jnp.int32)
    if input.ndim not in (1, 2) or target.shape != input.shape:
        raise ValueError(
            "Expected non-empty vector or matrix input and a target of the same shape, got "
            f"input {input.shape} and target {target.shape}"
        )
    n_classes = input.shape[-1]
    valid = jnp.cumprod(target >= 0, axis=-1).astype(bool)  # positions before the first -1
    safe = jnp.where(valid, target, 0)
    hits = jax.nn.one_hot(safe, n_classes, dtype=input.dtype) * valid[..., None]
    is_target = jnp.sum(hits, axis=-2) > 0  # (..., C)
    x_t = jnp.take_along_axis(input, safe, axis=-1)  # (..., C) one per target position
    z = jax.nn.relu(1 - x_t[..., :, None] + input[..., None, :])
    mask = valid[..., :, None] & ~is_target[..., None, :]
    loss = jnp.sum(jnp.where(mask, z, 0.0), axis=(-2, -1)) / n_classes
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------------------
# sequences
# --------------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("blank_id",))
def _optax_ctc(logits, logit_paddings, labels, label_paddings, blank_id):
    # Compiled once per shape: eager calls would otherwise re-trace optax's scan every time.
    return optax.ctc_loss(logits, logit_paddings, labels, label_paddings, blank_id=blank_id)


@_fp32_op
def ctc_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    input_lengths: ArrayLike,
    target_lengths: ArrayLike,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Array:
    """Connectionist temporal classification loss in torch's layout, built on optax.

    Args:
        log_probs: (T, N, C) or unbatched (T, C) log-probabilities (``log_softmax``
            output; like torch's kernel, the gradient assumes they are normalised).
        targets: (N, S) padded class indices, or all targets concatenated in 1-D.
        input_lengths: (N,) valid time steps of each sequence.
        target_lengths: (N,) length of each target.
        blank: the blank class.
        reduction: ``'mean'`` divides each loss by its target length, then averages.
        zero_infinity: replace the infinite loss of impossible alignments with 0.
    """
    _check_reduction(reduction)
    log_probs = _float(log_probs)
    targets = _arr(targets).astype(jnp.int32)
    input_lengths = jnp.asarray(_unwrap(input_lengths)).astype(jnp.int32)
    target_lengths_in = _unwrap(target_lengths)
    target_lengths = jnp.asarray(target_lengths_in).astype(jnp.int32)
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs[:, None, :]
        targets = targets[None]
        input_lengths = input_lengths.reshape(1)
        target_lengths = target_lengths.reshape(1)
    if log_probs.ndim != 3:
        raise ValueError(f"log_probs must be 2-D or 3-D, got shape {log_probs.shape}")
    n_time, batch, _ = log_probs.shape
    input_lengths = input_lengths.reshape(batch)
    target_lengths = target_lengths.reshape(batch)

    if targets.ndim == 1:  # concatenated targets: gather them into padded rows
        width = targets.shape[0]
        if _is_concrete(target_lengths_in) and width:
            width = max(int(np.max(np.asarray(target_lengths_in))), 1)
        starts = jnp.cumsum(target_lengths) - target_lengths
        idx = starts[:, None] + jnp.arange(width)[None, :]
        targets = targets[jnp.clip(idx, 0, max(targets.shape[0] - 1, 0))]
    width = targets.shape[1]
    pos = jnp.arange(width)[None, :]
    in_label = pos < target_lengths[:, None]
    labels = jnp.where(in_label, targets, -1)  # -1: one_hot is zero, never a repeat
    label_pad = (~in_label).astype(log_probs.dtype)
    logit_pad = (jnp.arange(n_time)[None, :] >= input_lengths[:, None]).astype(log_probs.dtype)

    per_seq = _optax_ctc(
        jnp.transpose(log_probs, (1, 0, 2)), logit_pad, labels, label_pad, blank_id=blank
    )
    # An alignment needs one frame per label plus one blank between repeated labels.
    repeats = jnp.sum(in_label[:, 1:] & (labels[:, 1:] == labels[:, :-1]), axis=1)
    feasible = target_lengths + repeats <= input_lengths
    per_seq = jnp.where(feasible, per_seq, 0.0 if zero_infinity else jnp.inf)

    if reduction == "none":
        return per_seq[0] if unbatched else per_seq
    if reduction == "sum":
        return jnp.sum(per_seq)
    return jnp.mean(per_seq / jnp.maximum(target_lengths, 1).astype(per_seq.dtype))
