"""Argument helpers shared by the functional families (private)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmod.nn.parameter import _unwrap

Array = jax.Array
_HIGHEST = lax.Precision.HIGHEST


def _a(x: Any) -> Any:
    """``x`` as a JAX array (boxes unwrapped); ``None`` stays ``None``."""
    if x is None:
        return None
    return jnp.asarray(_unwrap(x))


def _ntuple(x: Any, n: int, name: str = "argument") -> tuple[int, ...]:
    if isinstance(x, (tuple, list)):
        if len(x) == 1:
            return tuple(int(x[0]) for _ in range(n))
        if len(x) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {x}")
        return tuple(int(v) for v in x)
    return (int(x),) * n


def _neg_inf(dtype: Any) -> Any:
    """The identity of ``max`` as a concrete numpy scalar (reduce_window needs it concrete
    to recognise a differentiable max-pool)."""
    if jnp.issubdtype(dtype, jnp.floating):
        return np.array(-np.inf, dtype)
    return np.array(jnp.iinfo(dtype).min, dtype)


def _up(x: Array) -> Array:
    """Half-precision inputs are normalised in float32 (torch accumulates in float too)."""
    return x.astype(jnp.float32) if x.dtype in (jnp.bfloat16, jnp.float16) else x


def _int_dtype() -> Any:
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def _axis(dim: int, ndim: int) -> int:
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(
            f"Dimension out of range (expected to be in range of "
            f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {dim})"
        )
    return dim % max(ndim, 1)


# ----------------------------------------------------------------------------------------
# torch's subgradients at the kinks. Forward values are JAX's (``jnp.clip``,
# ``jnp.maximum``, ``jnp.abs``); only the derivative at the breakpoints changes, to the
# value torch's backward formula gives there.
# ----------------------------------------------------------------------------------------


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _clamp_min(x: Array, lo: float) -> Array:
    """``maximum(x, lo)`` with torch's ``clamp_min`` derivative: 1 where ``x >= lo``
    (``jnp.maximum`` splits a tie 0.5/0.5), 0 below and for NaN."""
    return jnp.maximum(x, lo)


@_clamp_min.defjvp
def _clamp_min_jvp(lo: float, primals: tuple, tangents: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    return jnp.maximum(x, lo), jnp.where(x >= lo, t, jnp.zeros_like(t))


def _abs(x: Array) -> Array:
    """``|x|`` whose derivative at 0 is 0 (``sign``), as torch's, not JAX's 1."""
    return x * lax.stop_gradient(jnp.sign(x))
