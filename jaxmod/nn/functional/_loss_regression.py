"""Regression, distribution, embedding and ranking losses (see :mod:`._loss`)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from jaxmod._tensor.base import is_tensor, unwrap, wrap
from jaxmod.nn.functional._loss import (
    _EPSILON,
    Array,
    ArrayLike,
    _arr,
    _float,
    _is_concrete,
    _legacy,
    _reduce,
    _warn_size,
    _weighted,
)
from jaxmod.nn.functional._norm import _vector_norm
from jaxmod.nn.functional._util import _abs, _clamp_min, _fp32_op


# --------------------------------------------------------------------------------------
# regression
# --------------------------------------------------------------------------------------
@_fp32_op
def mse_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: ArrayLike | None = None,
) -> Array:
    """Mean squared error; with ``weight``, ``'mean'`` divides by ``weight.sum()``."""
    input, target = _float(input), _float(target)
    _warn_size(input, target)
    reduction = _legacy(size_average, reduce, reduction)
    input, target = jnp.broadcast_arrays(input, target)
    loss = jnp.square(input - target)
    if weight is not None:
        return _weighted(loss, weight, input, reduction, mean_by_weight=True)
    return _reduce(loss, reduction)


@_fp32_op
def l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: ArrayLike | None = None,
) -> Array:
    """Mean absolute error; with ``weight``, ``'mean'`` divides by ``weight.sum()``."""
    input, target = _float(input), _float(target)
    _warn_size(input, target)
    reduction = _legacy(size_average, reduce, reduction)
    input, target = jnp.broadcast_arrays(input, target)
    loss = _abs(input - target)  # torch's sgn: gradient 0 where input == target
    if weight is not None:
        return _weighted(loss, weight, input, reduction, mean_by_weight=True)
    return _reduce(loss, reduction)


@_fp32_op
def smooth_l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Array:
    """``0.5 d^2 / beta`` where ``|d| < beta``, ``|d| - 0.5 beta`` elsewhere (L1 at beta 0)."""
    input, target = _float(input), _float(target)
    _warn_size(input, target)
    reduction = _legacy(size_average, reduce, reduction)
    if beta < 0:
        raise ValueError("smooth_l1_loss does not support negative values for beta.")
    z = _abs(input - target)
    loss = z if beta == 0.0 else jnp.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)
    return _reduce(loss, reduction)


@_fp32_op
def huber_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: ArrayLike | None = None,
) -> Array:
    """``0.5 d^2`` where ``|d| < delta``, ``delta (|d| - 0.5 delta)`` elsewhere."""
    input, target = _float(input), _float(target)
    _warn_size(input, target)
    input, target = jnp.broadcast_arrays(input, target)
    z = jnp.abs(input - target)
    loss = jnp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))
    if weight is not None:
        return _weighted(loss, weight, input, reduction, mean_by_weight=False)
    return _reduce(loss, reduction)


@_fp32_op
def poisson_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """Poisson negative log likelihood; ``full`` adds the Stirling term where target > 1."""
    reduction = _legacy(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not a valid value for reduction")
    input, target = _float(input), _float(target)
    if log_input:
        loss = jnp.exp(input) - target * input
    else:
        loss = input - target * jnp.log(input + eps)
    if full:
        big = target > 1
        t = jnp.where(big, target, 1.0)  # keeps log() finite in the unused branch
        stirling = t * jnp.log(t) - t + 0.5 * jnp.log(2 * math.pi * t)
        loss = loss + jnp.where(big, stirling, 0.0)
    return _reduce(loss, reduction)


@_fp32_op
def gaussian_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    var: ArrayLike | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Array:
    """Gaussian negative log likelihood with (heteroscedastic or shared) variance ``var``.

    ``var`` is clamped to ``>= eps`` outside autodiff, as torch does (the gradient passes
    through the clamp unchanged).
    """
    input, target = _float(input), _float(target)
    if isinstance(var, (int, float)):  # torch takes a float; an int is read the same way
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = jnp.full_like(input, var)
    else:
        var = _float(var)
        if _is_concrete(var) and bool(jnp.any(var < 0)):
            raise ValueError("var has negative entry/entries")
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = var[..., None]
        elif input.ndim == var.ndim and (
            sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1
        ):
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var + jax.lax.stop_gradient(jnp.maximum(var, eps) - var)
    loss = 0.5 * (jnp.log(var) + jnp.square(input - target) / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


@_fp32_op
def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Array:
    """KL divergence with log-probabilities ``input``; ``'batchmean'`` divides by N."""
    input, target = _float(input), _float(target)
    if size_average is not None or reduce is not None:
        reduction = _legacy(size_average, reduce, reduction)
    if log_target:
        loss = jnp.exp(target) * (target - input)
    else:
        loss = xlogy(target, target) - target * input
    if reduction == "batchmean":
        total = jnp.sum(loss)
        return total / input.shape[0] if input.ndim != 0 else total
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------------------
# embeddings and ranking
# --------------------------------------------------------------------------------------
@_fp32_op
def cosine_embedding_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``1 - cos`` for target 1, ``max(0, cos - margin)`` for target -1."""
    reduction = _legacy(size_average, reduce, reduction)
    input1, input2, target = _float(input1), _float(input2), _arr(target)
    if target.ndim not in (0, 1):
        raise ValueError("0D or 1D target tensor expected, multi-target not supported")
    if input1.ndim != target.ndim + 1 or input2.ndim != target.ndim + 1:
        raise ValueError(
            f"{target.ndim + 1}D inputs expected for a {target.ndim}D target, got "
            f"{input1.ndim}D and {input2.ndim}D"
        )
    axis = target.ndim
    prod = jnp.sum(input1 * input2, axis=axis)
    mag1 = jnp.sum(input1 * input1, axis=axis) + _EPSILON
    mag2 = jnp.sum(input2 * input2, axis=axis) + _EPSILON
    cos = prod / jnp.sqrt(mag1 * mag2)
    pos = jnp.where(target == 1, 1 - cos, 0.0)
    neg = jnp.where(target == -1, _clamp_min(cos - margin, 0.0), 0.0)
    return _reduce(pos + neg, reduction)


@_fp32_op
def margin_ranking_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``max(0, -target * (input1 - input2) + margin)``."""
    reduction = _legacy(size_average, reduce, reduction)
    input1, input2, target = _float(input1), _float(input2), _float(target)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise ValueError(
            "margin_ranking_loss : All input tensors should have same dimension but got "
            f"sizes: input1: {input1.shape}, input2: {input2.shape}, target: {target.shape} "
        )
    return _reduce(_clamp_min(-target * (input1 - input2) + margin, 0.0), reduction)


@_fp32_op
def hinge_embedding_loss(
    input: ArrayLike,
    target: ArrayLike,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``input`` where target is 1, ``max(0, margin - input)`` where target is -1."""
    reduction = _legacy(size_average, reduce, reduction)
    input, target = _float(input), _arr(target)
    margin_term = jnp.where(target != 1, _clamp_min(margin - input, 0.0), 0.0)
    self_term = jnp.where(target != -1, input, 0.0)
    return _reduce(margin_term + self_term, reduction)


@_fp32_op
def soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """Two-class logistic loss ``log(1 + exp(-target * input))``."""
    reduction = _legacy(size_average, reduce, reduction)
    input, target = _float(input), _float(target)
    return _reduce(jax.nn.softplus(-target * input), reduction)


def _pairwise_distance(x1: Array, x2: Array, p: float, eps: float) -> Array:
    """torch's ``pairwise_distance``: the p-norm of ``x1 - x2 + eps`` over the last axis,
    with torch's norm gradients (0 at zero entries and at the zero vector)."""
    return _vector_norm(x1 - x2 + eps, p, -1, keepdims=False)


@_fp32_op
def triplet_margin_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``max(0, margin + d(a, p) - d(a, n))`` with torch's ``pairwise_distance``."""
    reduction = _legacy(size_average, reduce, reduction)
    a, pos, neg = _float(anchor), _float(positive), _float(negative)
    if not (a.ndim == pos.ndim == neg.ndim):
        raise ValueError(
            "The anchor, positive, and negative tensors are expected to have the same number "
            f"of dimensions, but got: anchor {a.ndim}D, positive {pos.ndim}D, and "
            f"negative {neg.ndim}D inputs"
        )
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    d_pos = _pairwise_distance(a, pos, p, eps)
    d_neg = _pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = jnp.minimum(d_neg, _pairwise_distance(pos, neg, p, eps))
    return _reduce(_clamp_min(margin + d_pos - d_neg, 0.0), reduction)


def triplet_margin_with_distance_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    *,
    distance_function: Any = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Any:
    """``max(0, margin + d(a, p) - d(a, n))`` with any ``distance_function`` (default:
    ``pairwise_distance``). The distance function is called with the inputs as given, so a
    torch-style one gets Tensors and may use Tensor methods; Tensor inputs give a Tensor."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    dims = [jnp.ndim(unwrap(t)) for t in (anchor, positive, negative)]
    if not dims[0] == dims[1] == dims[2]:
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number "
            f"of dimensions, but got: anchor {dims[0]}D, positive {dims[1]}D, and negative "
            f"{dims[2]}D inputs"
        )
    if distance_function is None:

        def dist(x: Any, y: Any) -> Any:
            return _pairwise_distance(_float(unwrap(x)), _float(unwrap(y)), 2.0, 1e-6)
    else:
        dist = distance_function
    d_pos = _float(unwrap(dist(anchor, positive)))
    d_neg = _float(unwrap(dist(anchor, negative)))
    if swap:
        d_neg = jnp.minimum(d_neg, _float(unwrap(dist(positive, negative))))
    loss = _reduce(_clamp_min(margin + d_pos - d_neg, 0.0), reduction)
    return wrap(loss) if any(is_tensor(t) for t in (anchor, positive, negative)) else loss


triplet_margin_with_distance_loss.__wrapped_array_fn__ = triplet_margin_with_distance_loss  # type: ignore[attr-defined]
