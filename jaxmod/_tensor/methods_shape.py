"""Tensor methods that change shape: views (``view``, ``transpose``, indexing, ...) and copies.

Views are computed with ordinary ``jnp`` ops; their geometry (see
:mod:`jaxmod._tensor.geometry`) is kept so in-place ops write through to the base.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err
from jaxmod._tensor import geometry as _geo
from jaxmod._tensor.eager import _CONCRETE, eager_jit

_Tracer = jax.core.Tracer
_TRANSPOSES: dict[tuple[int, Any, Any], tuple[int, int, tuple[int, ...], Any]] = {}  # transpose
# concrete arrays: jax.jit's fast path (jnp.transpose is not jitted; see jaxmod._tensor.eager)
_transpose = eager_jit(jnp.transpose, 1, (1,))


def _swapper(a: int, b: int) -> Any:
    """``swapaxes(v, a, b)`` compiled with the axes fixed (one-argument fast path)."""
    return jax.jit(lambda v: jnp.swapaxes(v, a, b), inline=True)


_VIEW_ERR = (
    "view size is not compatible with input tensor's size and stride (at least one dimension "
    "spans across two contiguous subspaces). Use .reshape(...) instead."
)


def size_args(args: tuple) -> tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` and ``f(torch.Size)`` as a tuple of ints."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(a.__index__() for a in args)


def infer_shape(shape: tuple[int, ...], numel: int) -> tuple[int, ...]:
    """``shape`` with its ``-1`` resolved for ``numel`` elements, or torch's error."""
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise _err.ShapeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        return tuple(numel // known if s == -1 else s for s in shape)
    if known != numel:
        raise _err.ShapeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


# --------------------------------------------------------------------------- indexing
def _basic(idx: Any, shape: tuple[int, ...]) -> tuple | None:
    """``idx`` normalised (no Ellipsis, ints in range) when it is basic indexing, else None."""
    items = idx if type(idx) is tuple else (idx,)
    out: list[Any] = []
    n_dims = 0
    ell = -1
    for i in items:
        t = type(i)
        if t is int or t is slice:
            n_dims += 1
        elif i is None:
            pass
        elif i is Ellipsis:
            if ell >= 0:
                raise IndexError("an index can only have a single ellipsis ('...')")
            ell = len(out)
        elif t is not bool and isinstance(i, (int, np.integer)):
            i = int(i)
            n_dims += 1
        else:
            return None
        out.append(i)
    if n_dims > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if ell >= 0:
        out[ell : ell + 1] = [slice(None)] * (len(shape) - n_dims)
    d = 0
    for k, i in enumerate(out):
        if i is None:
            continue
        if type(i) is slice:
            if i.step is not None and i.step <= 0:
                raise ValueError("step must be greater than zero")
        else:
            n = shape[d]
            if i < -n or i >= n:
                raise IndexError(f"index {i} is out of bounds for dimension {d} with size {n}")
            out[k] = i + n if i < 0 else i
        d += 1
    return tuple(out)


def _index_item(i: Any) -> Any:
    i = _b.unwrap(i)
    if isinstance(i, list):
        i = np.asarray([_b.unwrap(j) for j in i])
    elif isinstance(i, range):  # x[range(n), target], as torch (a sequence of ints)
        i = np.arange(i.start, i.stop, i.step, dtype=np.int64)
    if isinstance(i, (jax.Array, np.ndarray)) and i.dtype == np.bool_ and isinstance(i, _Tracer):
        raise _err.traced("Indexing with a boolean mask (x[mask])", _err.DATA_DEPENDENT)
    return i


def _dims_used(i: Any) -> int:
    return i.ndim if getattr(i, "dtype", None) == np.bool_ else 1


def advanced(idx: Any, shape: tuple[int, ...]) -> tuple:
    """An advanced index with Tensors unwrapped, lists as arrays, and concrete integer
    indices bounds-checked (JAX would clamp them silently)."""
    items = tuple(_index_item(i) for i in (idx if type(idx) is tuple else (idx,)))
    used = sum(0 if (i is None or i is Ellipsis) else _dims_used(i) for i in items)
    d = 0
    for i in items:
        if i is Ellipsis:
            d += len(shape) - used
            continue
        if i is None:
            continue
        dt = getattr(i, "dtype", None)
        if dt is not None and dt.kind in "iu" and not isinstance(i, _Tracer) and np.size(i):
            a = np.asarray(i)
            n = shape[d] if d < len(shape) else 0
            lo, hi = int(a.min()), int(a.max())
            bad = hi if hi >= n else (lo if lo < -n else None)
            if bad is not None:
                raise IndexError(f"index {bad} is out of bounds for dimension {d} with size {n}")
        d += _dims_used(i)
    return items


def _mask_where(idx: Any, cur: Any, val: Any) -> Any:
    """``x[mask] = scalar`` as ``jnp.where`` (works under jit), or None when not that form."""
    m = _b.unwrap(idx)
    if getattr(m, "dtype", None) != np.bool_ or not hasattr(m, "ndim") or np.size(val) != 1:
        return None
    if m.ndim > cur.ndim or tuple(m.shape) != tuple(cur.shape[: m.ndim]):
        return None
    m = jnp.reshape(m, tuple(m.shape) + (1,) * (cur.ndim - m.ndim))
    return jnp.where(m, jnp.reshape(val, ()), cur)


def _same(g: Any) -> Any:
    return g


class ShapeMethods(_b.TensorBase):
    """Reshaping, transposition, indexing, splitting."""

    __slots__ = ()

    # -- reshaping ---------------------------------------------------------------------
    def view(self, *shape: Any) -> Any:
        """The same values with a new shape (``-1`` inferred), a view as in torch; raises
        torch's error when the layout of a transposed view does not allow it."""
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
            if _dt.is_dtype(shape[0]):
                return self._view_dtype(shape[0])
        v = self._jx()
        new = infer_shape(size_args(shape), v.size)
        if type(self) is _b.VIEW and _geo.reshaped(_b.geometry(self), new) is None:
            raise RuntimeError(_VIEW_ERR)
        return _b.view(self, v.reshape(new), _geo.reshaped, new)

    def _view_dtype(self, dtype: Any) -> Any:
        dt = _dt.as_dtype(dtype)
        v = self._jx()
        if dt.itemsize != v.dtype.itemsize:
            raise RuntimeError("view(dtype) with a different element size is not supported")
        return _b.new(jax.lax.bitcast_convert_type(v, dt))

    def reshape(self, *shape: Any) -> Any:
        """The same values with a new shape: a view when torch's would be, else a copy."""
        v = self._jx()
        new = infer_shape(size_args(shape), v.size)
        if type(self) is _b.VIEW and _geo.reshaped(_b.geometry(self), new) is None:
            return _b.new(v.reshape(new))
        return _b.view(self, v.reshape(new), _geo.reshaped, new)

    def view_as(self, other: Any) -> Any:
        """``view(other.shape)``."""
        return self.view(tuple(_b.unwrap(other).shape))

    def reshape_as(self, other: Any) -> Any:
        """``reshape(other.shape)``."""
        return self.reshape(tuple(_b.unwrap(other).shape))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Any:
        """Dimensions ``start_dim`` to ``end_dim`` merged into one."""
        shape = tuple(self._jx().shape)
        if not shape:
            return self.reshape(1)
        s, e = _err.dim(start_dim, len(shape)), _err.dim(end_dim, len(shape))
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        if s == e:
            return self
        return self.reshape(shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])

    def ravel(self) -> Any:
        """All elements in one dimension."""
        return self.reshape(-1)

    def unflatten(self, dim: int, sizes: Any) -> Any:
        """Dimension ``dim`` split into ``sizes``."""
        shape = tuple(self._jx().shape)
        d = _err.dim(dim, len(shape))
        sizes = infer_shape(size_args((sizes,)), shape[d])
        return self.view(shape[:d] + sizes + shape[d + 1 :])

    # -- transposition ---------------------------------------------------------------
    def permute(self, *dims: Any) -> Any:
        """The dimensions reordered (a view)."""
        v = self._jx()
        perm = _err.dims(size_args(dims), v.ndim)
        if len(perm) != v.ndim:
            raise RuntimeError(
                "permute(sparse_coo): number of dimensions in the tensor input does not match "
                f"the length of the desired ordering of dimensions i.e. input.dim() = {v.ndim} "
                f"is not equal to len(dims) = {len(perm)}"
            )
        return _b.view(self, _transpose(v, perm), _geo.permuted, perm)

    def transpose(self, dim0: int, dim1: int) -> Any:
        """Dimensions ``dim0`` and ``dim1`` swapped (a view)."""
        v = self._value if type(self) is _b.TENSOR else self._jx()
        n = len(v.shape)
        key = (n, dim0, dim1)
        # eager cost: the checks and permutation once per int dims (other index types,
        # e.g. a 0-d tensor hashed by identity, are checked every call, never kept)
        keep = type(dim0) is int and type(dim1) is int
        known = _TRANSPOSES.get(key) if keep else None
        if known is None:
            a, b = _err.dim(dim0, n), _err.dim(dim1, n)
            perm = list(range(n))
            perm[a], perm[b] = b, a
            known = (a, b, tuple(perm), _swapper(a, b))
            if keep:
                _TRANSPOSES[key] = known
        a, b, perm_t, swap = known
        if not n:
            return _b.view(self, v, _geo.permuted, perm_t)
        out = swap(v) if type(v) in _CONCRETE else jnp.swapaxes(v, a, b)
        return _b.view(self, out, _geo.permuted, perm_t)

    swapaxes = transpose
    swapdims = transpose

    def t(self) -> Any:
        """Transpose of a matrix (vectors and scalars unchanged)."""
        n = self._jx().ndim
        if n > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {n}D")
        return self.transpose(0, 1) if n == 2 else _b.view(self, self._jx(), _same)

    @property
    def T(self) -> Any:
        """All dimensions reversed."""
        n = self._jx().ndim
        return self.permute(tuple(range(n - 1, -1, -1)))

    @property
    def mT(self) -> Any:
        """The last two dimensions swapped."""
        if self._jx().ndim < 2:
            raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices.")
        return self.transpose(-2, -1)

    @property
    def H(self) -> Any:
        """Conjugate transpose of a matrix."""
        return self.t().conj()  # type: ignore[attr-defined]

    @property
    def mH(self) -> Any:
        """Conjugate of ``mT``."""
        return self.mT.conj()  # type: ignore[attr-defined]

    def adjoint(self) -> Any:
        """Conjugate of ``mT``."""
        return self.mH

    def movedim(self, source: Any, destination: Any) -> Any:
        """Dimensions ``source`` moved to positions ``destination`` (a view)."""
        n = self._jx().ndim
        src = _err.dims(source, n)
        dst = _err.dims(destination, n)
        if len(src) != len(dst):
            raise RuntimeError(
                "movedim: Invalid source or destination dims: source "
                f"({list(src)} dims) should contain the same number of dims as destination "
                f"({list(dst)} dims)"
            )
        order = [d for d in range(n) if d not in src]
        for d, s in sorted(zip(dst, src)):
            order.insert(d, s)
        return self.permute(tuple(order))

    moveaxis = movedim

    # -- adding and removing dimensions ----------------------------------------------
    @_b.with_aliases
    def unsqueeze(self, dim: int) -> Any:
        """A size-1 dimension inserted at ``dim`` (a view)."""
        v = self._jx()
        d = _err.dim(dim, v.ndim + 1)
        return _b.view(self, jnp.expand_dims(v, d), _geo.unsqueezed, d)

    @_b.with_aliases
    def squeeze(self, dim: Any = None) -> Any:
        """Size-1 dimensions removed (only among ``dim`` when given; others are kept)."""
        v = self._jx()
        if dim is None:
            ds = tuple(i for i, s in enumerate(v.shape) if s == 1)
        else:
            ds = tuple(d for d in _err.dims(dim, v.ndim) if v.ndim and v.shape[d] == 1)
        return _b.view(self, jnp.squeeze(v, ds) if ds else v, _geo.squeezed, ds)

    def expand(self, *sizes: Any) -> Any:
        """Size-1 dimensions repeated to ``sizes`` without copying (``-1`` keeps a size)."""
        v = self._jx()
        sizes = size_args(sizes)
        shape = tuple(v.shape)
        if len(sizes) < len(shape):
            raise RuntimeError(
                f"expand(torch.FloatTensor{{{list(shape)}}}, size={list(sizes)}): the number "
                "of sizes provided "
                f"({len(sizes)}) must be greater or equal to the number of dimensions in the "
                f"tensor ({len(shape)})"
            )
        lead = len(sizes) - len(shape)
        new = list(sizes)
        for i, n in enumerate(shape):
            want = sizes[lead + i]
            if want == -1:
                new[lead + i] = n
            elif n != want and n != 1:
                raise _err.expand_error(shape, sizes)
        for i in range(lead):
            if new[i] < 0:
                raise RuntimeError(
                    f"The expanded size of the tensor ({new[i]}) isn't allowed in a leading, "
                    "non-existing dimension 0"
                )
        new_t = tuple(new)
        return _b.view(self, jnp.broadcast_to(v, new_t), _geo.expanded, new_t)

    def expand_as(self, other: Any) -> Any:
        """``expand(other.shape)``."""
        return self.expand(tuple(_b.unwrap(other).shape))

    def broadcast_to(self, *shape: Any) -> Any:
        """``expand(shape)``."""
        return self.expand(*shape)

    def repeat(self, *sizes: Any) -> Any:
        """The tensor tiled ``sizes`` times along each dimension (a copy)."""
        v = self._jx()
        sizes = size_args(sizes)
        if len(sizes) < v.ndim:
            raise RuntimeError(
                "Number of dimensions of repeat dims can not be smaller than number of "
                "dimensions of tensor"
            )
        v = v.reshape((1,) * (len(sizes) - v.ndim) + tuple(v.shape))
        return _b.new(jnp.tile(v, sizes))

    def tile(self, *dims: Any) -> Any:
        """``numpy.tile`` semantics (missing leading repeats are 1)."""
        v = self._jx()
        dims = size_args(dims)
        dims = (1,) * (v.ndim - len(dims)) + dims
        return self.repeat(dims)

    # -- pieces ------------------------------------------------------------------------
    @_b.with_aliases
    def narrow(self, dim: int, start: Any, length: int) -> Any:
        """``length`` elements from ``start`` along ``dim`` (a view)."""
        v = self._jx()
        d = _err.dim(dim, v.ndim)
        n = v.shape[d]
        start = int(start)
        if start < -n or start > n:
            raise IndexError(
                f"start out of range (expected to be in range of [{-n}, {n}], but got {start})"
            )
        start = start + n if start < 0 else start
        if start + length > n or length < 0:
            raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
        out = jax.lax.slice_in_dim(v, start, start + length, axis=d)
        return _b.view(self, out, _geo.narrowed, d, start, length)

    @_b.with_aliases
    def select(self, dim: int, index: int) -> Any:
        """Element ``index`` of dimension ``dim``, that dimension removed (a view)."""
        v = self._jx()
        d = _err.dim(dim, v.ndim)
        n = v.shape[d]
        i = int(index)
        if i < -n or i >= n:
            raise IndexError(
                f"select(): index {i} out of range for tensor of size {list(v.shape)} at "
                f"dimension {d}"
            )
        i = i + n if i < 0 else i
        out = jax.lax.index_in_dim(v, i, axis=d, keepdims=False)
        return _b.view(self, out, _geo.selected, d, i)

    @_b.with_aliases
    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple:
        """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the given
        section sizes; views."""
        v = self._jx()
        d = _err.dim(dim, v.ndim)
        n = v.shape[d]
        s = _b.unwrap(split_size_or_sections)
        if isinstance(s, (list, tuple)):
            sizes = [int(x) for x in s]
            if sum(sizes) != n:
                raise RuntimeError(
                    f"split_with_sizes expects split_sizes to sum exactly to {n} (input "
                    f"tensor's size at dimension {d}), but got split_sizes={sizes}"
                )
        else:
            s = int(s)
            if s <= 0 and n:
                raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got {s}")
            sizes = [min(s, n - i) for i in range(0, n, s)] if n else [0]
        bounds = [0]
        for size in sizes:
            bounds.append(bounds[-1] + size)
        return self._pieces(d, bounds)

    def _pieces(self, d: int, bounds: list[int]) -> tuple:
        """Views of ``[bounds[i], bounds[i + 1])`` along ``d``, computed by one split."""
        v = self._jx()
        values = jnp.split(v, bounds[1:-1], axis=d) if len(bounds) > 2 else [v]
        return tuple(
            _b.view(self, val, _geo.narrowed, d, a, b - a)
            for val, a, b in zip(values, bounds[:-1], bounds[1:])
        )

    def split_with_sizes(self, split_sizes: Any, dim: int = 0) -> tuple:
        """Pieces of the given sizes along ``dim``."""
        return self.split(list(split_sizes), dim)

    @_b.with_aliases
    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        """At most ``chunks`` pieces of equal size (the last may be smaller), as torch."""
        v = self._jx()
        if chunks <= 0:
            raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
        d = _err.dim(dim, v.ndim)
        n = v.shape[d]
        return self.split(max(1, -(-n // chunks)), d)

    @_b.with_aliases
    def tensor_split(self, indices_or_sections: Any, dim: int = 0) -> tuple:
        """``numpy.array_split`` semantics: ``n`` near-equal pieces, or split at indices."""
        v = self._jx()
        d = _err.dim(dim, v.ndim)
        n = v.shape[d]
        s = _b.unwrap(indices_or_sections)
        if isinstance(s, int):
            q, r = divmod(n, s)
            bounds = [0]
            for i in range(s):
                bounds.append(bounds[-1] + q + (1 if i < r else 0))
        else:
            bounds = [0] + [min(max(int(i), 0), n) for i in s] + [n]
        return tuple(self.narrow(d, a, max(0, b - a)) for a, b in zip(bounds[:-1], bounds[1:]))

    @_b.with_aliases
    def unbind(self, dim: int = 0) -> tuple:
        """Every slice along ``dim`` (views)."""
        v = self._jx()
        d = _err.dim(dim, v.ndim)
        return tuple(self.select(d, i) for i in range(v.shape[d]))

    def unfold(self, dimension: int, size: int, step: int) -> Any:
        """Windows of ``size`` every ``step`` along ``dimension``, as a new last dim (a view)."""
        v = self._jx()
        d = _err.dim(dimension, v.ndim)
        n = v.shape[d] if v.ndim else 1
        if size > n:
            raise RuntimeError(
                f"maximum size for tensor at dimension {d} is {n} but size is {size}"
            )
        if step <= 0:
            raise RuntimeError(f"step is {step} but must be > 0")
        count = (n - size) // step + 1
        starts = np.arange(count) * step
        idx = starts[:, None] + np.arange(size)[None, :]
        if v.ndim == 0:
            out = jnp.reshape(v, (1,))
        else:
            out = jnp.moveaxis(jnp.take(v, jnp.asarray(idx), axis=d), d + 1, -1)
        return _b.view(self, out, _geo.unfolded, d, size, step)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Any:
        """The diagonal of dimensions ``dim1`` and ``dim2``, as the last dimension (a view)."""
        v = self._jx()
        a, b = _err.dim(dim1, v.ndim), _err.dim(dim2, v.ndim)
        if a == b:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        out = jnp.diagonal(v, offset, a, b)
        return _b.view(self, out, _geo.diagonal, offset, a, b)

    # -- indexing ----------------------------------------------------------------------
    def __getitem__(self, idx: Any) -> Any:
        v = self._jx()
        shape = tuple(v.shape)
        key = _basic(idx, shape)
        if key is not None:
            return _b.view(self, v[key], _geo.indexed, key)
        return _b.new(v[advanced(idx, shape)])

    def __setitem__(self, idx: Any, value: Any) -> None:
        cur = self._jx()
        val = _b.unwrap(value)
        val = jnp.asarray(val).astype(cur.dtype) if not isinstance(val, jax.Array) else val
        if val.dtype != cur.dtype:
            val = val.astype(cur.dtype)
        new = _mask_where(idx, cur, val)
        if new is None:
            shape = tuple(cur.shape)
            key = _basic(idx, shape)
            if key is None:
                key = advanced(idx, shape)
            try:
                new = cur.at[key].set(val)
            except (ValueError, TypeError) as e:
                if "broadcast" not in str(e) and "shape" not in str(e):
                    raise
                target = jax.eval_shape(lambda c: c[key], cur).shape
                raise _err.expand_error(tuple(val.shape), tuple(target)) from None
        self._rebind(new)
