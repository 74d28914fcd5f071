"""Ops over several tensors: joining (``cat``, ``stack``), products (``matmul``, ``einsum``)
and grids, with torch's argument forms and errors, on arrays."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err
from jaxmod._tensor.eager import eager_jit
from jaxmod.amp._state import S as _amp


def _seq(tensors: Any, name: str) -> list:
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(
            f"{name}() argument 'tensors' must be tuple of Tensors, not {type(tensors).__name__}"
        )
    out = [_b.unwrap(t) for t in tensors]
    return [x if isinstance(x, jax.Array) else jnp.asarray(x) for x in out]


def cat(tensors: Any, dim: int = 0, *, out: Any = None) -> Any:
    """``tensors`` joined along ``dim`` (torch's errors for mismatched shapes)."""
    xs = _seq(tensors, "cat")
    if not xs:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    xs = [x for x in xs if not (x.ndim == 1 and x.shape[0] == 0)] or xs[:1]
    nd = xs[0].ndim
    if nd == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = _err.dim(dim, nd)
    for i, x in enumerate(xs):
        if x.ndim != nd:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {nd} and {x.ndim}"
            )
        for k in range(nd):
            if k != d and x.shape[k] != xs[0].shape[k]:
                raise _err.ShapeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size "
                    f"{xs[0].shape[k]} but got size {x.shape[k]} for tensor number {i} in the "
                    "list."
                )
    dt = xs[0].dtype
    if all(x.dtype == dt for x in xs):
        # the checks above are jnp.concatenate's (and torch's): lax's primitive directly,
        # at half jnp's eager dispatch cost (the same one equation under a trace)
        return jax.lax.concatenate(xs, d)
    return jnp.concatenate(xs, axis=d)


concat = concatenate = cat


def stack(tensors: Any, dim: int = 0, *, out: Any = None) -> Any:
    """``tensors`` (all the same shape) stacked along a new dimension ``dim``."""
    xs = _seq(tensors, "stack")
    if not xs:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, x in enumerate(xs):
        if x.shape != xs[0].shape:
            raise _err.ShapeError(
                f"stack expects each tensor to be equal size, but got {list(xs[0].shape)} at "
                f"entry 0 and {list(x.shape)} at entry {i}"
            )
    return jnp.stack(xs, axis=_err.dim(dim, xs[0].ndim + 1))


def hstack(tensors: Any) -> Any:
    """Joined along dim 1 (dim 0 for 1-D)."""
    return jnp.hstack(_seq(tensors, "hstack"))


def vstack(tensors: Any) -> Any:
    """Joined along dim 0 (1-D tensors as rows)."""
    return jnp.vstack(_seq(tensors, "vstack"))


row_stack = vstack


def dstack(tensors: Any) -> Any:
    """Joined along dim 2."""
    return jnp.dstack(_seq(tensors, "dstack"))


def column_stack(tensors: Any) -> Any:
    """1-D tensors as columns."""
    return jnp.column_stack(_seq(tensors, "column_stack"))


def _same_dtype(a: Any, b: Any) -> None:
    if a.dtype != b.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: "
            f"{_dt.cpp_name(a.dtype)} != {_dt.cpp_name(b.dtype)}"
        )


def matmul(a: Any, b: Any) -> Any:
    """The matrix product with torch's broadcasting rules (``@``)."""
    a, b = _b.unwrap(a), _b.unwrap(b)
    if _amp.policy is not None:
        a, b = _amp.policy.low(a, b)
    _same_dtype(a, b)
    sa, sb = a.shape, b.shape
    na, nb = len(sa), len(sb)
    if na == 0 or nb == 0:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {na}D and {nb}D"
        )
    if sa[-1] != (sb[0] if nb == 1 else sb[-2]):
        if na == 1 and nb == 1:
            raise _err.ShapeError(
                f"inconsistent tensor size, expected tensor [{sa[0]}] and src "
                f"[{sb[0]}] to have the same number of elements, but got {sa[0]} "
                f"and {sb[0]} elements respectively"
            )
        if na <= 2 and nb <= 2:
            ar = sa if na == 2 else (1, sa[0])
            raise _err.ShapeError(
                f"mat1 and mat2 shapes cannot be multiplied ({ar[0]}x{ar[1]} and "
                f"{'x'.join(map(str, sb))})"
            )
        raise _err.ShapeError(
            f"matmul: the last dimension of the first operand ({list(sa)}) must match "
            f"the {'first' if nb == 1 else 'second to last'} dimension of the second "
            f"({list(sb)})"
        )
    if na > 2 or nb > 2:
        _err.check_broadcast(sa[:-2] if na > 1 else (), sb[:-2] if nb > 1 else ())
    return _matmul(a, b)


_matmul = eager_jit(jnp.matmul, 2)  # concrete arrays: jax.jit's fast path


def mm(a: Any, b: Any) -> Any:
    """Product of two matrices."""
    a, b = _b.unwrap(a), _b.unwrap(b)
    if a.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if b.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    return matmul(a, b)


def bmm(a: Any, b: Any) -> Any:
    """Batched product of two 3-D tensors."""
    a, b = _b.unwrap(a), _b.unwrap(b)
    if a.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if b.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise _err.ShapeError(
            f"Expected size for first two dimensions of batch2 tensor to be: "
            f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}]."
        )
    return matmul(a, b)


def mv(a: Any, v: Any) -> Any:
    """Matrix times vector."""
    a, v = _b.unwrap(a), _b.unwrap(v)
    if a.ndim != 2 or v.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {a.ndim}, {v.ndim}")
    return matmul(a, v)


def dot(a: Any, b: Any) -> Any:
    """Inner product of two 1-D tensors."""
    a, b = _b.unwrap(a), _b.unwrap(b)
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    return matmul(a, b)


def vdot(a: Any, b: Any) -> Any:
    """``dot`` with the first argument conjugated."""
    return jnp.vdot(_b.unwrap(a), _b.unwrap(b))


def inner(a: Any, b: Any) -> Any:
    """Sum product over the last dims."""
    return jnp.inner(_b.unwrap(a), _b.unwrap(b))


def outer(a: Any, b: Any) -> Any:
    """Outer product of two 1-D tensors."""
    return jnp.outer(_b.unwrap(a), _b.unwrap(b))


ger = outer


def cross(a: Any, b: Any, dim: Any = None) -> Any:
    """Cross product of 3-vectors along ``dim`` (the first size-3 dim by default)."""
    a, b = _b.unwrap(a), _b.unwrap(b)
    if dim is None:
        dim = next(i for i, s in enumerate(jnp.broadcast_shapes(a.shape, b.shape)) if s == 3)
    return jnp.cross(a, b, axis=_err.dim(dim, max(a.ndim, b.ndim)))


def kron(a: Any, b: Any) -> Any:
    """Kronecker product."""
    return jnp.kron(_b.unwrap(a), _b.unwrap(b))


def tensordot(a: Any, b: Any, dims: Any = 2) -> Any:
    """Sum product over ``dims`` (an int, or two lists of dims)."""
    d = _b.unwrap(dims)
    return jnp.tensordot(_b.unwrap(a), _b.unwrap(b), axes=d)


def einsum(equation: str, *operands: Any) -> Any:
    """Einstein summation (operands as arguments or one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ops = [_b.unwrap(o) for o in operands]
    if _amp.policy is not None:
        ops = _amp.policy.low(*ops)
    return jnp.einsum(equation, *ops)


def addmm(a: Any, m1: Any, m2: Any, *, beta: Any = 1, alpha: Any = 1) -> Any:
    """``beta * a + alpha * (m1 @ m2)``."""
    return _scaled(a, mm(m1, m2), beta, alpha)


def addmv(a: Any, m: Any, v: Any, *, beta: Any = 1, alpha: Any = 1) -> Any:
    """``beta * a + alpha * (m @ v)``."""
    return _scaled(a, mv(m, v), beta, alpha)


def baddbmm(a: Any, b1: Any, b2: Any, *, beta: Any = 1, alpha: Any = 1) -> Any:
    """``beta * a + alpha * bmm(b1, b2)``."""
    return _scaled(a, bmm(b1, b2), beta, alpha)


def addbmm(a: Any, b1: Any, b2: Any, *, beta: Any = 1, alpha: Any = 1) -> Any:
    """``beta * a + alpha * sum(bmm(b1, b2), 0)``."""
    return _scaled(a, jnp.sum(bmm(b1, b2), 0), beta, alpha)


def _scaled(a: Any, prod: Any, beta: Any, alpha: Any) -> Any:
    a = _b.unwrap(a)
    if _amp.policy is not None:  # addmm & co. are lower-precision ops as a whole
        (a,) = _amp.policy.low(a)
    out = prod if alpha == 1 else alpha * prod
    if beta == 0:
        return jnp.broadcast_to(out, jnp.broadcast_shapes(jnp.shape(a), out.shape))
    return (a if beta == 1 else beta * a) + out


def cdist(x1: Any, x2: Any, p: float = 2.0, compute_mode: Any = None) -> Any:
    """Pairwise ``p``-norm distances between the rows of ``x1`` and ``x2`` (batched)."""
    a, b = _b.unwrap(x1), _b.unwrap(x2)
    diff = a[..., :, None, :] - b[..., None, :, :]
    if p == 2:
        return jnp.sqrt(jnp.sum(diff * diff, -1))
    if p == float("inf"):
        return jnp.max(jnp.abs(diff), -1)
    if p == 0:
        return jnp.sum(diff != 0, -1).astype(a.dtype)
    return jnp.sum(jnp.abs(diff) ** p, -1) ** (1.0 / p)


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple:
    """Coordinate grids (torch's default ``indexing="ij"``)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return tuple(jnp.meshgrid(*[_b.unwrap(t) for t in tensors], indexing=indexing))


def cartesian_prod(*tensors: Any) -> Any:
    """Every combination of the elements of 1-D tensors, as rows."""
    xs = [_b.unwrap(t) for t in tensors]
    if len(xs) == 1:
        return xs[0]
    grids = jnp.meshgrid(*xs, indexing="ij")
    return jnp.stack([g.ravel() for g in grids], axis=1)


def broadcast_tensors(*tensors: Any) -> tuple:
    """The tensors broadcast to a common shape."""
    xs = [_b.unwrap(t) for t in tensors]
    shape = broadcast_shapes(*[x.shape for x in xs])
    return tuple(jnp.broadcast_to(x, shape) for x in xs)


def broadcast_shapes(*shapes: Any) -> _dt.Size:
    """The broadcast shape of ``shapes`` (a ``torch.Size``)."""
    shapes = [tuple(s) if isinstance(s, (tuple, list)) else (int(s),) for s in shapes]
    out: tuple[int, ...] = ()
    for s in shapes:
        _err.check_broadcast(out, s)
        out = tuple(jnp.broadcast_shapes(out, s))
    return _dt.Size(out)


def block_diag(*tensors: Any) -> Any:
    """The tensors (as matrices) along the diagonal of a block matrix."""
    xs = [jnp.atleast_2d(_b.unwrap(t)) if np.ndim(_b.unwrap(t)) < 2 else _b.unwrap(t)
          for t in tensors]  # fmt: skip
    xs = [x.reshape(1, -1) if x.ndim == 1 else x for x in xs]
    import jax.scipy.linalg

    return jax.scipy.linalg.block_diag(*xs)


def atleast_1d(*tensors: Any) -> Any:
    """Each tensor with at least 1 dimension."""
    out = [jnp.atleast_1d(_b.unwrap(t)) for t in tensors]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_2d(*tensors: Any) -> Any:
    """Each tensor with at least 2 dimensions."""
    out = [jnp.atleast_2d(_b.unwrap(t)) for t in tensors]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_3d(*tensors: Any) -> Any:
    """Each tensor with at least 3 dimensions."""
    out = [jnp.atleast_3d(_b.unwrap(t)) for t in tensors]
    return out[0] if len(out) == 1 else tuple(out)


COMBINE: dict[str, Any] = {
    "cat": cat, "concat": cat, "concatenate": cat, "stack": stack, "hstack": hstack,
    "vstack": vstack, "row_stack": vstack, "dstack": dstack, "column_stack": column_stack,
    "matmul": matmul, "mm": mm, "spmm": mm, "bmm": bmm, "mv": mv, "dot": dot, "vdot": vdot,
    "inner": inner, "outer": outer, "ger": outer, "cross": cross, "kron": kron,
    "tensordot": tensordot, "einsum": einsum, "addmm": addmm, "addmv": addmv,
    "baddbmm": baddbmm, "addbmm": addbmm, "cdist": cdist, "meshgrid": meshgrid,
    "cartesian_prod": cartesian_prod, "broadcast_tensors": broadcast_tensors,
    "block_diag": block_diag, "atleast_1d": atleast_1d, "atleast_2d": atleast_2d,
    "atleast_3d": atleast_3d,
}  # fmt: skip
