"""Gather, scatter, index and selection ops with torch's semantics, on arrays.

Ops whose result shape depends on values (``nonzero``, ``masked_select``, ``unique``, ...)
work eagerly and raise ``jaxmod.TraceError`` under a trace, naming the fixed-shape
alternative. Concrete integer indices are bounds-checked (JAX clamps out-of-range
gathers and drops out-of-range scatters silently).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err

_Tracer = jax.core.Tracer


def _concrete(name: str, *xs: Any) -> None:
    for x in xs:
        if isinstance(x, _Tracer):
            raise _err.traced(name, _err.DATA_DEPENDENT)


def _check_bounds(index: Any, n: int, d: int, kind: type = RuntimeError, msg: str = "",
                  negative: bool = False) -> None:  # fmt: skip
    """torch's bounds check of a concrete index: ``0 <= i < n`` (``-n <= i < n`` where
    torch wraps negative indices, ``negative=True``); the message names the first bad
    index. Traced indices are not checked (XLA clamps or drops them)."""
    if isinstance(index, _Tracer) or not np.size(index):
        return
    a = np.asarray(index).ravel()
    bad = (a >= n) | (a < (-n if negative else 0))
    if bad.any():
        first = int(a[np.argmax(bad)])
        raise kind(msg or f"index {first} is out of bounds for dimension {d} with size {n}")


def _int_index(index: Any, name: str) -> Any:
    index = _b.unwrap(index)
    index = jnp.asarray(index) if not isinstance(index, jax.Array) else index
    if index.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")
    return index


def _scatter_index(a: Any, d: int, index: Any, name: str) -> tuple:
    if index.ndim != a.ndim:
        raise RuntimeError(
            "Index tensor must have the same number of dimensions as "
            f"{'input' if name == 'gather' else 'self'} tensor"
        )
    for i, (m, n) in enumerate(zip(index.shape, a.shape)):
        if i != d and m > n:
            raise RuntimeError(
                f"Size does not match at dimension {i} expected index {list(index.shape)} to be "
                f"smaller than self {list(a.shape)} apart from dimension {d}"
            )
    _check_bounds(index, a.shape[d] if a.ndim else 1, d)
    grids = list(jnp.indices(index.shape, sparse=True)) if index.ndim else []
    if not grids:
        return ()
    grids[d] = index
    return tuple(grids)


def gather(a: Any, dim: int, index: Any, *, sparse_grad: bool = False) -> Any:
    """``out[i][j] = a[i][index[i][j]]`` along ``dim`` (``index`` may be smaller than ``a``)."""
    index = _int_index(index, "gather")
    d = _err.dim(dim, a.ndim)
    key = _scatter_index(a, d, index, "gather")
    return a[key] if key else a


def _src(a: Any, src: Any, value: Any, index: Any, d: int) -> Any:
    s = _b.unwrap(value if src is None else src)
    if src is not None and isinstance(s, jax.Array) and s.ndim and s.dtype != a.dtype:
        raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    if isinstance(s, (jax.Array, np.ndarray)) and np.ndim(s):
        if np.ndim(s) != index.ndim or any(m > n for m, n in zip(index.shape, np.shape(s))):
            raise RuntimeError(
                f"Expected index {list(index.shape)} to be no larger than self "
                f"{list(a.shape)} apart from dimension {d} and to be no larger size than src "
                f"{list(np.shape(s))}"
            )
        s = s[tuple(slice(0, n) for n in index.shape)]
    return jnp.asarray(s).astype(a.dtype)


def scatter(a: Any, dim: int, index: Any, src: Any = None, *, value: Any = None,
            reduce: str | None = None) -> Any:  # fmt: skip
    """``out[i][index[i][j]] = src[i][j]`` along ``dim`` (``src`` a tensor or a scalar;
    ``reduce="add"`` / ``"multiply"`` combines instead of overwriting)."""
    index = _int_index(index, "scatter")
    d = _err.dim(dim, a.ndim)
    key = _scatter_index(a, d, index, "scatter")
    s = _src(a, src, value, index, d)
    ref = a.at[key]
    if reduce is None:
        return ref.set(s)
    if reduce == "add":
        return ref.add(s)
    if reduce == "multiply":
        return ref.multiply(s)
    raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")


def scatter_add(a: Any, dim: int, index: Any, src: Any) -> Any:
    """``scatter`` adding into ``a``."""
    return scatter(a, dim, index, src, reduce="add")


def scatter_reduce(a: Any, dim: int, index: Any, src: Any, reduce: str, *,
                   include_self: bool = True) -> Any:  # fmt: skip
    """``scatter`` combining with ``"sum"``, ``"prod"``, ``"mean"``, ``"amax"``, ``"amin"``."""
    index = _int_index(index, "scatter_reduce")
    d = _err.dim(dim, a.ndim)
    key = _scatter_index(a, d, index, "scatter_reduce")
    s = _src(a, src, None, index, d)
    if reduce == "mean":
        base = a if include_self else jnp.zeros_like(a)
        total = base.at[key].add(s)
        count = jnp.full(a.shape, 1 if include_self else 0, a.dtype).at[key].add(1)
        out = total / jnp.maximum(count, 1)
        out = jnp.where(count == 0, a, out)
        return out.astype(a.dtype) if a.dtype.kind in "iu" else out
    ops = {"sum": ("add", 0), "prod": ("multiply", 1), "amax": ("max", None),
           "amin": ("min", None)}  # fmt: skip
    if reduce not in ops:
        raise RuntimeError(
            "reduce argument must be either sum, prod, mean, amax or amin, got " + reduce
        )
    op, ident = ops[reduce]
    if include_self:
        return getattr(a.at[key], op)(s)
    if ident is None:
        ident = jnp.finfo(a.dtype).min if reduce == "amax" else jnp.finfo(a.dtype).max
        if a.dtype.kind in "iu":
            info = jnp.iinfo(a.dtype)
            ident = info.min if reduce == "amax" else info.max
    touched = jnp.zeros(a.shape, bool).at[key].set(True)
    out = getattr(jnp.full_like(a, ident).at[key], op)(s)
    return jnp.where(touched, out, a)


def index_select(a: Any, dim: int, index: Any) -> Any:
    """The entries ``index`` (1-D) of dimension ``dim``."""
    index = _int_index(index, "index_select")
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = _err.dim(dim, a.ndim)
    n = a.shape[d] if a.ndim else 1
    _check_bounds(index, n, d, IndexError, "index out of range in self")
    return jnp.take(a, index.reshape(-1), axis=d) if a.ndim else a


def _along(a: Any, d: int, index: Any) -> tuple:
    return (slice(None),) * d + (index,)


def index_source(a: Any, dim: int, index: Any, source: Any, name: str,
                 bounds: tuple = (RuntimeError, "")) -> tuple:  # fmt: skip
    """torch's checks of ``index_add`` / ``index_reduce``: a 1-D integer index (0-d is one
    entry) with one entry per slice of ``source`` along ``dim``, ``source`` a tensor of
    ``a``'s shape elsewhere and dtype, indices in range. Returns ``(dim, index, source)``."""
    index = _int_index(index, name)
    if index.ndim > 1:
        raise IndexError(
            f"{name}_(): Index is supposed to be a vector, but got dim: {index.ndim} with "
            f"type: {_dt.torch_name(index.dtype)} and size: {list(index.shape)}"
        )
    d = _err.dim(dim, a.ndim)
    if not isinstance(source, (jax.Array, np.ndarray, _b.TensorBase)):
        raise TypeError(
            f"{name}(): argument 'source' (position 3) must be Tensor, not {type(source).__name__}"
        )
    s = jnp.asarray(_b.unwrap(source))
    if s.ndim and index.size != s.shape[min(d, s.ndim - 1)]:
        raise RuntimeError(
            f"{name}_(): Number of indices ({index.size}) should be equal to "
            f"source.size(dim): ({s.shape[min(d, s.ndim - 1)]}), for dim: {d}"
        )
    if s.ndim != a.ndim or any(m != n for i, (m, n) in enumerate(zip(s.shape, a.shape)) if i != d):
        raise RuntimeError(
            "source tensor shape must match self tensor shape, excluding the specified "
            f"dimension. Got self.shape = {list(a.shape)} source.shape = {list(s.shape)}"
        )
    _check_bounds(index, a.shape[d], d, *bounds)
    if s.dtype != a.dtype:
        raise RuntimeError(
            f"{name}_(): self ({_dt.torch_name(a.dtype)}) and source "
            f"({_dt.torch_name(s.dtype)}) must have the same scalar type"
        )
    return d, index.reshape(-1), s


def index_add(a: Any, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Any:
    """``a[..., index, ...] += alpha * source`` along ``dim`` (repeated indices add up)."""
    d, index, s = index_source(a, dim, index, source, "index_add")
    return a.at[_along(a, d, index)].add(s * _b.unwrap(alpha) if alpha != 1 else s)


def index_copy(a: Any, dim: int, index: Any, source: Any) -> Any:
    """``a[..., index, ...] = source`` along ``dim``."""
    index = _int_index(index, "index_copy")
    d = _err.dim(dim, a.ndim)
    if not isinstance(index, _Tracer) and index.size:
        try:
            _check_bounds(index, a.shape[d], d, IndexError)
        except IndexError as e:
            raise IndexError(f"index_copy_(): {e}") from None
    return a.at[_along(a, d, index)].set(jnp.asarray(_b.unwrap(source)).astype(a.dtype))


def index_fill(a: Any, dim: int, index: Any, value: Any) -> Any:
    """``a[..., index, ...] = value`` along ``dim``."""
    index = _int_index(index, "index_fill")
    d = _err.dim(dim, a.ndim)
    _check_bounds(index, a.shape[d], d, IndexError, "index out of range in self", negative=True)
    return a.at[_along(a, d, index)].set(jnp.asarray(_b.unwrap(value)).astype(a.dtype))


def index_put(a: Any, indices: Any, values: Any, accumulate: bool = False) -> Any:
    """``a[indices] = values`` (or ``+=`` with ``accumulate``)."""
    key = tuple(_b.unwrap(i) for i in indices)
    v = jnp.asarray(_b.unwrap(values)).astype(a.dtype)
    return a.at[key].add(v) if accumulate else a.at[key].set(v)


def masked_select(a: Any, mask: Any) -> Any:
    """The elements where ``mask`` holds, as a 1-D tensor (eager only)."""
    m = _b.unwrap(mask)
    _concrete("masked_select", a, m)
    shape = jnp.broadcast_shapes(tuple(a.shape), tuple(m.shape))
    return jnp.broadcast_to(a, shape)[jnp.broadcast_to(m, shape)]


def masked_scatter(a: Any, mask: Any, source: Any) -> Any:
    """``source``'s elements, in order, where ``mask`` holds (works under jit)."""
    m = jnp.broadcast_to(_b.unwrap(mask), a.shape)
    src = jnp.ravel(_b.unwrap(source))
    pos = jnp.cumsum(m.ravel()) - 1
    vals = src[jnp.clip(pos, 0, max(src.size - 1, 0))].reshape(a.shape)
    return jnp.where(m, vals.astype(a.dtype), a)


def take(a: Any, index: Any) -> Any:
    """Elements of the flattened ``a`` at ``index``."""
    index = _int_index(index, "take")
    _check_bounds(index, a.size, 0, IndexError, "out of range: tried to access index "
                  "outside of a tensor with " + str(a.size) + " elements", True)  # fmt: skip
    return jnp.take(a.ravel(), index)


def take_along_dim(a: Any, indices: Any, dim: Any = None) -> Any:
    """``numpy.take_along_axis`` (on the flattened tensor when ``dim`` is None)."""
    idx = _int_index(indices, "take_along_dim")
    if dim is None:
        return jnp.take_along_axis(a.ravel(), idx.ravel(), axis=0)
    return jnp.take_along_axis(a, idx, axis=_err.dim(dim, a.ndim))


def nonzero(a: Any, *, as_tuple: bool = False) -> Any:
    """Indices of the non-zero elements: ``(N, ndim)``, or one 1-D tensor per dim (eager).

    Found on the host (numpy): the output size needs the values there anyway, and
    ``jnp.nonzero`` of a concrete array compiles several programs per input shape."""
    _concrete("nonzero", a)
    host, long = np.asarray(a), _dt.wide("long")
    if as_tuple:
        return tuple(jnp.asarray(i.astype(long)) for i in np.nonzero(np.atleast_1d(host)))
    return jnp.asarray(np.argwhere(host).astype(long))


def argwhere(a: Any) -> Any:
    """``nonzero(a)`` (eager)."""
    return nonzero(a)


def unique(a: Any, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: Any = None) -> Any:  # fmt: skip
    """The distinct values, sorted (eager; with ``return_inverse`` / ``return_counts``)."""
    _concrete("unique", a)
    out = jnp.unique(a, return_inverse=return_inverse, return_counts=return_counts,
                     axis=None if dim is None else _err.dim(dim, a.ndim))  # fmt: skip
    if not (return_inverse or return_counts):
        return out
    out = list(out)
    if return_inverse:
        out[1] = out[1].reshape(a.shape if dim is None else (a.shape[dim],))
        out[1] = out[1].astype(_dt.wide("long"))
    if return_counts:
        out[-1] = out[-1].astype(_dt.wide("long"))
    return tuple(out)


def unique_consecutive(a: Any, return_inverse: bool = False, return_counts: bool = False,
                       dim: Any = None) -> Any:  # fmt: skip
    """Values with consecutive repeats collapsed (eager)."""
    _concrete("unique_consecutive", a)
    x = np.asarray(a).ravel()
    if x.size == 0:
        keep = np.zeros(0, bool)
    else:
        keep = np.concatenate([[True], x[1:] != x[:-1]])
    vals = jnp.asarray(x[keep])
    out = [vals]
    if return_inverse:
        out.append(jnp.asarray(np.cumsum(keep) - 1).reshape(a.shape).astype(_dt.wide("long")))
    if return_counts:
        starts = np.flatnonzero(keep)
        out.append(jnp.asarray(np.diff(np.append(starts, x.size))).astype(_dt.wide("long")))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(a: Any, weights: Any = None, minlength: int = 0) -> Any:
    """Counts of each non-negative integer (eager: the length depends on the values)."""
    _concrete("bincount (its length is max(input) + 1)", a)
    n = max(int(jnp.max(a)) + 1 if a.size else 0, minlength)
    out = jnp.bincount(a, weights=_b.unwrap(weights), length=n)
    return out if weights is not None else out.astype(_dt.wide("long"))


def _range_of(a: Any, lo: Any, hi: Any, data_if_equal: bool) -> tuple[Any, Any]:
    """torch's outer bin edges in ``a``'s dtype: ``[lo, hi]``, the data's range when none is
    given (``histc``: when ``lo == hi``; an empty input's range is ``[0, 1]``), widened by
    0.5 on each side when empty."""
    lo = None if lo is None else jnp.asarray(lo, a.dtype)
    hi = None if hi is None else jnp.asarray(hi, a.dtype)
    if lo is None or data_if_equal:
        if a.size == 0:
            data_lo, data_hi = (jnp.zeros((), a.dtype), jnp.ones((), a.dtype))
        else:
            data_lo, data_hi = jnp.min(a), jnp.max(a)
        if lo is None:
            lo, hi = data_lo, data_hi
        elif a.size:
            same = lo == hi
            lo, hi = jnp.where(same, data_lo, lo), jnp.where(same, data_hi, hi)
    same = lo == hi
    return jnp.where(same, lo - 0.5, lo), jnp.where(same, hi + 0.5, hi)


def _ordered(lo: Any, hi: Any, message: str) -> None:
    lo, hi = _b.unwrap(lo), _b.unwrap(hi)
    if not isinstance(lo, _Tracer) and not isinstance(hi, _Tracer) and lo > hi:
        raise RuntimeError(message.format(lo=lo, hi=hi))


def _bin_counts(a: Any, pos: Any, keep: Any, bins: int, weight: Any = None) -> Any:
    w = keep.astype(a.dtype) if weight is None else jnp.where(keep, weight, 0).astype(a.dtype)
    return jnp.zeros(bins, a.dtype).at[jnp.where(keep, pos, 0).ravel()].add(w.ravel())


def histc(a: Any, bins: int = 100, min: Any = 0, max: Any = 0) -> Any:
    """Histogram of ``bins`` equal bins over ``[min, max]`` (the data's range when both 0).

    torch's binning: element ``x`` goes to bin ``floor((x - min) * bins / (max - min))``
    computed in the input's dtype (``max`` itself to the last bin), elements outside the
    range are not counted. numpy's edges (``np.histogram``) can put a value that sits on
    an inner edge into the bin below."""
    if bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
    a = jnp.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise NotImplementedError(
            f"\"histogram_cpu\" not implemented for '{_dt.torch_name(a.dtype)}'"
        )
    _ordered(min, max, "torch.histc: max must be larger than min")
    lo, hi = _range_of(a, _b.unwrap(min), _b.unwrap(max), True)
    pos = jnp.floor((a - lo) * bins / (hi - lo))
    pos = jnp.clip(jnp.nan_to_num(pos), 0, bins - 1).astype(jnp.int32)
    return _bin_counts(a, pos, (a >= lo) & (a <= hi), bins)


def histogram_counts(a: Any, bins: Any, range: Any = None, weight: Any = None,
                     density: bool = False) -> tuple[Any, Any]:  # fmt: skip
    """``(hist, bin_edges)`` of ``torch.histogram``: ``bins`` equal bins over ``range``
    (the data's range by default), or the given increasing edges; a value on an inner edge
    counts in the bin above it, the last edge in the last bin."""
    a = jnp.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise NotImplementedError(
            f"\"histogramdd\" not implemented for '{_dt.torch_name(a.dtype)}'"
        )
    b = _b.unwrap(bins)
    if isinstance(b, (int, np.integer)):
        if b <= 0:
            raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {b} for dimension 0")
        if range is not None:
            _ordered(*range, "torch.histogramdd: min should not exceed max, but got min {lo:g} "
                             "max {hi:g} for dimension 0")  # fmt: skip
        lo, hi = _range_of(a, *(range if range is not None else (None, None)), False)
        i = jnp.arange(b + 1, dtype=a.dtype)
        step = (hi - lo) / b  # torch's linspace: up from lo, the upper half down from hi
        edges = jnp.where(i < (b + 1) // 2, lo + step * i, hi - step * (b - i))
    else:
        edges = jnp.asarray(b).astype(a.dtype)
        if edges.ndim != 1 or edges.shape[0] < 1:
            raise RuntimeError("torch.histogram(): bins tensor should have one dimension")
    n = edges.shape[0] - 1
    pos = jnp.clip(jnp.searchsorted(edges, a, side="right") - 1, 0, n - 1)
    keep = (a >= edges[0]) & (a <= edges[-1])
    hist = _bin_counts(a, pos, keep, n, None if weight is None else _b.unwrap(weight))
    if density:
        hist = hist / (hist.sum() * jnp.diff(edges))
    return hist, edges


def searchsorted(
    sorted_sequence: Any,
    values: Any,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
    sorter: Any = None,
) -> Any:
    """Insertion indices of ``values`` into ``sorted_sequence`` (batched on the last dim)."""
    seq, v = _b.unwrap(sorted_sequence), _b.unwrap(values)
    side = side or ("right" if right else "left")
    if sorter is not None:
        seq = jnp.take_along_axis(seq, _b.unwrap(sorter), axis=-1)
    v_arr = jnp.asarray(v)
    if seq.ndim <= 1:
        out = jnp.searchsorted(seq, v_arr, side=side)
    else:
        fn = jax.vmap(lambda s, x: jnp.searchsorted(s, x, side=side))
        lead = seq.shape[:-1]
        out = fn(seq.reshape(-1, seq.shape[-1]), v_arr.reshape(-1, v_arr.shape[-1]))
        out = out.reshape(lead + v_arr.shape[-1:])
    return out.astype(jnp.int32 if out_int32 else _dt.wide("long"))


def bucketize(a: Any, boundaries: Any, *, out_int32: bool = False, right: bool = False) -> Any:
    """The bucket of each element of ``a`` among 1-D ``boundaries``."""
    return searchsorted(boundaries, a, out_int32=out_int32, right=right)


def tril(a: Any, diagonal: int = 0) -> Any:
    """Lower triangle of the last two dims (the rest zeroed)."""
    if a.ndim < 2:
        raise RuntimeError("tril: input tensor must have at least 2 dimensions")
    return jnp.tril(a, diagonal)


def triu(a: Any, diagonal: int = 0) -> Any:
    """Upper triangle of the last two dims."""
    if a.ndim < 2:
        raise RuntimeError("triu: input tensor must have at least 2 dimensions")
    return jnp.triu(a, diagonal)


def flip(a: Any, *args: Any, dims: Any = None) -> Any:
    """Reversed along ``dims`` (given positionally, as a list, or as ``dims=``)."""
    if dims is not None and args:
        raise TypeError("flip() got multiple values for argument 'dims'")
    if dims is None and not args:
        raise TypeError('flip() missing 1 required positional arguments: "dims"')
    dims = args if dims is None else (dims,)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return jnp.flip(a, _err.dims(list(dims), a.ndim)) if dims else a


def fliplr(a: Any) -> Any:
    """Reversed along dim 1."""
    if a.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return jnp.flip(a, 1)


def flipud(a: Any) -> Any:
    """Reversed along dim 0."""
    if a.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return jnp.flip(a, 0)


def roll(a: Any, shifts: Any, dims: Any = None) -> Any:
    """Elements shifted cyclically (the flattened tensor when ``dims`` is None)."""
    if dims is None:
        return jnp.roll(a.ravel(), shifts).reshape(a.shape)
    return jnp.roll(a, shifts, axis=_err.dims(dims, a.ndim) if isinstance(dims, (list, tuple))
                    else _err.dim(dims, a.ndim))  # fmt: skip


def rot90(a: Any, k: int = 1, dims: Any = (0, 1)) -> Any:
    """Rotated by 90 degrees ``k`` times in the plane ``dims``."""
    return jnp.rot90(a, k, axes=_err.dims(list(dims), a.ndim))


def diag(a: Any, diagonal: int = 0) -> Any:
    """A 1-D tensor as a diagonal matrix, or a matrix's diagonal."""
    if a.ndim not in (1, 2):
        raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " + f"{a.ndim}D")
    return jnp.diag(a, diagonal)


def diag_embed(a: Any, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Any:
    """The last dim of ``a`` placed on a diagonal of dims ``dim1``, ``dim2``."""
    n = a.shape[-1] + abs(offset)
    out = jnp.zeros(a.shape[:-1] + (n, n), a.dtype)
    i = jnp.arange(a.shape[-1])
    r, c = (i, i + offset) if offset >= 0 else (i - offset, i)
    out = out.at[..., r, c].set(a)
    nd = out.ndim
    d1, d2 = _err.dim(dim1, nd), _err.dim(dim2, nd)
    return jnp.moveaxis(out, (nd - 2, nd - 1), (d1, d2))


def diagflat(a: Any, offset: int = 0) -> Any:
    """``a`` flattened onto a diagonal."""
    return jnp.diagflat(a, offset)


def _check_repeats(r: Any, output_size: int | None) -> None:
    """torch's checks of a repeats tensor: integers, none negative, and (concrete, with
    ``output_size``) summing to it."""
    if r.dtype.kind not in "iu":
        raise NotImplementedError(
            f"\"repeat_interleave_cpu\" not implemented for '{_dt.torch_name(r.dtype)}'"
        )
    if isinstance(r, _Tracer) or not r.size:
        return
    if int(r.min()) < 0:
        raise RuntimeError("repeats can not be negative")
    if output_size is not None and int(r.sum()) != output_size:
        raise RuntimeError("allocated size does not match required size")


def repeat_interleave(a: Any, repeats: Any = None, dim: Any = None, *,
                      output_size: int | None = None) -> Any:  # fmt: skip
    """Each element repeated ``repeats`` times (``repeats`` may be a tensor; under jit it
    then needs ``output_size``)."""
    if repeats is None:  # repeat_interleave(repeats_tensor)
        r = a
        if r.ndim != 1:
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
        _check_repeats(r, output_size)
        if output_size is None:
            _concrete("repeat_interleave (the output length is sum(repeats))", r)
        return jnp.repeat(jnp.arange(r.shape[0]), r, total_repeat_length=output_size)
    r = _b.unwrap(repeats)
    axis = None if dim is None else _err.dim(dim, a.ndim)
    if isinstance(r, jax.Array):
        if r.ndim > 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        _check_repeats(r, None)
        n = a.size if axis is None else a.shape[axis]
        if r.ndim and r.shape[0] not in (1, n):
            raise RuntimeError(
                "repeats must have the same size as input along dim, but got repeats.size(0) "
                f"= {r.shape[0]} and input.size({0 if axis is None else axis}) = {n}"
            )
        if r.ndim and r.shape[0] == n:  # one count per element: they sum to the length
            _check_repeats(r, output_size)
        elif not isinstance(r, _Tracer):  # one count for all: an int
            r = int(r.reshape(()))
    if isinstance(r, int) and not isinstance(r, bool):
        if r < 0:
            raise RuntimeError("Repeats must be non-negative")
        n = a.size if axis is None else a.shape[axis]
        if output_size is not None and output_size != r * n:
            raise RuntimeError(
                f"repeat_interleave: Invalid output_size, expected {r * n} but got {output_size}"
            )
    if isinstance(r, jax.Array) and r.ndim and output_size is None:
        _concrete("repeat_interleave (the output length is sum(repeats))", r)
    return jnp.repeat(a, r, axis=axis, total_repeat_length=output_size)


INDEX: dict[str, Any] = {
    f.__name__: f
    for f in (gather, scatter, scatter_add, scatter_reduce, index_select, index_add,
              index_copy, index_fill, index_put, masked_select, masked_scatter, take,
              take_along_dim, nonzero, argwhere, unique, unique_consecutive, bincount, histc,
              searchsorted, bucketize, tril, triu, flip, fliplr, flipud, roll, rot90, diag,
              diag_embed, diagflat,
              repeat_interleave)
}  # fmt: skip
