"""``torch.sparse`` for code that builds COO tensors with ``torch.sparse_coo_tensor``.

jaxmod stores those tensors dense (XLA has no sparse layout) and remembers their specified
entries (see :mod:`jaxmod._tensor.sparse_coo`), so the products here are dense products
with torch's values (``torch.sparse.mm(adj, x)`` is ``adj @ x``), while ``softmax`` /
``log_softmax`` and ``sum`` over a dimension work on the specified entries as torch's do.
``torch.sparse.FloatTensor(indices, values, size)`` (the legacy constructor) builds one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxmod import _tensor as _t
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import sparse_coo as _coo

__all__ = ["mm", "addmm", "sum", "softmax", "log_softmax", "FloatTensor", "DoubleTensor",
           "LongTensor"]  # fmt: skip


def mm(mat1: Any, mat2: Any, reduce: str = "sum") -> Any:
    """``mat1 @ mat2`` (``torch.sparse.mm``; only ``reduce="sum"``)."""
    if reduce != "sum":
        raise NotImplementedError(f"torch.sparse.mm: reduce={reduce!r} is not supported")
    return _t.mm(mat1, mat2)


def addmm(mat: Any, mat1: Any, mat2: Any, *, beta: float = 1.0, alpha: float = 1.0) -> Any:
    """``beta * mat + alpha * (mat1 @ mat2)`` (``torch.sparse.addmm``)."""
    return _t.addmm(mat, mat1, mat2, beta=beta, alpha=alpha)


def sum(input: Any, dim: Any = None, dtype: Any = None) -> Any:  # noqa: A001 - torch's name
    """The sum of all elements, or over ``dim`` (``torch.sparse.sum``)."""
    if dim is None:
        return _t.sum(input, dtype=dtype)
    if not isinstance(input, _coo.SparseTensor):
        return _t.sum(input, dim, dtype=dtype)
    s = input if isinstance(input._ind, _coo.Tracer) else input.coalesce()
    dims = [d % s.dim() for d in ((dim,) if isinstance(dim, int) else dim)]
    if any(d >= s.sparse_dim() for d in dims) or isinstance(s._ind, _coo.Tracer):
        # a dense dimension, or traced indices (which entries remain is unknown): dense
        return _t.sum(s.to_dense(), dim, dtype=dtype)
    keep = [d for d in range(s.sparse_dim()) if d not in dims]
    dense = _t.unwrap(_t.sum(s.to_dense(), dim, dtype=dtype))
    ind, vals = np.asarray(s._ind)[keep], s._vals if dtype is None else s._vals.astype(dtype)
    return _coo.make(dense, ind, vals, False).coalesce()


def softmax(input: Any, dim: int, dtype: Any = None) -> Any:
    """The softmax along ``dim`` over the specified entries only (the others count as
    -inf), as a sparse tensor with the input's entries (``torch.sparse.softmax``)."""
    return _coo.masked_softmax(input, dim, False, _dt.as_dtype(dtype))


def log_softmax(input: Any, dim: int, dtype: Any = None) -> Any:
    """``log`` of :func:`softmax` on the specified entries (``torch.sparse.log_softmax``)."""
    return _coo.masked_softmax(input, dim, True, _dt.as_dtype(dtype))


def _legacy(dtype: str) -> Any:
    def build(indices: Any, values: Any, size: Any = None, *, device: Any = None) -> Any:
        return _t.sparse_coo_tensor(indices, values, size, dtype=_dt.named(dtype))

    build.__name__ = build.__qualname__ = {"float32": "FloatTensor", "float64": "DoubleTensor",
                                           "int64": "LongTensor"}[dtype]  # fmt: skip
    build.__doc__ = (
        f"torch's legacy ``torch.sparse.{build.__name__}(indices, values, size)``: "
        f"``sparse_coo_tensor`` with dtype {dtype}."
    )
    return build


FloatTensor = _legacy("float32")
DoubleTensor = _legacy("float64")
LongTensor = _legacy("int64")
