"""``torch.sparse`` for code that builds COO tensors with ``torch.sparse_coo_tensor``.

jaxmod stores those tensors dense (XLA has no sparse layout), so the functions here are
their dense equivalents and give torch's values: ``torch.sparse.mm(adj, x)`` is
``adj @ x``.
"""

from __future__ import annotations

from typing import Any

from jaxmod import _tensor as _t

__all__ = ["mm", "addmm", "sum"]


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
    return _t.sum(input, dim, dtype=dtype)
