"""``torch.linalg`` on JAX (``jnp.linalg`` with torch's signatures and the type rule:
Tensor inputs give Tensors, ``jax.Array`` inputs give arrays)."""

from __future__ import annotations

import collections
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor import ops_linalg as _ol
from jaxmod._tensor import ops_reduce as _or
from jaxmod._tensor.base import tensor_op

__all__ = [
    "norm", "vector_norm", "matrix_norm", "det", "slogdet", "inv", "pinv", "solve", "lstsq",
    "svd", "svdvals", "eig", "eigvals", "eigh", "eigvalsh", "qr", "cholesky", "matrix_rank",
    "matrix_power", "matrix_exp", "cross", "multi_dot", "cond", "vecdot", "diagonal",
    "solve_triangular", "lu_factor", "lu_factor_ex", "lu_solve", "lu", "cholesky_ex",
    "inv_ex", "solve_ex", "LinAlgError",
]  # fmt: skip


def _named(name: str, fields: str) -> type:
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "jaxmod.return_types"
    return cls


_SVD = _named("linalg_svd", "U S Vh")
_EIGH = _named("linalg_eigh", "eigenvalues eigenvectors")
_EIG = _named("linalg_eig", "eigenvalues eigenvectors")
_QR = _named("linalg_qr", "Q R")
_SLOGDET = _named("linalg_slogdet", "sign logabsdet")
_LSTSQ = _named("linalg_lstsq", "solution residuals rank singular_values")


@tensor_op
def vector_norm(x: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False, *,
                dtype: Any = None) -> Any:  # fmt: skip
    """The vector ``ord``-norm over ``dim`` (all elements by default)."""
    x = x.astype(dtype) if dtype is not None else x
    d = tuple(dim) if isinstance(dim, (list, tuple)) else dim
    return _or.vector_norm(x, ord, d, keepdim)


@tensor_op
def matrix_norm(A: Any, ord: Any = "fro", dim: Any = (-2, -1), keepdim: bool = False, *,
                dtype: Any = None) -> Any:  # fmt: skip
    """The matrix norm (``"fro"``, ``"nuc"``, ``inf``, ``-inf``, ``1``, ``-1``, ``2``, ``-2``)."""
    A = A.astype(dtype) if dtype is not None else A
    return jnp.linalg.norm(A, ord, axis=tuple(dim), keepdims=keepdim)


@tensor_op
def norm(A: Any, ord: Any = None, dim: Any = None, keepdim: bool = False, *,
         dtype: Any = None) -> Any:  # fmt: skip
    """``vector_norm`` for 1-D ``dim``/inputs, ``matrix_norm`` for 2-D ones."""
    A = A.astype(dtype) if dtype is not None else A
    if dim is None and ord is None:
        return _or.vector_norm(A, 2, None, keepdim)
    if (dim is not None and isinstance(dim, (tuple, list)) and len(dim) == 2) or (
        dim is None and A.ndim == 2
    ):
        axis = tuple(dim) if dim is not None else None
        return jnp.linalg.norm(A, "fro" if ord is None else ord, axis=axis, keepdims=keepdim)
    return _or.vector_norm(A, 2 if ord is None else ord, dim, keepdim)


det = tensor_op(jnp.linalg.det)
inv = tensor_op(jnp.linalg.inv)
matrix_power = tensor_op(jnp.linalg.matrix_power)
matrix_exp = tensor_op(jax.scipy.linalg.expm)
multi_dot = tensor_op(jnp.linalg.multi_dot)
eigvals = tensor_op(jnp.linalg.eigvals)


@tensor_op
def slogdet(A: Any) -> Any:
    """``(sign, logabsdet)``."""
    return _SLOGDET(*jnp.linalg.slogdet(A))


@tensor_op
def pinv(A: Any, *, atol: Any = None, rtol: Any = None, hermitian: bool = False) -> Any:
    """Moore-Penrose pseudo-inverse."""
    return jnp.linalg.pinv(A, rtol=rtol, hermitian=hermitian)


@tensor_op
def solve(A: Any, B: Any, *, left: bool = True) -> Any:
    """``X`` with ``A @ X = B`` (``X @ A = B`` when ``left=False``)."""
    if not left:
        return jnp.swapaxes(jnp.linalg.solve(jnp.swapaxes(A, -2, -1),
                                             jnp.swapaxes(B, -2, -1)), -2, -1)  # fmt: skip
    if B.ndim == A.ndim - 1:
        return jnp.linalg.solve(A, B[..., None])[..., 0]
    return jnp.linalg.solve(A, B)


@tensor_op
def lstsq(A: Any, B: Any, rcond: Any = None, *, driver: Any = None) -> Any:
    """Least-squares solution of ``A @ X = B``."""
    x, res, rank, sv = jnp.linalg.lstsq(A, B, rcond=rcond)
    return _LSTSQ(x, res, rank, sv)


@tensor_op
def svd(A: Any, full_matrices: bool = True, *, driver: Any = None) -> Any:
    """``(U, S, Vh)``."""
    return _SVD(*jnp.linalg.svd(A, full_matrices=full_matrices))


@tensor_op
def svdvals(A: Any, *, driver: Any = None) -> Any:
    """Singular values."""
    return jnp.linalg.svd(A, compute_uv=False)


@tensor_op
def eig(A: Any) -> Any:
    """``(eigenvalues, eigenvectors)`` (complex; CPU only in JAX)."""
    return _EIG(*jnp.linalg.eig(A))


@tensor_op
def eigh(A: Any, UPLO: str = "L") -> Any:
    """``(eigenvalues, eigenvectors)`` of a symmetric / Hermitian matrix."""
    return _EIGH(*jnp.linalg.eigh(A, UPLO=UPLO))


@tensor_op
def eigvalsh(A: Any, UPLO: str = "L") -> Any:
    """Eigenvalues of a symmetric / Hermitian matrix."""
    return jnp.linalg.eigvalsh(A, UPLO=UPLO)


@tensor_op
def qr(A: Any, mode: str = "reduced") -> Any:
    """``(Q, R)``."""
    return _QR(*jnp.linalg.qr(A, mode=mode))


@tensor_op
def cholesky(A: Any, *, upper: bool = False) -> Any:
    """The Cholesky factor (lower unless ``upper``)."""
    L = jnp.linalg.cholesky(A)
    return jnp.swapaxes(L, -2, -1).conj() if upper else L


@tensor_op
def matrix_rank(A: Any, *, atol: Any = None, rtol: Any = None, hermitian: bool = False) -> Any:
    """The numerical rank."""
    return jnp.linalg.matrix_rank(A, rtol=rtol)


@tensor_op
def cross(input: Any, other: Any, *, dim: int = -1) -> Any:
    """Cross product along ``dim``."""
    return jnp.cross(input, other, axis=dim)


@tensor_op
def cond(A: Any, p: Any = None) -> Any:
    """Condition number."""
    return jnp.linalg.cond(A, p)


@tensor_op
def vecdot(x: Any, y: Any, *, dim: int = -1) -> Any:
    """``sum(x.conj() * y, dim)``."""
    return jnp.sum(jnp.conj(x) * y, axis=dim)


@tensor_op
def diagonal(A: Any, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Any:
    """The diagonals of (batches of) matrices."""
    return jnp.diagonal(A, offset, dim1, dim2)


# -- solvers and factorisations with their ``*_ex`` forms (jaxmod._tensor.ops_linalg)
LinAlgError = _ol.LinAlgError
solve_triangular = tensor_op(_ol.solve_triangular)
lu_factor = tensor_op(_ol.lu_factor)
lu_factor_ex = tensor_op(_ol.lu_factor_ex)
lu_solve = tensor_op(_ol.lu_solve)
lu = tensor_op(_ol.linalg_lu)
lu.__name__ = lu.__qualname__ = "lu"
cholesky_ex = tensor_op(_ol.cholesky_ex)
inv_ex = tensor_op(_ol.inv_ex)
solve_ex = tensor_op(_ol.solve_ex)
