"""Argument helpers shared by the functional families (private)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmod._tensor.base import unwrap as _tensor_unwrap
from jaxmod._tensor.dtypes import torch_name
from jaxmod.amp._state import S as _amp
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


def _fp32_op(fn: Any) -> Any:
    """Mark ``fn`` as one of autocast's float32 ops (by its name, per device type: see
    :data:`jaxmod.amp._state.FP32_OPS`): inside an autocast region that lists it, its
    half-precision array arguments are cast to float32 first. One attribute read when off."""
    name = fn.__name__

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        p = _amp.policy
        if p is None or name not in p.fp32_ops:
            return fn(*args, **kwargs)
        args = tuple(_to_fp32(a) for a in args)
        kwargs = {k: _to_fp32(v) for k, v in kwargs.items()}
        return fn(*args, **kwargs)

    return op


def _to_fp32(x: Any) -> Any:
    if getattr(x, "dtype", None) not in (jnp.bfloat16, jnp.float16):
        return x
    return jnp.asarray(_unwrap(x)).astype(jnp.float32)


def _same_float(x: Array, w: Array, what: str) -> None:
    """torch's dtype check between an input and a weight (``what``: the op's phrase).

    jnp would promote a float32 input against bfloat16 weights and silently run the whole
    step in float32; torch raises, and so does jaxmod, naming both fixes.
    """
    if x.dtype == w.dtype or not (
        jnp.issubdtype(x.dtype, jnp.floating) and jnp.issubdtype(w.dtype, jnp.floating)
    ):
        return
    xn, wn = torch_name(x.dtype), torch_name(w.dtype)
    raise RuntimeError(
        f"{what.format(x=xn, w=wn)}: the input is {np.dtype(x.dtype).name} but the weight is "
        f"{np.dtype(w.dtype).name}. Cast the input to the weight's dtype "
        f"(x.to(jaxmod.{np.dtype(w.dtype).name})), or keep float32 parameters and compute "
        "in low precision with `with jaxmod.autocast(device_type, dtype=...)`."
    )


def _check_index_range(index: Any, size: int, message: str, exempt: int | None = None) -> None:
    """Raise torch's ``IndexError`` (``message`` formatted with the first bad value as
    ``{}``) when a concrete integer ``index`` has a value outside ``[0, size)`` other than
    ``exempt``. Under a trace the values are unknown and nothing is checked: out-of-range
    indices then read JAX's fill value (NaN for float gathers)."""
    x = _tensor_unwrap(index)
    if isinstance(x, jax.core.Tracer) or not hasattr(x, "dtype"):
        return
    if not np.issubdtype(np.dtype(x.dtype), np.integer) or not np.size(x):
        return
    values = np.asarray(x).reshape(-1)
    bad = (values < 0) | (values >= size)
    if exempt is not None:
        bad &= values != exempt
    if bad.any():
        raise IndexError(message.format(int(values[np.argmax(bad)])))


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
