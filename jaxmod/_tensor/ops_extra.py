"""Less common torch functions on arrays: statistics, number theory, windows, scatter
variants and matrix functions (``det``, ``inverse``, ``svd``, ...)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err
from jaxmod._tensor.factories import finish, float_dtype
from jaxmod._tensor.ops_index import index_source, scatter_reduce
from jaxmod._tensor.ops_reduce import vector_norm


def addr(a: Any, v1: Any, v2: Any, *, beta: Any = 1, alpha: Any = 1) -> Any:
    """``beta * a + alpha * outer(v1, v2)``."""
    out = jnp.outer(_b.unwrap(v1), _b.unwrap(v2))
    return (a if beta == 1 else beta * a) + (out if alpha == 1 else alpha * out)


def chain_matmul(*matrices: Any) -> Any:
    """The product of the matrices, left to right."""
    return jnp.linalg.multi_dot([_b.unwrap(m) for m in matrices])


def dist(a: Any, other: Any, p: float = 2) -> Any:
    """The ``p``-norm of ``a - other``."""
    return vector_norm(a - _b.unwrap(other), p)


def cov(a: Any, *, correction: int = 1, fweights: Any = None, aweights: Any = None) -> Any:
    """Covariance of the rows (variables) over the columns (observations)."""
    return jnp.cov(a, ddof=correction, fweights=_b.unwrap(fweights),
                   aweights=_b.unwrap(aweights))  # fmt: skip


def corrcoef(a: Any) -> Any:
    """Pearson correlation of the rows."""
    return jnp.corrcoef(a)


def gradient(a: Any, *, spacing: Any = 1, dim: Any = None, edge_order: int = 1) -> Any:
    """Central differences along each of ``dim`` (all dimensions by default), one tensor
    per dimension; ``spacing`` is one step, a step per dimension, or coordinates."""
    axes = list(range(a.ndim)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
    if isinstance(spacing, (list, tuple)):
        steps = [jnp.asarray(_b.unwrap(s)) if not isinstance(s, (int, float)) else s
                 for s in spacing]  # fmt: skip
        if len(steps) == 1 and len(axes) > 1:
            steps = steps * len(axes)
    else:
        steps = [spacing] * len(axes)
    if len(steps) != len(axes):
        raise RuntimeError(
            f"torch.gradient expected spacing to be unspecified, a scalar or it's spacing and "
            f"dim arguments to have the same length, but got a spacing argument of length "
            f"{len(steps)} and a dim argument of length {len(axes)}."
        )
    if edge_order != 1:
        raise NotImplementedError("torch.gradient: edge_order=2 is not available (JAX's "
                                  "jnp.gradient has first-order edges only)")  # fmt: skip
    x = a if jnp.issubdtype(a.dtype, jnp.inexact) else a.astype(jnp.float32)
    out = jnp.gradient(x, *steps, axis=tuple(axes))
    return tuple(out) if isinstance(out, list) else (out,)


def isin(elements: Any, test_elements: Any, *, assume_unique: bool = False,
         invert: bool = False) -> Any:  # fmt: skip
    """Whether each element is in ``test_elements``."""
    return jnp.isin(_b.unwrap(elements), _b.unwrap(test_elements), invert=invert)


def gcd(a: Any, b: Any) -> Any:
    """Greatest common divisor."""
    return jnp.gcd(a, _b.unwrap(b))


def lcm(a: Any, b: Any) -> Any:
    """Least common multiple."""
    return jnp.lcm(a, _b.unwrap(b))


def frexp(a: Any) -> tuple:
    """``(mantissa, exponent)`` with ``a = mantissa * 2 ** exponent``."""
    m, e = jnp.frexp(a)
    return m, e.astype(jnp.int32)


def polygamma(n: int, a: Any) -> Any:
    """The ``n``-th derivative of the digamma function."""
    return jax.scipy.special.polygamma(n, _b.unwrap(a))


def mvlgamma(a: Any, p: int) -> Any:
    """Multivariate log-gamma of dimension ``p``."""
    return jax.scipy.special.multigammaln(a, p)


def trapezoid(y: Any, x: Any = None, *, dx: Any = None, dim: int = -1) -> Any:
    """The trapezoidal rule along ``dim``."""
    return jnp.trapezoid(y, x=_b.unwrap(x), dx=1.0 if dx is None else dx, axis=dim)


def cumulative_trapezoid(y: Any, x: Any = None, *, dx: Any = None, dim: int = -1) -> Any:
    """The running trapezoidal rule along ``dim``."""
    y = jnp.moveaxis(y, dim, -1)
    avg = (y[..., 1:] + y[..., :-1]) / 2
    xs = _b.unwrap(x)
    w = jnp.diff(jnp.moveaxis(xs, dim, -1)) if xs is not None else (1.0 if dx is None else dx)
    return jnp.moveaxis(jnp.cumsum(avg * w, -1), -1, dim)


def vander(x: Any, N: int | None = None, increasing: bool = False) -> Any:
    """The Vandermonde matrix of a 1-D tensor."""
    return jnp.vander(x, N, increasing=increasing)


def renorm(a: Any, p: float, dim: int, maxnorm: float) -> Any:
    """Each slice along ``dim`` rescaled to norm at most ``maxnorm``."""
    d = _err.dim(dim, a.ndim)
    axes = tuple(i for i in range(a.ndim) if i != d)
    norm = jnp.sum(jnp.abs(a) ** p, axis=axes, keepdims=True) ** (1.0 / p)
    return a * jnp.where(norm > maxnorm, maxnorm / (norm + 1e-7), 1.0)


def _split_like(np_name: str) -> Any:
    def op(a: Any, indices_or_sections: Any) -> tuple:
        return tuple(getattr(jnp, np_name)(a, _b.unwrap(indices_or_sections)))

    op.__name__ = np_name
    op.__doc__ = f"``numpy.{np_name}``: split into pieces."
    return op


hsplit, vsplit, dsplit = _split_like("hsplit"), _split_like("vsplit"), _split_like("dsplit")


def select_scatter(a: Any, src: Any, dim: int, index: int) -> Any:
    """``a`` with ``a.select(dim, index)`` replaced by ``src``."""
    d = _err.dim(dim, a.ndim)
    return a.at[(slice(None),) * d + (index,)].set(_b.unwrap(src))


def slice_scatter(a: Any, src: Any, dim: int = 0, start: Any = None, end: Any = None,
                  step: int = 1) -> Any:  # fmt: skip
    """``a`` with ``a[start:end:step]`` along ``dim`` replaced by ``src``."""
    d = _err.dim(dim, a.ndim)
    return a.at[(slice(None),) * d + (slice(start, end, step),)].set(_b.unwrap(src))


def diagonal_scatter(a: Any, src: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Any:
    """``a`` with its diagonal replaced by ``src``."""
    d1, d2 = _err.dim(dim1, a.ndim), _err.dim(dim2, a.ndim)
    moved = jnp.moveaxis(a, (d1, d2), (-2, -1))
    n = jnp.diagonal(moved, offset, -2, -1).shape[-1]
    i = jnp.arange(n)
    r, c = (i, i + offset) if offset >= 0 else (i - offset, i)
    out = moved.at[..., r, c].set(_b.unwrap(src))
    return jnp.moveaxis(out, (-2, -1), (d1, d2))


def index_reduce(a: Any, dim: int, index: Any, source: Any, reduce: str, *,
                 include_self: bool = True) -> Any:  # fmt: skip
    """``index_add`` with ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(
            "index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got "
            f"{reduce}."
        )
    d, idx, src = index_source(a, dim, index, source, "index_reduce",
                               (IndexError, "index out of range in self"))  # fmt: skip
    shape = [1] * src.ndim
    shape[d] = -1
    full = jnp.broadcast_to(idx.reshape(shape), src.shape)
    return scatter_reduce(a, d, full, src, reduce, include_self=include_self)


def put(a: Any, index: Any, source: Any, accumulate: bool = False) -> Any:
    """``a.flatten()[index] = source`` (or ``+=``), reshaped back."""
    flat = a.ravel()
    i, s = _b.unwrap(index).ravel(), jnp.ravel(_b.unwrap(source)).astype(a.dtype)
    return (flat.at[i].add(s) if accumulate else flat.at[i].set(s)).reshape(a.shape)


def unravel_index(indices: Any, shape: Any) -> tuple:
    """Coordinates of flat indices in ``shape``."""
    return tuple(jnp.unravel_index(_b.unwrap(indices), tuple(shape)))


def is_same_size(a: Any, other: Any) -> bool:
    """Whether both have the same shape."""
    return tuple(np.shape(a)) == tuple(np.shape(_b.unwrap(other)))


def view_as_real(a: Any) -> Any:
    """A complex tensor as ``(..., 2)`` real and imaginary parts (a copy: XLA has no
    views; in-place writes to it do not reach the complex tensor)."""
    if not jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return jnp.stack([jnp.real(a), jnp.imag(a)], -1)


def check_view_as_complex(a: Any, geometry: Any = None) -> None:
    """torch's checks of ``view_as_complex``: a float tensor whose last dimension has size
    2 and stride 1, even strides elsewhere and an even storage offset (``geometry`` is the
    tensor's ``(shape, strides, offset, root)``, when it is a Tensor)."""
    if a.dtype not in (jnp.float32, jnp.float64):
        name = _dt.torch_name(a.dtype)
        if a.dtype == jnp.float16:
            raise NotImplementedError(
                "view_as_complex of a Half tensor: torch's complex32 has no JAX dtype; "
                "convert with .float() first"
            )
        raise RuntimeError(
            "view_as_complex is only supported for half, float and double tensors, but got "
            f"a tensor of scalar type: {name}"
        )
    if a.ndim == 0:
        raise RuntimeError("Input tensor must have one or more dimensions")
    if a.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    if geometry is not None:
        _, strides, offset, _ = geometry
        if strides[-1] != 1:
            raise RuntimeError("Tensor must have a last dimension with stride 1")
        if any(st % 2 for st in strides[:-1]):
            raise RuntimeError(
                "Tensor must have a stride divisible by 2 for all but last dimension"
            )
        if offset % 2:
            raise RuntimeError("Tensor must have a storage_offset divisible by 2")


def view_as_complex(a: Any) -> Any:
    """``(..., 2)`` real and imaginary parts as a complex tensor (a copy, see
    :func:`view_as_real`); float64 gives complex128 only with x64 on."""
    check_view_as_complex(a)
    return jax.lax.complex(a[..., 0], a[..., 1])


def real(a: Any) -> Any:
    """The real part."""
    return jnp.real(a)


def imag(a: Any) -> Any:
    """The imaginary part."""
    return jnp.imag(a)


def det(a: Any) -> Any:
    """Determinant of (batches of) square matrices."""
    return jnp.linalg.det(a)


def logdet(a: Any) -> Any:
    """``log(det(a))`` (NaN for negative determinants)."""
    sign, ld = jnp.linalg.slogdet(a)
    return jnp.where(sign < 0, jnp.nan, ld)


def slogdet(a: Any) -> tuple:
    """``(sign, log|det|)``."""
    return tuple(jnp.linalg.slogdet(a))


def inverse(a: Any) -> Any:
    """Inverse of (batches of) square matrices."""
    return jnp.linalg.inv(a)


def pinverse(a: Any, rcond: float = 1e-15) -> Any:
    """Moore-Penrose pseudo-inverse."""
    return jnp.linalg.pinv(a, rtol=rcond)


def matrix_power(a: Any, n: int) -> Any:
    """``a`` to the integer power ``n``."""
    return jnp.linalg.matrix_power(a, n)


def matrix_exp(a: Any) -> Any:
    """Matrix exponential."""
    return jax.scipy.linalg.expm(a)


def svd(a: Any, some: bool = True, compute_uv: bool = True) -> tuple:
    """``(U, S, V)`` (V, not V^H, as torch.svd returns)."""
    u, s, vh = jnp.linalg.svd(a, full_matrices=not some)
    return u, s, jnp.swapaxes(vh, -2, -1).conj()


def _window(fn: Any, name: str) -> Any:
    def window(window_length: int, periodic: bool = True, *, dtype: Any = None,
               **kwargs: Any) -> Any:  # fmt: skip
        n = window_length + 1 if periodic else window_length
        w = fn(n)[:window_length] if window_length > 1 else np.ones(window_length)
        return finish(jnp.asarray(w.astype(float_dtype(dtype))), **kwargs)

    window.__name__ = name
    window.__doc__ = f"torch's ``{name}`` (periodic by default)."
    return window


hann_window = _window(np.hanning, "hann_window")
hamming_window = _window(np.hamming, "hamming_window")
blackman_window = _window(np.blackman, "blackman_window")
bartlett_window = _window(np.bartlett, "bartlett_window")


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *,
                  dtype: Any = None, **kwargs: Any) -> Any:  # fmt: skip
    """torch's ``kaiser_window``."""
    return _window(lambda n: np.kaiser(n, beta), "kaiser_window")(
        window_length, periodic, dtype=dtype, **kwargs
    )


def combinations(a: Any, r: int = 2, with_replacement: bool = False) -> Any:
    """All length-``r`` combinations of a 1-D tensor's elements, as rows."""
    import itertools

    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(range(a.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    return a[jnp.asarray(idx)]


EXTRA: dict[str, Any] = {
    f.__name__: f
    for f in (addr, chain_matmul, dist, cov, corrcoef, gradient, isin, gcd, lcm, frexp, polygamma,
              mvlgamma, trapezoid, cumulative_trapezoid, vander, renorm, hsplit, vsplit,
              dsplit, select_scatter, slice_scatter, diagonal_scatter, index_reduce, put,
              unravel_index, is_same_size, view_as_real, view_as_complex, real, imag, det,
              logdet, slogdet, inverse, pinverse, matrix_power, matrix_exp, svd, combinations)
}  # fmt: skip
EXTRA["trapz"] = trapezoid
WINDOWS: dict[str, Any] = {
    f.__name__: f
    for f in (hann_window, hamming_window, blackman_window, bartlett_window, kaiser_window)
}
METHODS = ("addr", "dist", "gcd", "lcm", "frexp", "renorm", "hsplit", "vsplit", "dsplit",
           "select_scatter", "slice_scatter", "diagonal_scatter", "index_reduce", "put",
           "is_same_size", "det", "logdet", "slogdet", "inverse", "pinverse", "matrix_power",
           "matrix_exp", "svd", "cov", "corrcoef", "mvlgamma")  # fmt: skip
