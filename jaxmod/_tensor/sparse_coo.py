"""Sparse COO tensors (``torch.sparse_coo_tensor``, ``x.to_sparse()``): dense storage that
remembers its specified entries.

XLA has no sparse layout, so a :class:`SparseTensor` holds the dense array every op
computes with (``torch.sparse.mm(adj, x)`` and ``adj @ x`` are dense products with
torch's values) plus the indices and values it was built from, so torch's sparse
accessors work: ``indices()`` / ``values()`` (coalesced only, as torch),
``_indices()`` / ``_values()`` / ``_nnz()``, ``coalesce()`` / ``is_coalesced()``,
``sparse_dim()`` / ``dense_dim()``, ``is_sparse``, ``layout``, torch's ``repr``, and
``torch.sparse.softmax`` over the specified entries only.

Decided: operations on a sparse tensor return dense Tensors (torch returns sparse ones for
``s * 2`` or ``s + s``); their values are torch's. In-place operations raise (the remembered
entries would go stale), as do ``requires_grad=True`` and crossing a transform boundary
keeps only the dense value (a sparse tensor given to ``jax.jit`` arrives dense).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err
from jaxmod._tensor.printing import shows_dtype, tensor_repr
from jaxmod._tensor.tensor import Tensor

__all__ = ["SparseTensor", "make", "to_sparse", "masked_softmax"]

Tracer = jax.core.Tracer


class SparseTensor(Tensor):
    """A COO tensor: ``_value`` is dense; ``_ind`` (``sparse_dim x nnz``) and ``_vals``
    (``nnz x dense dims``) are the entries as given; ``_coal`` whether they are coalesced."""

    __slots__ = ("_ind", "_vals", "_coal")

    def _rebind(self, new: Any) -> Any:
        raise RuntimeError(
            "in-place operations on a sparse COO tensor are not supported by jaxmod (its "
            "entries would go stale); compute out of place (s = s * 2) or on s.to_dense()"
        )

    @property
    def requires_grad(self) -> bool:
        """False: a sparse tensor is a constant here (see the module docstring)."""
        return False

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value:
            raise NotImplementedError(
                "requires_grad on a sparse COO tensor is not supported by jaxmod; make the "
                "dense tensor require it instead: s.to_dense().requires_grad_()"
            )

    @property
    def is_sparse(self) -> bool:
        """True."""
        return True

    @property
    def layout(self) -> str:
        """``torch.sparse_coo``."""
        return "torch.sparse_coo"

    def sparse_dim(self) -> int:
        """How many leading dimensions the indices address."""
        return int(self._ind.shape[0])

    def dense_dim(self) -> int:
        """How many trailing dimensions each value has."""
        return int(self._vals.ndim - 1)

    def _nnz(self) -> int:
        """The number of specified entries (duplicates counted until ``coalesce()``)."""
        return int(self._ind.shape[1])

    def _indices(self) -> Any:
        """The indices as given (``sparse_dim x nnz``)."""
        return _b.new(self._ind)

    def _values(self) -> Any:
        """The values as given (``nnz x dense dims``)."""
        return _b.new(self._vals)

    def _need_coalesced(self, what: str) -> None:
        if not self._coal:
            raise RuntimeError(
                f"Cannot get {what} on an uncoalesced tensor, please call .coalesce() first"
            )

    def indices(self) -> Any:
        """The indices of a coalesced tensor (torch's error otherwise)."""
        self._need_coalesced("indices")
        return self._indices()

    def values(self) -> Any:
        """The values of a coalesced tensor (torch's error otherwise)."""
        self._need_coalesced("values")
        return self._values()

    def is_coalesced(self) -> bool:
        """Whether ``coalesce()`` made this tensor (torch's flag: a tensor built from
        sorted, unique indices is not marked coalesced either)."""
        return self._coal

    def coalesce(self) -> Any:
        """The same tensor with sorted, unique indices, repeated entries summed."""
        if self._coal:
            return self
        ind = self._ind
        if isinstance(ind, Tracer):
            raise _err.traced(
                "coalesce()", "Coalesce outside the transform (the indices decide the result)."
            )
        ind = np.asarray(ind)
        dims = tuple(int(d) for d in self._value.shape[: ind.shape[0]])
        flat = np.ravel_multi_index(tuple(ind), dims) if ind.shape[1] else ind[0]
        keys, inverse = np.unique(flat, return_inverse=True)
        vals = jax.ops.segment_sum(self._vals, jnp.asarray(inverse.reshape(-1)), len(keys))
        new_ind = np.stack(np.unravel_index(keys, dims)) if len(keys) else ind[:, :0]
        return make(self._value, jnp.asarray(new_ind.astype(ind.dtype)), vals, True)

    def to_dense(self, dtype: Any = None, *, masked_grad: Any = None) -> Any:
        """The dense Tensor (``dtype`` converts)."""
        out = _b.new(self._value)
        return out if dtype is None else out.to(dtype)

    def to_sparse(self, *args: Any, **kwargs: Any) -> Any:
        """The tensor itself (already sparse COO)."""
        return self

    def __repr__(self) -> str:
        def field(name: str, value: Any) -> str:
            if value.size == 0:  # torch gives every empty field its size, no dtype
                return f"{name}=tensor([], size={tuple(value.shape)})"
            text = re.sub(r", dtype=torch\.\w+\)$", ")", tensor_repr(value))  # dtype: in the tail
            return f"{name}={text.replace(chr(10), chr(10) + ' ' * (len(name) + 8))}"

        dims = ", ".join(str(d) for d in self._value.shape)
        size = f"({dims},)" if self._value.ndim == 1 else f"({dims})"
        dtype = (
            f", dtype={_dt.repr_name(self._vals.dtype)}" if shows_dtype(self._vals.dtype) else ""
        )
        return (
            f"tensor({field('indices', self._ind)},\n"
            f"       {field('values', self._vals)},\n"
            f"       size={size}, nnz={self._nnz()}{dtype}, layout=torch.sparse_coo)"
        )

    __str__ = __repr__


def make(dense: Any, indices: Any, values: Any, coalesced: bool) -> SparseTensor:
    """A :class:`SparseTensor` of these parts (``dense`` equals them scattered)."""
    t = object.__new__(SparseTensor)
    t._value, t._ind, t._vals, t._coal = dense, indices, values, coalesced
    return t


def to_sparse(x: Any, sparse_dim: int | None = None) -> SparseTensor:
    """``x.to_sparse(sparse_dim)``: the nonzero entries of a dense tensor (concrete only),
    coalesced as torch gives them."""
    v = _b.unwrap(x)
    if isinstance(v, Tracer):
        raise _err.traced("to_sparse()", "Convert outside the transform (nonzeros decide it).")
    k = v.ndim if sparse_dim is None else int(sparse_dim)
    if not 0 < k <= v.ndim:
        raise RuntimeError(
            f"sparse_dim must be in [1, {v.ndim}] for a {v.ndim}-D tensor, got {sparse_dim}"
        )
    host = np.asarray(v)
    nonzero = host.reshape(host.shape[:k] + (-1,)).any(-1) if k < v.ndim else host != 0
    ind = np.stack(np.nonzero(nonzero)).astype(np.int64) if host.size else np.zeros((k, 0))
    idx = jnp.asarray(ind.astype(np.int64))
    return make(v, idx, v[tuple(idx)], True)


def masked_softmax(input: Any, dim: int, log: bool, dtype: Any = None) -> SparseTensor:
    """``torch.sparse.softmax`` / ``log_softmax``: the softmax along ``dim`` over the
    specified entries only (unspecified ones count as -inf), as a sparse tensor of the
    same entries."""
    if not isinstance(input, SparseTensor):
        raise TypeError(f"torch.sparse.softmax expects a sparse COO tensor, got {type(input)}")
    s = input if isinstance(input._ind, Tracer) else input.coalesce()  # traced: as given
    if s.dense_dim():
        raise NotImplementedError("torch.sparse.softmax with dense dimensions (hybrid COO)")
    x = s._value if dtype is None else s._value.astype(dtype)
    idx = tuple(s._ind)
    mask = jnp.zeros(x.shape, bool).at[idx].set(True)
    fn = jax.nn.log_softmax if log else jax.nn.softmax
    out = fn(jnp.where(mask, x, -jnp.inf), axis=dim)
    vals = out[idx]
    return make(jnp.where(mask, out, 0).astype(vals.dtype), s._ind, vals, s._coal)


def _flatten(t: SparseTensor) -> tuple[tuple[Any], None]:
    return (t._value,), None


def _unflatten(aux: None, children: Any) -> Any:
    return _b.new(children[0])  # across a transform, only the dense value travels


jax.tree_util.register_pytree_node(SparseTensor, _flatten, _unflatten)
_b.TT = _b.TT | {SparseTensor}
_b.to_sparse = to_sparse
_b.sparse_make = make
