"""Activation functions."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._util import Array, _a, _amp, _axis
from jaxmod.nn.parameter import _unwrap
from jaxmod.random import next_key

# torch's subgradients at the kinks (``hardtanh_backward``, ``hardswish_backward``,
# ``hardsigmoid_backward``): forward values are the plain ``jnp.clip`` expressions, only the
# derivative at the breakpoints changes. The masks test ``x`` itself, as torch does, not
# ``x + 3`` (which rounds to 6 for the float32 just below 3).


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _hardtanh(x: Array, lo: float, hi: float) -> Array:
    """``clip(x, lo, hi)`` with torch's ``hardtanh_backward``: the derivative is 0 at both
    bounds (``jnp.clip`` gives 0.5 there), 1 strictly inside, and 1 for NaN."""
    return jnp.clip(x, lo, hi)


@_hardtanh.defjvp
def _hardtanh_jvp(lo: float, hi: float, primals: tuple, tangents: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    return jnp.clip(x, lo, hi), jnp.where((x <= lo) | (x >= hi), jnp.zeros_like(t), t)


@jax.custom_jvp
def _hardswish(x: Array) -> Array:
    return x * jnp.clip(x + 3, 0, 6) / 6


@_hardswish.defjvp
def _hardswish_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    slope = jnp.where(x <= -3, 0, jnp.where(x < 3, x / 3 + 0.5, 1)).astype(t.dtype)
    return _hardswish(x), slope * t


@jax.custom_jvp
def _hardsigmoid(x: Array) -> Array:
    return jnp.clip(x + 3, 0, 6) / 6


@_hardsigmoid.defjvp
def _hardsigmoid_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    inside = (x > -3) & (x < 3)
    return _hardsigmoid(x), jnp.where(inside, t / 6, jnp.zeros_like(t))


@eager_kernel
def relu(input: Array, inplace: bool = False) -> Array:
    """``max(x, 0)``."""
    return jax.nn.relu(_a(input))


@eager_kernel
def relu6(input: Array, inplace: bool = False) -> Array:
    """``min(max(x, 0), 6)``."""
    return _hardtanh(_a(input), 0, 6)


@eager_kernel
def leaky_relu(input: Array, negative_slope: float = 0.01, inplace: bool = False) -> Array:
    """``x`` if ``x > 0`` else ``negative_slope * x``."""
    x = _a(input)
    return jnp.where(x > 0, x, x * negative_slope)


@eager_kernel
def prelu(input: Array, weight: Array) -> Array:
    """Leaky ReLU with learnt slopes ``weight`` (one, or one per channel of dim 1)."""
    x, w = _a(input), _a(weight)
    if _amp.policy is not None:
        x, w = _amp.policy.low(x, w)
    if x.ndim >= 2 and w.size > 1:
        w = w.reshape((-1,) + (1,) * (x.ndim - 2))
    elif w.size == 1:
        w = w.reshape(())
    return jnp.where(x > 0, x, w * x)


def rrelu(
    input: Array,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
    *,
    generator: Any = None,
) -> Array:
    """Randomised leaky ReLU: slopes ~ U(lower, upper) in training, their mean otherwise."""
    x = _a(input)
    if not training:
        return jnp.where(x > 0, x, x * ((lower + upper) / 2))
    slope = jax.random.uniform(next_key(generator), x.shape, x.dtype, lower, upper)
    return jnp.where(x > 0, x, x * slope)


@eager_kernel
def elu(input: Array, alpha: float = 1.0, inplace: bool = False) -> Array:
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return jax.nn.elu(_a(input), alpha)


@eager_kernel
def selu(input: Array, inplace: bool = False) -> Array:
    """Scaled ELU with the self-normalising constants."""
    return jax.nn.selu(_a(input))


@eager_kernel
def celu(input: Array, alpha: float = 1.0, inplace: bool = False) -> Array:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    return jax.nn.celu(_a(input), alpha)


@eager_kernel
def gelu(input: Array, approximate: str = "none") -> Array:
    """GELU, exact (``'none'``) or with the tanh approximation (``'tanh'``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate}")
    return jax.nn.gelu(_a(input), approximate=approximate == "tanh")


@eager_kernel
def silu(input: Array, inplace: bool = False) -> Array:
    """``x * sigmoid(x)``."""
    return jax.nn.silu(_a(input))


@eager_kernel
def mish(input: Array, inplace: bool = False) -> Array:
    """``x * tanh(softplus(x))``."""
    x = _a(input)
    return x * jnp.tanh(jax.nn.softplus(x))


@eager_kernel
def sigmoid(input: Array) -> Array:
    """Logistic sigmoid."""
    return jax.nn.sigmoid(_a(input))


@eager_kernel
def tanh(input: Array) -> Array:
    """Hyperbolic tangent."""
    return jnp.tanh(_a(input))


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to "
        "include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_axis(input: Any, dim: int | None, name: str, stacklevel: int) -> int | None:
    """The axis of a softmax-family call (torch's legacy implicit dim, with a warning, when
    ``dim`` is omitted; ``None`` for a 0-d input). Resolved outside the eager kernel, so the
    warning is raised on every call and names the caller's line."""
    ndim = jnp.ndim(_unwrap(input))
    if dim is None:
        dim = _softmax_dim(name, ndim, stacklevel + 1)
    return None if ndim == 0 else _axis(dim, ndim)


@eager_kernel
def _softmax_kernel(name: str, input: Array, axis: int | None, dtype: Any) -> Array:
    x = _a(input)
    if dtype is not None:
        x = x.astype(dtype)
    elif _amp.policy is not None:
        (x,) = _amp.policy.fp32(name, x)
    if name == "softmax":
        return jnp.ones_like(x) if axis is None else jax.nn.softmax(x, axis=axis)
    if name == "log_softmax":
        return jnp.zeros_like(x) if axis is None else jax.nn.log_softmax(x, axis=axis)
    return jnp.ones_like(x) if axis is None else jax.nn.softmax(-x, axis=axis)


def softmax(input: Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None):
    """Softmax along ``dim`` (torch's legacy implicit dim, with a warning, when omitted)."""
    axis = _softmax_axis(input, dim, "softmax", _stacklevel)
    return _softmax_kernel("softmax", input, axis, dtype)


def log_softmax(input: Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None):
    """Log of the softmax along ``dim``."""
    axis = _softmax_axis(input, dim, "log_softmax", _stacklevel)
    return _softmax_kernel("log_softmax", input, axis, dtype)


def softmin(input: Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None):
    """``softmax(-input)`` along ``dim``."""
    axis = _softmax_axis(input, dim, "softmin", _stacklevel)
    return _softmax_kernel("softmin", input, axis, dtype)


@eager_kernel
def softplus(input: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``."""
    x = _a(input)
    if _amp.policy is not None:
        (x,) = _amp.policy.fp32("softplus", x)
    bx = x * beta
    return jnp.where(bx > threshold, x, jnp.logaddexp(bx, 0.0) / beta)


@eager_kernel
def softsign(input: Array) -> Array:
    """``x / (1 + |x|)``."""
    x = _a(input)
    return x / (1 + jnp.abs(x))


@eager_kernel
def hardtanh(
    input: Array, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Array:
    """Clip to ``[min_val, max_val]``."""
    return _hardtanh(_a(input), min_val, max_val)


@eager_kernel
def hardswish(input: Array, inplace: bool = False) -> Array:
    """``x * relu6(x + 3) / 6``."""
    return _hardswish(_a(input))


@eager_kernel
def hardsigmoid(input: Array, inplace: bool = False) -> Array:
    """``relu6(x + 3) / 6``."""
    return _hardsigmoid(_a(input))


@eager_kernel
def hardshrink(input: Array, lambd: float = 0.5) -> Array:
    """``x`` where ``|x| > lambd``, else 0."""
    x = _a(input)
    return jnp.where(jnp.abs(x) > lambd, x, jnp.zeros((), x.dtype))


@eager_kernel
def softshrink(input: Array, lambd: float = 0.5) -> Array:
    """Shrink towards zero by ``lambd``; 0 inside ``[-lambd, lambd]``."""
    x = _a(input)
    zero = jnp.zeros((), x.dtype)
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, zero))


@eager_kernel
def tanhshrink(input: Array) -> Array:
    """``x - tanh(x)``."""
    x = _a(input)
    return x - jnp.tanh(x)


@eager_kernel
def threshold(input: Array, threshold: float, value: float, inplace: bool = False) -> Array:
    """``x`` where ``x > threshold``, else ``value``."""
    x = _a(input)
    return jnp.where(x > threshold, x, jnp.asarray(value, x.dtype))


@eager_kernel
def glu(input: Array, dim: int = -1) -> Array:
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves of ``dim``."""
    x = _a(input)
    axis = _axis(dim, x.ndim)
    if x.shape[axis] % 2:
        raise RuntimeError(
            f"Halving dimension must be even, but dimension {axis} is size {x.shape[axis]}"
        )
    a, b = jnp.split(x, 2, axis=axis)
    return a * jax.nn.sigmoid(b)


@eager_kernel
def logsigmoid(input: Array) -> Array:
    """``log(sigmoid(x))``, computed stably."""
    return jax.nn.log_sigmoid(_a(input))


def gumbel_softmax(
    logits: Array,
    tau: float = 1.0,
    hard: bool = False,
    eps: float = 1e-10,
    dim: int = -1,
    *,
    generator: Any = None,
) -> Array:
    """A sample of the Gumbel-softmax (Concrete) distribution over ``dim``: softmax of
    ``(logits + g) / tau`` with ``g ~ Gumbel(0, 1)`` drawn from jaxmod's generator (or
    ``generator``). ``hard=True`` returns the one-hot of the sample's argmax with the soft
    sample's gradient (straight-through)."""
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    x = _a(logits)
    g = jax.random.gumbel(next_key(generator), x.shape, x.dtype)
    y = jax.nn.softmax((x + g) / tau, axis=dim)
    if not hard:
        return y
    axis = _axis(dim, x.ndim)
    index = jnp.argmax(y, axis=axis, keepdims=True)
    y_hard = jnp.arange(x.shape[axis]).reshape((-1,) + (1,) * (x.ndim - axis - 1)) == index
    return y_hard.astype(y.dtype) - jax.lax.stop_gradient(y) + y
