"""Elementwise ops with torch's semantics, on arrays (the methods and the namespace share
them): promotion of 0-d operands, ``alpha=``, ``rounding_mode=``, torch's errors."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err
from jaxmod._tensor.eager import eager_jit
from jaxmod._tensor.ops_index import nonzero

_Array = jax.Array
_SCALARS = frozenset({int, float, bool, complex})
# numpy's number scalars (``np.float64(lam)`` from ``np.random.beta``): torch takes them as
# Python numbers, so they do not promote a tensor (``half * np.float64(0.3)`` stays half)
_NP_NUMBERS = (np.integer, np.floating, np.complexfloating)
_CAT = {"b": 0, "u": 1, "i": 1, "f": 2, "V": 2, "c": 3}  # bfloat16's kind is "V"


def _category(d: np.dtype) -> int:
    return 2 if d == _dt.bfloat16 else _CAT.get(d.kind, 2)


def scalar(x: Any) -> Any:
    """``x`` unwrapped, a numpy number scalar (``np.float64``, ``np.int64``, ...) as the
    Python number torch takes it for (it does not promote the other operand)."""
    x = _b.unwrap(x)
    return x.item() if isinstance(x, _NP_NUMBERS) else x


def operands(a: Any, b: Any) -> tuple[Any, Any]:
    """Both operands as arrays (or Python scalars), with torch's rule for a 0-d tensor
    against a dimensioned one: the dimensioned dtype wins unless the 0-d one is of a
    higher category (bool < int < float < complex). Numpy number scalars count as Python
    numbers, as in torch."""
    a = scalar(a)
    b = scalar(b)
    if type(b) in _SCALARS:
        return a, b
    if isinstance(a, _Array) and isinstance(b, _Array) and a.dtype != b.dtype:
        if (a.ndim == 0) != (b.ndim == 0):
            zero, dimd = (a, b) if a.ndim == 0 else (b, a)
            if _category(zero.dtype) > _category(dimd.dtype):
                dimd = dimd.astype(zero.dtype)
            else:
                zero = zero.astype(dimd.dtype)
            a, b = (zero, dimd) if a.ndim == 0 else (dimd, zero)
    elif isinstance(b, np.ndarray):
        b = jnp.asarray(b)
    return a, b


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


def binary(fn: Any) -> Any:
    """``fn(a, b)`` with torch's operand promotion and broadcasting error."""

    fast = eager_jit(fn, 2)

    def op(a: Any, b: Any) -> Any:
        a, b = operands(a, b)
        try:
            return fast(a, b)
        except (TypeError, ValueError):
            _err.check_broadcast(_shape(a), _shape(b))
            raise

    op.__name__ = getattr(fn, "__name__", "op")
    return op


def _no_bool_neg(a: Any) -> Any:
    if a.dtype == np.bool_:
        raise RuntimeError(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying "
            "to invert a mask, use the `~` or `logical_not()` operator instead."
        )
    return jnp.negative(a)


def add(a: Any, b: Any, *, alpha: Any = 1) -> Any:
    """``a + alpha * b``."""
    a, b = operands(a, b)
    if alpha != 1:
        b = b * scalar(alpha)
    return _add(a, b)


def sub(a: Any, b: Any, *, alpha: Any = 1) -> Any:
    """``a - alpha * b``."""
    a, b = operands(a, b)
    if getattr(a, "dtype", None) == np.bool_ and getattr(b, "dtype", None) == np.bool_:
        raise RuntimeError(
            "Subtraction, the `-` operator, with two bool tensors is not supported. Use the "
            "`^` or `logical_xor()` operator instead."
        )
    if alpha != 1:
        b = b * scalar(alpha)
    return _sub(a, b)


def rsub(a: Any, b: Any, *, alpha: Any = 1) -> Any:
    """``b - alpha * a``."""
    return sub(b, a, alpha=alpha)


def div(a: Any, b: Any, *, rounding_mode: str | None = None) -> Any:
    """True division, or ``rounding_mode="trunc"`` / ``"floor"``."""
    a, b = operands(a, b)
    if rounding_mode is None:
        return _truediv(a, b)
    if rounding_mode == "floor":
        return _floordiv(a, b)
    if rounding_mode == "trunc":
        q = _truediv(a, b)
        ints = all(np.dtype(getattr(x, "dtype", type(x))).kind in "iub" for x in (a, b))
        out = jnp.trunc(q)
        return out.astype(jnp.result_type(a, b)) if ints else out
    raise RuntimeError(
        "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
        f"'{rounding_mode}'"
    )


def pow(a: Any, b: Any) -> Any:
    """``a ** b``."""
    a, b = operands(a, b)
    if isinstance(b, int) and b < 0 and isinstance(a, _Array) and a.dtype.kind in "iu":
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return _pow(a, b)


def float_power(a: Any, b: Any) -> Any:
    """``a ** b`` in double precision (float32 unless x64 is on)."""
    dt = _dt.wide("double")
    a, b = _b.unwrap(a), _b.unwrap(b)
    return jnp.power(jnp.asarray(a, dt), jnp.asarray(b, dt))


def clamp(a: Any, min: Any = None, max: Any = None) -> Any:
    """Values limited to ``[min, max]`` (either may be a tensor)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    lo, hi = _b.unwrap(min), _b.unwrap(max)
    out = a
    if lo is not None:
        out = _maximum(*operands(out, lo))
    if hi is not None:
        out = _minimum(*operands(out, hi))
    return out


def clamp_min(a: Any, min: Any) -> Any:
    """Values at least ``min``."""
    return clamp(a, min=min)


def clamp_max(a: Any, max: Any) -> Any:
    """Values at most ``max``."""
    return clamp(a, max=max)


def lerp(a: Any, end: Any, weight: Any) -> Any:
    """``a + weight * (end - a)``."""
    end, weight = scalar(end), scalar(weight)
    return a + weight * (end - a)


def addcmul(a: Any, t1: Any, t2: Any, *, value: Any = 1) -> Any:
    """``a + value * t1 * t2``."""
    return a + scalar(value) * _b.unwrap(t1) * _b.unwrap(t2)


def addcdiv(a: Any, t1: Any, t2: Any, *, value: Any = 1) -> Any:
    """``a + value * t1 / t2``."""
    return a + scalar(value) * _b.unwrap(t1) / _b.unwrap(t2)


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``input`` where ``condition`` holds, else ``other``; one argument: ``nonzero``."""
    c = _b.unwrap(condition)
    if input is None and other is None:
        return nonzero(c, as_tuple=True)
    x, y = operands(input, other)
    return jnp.where(c, x, y)


def masked_fill(a: Any, mask: Any, value: Any) -> Any:
    """``value`` where ``mask`` is true (``mask`` broadcasts to ``a``; keeps ``a``'s dtype)."""
    m = _b.unwrap(mask)
    if getattr(m, "dtype", None) != np.bool_:
        raise RuntimeError(
            "masked_fill_ only supports boolean masks, but got mask with dtype "
            f"{getattr(m, 'dtype', type(m).__name__)}"
        )
    v = scalar(value)
    if np.ndim(v) != 0:
        raise RuntimeError(
            "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
            f"{np.ndim(v)} dimension(s)."
        )
    if m.shape != a.shape and _bshape(m.shape, a.shape) != tuple(a.shape):
        _err.check_broadcast(tuple(a.shape), tuple(m.shape))
        raise _err.ShapeError(
            f"masked_fill: mask of shape {list(m.shape)} does not broadcast to {list(a.shape)}"
        )
    if isinstance(v, float) and a.dtype.kind in "fcV":
        return jnp.where(m, v, a)  # a weak scalar keeps a's dtype, no conversion op
    return jnp.where(m, jnp.asarray(v).astype(a.dtype), a)


def _bshape(a: tuple, b: tuple) -> tuple | None:
    try:
        return tuple(jnp.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        return None


def nan_to_num(a: Any, nan: float = 0.0, posinf: Any = None, neginf: Any = None) -> Any:
    """NaN, +inf and -inf replaced (by 0 and the dtype's extremes by default)."""
    return jnp.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)


def _float_only(name: str, fn: Any) -> Any:
    def op(a: Any, dim: Any = None, dtype: Any = None, **kw: Any) -> Any:
        a = _b.unwrap(a)
        if dtype is not None:
            a = a.astype(_dt.as_dtype(dtype))
        elif a.dtype.kind in "iub":
            raise RuntimeError(f"\"{name}\" not implemented for '{_dt.torch_name(a.dtype)}'")
        if dim is None:
            dim = kw.pop("axis", None)
        if dim is None:
            dim = -1 if a.ndim <= 1 else _legacy_dim(a.ndim)
        return fn(a, axis=_err.dim(dim, a.ndim))

    op.__name__ = name
    return op


def _legacy_dim(ndim: int) -> int:
    return 0 if ndim in (0, 1, 3) else 1


softmax = _float_only("softmax_lastdim_kernel_impl", jax.nn.softmax)
log_softmax = _float_only("log_softmax_lastdim_kernel_impl", jax.nn.log_softmax)


def logit(a: Any, eps: float | None = None) -> Any:
    """``log(p / (1 - p))``, ``p`` clamped to ``[eps, 1 - eps]`` when ``eps`` is given."""
    if eps is not None:
        a = jnp.clip(a, eps, 1 - eps)
    return jnp.log(a / (1 - a))


def round(a: Any, *, decimals: int = 0) -> Any:
    """Round half to even (``decimals`` places)."""
    return jnp.round(a, decimals)


def _keep_int(fn: Any) -> Any:
    def op(a: Any) -> Any:
        return a if a.dtype.kind in "iub" else fn(a)

    op.__name__ = fn.__name__
    return op


def _sign(a: Any) -> Any:
    return jnp.sign(a) if a.dtype != np.bool_ else a


def _sgn(a: Any) -> Any:
    if jnp.iscomplexobj(a):
        m = jnp.abs(a)
        return jnp.where(m == 0, 0, a / jnp.where(m == 0, 1, m))
    return _sign(a)


def _rsqrt(a: Any) -> Any:
    return jax.lax.rsqrt(a if a.dtype.kind in "fcV" else a.astype(_dt.default_np()))


def _reciprocal(a: Any) -> Any:
    return 1 / (a if a.dtype.kind in "fcV" else a.astype(_dt.default_np()))


def _frac(a: Any) -> Any:
    return a - jnp.trunc(a)


def _square(a: Any) -> Any:
    return a * a if a.dtype != np.bool_ else a.astype(_dt.wide("long"))


def _erfinv(a: Any) -> Any:
    return jax.scipy.special.erfinv(a)


def _relu(a: Any) -> Any:
    if a.dtype == np.bool_:
        raise RuntimeError("\"clamp_min_scalar_cpu\" not implemented for 'Bool'")
    return jnp.maximum(a, jnp.zeros((), a.dtype))


def _sigmoid(a: Any) -> Any:
    return jax.nn.sigmoid(a if a.dtype.kind in "fcV" else a.astype(_dt.default_np()))


def _exp2(a: Any) -> Any:
    return jnp.exp2(a)


# name -> (function of one array, in-place allowed on integer tensors)
UNARY: dict[str, Any] = {
    "abs": jnp.abs, "absolute": jnp.abs, "neg": _no_bool_neg, "negative": _no_bool_neg,
    "exp": jnp.exp, "exp2": _exp2, "expm1": jnp.expm1, "log": jnp.log, "log2": jnp.log2,
    "log10": jnp.log10, "log1p": jnp.log1p, "sqrt": jnp.sqrt, "rsqrt": _rsqrt,
    "square": _square, "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "asin": jnp.arcsin,
    "arcsin": jnp.arcsin, "acos": jnp.arccos, "arccos": jnp.arccos, "atan": jnp.arctan,
    "arctan": jnp.arctan, "sinh": jnp.sinh, "cosh": jnp.cosh, "tanh": jnp.tanh,
    "asinh": jnp.arcsinh, "arcsinh": jnp.arcsinh, "acosh": jnp.arccosh,
    "arccosh": jnp.arccosh, "atanh": jnp.arctanh, "arctanh": jnp.arctanh,
    "sigmoid": _sigmoid, "erf": jax.scipy.special.erf, "erfc": jax.scipy.special.erfc,
    "erfinv": _erfinv, "lgamma": jax.scipy.special.gammaln,
    "digamma": jax.scipy.special.digamma, "i0": jax.scipy.special.i0,
    "floor": _keep_int(jnp.floor), "ceil": _keep_int(jnp.ceil), "trunc": _keep_int(jnp.trunc),
    "fix": _keep_int(jnp.trunc), "frac": _frac, "sign": _sign, "sgn": _sgn,
    "signbit": jnp.signbit, "reciprocal": _reciprocal, "relu": _relu,
    "sinc": jnp.sinc, "deg2rad": jnp.deg2rad, "rad2deg": jnp.rad2deg,
    "isnan": jnp.isnan, "isinf": jnp.isinf, "isfinite": jnp.isfinite,
    "isposinf": jnp.isposinf, "isneginf": jnp.isneginf, "isreal": jnp.isreal,
    "logical_not": jnp.logical_not, "bitwise_not": jnp.invert, "conj": jnp.conj,
    "conj_physical": jnp.conj, "angle": jnp.angle, "positive": jnp.positive,
}  # fmt: skip
_add = binary(jnp.add)
_sub = binary(jnp.subtract)
_truediv = binary(jnp.true_divide)
_floordiv = binary(jnp.floor_divide)
_pow = binary(jnp.power)
_maximum = binary(jnp.maximum)
_minimum = binary(jnp.minimum)

BINARY: dict[str, Any] = {
    "mul": binary(jnp.multiply), "multiply": binary(jnp.multiply),
    "true_divide": _truediv, "floor_divide": _floordiv,
    "remainder": binary(jnp.remainder), "fmod": binary(jnp.fmod),
    "maximum": _maximum, "minimum": _minimum, "fmax": binary(jnp.fmax),
    "fmin": binary(jnp.fmin), "atan2": binary(jnp.arctan2), "arctan2": binary(jnp.arctan2),
    "hypot": binary(jnp.hypot), "copysign": binary(jnp.copysign),
    "logaddexp": binary(jnp.logaddexp), "logaddexp2": binary(jnp.logaddexp2),
    "xlogy": binary(jax.scipy.special.xlogy), "heaviside": binary(jnp.heaviside),
    "nextafter": binary(jnp.nextafter), "ldexp": binary(lambda a, b: a * 2.0**b),
    "bitwise_and": binary(jnp.bitwise_and), "bitwise_or": binary(jnp.bitwise_or),
    "bitwise_xor": binary(jnp.bitwise_xor), "bitwise_left_shift": binary(jnp.left_shift),
    "bitwise_right_shift": binary(jnp.right_shift),
    "logical_and": binary(jnp.logical_and), "logical_or": binary(jnp.logical_or),
    "logical_xor": binary(jnp.logical_xor),
    "eq": binary(jnp.equal), "ne": binary(jnp.not_equal), "not_equal": binary(jnp.not_equal),
    "lt": binary(jnp.less), "less": binary(jnp.less), "le": binary(jnp.less_equal),
    "less_equal": binary(jnp.less_equal), "gt": binary(jnp.greater),
    "greater": binary(jnp.greater), "ge": binary(jnp.greater_equal),
    "greater_equal": binary(jnp.greater_equal),
}  # fmt: skip

OTHER: dict[str, Any] = {
    "add": add, "sub": sub, "subtract": sub, "rsub": rsub, "div": div, "divide": div,
    "pow": pow, "float_power": float_power, "clamp": clamp, "clip": clamp,
    "clamp_min": clamp_min, "clamp_max": clamp_max, "lerp": lerp, "addcmul": addcmul,
    "addcdiv": addcdiv, "masked_fill": masked_fill, "nan_to_num": nan_to_num,
    "softmax": softmax, "log_softmax": log_softmax, "logit": logit, "round": round,
}  # fmt: skip


def isclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """Elementwise ``|a - b| <= atol + rtol * |b|``."""
    a, b = operands(a, b)
    return jnp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def allclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """Whether every element is close (a Python bool)."""
    return bool(jnp.all(isclose(a, b, rtol, atol, equal_nan)))


def equal(a: Any, b: Any) -> bool:
    """Whether both have the same shape and values (a Python bool)."""
    a, b = _b.unwrap(a), _b.unwrap(b)
    return tuple(a.shape) == tuple(b.shape) and bool(jnp.all(a == b))


OTHER.update(isclose=isclose, allclose=allclose, equal=equal)
