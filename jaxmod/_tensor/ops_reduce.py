"""Reductions, scans and sorting with torch's signatures, on arrays: ``dim=``/``keepdim=``,
integer sums in the default integer dtype, ``(values, indices)`` named tuples."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err
from jaxmod._tensor import ops_index as _oi
from jaxmod._tensor.eager import eager_jit
from jaxmod._tensor.ops_math import operands
from jaxmod.amp._state import S as _amp


def _named(name: str, fields: str = "values indices") -> type:
    cls = collections.namedtuple(name, fields)

    def __repr__(self: Any) -> str:
        body = ",\n".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"torch.return_types.{name}(\n{body})"

    cls.__repr__ = __repr__  # type: ignore[method-assign]
    cls.__module__ = "jaxmod.return_types"
    return cls


RETURN_TYPES = {
    n: _named(n)
    for n in ("max", "min", "sort", "topk", "kthvalue", "median", "nanmedian", "mode",
              "cummax", "cummin")
}  # fmt: skip
RETURN_TYPES["aminmax"] = _named("aminmax", "min max")
RETURN_TYPES["histogram"] = _named("histogram", "hist bin_edges")


def _axes(a: Any, dim: Any) -> Any:
    """``dim`` (None, an int, a sequence) as jnp's ``axis`` (None: all)."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return _err.dims(dim, a.ndim) if len(dim) else None
    return _err.dim(dim, a.ndim)


def _acc_dtype(a: Any, dtype: Any) -> Any:
    if dtype is not None:
        return _dt.as_dtype(dtype)
    return _dt.wide("long") if a.dtype.kind in "biu" else None


# jnp's reductions on concrete arrays through jax.jit's fast path (see jaxmod._tensor.eager)
_sum = eager_jit(lambda a, ax, k, dt: jnp.sum(a, axis=ax, keepdims=k, dtype=dt), 1, (1, 2, 3))
_mean = eager_jit(lambda a, ax, k: jnp.mean(a, axis=ax, keepdims=k), 1, (1, 2))
_var = eager_jit(lambda a, ax, d, k: jnp.var(a, axis=ax, ddof=d, keepdims=k), 1, (1, 2, 3))
_std = eager_jit(lambda a, ax, d, k: jnp.std(a, axis=ax, ddof=d, keepdims=k), 1, (1, 2, 3))


def sum(a: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    """Sum over ``dim`` (all by default); integers sum in the default integer dtype."""
    if dtype is None and _amp.policy is not None:
        (a,) = _amp.policy.fp32("sum", a)
    return _sum(a, _axes(a, dim), bool(keepdim), _acc_dtype(a, dtype))


def nansum(a: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    """Sum treating NaN as zero."""
    return jnp.nansum(a, axis=_axes(a, dim), keepdims=keepdim, dtype=_acc_dtype(a, dtype))


def prod(a: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    """Product over ``dim``."""
    if dtype is None and _amp.policy is not None:
        (a,) = _amp.policy.fp32("prod", a)
    return jnp.prod(a, axis=_axes(a, dim), keepdims=keepdim, dtype=_acc_dtype(a, dtype))


def _need_float(name: str, a: Any, dtype: Any) -> Any:
    if dtype is not None:
        return a.astype(_dt.as_dtype(dtype))
    if a.dtype.kind in "biu":
        raise RuntimeError(
            f"{name}(): could not infer output dtype. Input dtype must be either a floating "
            f"point or complex dtype. Got: {_dt.torch_name(a.dtype)}"
        )
    return a


def mean(a: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    """Mean over ``dim``; integer tensors need ``dtype=`` (as in torch)."""
    return _mean(_need_float("mean", a, dtype), _axes(a, dim), bool(keepdim))


def nanmean(a: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    """Mean ignoring NaN."""
    return jnp.nanmean(_need_float("nanmean", a, dtype), axis=_axes(a, dim), keepdims=keepdim)


def _correction(dim: Any, unbiased: Any, correction: Any) -> tuple[Any, float]:
    if isinstance(dim, bool):  # std(unbiased) positional form
        dim, unbiased = None, dim
    if correction is not None:
        return dim, float(correction)
    return dim, 0.0 if unbiased is False else 1.0


def var(
    a: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
    correction: Any = None,
) -> Any:  # fmt: skip
    """Variance over ``dim`` with Bessel's correction unless ``unbiased=False`` /
    ``correction=0``."""
    dim, ddof = _correction(dim, unbiased, correction)
    a = _need_float("var", a, None)
    return _var(a, _axes(a, dim), ddof, bool(keepdim))


def std(
    a: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
    correction: Any = None,
) -> Any:  # fmt: skip
    """Standard deviation (see :func:`var`)."""
    dim, ddof = _correction(dim, unbiased, correction)
    a = _need_float("std", a, None)
    return _std(a, _axes(a, dim), ddof, bool(keepdim))


def var_mean(a: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
             correction: Any = None) -> tuple:  # fmt: skip
    """``(var, mean)``."""
    m = mean(a, dim if not isinstance(dim, bool) else None, keepdim)
    return var(a, dim, unbiased, keepdim, correction=correction), m


def std_mean(a: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
             correction: Any = None) -> tuple:  # fmt: skip
    """``(std, mean)``."""
    m = mean(a, dim if not isinstance(dim, bool) else None, keepdim)
    return std(a, dim, unbiased, keepdim, correction=correction), m


def _empty_check(name: str, a: Any, dim: Any) -> None:
    if a.size == 0 and dim is None:
        raise RuntimeError(
            f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
            "Specify the reduction dim with the 'dim' argument."
        )


def _extreme(name: str, red: Any, arg: Any, elementwise: Any) -> Any:
    # values and indices in one dispatch (one XLA computation) on concrete arrays
    both = eager_jit(lambda a, d, k: (red(a, axis=d, keepdims=k), arg(a, axis=d, keepdims=k)),
                     1, (1, 2))  # fmt: skip

    def op(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
        other = _b.unwrap(dim)
        if isinstance(other, (jax.Array, np.ndarray)):
            return elementwise(*operands(a, other))
        _empty_check(name, a, dim)
        if dim is None:
            return red(a)
        d = _err.dim(dim, a.ndim)
        if a.ndim == 0:
            return RETURN_TYPES[name](a, jnp.zeros((), _dt.wide("long")))
        return RETURN_TYPES[name](*both(a, d, bool(keepdim)))

    op.__name__ = name
    op.__doc__ = (
        f"The {name}imum: of all elements, or ``(values, indices)`` along ``dim``, or "
        f"elementwise against another tensor."
    )
    return op


max = _extreme("max", jnp.max, jnp.argmax, jnp.maximum)
min = _extreme("min", jnp.min, jnp.argmin, jnp.minimum)


def amax(a: Any, dim: Any = (), keepdim: bool = False) -> Any:
    """Maximum over ``dim`` (a dim or a tuple; all by default)."""
    return jnp.max(a, axis=_axes(a, dim), keepdims=keepdim)


def amin(a: Any, dim: Any = (), keepdim: bool = False) -> Any:
    """Minimum over ``dim``."""
    return jnp.min(a, axis=_axes(a, dim), keepdims=keepdim)


def aminmax(a: Any, *, dim: Any = None, keepdim: bool = False) -> Any:
    """``(min, max)`` as a named tuple."""
    return RETURN_TYPES["aminmax"](amin(a, dim if dim is not None else (), keepdim),
                                   amax(a, dim if dim is not None else (), keepdim))  # fmt: skip


def argmax(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """Index of the maximum (of the flattened tensor when ``dim`` is None)."""
    if dim is None:
        out = jnp.argmax(a)
        return out.reshape((1,) * a.ndim) if keepdim else out
    return jnp.argmax(a, axis=_err.dim(dim, a.ndim), keepdims=keepdim)


def argmin(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """Index of the minimum."""
    if dim is None:
        out = jnp.argmin(a)
        return out.reshape((1,) * a.ndim) if keepdim else out
    return jnp.argmin(a, axis=_err.dim(dim, a.ndim), keepdims=keepdim)


def all(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """Whether all elements (along ``dim``) are true."""
    return jnp.all(a, axis=_axes(a, dim), keepdims=keepdim)


def any(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """Whether any element (along ``dim``) is true."""
    return jnp.any(a, axis=_axes(a, dim), keepdims=keepdim)


def count_nonzero(a: Any, dim: Any = None) -> Any:
    """The number of non-zero elements (along ``dim``)."""
    return jnp.count_nonzero(a, axis=_axes(a, dim)).astype(_dt.wide("long"))


def logsumexp(a: Any, dim: Any, keepdim: bool = False) -> Any:
    """``log(sum(exp(a)))`` over ``dim``, computed stably."""
    if a.dtype.kind in "biu":
        a = a.astype(_dt.default_np())
    return jax.scipy.special.logsumexp(a, axis=_axes(a, dim), keepdims=keepdim)


def norm(a: Any, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None):
    """The p-norm (``"fro"``, ``"nuc"``, a number, ``inf``) over ``dim`` (all by default)."""
    if dtype is not None:
        a = a.astype(_dt.as_dtype(dtype))
    if a.dtype.kind in "biu":
        raise RuntimeError(
            f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
            f"{_dt.torch_name(a.dtype)}"
        )
    axis = _axes(a, dim)
    if p == "nuc":
        return jnp.linalg.norm(a, "nuc", axis=axis if axis is not None else (-2, -1),
                               keepdims=keepdim)  # fmt: skip
    if p == "fro" or p is None:
        p = 2
    return vector_norm(a, p, axis, keepdim)


def vector_norm(a: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False) -> Any:
    """The vector ``ord``-norm over ``dim`` (all dims by default)."""
    axis = dim if not isinstance(dim, list) else tuple(dim)
    x = jnp.abs(a)
    if ord == math.inf:
        return jnp.max(x, axis=axis, keepdims=keepdim)
    if ord == -math.inf:
        return jnp.min(x, axis=axis, keepdims=keepdim)
    if ord == 0:
        return jnp.sum(x != 0, axis=axis, keepdims=keepdim).astype(x.dtype)
    if ord == 1:
        return jnp.sum(x, axis=axis, keepdims=keepdim)
    if ord == 2:
        return jnp.sqrt(jnp.sum(x * x, axis=axis, keepdims=keepdim))
    return jnp.sum(x**ord, axis=axis, keepdims=keepdim) ** (1.0 / ord)


def _scan_dtype(a: Any, dtype: Any) -> Any:
    a = a.astype(_dt.as_dtype(dtype)) if dtype is not None else a
    return a.astype(_dt.wide("long")) if a.dtype.kind in "bu" or a.dtype == np.int8 else a


def cumsum(a: Any, dim: int, *, dtype: Any = None) -> Any:
    """Running sum along ``dim``."""
    if dtype is None and _amp.policy is not None:
        (a,) = _amp.policy.fp32("cumsum", a)
    a = _scan_dtype(a, dtype)
    return jnp.cumsum(a, axis=_err.dim(dim, a.ndim)) if a.ndim else a


def cumprod(a: Any, dim: int, *, dtype: Any = None) -> Any:
    """Running product along ``dim``."""
    if dtype is None and _amp.policy is not None:
        (a,) = _amp.policy.fp32("cumprod", a)
    a = _scan_dtype(a, dtype)
    return jnp.cumprod(a, axis=_err.dim(dim, a.ndim)) if a.ndim else a


def logcumsumexp(a: Any, dim: int) -> Any:
    """Running ``logsumexp`` along ``dim``."""
    return jax.lax.cumlogsumexp(a, axis=_err.dim(dim, a.ndim))


def _cum_extreme(name: str, cmp: Any) -> Any:
    def op(a: Any, dim: int) -> Any:
        d = _err.dim(dim, a.ndim)
        if a.ndim == 0:
            return RETURN_TYPES[name](a, jnp.zeros((), _dt.wide("long")))
        n = a.shape[d]
        shape = [1] * a.ndim
        shape[d] = n
        idx = jnp.broadcast_to(jnp.arange(n).reshape(shape), a.shape)

        def step(x: Any, y: Any) -> Any:
            (xv, xi), (yv, yi) = x, y
            take = cmp(yv, xv) | jnp.isnan(yv)
            return jnp.where(take, yv, xv), jnp.where(take, yi, xi)

        vals, ids = jax.lax.associative_scan(step, (a, idx), axis=d)
        return RETURN_TYPES[name](vals, ids.astype(_dt.wide("long")))

    op.__name__ = name
    op.__doc__ = f"Running {name[3:]}imum along ``dim`` as ``(values, indices)``."
    return op


cummax = _cum_extreme("cummax", jnp.greater_equal)
cummin = _cum_extreme("cummin", jnp.less_equal)


def sort(a: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """``(values, indices)`` sorted along ``dim`` (stable; NaN sorts as the largest)."""
    if isinstance(dim, bool):  # sort(descending) is not torch, but sort(dim, descending) is
        raise TypeError("sort(): dim must be an int")
    if a.ndim == 0:
        return RETURN_TYPES["sort"](a, jnp.zeros((), _dt.wide("long")))
    d = _err.dim(dim, a.ndim)
    idx = jnp.argsort(a, axis=d, stable=True, descending=descending)
    return RETURN_TYPES["sort"](jnp.take_along_axis(a, idx, axis=d), idx)


def argsort(a: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """Indices that sort along ``dim``."""
    return sort(a, dim, descending, stable).indices


def msort(a: Any) -> Any:
    """Sorted along the first dimension."""
    return sort(a, 0).values


def topk(a: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """The ``k`` largest (or smallest) elements along ``dim`` as ``(values, indices)``."""
    d = _err.dim(dim, a.ndim)
    n = a.shape[d] if a.ndim else 1
    if k < 0 or k > n:
        raise RuntimeError("selected index k out of range")
    if a.ndim == 0:
        return RETURN_TYPES["topk"](a, jnp.zeros((), _dt.wide("long")))
    x = jnp.moveaxis(a, d, -1)
    if largest and a.dtype.kind != "b":
        vals, idx = jax.lax.top_k(x, k)
    else:
        idx = jnp.argsort(x, axis=-1, stable=True, descending=largest)[..., :k]
        vals = jnp.take_along_axis(x, idx, axis=-1)
    return RETURN_TYPES["topk"](jnp.moveaxis(vals, -1, d),
                                jnp.moveaxis(idx, -1, d).astype(_dt.wide("long")))  # fmt: skip


def kthvalue(a: Any, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    """The ``k``-th smallest element along ``dim`` as ``(values, indices)``."""
    d = _err.dim(dim, a.ndim)
    n = a.shape[d] if a.ndim else 1
    if k < 1 or k > n:
        raise IndexError(f"kthvalue(): selected number k out of range for dimension {d}")
    s = sort(a, d)
    v = jnp.take(s.values, k - 1, axis=d) if a.ndim else s.values
    i = jnp.take(s.indices, k - 1, axis=d) if a.ndim else s.indices
    if keepdim and a.ndim:
        v, i = jnp.expand_dims(v, d), jnp.expand_dims(i, d)
    return RETURN_TYPES["kthvalue"](v, i)


def _median(name: str, a: Any, dim: Any, keepdim: bool, ignore_nan: bool) -> Any:
    if dim is None:
        flat = a.ravel()
        if ignore_nan:
            n = jnp.sum(~jnp.isnan(flat))
            s = jnp.sort(flat)
            return s[jnp.maximum((n - 1) // 2, 0)]
        s = jnp.sort(flat)
        out = s[(flat.size - 1) // 2]
        return jnp.where(jnp.any(jnp.isnan(flat)), jnp.nan, out) if a.dtype.kind == "f" else out
    d = _err.dim(dim, a.ndim)
    if a.ndim == 0:
        return RETURN_TYPES[name](a, jnp.zeros((), _dt.wide("long")))
    s = sort(a, d)
    n = a.shape[d]
    if ignore_nan:
        k = jnp.maximum((jnp.sum(~jnp.isnan(a), axis=d, keepdims=True) - 1) // 2, 0)
    else:
        k = jnp.full((1,) * a.ndim, (n - 1) // 2)
        if a.dtype.kind == "f":
            first_nan = jnp.argmax(jnp.isnan(s.values), axis=d, keepdims=True)
            k = jnp.where(jnp.any(jnp.isnan(a), axis=d, keepdims=True), first_nan, k)
    shape = list(a.shape)
    shape[d] = 1
    k = jnp.broadcast_to(k, shape)
    v = jnp.take_along_axis(s.values, k, axis=d)
    i = jnp.take_along_axis(s.indices, k, axis=d)
    if not keepdim:
        v, i = jnp.squeeze(v, d), jnp.squeeze(i, d)
    return RETURN_TYPES[name](v, i.astype(_dt.wide("long")))


def median(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The lower median (of all elements, or ``(values, indices)`` along ``dim``)."""
    return _median("median", a, dim, keepdim, ignore_nan=False)


def nanmedian(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The lower median ignoring NaN."""
    return _median("nanmedian", a, dim, keepdim, ignore_nan=True)


def _quantile(fn: Callable, a: Any, q: Any, dim: Any, keepdim: bool, method: str) -> Any:
    q = jnp.asarray(_b.unwrap(q))
    axis = _axes(a, dim)
    if method != "nearest":
        return fn(a, q, axis=axis, keepdims=keepdim, method=method)
    # torch rounds the rank q * (n - 1) half to even (numpy too); jnp's "nearest" rounds
    # halves down: pick "lower" or "higher" by torch's rounding
    lo = fn(a, q, axis=axis, keepdims=keepdim, method="lower")
    hi = fn(a, q, axis=axis, keepdims=keepdim, method="higher")
    n = a.size if axis is None else a.shape[axis]
    rank = q * (n - 1)
    down = jnp.round(rank) == jnp.floor(rank)
    return jnp.where(down.reshape(q.shape + (1,) * (lo.ndim - q.ndim)), lo, hi)


def quantile(a: Any, q: Any, dim: Any = None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Any:  # fmt: skip
    """The ``q``-th quantiles along ``dim`` (``"nearest"`` rounds ranks half to even,
    as torch does)."""
    return _quantile(jnp.quantile, a, q, dim, keepdim, interpolation)


def nanquantile(a: Any, q: Any, dim: Any = None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Any:  # fmt: skip
    """The ``q``-th quantiles ignoring NaN."""
    if interpolation == "nearest":  # the rank depends on each slice's non-NaN count
        return _nan_nearest(jnp.asarray(a), jnp.asarray(_b.unwrap(q)), _axes(a, dim), keepdim)
    return _quantile(jnp.nanquantile, a, q, dim, keepdim, interpolation)


def _nan_nearest(a: Any, q: Any, axis: Any, keepdim: bool) -> Any:
    x = a.reshape(-1) if axis is None else jnp.moveaxis(a, axis, -1)
    s = jnp.sort(x, axis=-1)  # NaNs last
    k = jnp.sum(~jnp.isnan(x), axis=-1)
    rank = q.reshape(q.shape + (1,) * k.ndim) * (k - 1)
    idx = jnp.clip(jnp.round(rank), 0, None).astype(jnp.int32)
    s = jnp.broadcast_to(s, q.shape + s.shape)
    out = jnp.take_along_axis(s, idx[..., None], axis=-1)[..., 0]
    out = jnp.where(k == 0, jnp.nan, out)
    if keepdim:
        out = (
            out.reshape(q.shape + (1,) * a.ndim)
            if axis is None
            else jnp.expand_dims(out, q.ndim + axis)
        )
    return out


def diff(a: Any, n: int = 1, dim: int = -1, prepend: Any = None, append: Any = None) -> Any:
    """``n``-th forward difference along ``dim``."""
    return jnp.diff(a, n=n, axis=_err.dim(dim, a.ndim), prepend=_b.unwrap(prepend),
                    append=_b.unwrap(append))  # fmt: skip


def trace(a: Any) -> Any:
    """Sum of the main diagonal of a matrix."""
    out = jnp.trace(a)
    return out.astype(_dt.wide("long")) if a.dtype.kind in "biu" else out


def mode(a: Any, dim: int = -1, keepdim: bool = False) -> Any:
    """The most frequent value along ``dim`` (the smallest on ties) and an index of it."""
    d = _err.dim(dim, a.ndim)
    if a.ndim == 0:
        return RETURN_TYPES["mode"](a, jnp.zeros((), _dt.wide("long")))
    x = jnp.moveaxis(a, d, -1)
    counts = jnp.sum(x[..., :, None] == x[..., None, :], axis=-1)
    best = jnp.max(counts, axis=-1, keepdims=True)
    cand = jnp.where(counts == best, x, jnp.max(x, axis=-1, keepdims=True))
    val = jnp.min(cand, axis=-1, keepdims=True)
    n = x.shape[-1]
    idx = n - 1 - jnp.argmax(jnp.flip(x == val, -1), axis=-1, keepdims=True)
    v, i = jnp.moveaxis(val, -1, d), jnp.moveaxis(idx, -1, d)
    if not keepdim:
        v, i = jnp.squeeze(v, d), jnp.squeeze(i, d)
    return RETURN_TYPES["mode"](v, i.astype(_dt.wide("long")))


def histogram(a: Any, bins: Any = 100, *, range: Any = None, weight: Any = None,
              density: bool = False) -> Any:  # fmt: skip
    """``torch.histogram``: the ``(hist, bin_edges)`` named tuple of ``bins`` equal bins
    over ``range`` (the data's range by default) or of the given edges, with ``weight``
    and ``density``."""
    return RETURN_TYPES["histogram"](*_oi.histogram_counts(a, bins, range, weight, density))


REDUCE: dict[str, Any] = {
    f.__name__: f
    for f in (sum, nansum, prod, mean, nanmean, var, std, var_mean, std_mean, max, min, amax,
              amin, aminmax, argmax, argmin, all, any, count_nonzero, logsumexp, norm, cumsum,
              cumprod, logcumsumexp, cummax, cummin, sort, argsort, msort, topk, kthvalue,
              median, nanmedian, quantile, nanquantile, diff, trace, mode, histogram)
}  # fmt: skip
