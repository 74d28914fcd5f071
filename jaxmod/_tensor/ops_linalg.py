"""torch's triangular, Cholesky and LU solvers on arrays (``jax.lax.linalg``): the
``torch.*`` forms (``cholesky_solve``, ``triangular_solve``, ``lu_unpack``, ...) and the
``torch.linalg`` ones (``solve_triangular``, ``lu_factor``, ``lu_solve``, the ``*_ex``
forms). Batch dimensions broadcast as in torch; LU pivots are 1-based int32, as LAPACK's
and torch's. Gradients are JAX's (through the LU and triangular-solve rules)."""

from __future__ import annotations

import collections
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor import base as _b


def _named(name: str, fields: str) -> type:
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "jaxmod.return_types"
    return cls


TRIANGULAR_SOLVE = _named("triangular_solve", "solution cloned_coefficient")
QR = _named("qr", "Q R")
LU_UNPACK = _named("lu_unpack", "P L U")
LU_WITH_INFO = _named("_lu_with_info", "LU pivots info")
LINALG_LU = _named("linalg_lu", "P L U")
LU_FACTOR = _named("linalg_lu_factor", "LU pivots")
LU_FACTOR_EX = _named("linalg_lu_factor_ex", "LU pivots info")
CHOLESKY_EX = _named("linalg_cholesky_ex", "L info")
INV_EX = _named("linalg_inv_ex", "inverse info")
SOLVE_EX = _named("linalg_solve_ex", "result info")


class LinAlgError(RuntimeError):
    """``torch.linalg.LinAlgError``: a factorisation or solve of an ill-posed matrix
    (raised with ``check_errors=True``)."""


def _arr(x: Any) -> Any:
    return jnp.asarray(_b.unwrap(x))


def _batch(A: Any, B: Any) -> tuple[Any, Any]:
    """``A`` and ``B`` with their batch dimensions (all but the last two) broadcast."""
    batch = jnp.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    return (jnp.broadcast_to(A, batch + A.shape[-2:]),
            jnp.broadcast_to(B, batch + B.shape[-2:]))  # fmt: skip


def _common(A: Any, B: Any) -> tuple[Any, Any]:
    dt = jnp.result_type(A, B)
    return _batch(A.astype(dt), B.astype(dt))


def _tri(A: Any, B: Any, *, lower: bool, left: bool = True, transpose: bool = False,
         conjugate: bool = False, unit: bool = False) -> Any:  # fmt: skip
    """``op(A) X = B`` (``X op(A) = B`` when not ``left``) for triangular ``A``; only the
    ``lower`` (or upper) triangle of ``A`` is read."""
    A, B = _common(A, B)
    return jax.lax.linalg.triangular_solve(A, B, left_side=left, lower=lower,
                                           transpose_a=transpose, conjugate_a=conjugate,
                                           unit_diagonal=unit)  # fmt: skip


def _mH(x: Any) -> Any:
    return jnp.swapaxes(x, -2, -1).conj()


# ---------------------------------------------------------------- triangular systems
def solve_triangular(A: Any, B: Any, *, upper: bool, left: bool = True,
                     unitriangular: bool = False, out: Any = None) -> Any:  # fmt: skip
    """``X`` with ``A @ X = B`` (``X @ A = B`` when not ``left``) for triangular ``A``
    (``torch.linalg.solve_triangular``)."""
    return _tri(_arr(A), _arr(B), lower=not upper, left=left, unit=unitriangular)


def triangular_solve(b: Any, A: Any, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False) -> Any:  # fmt: skip
    """``(X, A.clone())`` with ``op(A) @ X = b`` (``torch.triangular_solve``)."""
    A = _arr(A)
    X = _tri(A, _arr(b), lower=not upper, transpose=transpose, unit=unitriangular)
    return TRIANGULAR_SOLVE(X, A)


# ------------------------------------------------------------------------- Cholesky
def _cholesky_of(L: Any, upper: bool) -> Any:
    """The lower factor, from a lower or upper one."""
    return _mH(L) if upper else L


def cholesky(A: Any, upper: bool = False) -> Any:
    """The Cholesky factor (``torch.cholesky``, deprecated in torch for
    ``torch.linalg.cholesky``)."""
    low = jnp.linalg.cholesky(A)
    return _mH(low) if upper else low


def cholesky_solve(B: Any, L: Any, upper: bool = False) -> Any:
    """``X`` with ``(L @ L^H) @ X = B`` for a Cholesky factor ``L`` (``U^H @ U`` with
    ``upper``) (``torch.cholesky_solve``)."""
    low = _cholesky_of(_arr(L), upper)
    Y = _tri(low, _arr(B), lower=True)
    return _tri(low, Y, lower=True, transpose=True, conjugate=True)


def cholesky_inverse(L: Any, upper: bool = False) -> Any:
    """The inverse of ``L @ L^H`` (``U^H @ U`` with ``upper``) from its Cholesky factor
    (``torch.cholesky_inverse``)."""
    L = _arr(L)
    eye = jnp.broadcast_to(jnp.eye(L.shape[-1], dtype=L.dtype), L.shape)
    return cholesky_solve(eye, L, upper)


def _cholesky_info(A: Any) -> Any:
    """LAPACK ``potrf``'s ``info``: the order of the first leading minor that is not
    positive definite (1-based), 0 when ``A`` is; from the pivots of an unrolled outer
    product factorisation (the Schur complements' diagonals)."""
    n = A.shape[-1]
    S = jnp.tril(A) + _mH(jnp.tril(A, -1))  # potrf reads the lower triangle only
    info = jnp.zeros(A.shape[:-2], jnp.int32)

    def step(k: Any, carry: tuple) -> tuple:
        S, info = carry
        d = jnp.real(jnp.take(jnp.take(S, k, -1), k, -1))
        bad = ~(d > 0)
        info = jnp.where((info == 0) & bad, k + 1, info)
        safe = jnp.where(bad, 1, d).astype(S.dtype)
        col = jnp.take(S, k, -1)
        S = S - col[..., :, None] * col.conj()[..., None, :] / safe[..., None, None]
        return S, info

    return jax.lax.fori_loop(0, n, step, (S, info))[1]


def cholesky_ex(A: Any, *, upper: bool = False, check_errors: bool = False) -> Any:
    """``(L, info)`` (``torch.linalg.cholesky_ex``): ``info`` is 0, or the order of the
    leading minor that is not positive definite; then ``L`` is NaN (torch's is the partial
    factorisation)."""
    info = _cholesky_info(A)
    if check_errors:
        _raise_info(info, "linalg.cholesky_ex", _CHOLESKY_MSG)
    return CHOLESKY_EX(cholesky(A, upper), info)


_CHOLESKY_MSG = ("The factorization could not be completed because the input is not "
                 "positive-definite (the leading minor of order {i} is not "
                 "positive-definite).")  # fmt: skip
_SINGULAR_MSG = ("The diagonal element {i} is zero, the inversion could not be completed "
                 "because the input matrix is singular.")  # fmt: skip


_SOLVE_MSG = "The solver failed because the input matrix is singular."
_LU_MSG = ("U[{i},{i}] is zero and using it on lu_solve would result in a division by zero. "
           "If you still want to perform the factorization, consider calling "
           "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")  # fmt: skip


def _raise_info(info: Any, api: str, msg: str, error: type = LinAlgError) -> None:
    """torch's ``check_errors=True``: raise for the first non-zero ``info`` (concrete
    values only; under a JAX trace nothing can be raised)."""
    if isinstance(info, jax.core.Tracer):
        return
    flat = jnp.ravel(info)
    bad = [int(i) for i, v in enumerate(flat) if int(v) != 0]
    if not bad:
        return
    where = f"{api}: " if info.ndim == 0 else f"{api}: (Batch element {bad[0]}): "
    raise error(where + msg.format(i=int(flat[bad[0]])))


# ------------------------------------------------------------------------------- LU
def _lu(A: Any) -> tuple[Any, Any, Any]:
    """``(LU, 1-based int32 pivots, 0-based row permutation)`` with ``A[perm] = L @ U``."""
    lu, piv, perm = jax.lax.linalg.lu(A)
    return lu, piv.astype(jnp.int32) + 1, perm


def _lu_info(lu: Any) -> Any:
    """LAPACK ``getrf``'s ``info``: the 1-based index of the first zero on ``U``'s diagonal."""
    zero = jnp.diagonal(lu, 0, -2, -1) == 0
    return jnp.where(zero.any(-1), jnp.argmax(zero, -1) + 1, 0).astype(jnp.int32)


def _no_pivot(pivot: bool, api: str) -> None:
    if not pivot:
        raise RuntimeError(f"{api}: LU without pivoting is not implemented on the CPU")


def lu_factor(A: Any, *, pivot: bool = True) -> Any:
    """``(LU, pivots)`` of ``P @ L @ U = A`` (``torch.linalg.lu_factor``)."""
    _no_pivot(pivot, "linalg.lu_factor")
    lu, piv, _ = _lu(_arr(A))
    return LU_FACTOR(lu, piv)


def lu_factor_ex(A: Any, *, pivot: bool = True, check_errors: bool = False) -> Any:
    """``(LU, pivots, info)`` (``torch.linalg.lu_factor_ex``)."""
    _no_pivot(pivot, "linalg.lu_factor_ex")
    lu, piv, _ = _lu(_arr(A))
    info = _lu_info(lu)
    if check_errors:
        _raise_info(info, "torch.linalg.lu_factor_ex", _LU_MSG, RuntimeError)
    return LU_FACTOR_EX(lu, piv, info)


def lu(A: Any, pivot: bool = True, get_infos: bool = False) -> Any:
    """``(LU, pivots)`` (with ``infos``: ``(LU, pivots, infos)``) (``torch.lu``)."""
    _no_pivot(pivot, "linalg.lu_factor")
    lu, piv, _ = _lu(_arr(A))
    return LU_WITH_INFO(lu, piv, _lu_info(lu)) if get_infos else (lu, piv)


def _unpack_data(lu: Any) -> tuple[Any, Any]:
    m, n = lu.shape[-2:]
    k = min(m, n)
    L = jnp.tril(lu[..., :, :k], -1) + jnp.eye(m, k, dtype=lu.dtype)
    return L, jnp.triu(lu[..., :k, :])


def _perm_matrix(perm: Any, dtype: Any) -> Any:
    """``P`` with ``P.mT @ A = A[perm]``."""
    return jnp.swapaxes(jax.nn.one_hot(perm, perm.shape[-1], dtype=dtype), -2, -1)


def _permutation(pivots: Any, m: int) -> Any:
    return jax.lax.linalg.lu_pivots_to_permutation(jnp.asarray(pivots, jnp.int32) - 1, m)


def linalg_lu(A: Any, *, pivot: bool = True) -> Any:
    """``(P, L, U)`` with ``A = P @ L @ U`` (``torch.linalg.lu``)."""
    _no_pivot(pivot, "linalg.lu_factor")
    A = _arr(A)
    lu, _, perm = _lu(A)
    return LINALG_LU(_perm_matrix(perm, A.dtype), *_unpack_data(lu))


def lu_unpack(LU_data: Any, LU_pivots: Any, unpack_data: bool = True,
              unpack_pivots: bool = True) -> Any:  # fmt: skip
    """``(P, L, U)`` from ``lu_factor``'s result (``torch.lu_unpack``); what is not
    unpacked is an empty tensor, as in torch."""
    lu = _arr(LU_data)
    empty = jnp.zeros((0,), lu.dtype)
    L, U = _unpack_data(lu) if unpack_data else (empty, empty)
    if unpack_pivots:
        P = _perm_matrix(_permutation(_arr(LU_pivots), lu.shape[-2]), lu.dtype)
    else:
        P = empty
    return LU_UNPACK(P, L, U)


def _lu_solve_left(lu: Any, pivots: Any, B: Any, adjoint: bool) -> Any:
    lu, B = _common(lu, B)
    perm = jnp.broadcast_to(_permutation(pivots, lu.shape[-1]), lu.shape[:-1])
    if not adjoint:  # X = U^-1 L^-1 P^T B, with P^T B = B[perm]
        Y = jnp.take_along_axis(B, perm[..., None], -2)
        Y = _tri(lu, Y, lower=True, unit=True)
        return _tri(lu, Y, lower=False)
    # A^H X = B:  U^H L^H P^T X = B,  X = P L^-H U^-H B
    Y = _tri(lu, B, lower=False, transpose=True, conjugate=True)
    Y = _tri(lu, Y, lower=True, transpose=True, conjugate=True, unit=True)
    return jnp.take_along_axis(Y, jnp.argsort(perm, -1)[..., None], -2)


def lu_solve(LU: Any, pivots: Any, B: Any, *, left: bool = True,
             adjoint: bool = False) -> Any:  # fmt: skip
    """``X`` with ``A @ X = B`` from ``A``'s ``lu_factor`` (``A^H``: ``adjoint``;
    ``X @ A = B``: not ``left``) (``torch.linalg.lu_solve``)."""
    lu, piv, B = _arr(LU), _arr(pivots), _arr(B)
    if left:
        return _lu_solve_left(lu, piv, B, adjoint)
    return _mH(_lu_solve_left(lu, piv, _mH(B), not adjoint))  # X A = B <=> A^H X^H = B^H


def lu_solve_deprecated(b: Any, LU_data: Any, LU_pivots: Any) -> Any:
    """``torch.lu_solve(b, LU_data, LU_pivots)``: ``torch.linalg.lu_solve`` with the
    right-hand side first."""
    return lu_solve(LU_data, LU_pivots, b)


def inv_ex(A: Any, *, check_errors: bool = False) -> Any:
    """``(inverse, info)`` (``torch.linalg.inv_ex``): ``info`` is 0, or the 1-based index
    of the first zero pivot of ``A``'s LU factorisation."""
    A = _arr(A)
    info = _lu_info(_lu(A)[0])
    if check_errors:
        _raise_info(info, "linalg.inv_ex", _SINGULAR_MSG)
    return INV_EX(jnp.linalg.inv(A), info)


def solve_ex(A: Any, B: Any, *, left: bool = True, check_errors: bool = False) -> Any:
    """``(result, info)`` (``torch.linalg.solve_ex``); ``info`` as in :func:`inv_ex`."""
    A, B = _arr(A), _arr(B)
    lu, piv, _ = _lu(A)
    info = _lu_info(lu)
    if check_errors:
        _raise_info(info, "torch.linalg.solve_ex", _SOLVE_MSG)
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    if not left:  # a vector is a row here
        X = lu_solve(lu, piv, B[..., None, :] if vector else B, left=False)
        return SOLVE_EX(X[..., 0, :] if vector else X, info)
    X = _lu_solve_left(lu, piv, B[..., None] if vector else B, False)
    return SOLVE_EX(X[..., 0] if vector else X, info)


def qr(A: Any, some: bool = True) -> Any:
    """``(Q, R)`` (``torch.qr``; ``some=False``: complete ``Q``)."""
    return QR(*jnp.linalg.qr(A, mode="reduced" if some else "complete"))


#: ``torch.*`` functions (array first), for the namespace.
LINALG: dict[str, Any] = {
    "cholesky": cholesky, "cholesky_solve": cholesky_solve,
    "cholesky_inverse": cholesky_inverse, "triangular_solve": triangular_solve,
    "lu": lu, "lu_unpack": lu_unpack, "lu_solve": lu_solve_deprecated, "qr": qr,
}  # fmt: skip
#: Tensor methods among them (``Tensor.cholesky`` is jaxmod's own already).
METHODS = ("cholesky_solve", "cholesky_inverse", "triangular_solve", "lu", "lu_solve", "qr")
