"""Dropout in its element, channel and alpha forms."""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._util import Array, _a
from jaxmod.random import next_key


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(key: Array, p: float, mask_shape: tuple[int, ...]) -> Array:
    return jax.random.bernoulli(key, 1.0 - p, mask_shape)


@eager_kernel
def _dropped(x: Array, key: Array, p: float, mask_shape: tuple[int, ...]) -> Array:
    """``x`` with the mask drawn from ``key`` (an argument of the eager kernel: each call's
    fresh key gives a fresh mask from the one compiled program)."""
    keep = _dropout_mask(key, p, mask_shape)
    return jnp.where(keep, x / jnp.asarray(1.0 - p, x.dtype), jnp.zeros((), x.dtype))


def _apply_dropout(x: Array, p: float, training: bool, mask_shape: Any, generator: Any):
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return jnp.zeros_like(x)
    return _dropped(x, next_key(generator), p, tuple(mask_shape))


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


@eager_kernel
def _alpha_dropped(x: Array, key: Array, p: float, mask_shape: tuple[int, ...]) -> Array:
    keep = _dropout_mask(key, p, mask_shape).astype(x.dtype)
    alpha = _SELU_ALPHA_PRIME
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    b = (keep - 1) * (alpha * a) + alpha * a * p
    return x * (keep * a) + b


def _alpha_dropout(x: Array, p: float, training: bool, mask_shape: Any, generator: Any):
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return jnp.zeros_like(x)
    return _alpha_dropped(x, next_key(generator), p, tuple(mask_shape))


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
