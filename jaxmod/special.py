"""``torch.special`` on ``jax.scipy.special`` (torch's names and signatures, and the type
rule: Tensor inputs give Tensors, ``jax.Array`` inputs give arrays).

Integer and boolean inputs are promoted to the default float dtype, as torch does.
Functions torch has and JAX does not (``airy_ai``, ``bessel_j0``, the orthogonal
polynomials, ...) are absent: accessing one raises ``AttributeError`` naming it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jss

from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor.base import tensor_op

__all__ = [
    "digamma", "entr", "erf", "erfc", "erfinv", "exp2", "expit",
    "expm1", "gammainc", "gammaincc", "gammaln", "i0", "i0e", "i1", "i1e", "log1p",
    "log_ndtr", "log_softmax", "logit", "logsumexp", "modified_bessel_i0",
    "modified_bessel_i1", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round",
    "sinc", "softmax", "spherical_bessel_j0", "xlog1py", "xlogy", "zeta",
]  # fmt: skip


def _f(x: Any) -> jax.Array:
    """``x`` as an inexact array (integers and bools promoted to the default float)."""
    a = jnp.asarray(x)
    return a if jnp.issubdtype(a.dtype, jnp.inexact) else a.astype(_dt.default_np())


def _unary(name: str, fn: Any) -> Any:
    def op(input: Any) -> Any:
        return fn(_f(input))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.special.{name}`` elementwise (``jax.scipy.special``)."
    return tensor_op(op)


def _binary(name: str, fn: Any) -> Any:
    def op(input: Any, other: Any) -> Any:
        return fn(_f(input), _f(other))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.special.{name}`` elementwise, broadcasting its two arguments."
    return tensor_op(op)


def _spherical_j0(x: jax.Array) -> jax.Array:
    safe = jnp.where(x == 0, 1.0, x)
    return jnp.where(x == 0, 1.0, jnp.sin(safe) / safe)


erf = _unary("erf", jss.erf)
erfc = _unary("erfc", jss.erfc)
erfinv = _unary("erfinv", jss.erfinv)
expit = _unary("expit", jss.expit)
exp2 = _unary("exp2", jnp.exp2)
expm1 = _unary("expm1", jnp.expm1)
log1p = _unary("log1p", jnp.log1p)
gammaln = _unary("gammaln", jss.gammaln)
digamma = _unary("digamma", jss.digamma)
psi = _unary("psi", jss.digamma)
i0 = _unary("i0", jss.i0)
i0e = _unary("i0e", jss.i0e)
i1 = _unary("i1", jss.i1)
i1e = _unary("i1e", jss.i1e)
modified_bessel_i0 = _unary("modified_bessel_i0", jss.i0)
modified_bessel_i1 = _unary("modified_bessel_i1", jss.i1)
ndtr = _unary("ndtr", jss.ndtr)
ndtri = _unary("ndtri", jss.ndtri)
log_ndtr = _unary("log_ndtr", jss.log_ndtr)
entr = _unary("entr", jss.entr)
sinc = _unary("sinc", jnp.sinc)
spherical_bessel_j0 = _unary("spherical_bessel_j0", _spherical_j0)
xlogy = _binary("xlogy", jss.xlogy)
xlog1py = _binary("xlog1py", jss.xlog1py)
zeta = _binary("zeta", jss.zeta)
gammainc = _binary("gammainc", jss.gammainc)
gammaincc = _binary("gammaincc", jss.gammaincc)


@tensor_op
def logit(input: Any, eps: float | None = None) -> Any:
    """``log(p / (1 - p))``, with ``p`` clamped to ``[eps, 1 - eps]`` when ``eps`` is given."""
    p = _f(input)
    if eps is not None:
        p = jnp.clip(p, eps, 1 - eps)
    return jnp.log(p) - jnp.log1p(-p)


@tensor_op
def polygamma(n: int, input: Any) -> Any:
    """The ``n``-th derivative of the digamma function."""
    x = _f(input)
    return jss.polygamma(jnp.asarray(n), x)


@tensor_op
def multigammaln(input: Any, p: int) -> Any:
    """The log of the multivariate gamma function of dimension ``p``."""
    return jss.multigammaln(_f(input), p)


@tensor_op
def logsumexp(input: Any, dim: Any, keepdim: bool = False) -> Any:
    """``log(sum(exp(input)))`` over ``dim``, computed stably."""
    axis = tuple(dim) if isinstance(dim, (list, tuple)) else dim
    return jss.logsumexp(_f(input), axis=axis, keepdims=keepdim)


@tensor_op
def softmax(input: Any, dim: int, *, dtype: Any = None) -> Any:
    """Softmax over ``dim`` (in ``dtype`` when given)."""
    x = _f(input) if dtype is None else jnp.asarray(input).astype(_dt.as_dtype(dtype))
    return jax.nn.softmax(x, axis=dim)


@tensor_op
def log_softmax(input: Any, dim: int, *, dtype: Any = None) -> Any:
    """Log-softmax over ``dim`` (in ``dtype`` when given)."""
    x = _f(input) if dtype is None else jnp.asarray(input).astype(_dt.as_dtype(dtype))
    return jax.nn.log_softmax(x, axis=dim)


@tensor_op
def round(input: Any, *, decimals: int = 0) -> Any:  # noqa: A001 - torch's name
    """Round half to even, to ``decimals`` places."""
    return jnp.round(jnp.asarray(input), decimals)
