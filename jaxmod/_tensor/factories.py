"""Tensor factories with torch's signatures (always return a :class:`~jaxmod.Tensor`):
``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``linspace``, ``eye``, ``*_like``, ..."""

from __future__ import annotations

import builtins
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import cells as _cells
from jaxmod._core import state as _state
from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err

_Tracer = jax.core.Tracer


def _shape(size: Any, name: str = "zeros") -> tuple[int, ...]:
    """``(2, 3)``, ``((2, 3),)``, ``([2, 3],)``, ``(Size,)`` as a shape; negative sizes raise."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(_b.unwrap(s).__index__() for s in size)
    if any(s < 0 for s in shape):
        raise RuntimeError(f"{name}: Dimension size must be non-negative.")
    return shape


def size_of(size: tuple, kwargs: dict, name: str = "zeros") -> tuple[int, ...]:
    """The shape from varargs or a ``size=`` keyword."""
    if "size" in kwargs:
        size = (kwargs.pop("size"),)
    return _shape(size, name)


def float_dtype(dtype: Any) -> np.dtype:
    """``dtype``, or the default floating dtype."""
    return _dt.as_dtype(dtype) or _dt.default_np()


def _place(value: Any, device: Any) -> Any:
    if device is None or isinstance(value, _Tracer):
        return value
    target = _dt.to_jax_device(device)
    if target == _dt.default_jax_device() and not _committed_elsewhere(value, target):
        return value
    return jax.device_put(value, target)


def _committed_elsewhere(value: Any, target: Any) -> bool:
    return getattr(value, "committed", False) and value.devices() != {target}


def finish(
    value: Any,
    *,
    requires_grad: bool = False,
    device: Any = None,
    out: Any = None,
    pin_memory: bool = False,
    layout: Any = None,
    memory_format: Any = None,
) -> Any:
    """``value`` as a Tensor on ``device``, flagged ``requires_grad``, or stored in ``out``."""
    value = _place(value, device)
    if out is not None:
        out.data = value
        return out
    t = _b.new(value)
    if requires_grad:
        t.requires_grad = True
    return t


def _infer_dtype(data: Any) -> tuple[Any, Any]:
    """``data`` as an array-like and the dtype torch would give it."""
    x = _b.unwrap(data)
    if isinstance(x, jax.Array):
        return x, x.dtype
    if type(x).__module__.startswith("torch"):
        x = _cells.to_array(x)
        return x, x.dtype
    if isinstance(x, (np.ndarray, np.generic)):
        return x, _dt.as_dtype(x.dtype)
    if isinstance(x, (list, tuple)):
        x = _nested(x)
    try:
        a = np.asarray(x)
    except jax.errors.TracerArrayConversionError:  # traced elements, inside a transform
        a = jnp.asarray(x)
    kind = a.dtype.kind
    if kind == "b":
        return a, _dt.bool
    if kind in "iu":
        return a, _dt.wide("long")
    if kind == "c":
        return a, _dt.complex64 if _dt.default_np() != np.float64 else _dt.wide("cdouble")
    if kind == "f":
        return a, _dt.default_np()
    raise TypeError(f"Could not infer dtype of {type(data).__name__}")


def _nested(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_nested(e) for e in x]
    x = _b.unwrap(x)
    return np.asarray(x) if isinstance(x, jax.Array) and not isinstance(x, _Tracer) else x


def tensor(data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           pin_memory: bool = False) -> Any:  # fmt: skip
    """A new tensor of ``data`` (nested lists, numbers, numpy arrays, tensors); Python
    floats become the default dtype and ints ``long``, as in torch."""
    x, dt = _infer_dtype(data)
    dt = _dt.as_dtype(dtype) or dt
    _dt.check_fits(x, dt, "tensor")
    value = jnp.array(x, dtype=dt, copy=True)
    return finish(value, requires_grad=requires_grad, device=device)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Any:
    """``data`` as a tensor, without copying when it already is one of that dtype."""
    if _b.is_tensor(data) and (dtype is None or data.dtype == _dt.as_dtype(dtype)):
        return data.to(device) if device is not None else data
    x, dt = _infer_dtype(data)
    dt = _dt.as_dtype(dtype) or dt
    _dt.check_fits(x, dt, "as_tensor")
    return finish(jnp.asarray(x, dtype=dt), device=device)


def asarray(obj: Any, *, dtype: Any = None, device: Any = None, copy: Any = None,
            requires_grad: bool = False) -> Any:  # fmt: skip
    """``as_tensor`` with torch.asarray's keywords."""
    out = tensor(obj, dtype=dtype, device=device) if copy else as_tensor(obj, dtype, device)
    if requires_grad:
        out.requires_grad = True
    return out


def from_numpy(ndarray: np.ndarray) -> Any:
    """A tensor of a numpy array's values at the time of the call (a copy: JAX arrays never
    share numpy memory, so later writes to ``ndarray`` do not show)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    # a private host copy: the transfer to the device may run after this returns (and CPU
    # arrays may alias host memory), so the caller's array must not be read later
    private = np.array(ndarray, copy=True)
    dt = _dt.as_dtype(ndarray.dtype)
    _dt.check_fits(private, dt, "from_numpy")
    return _b.new(jnp.asarray(private, dtype=dt))


def scalar_tensor(s: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
    """A 0-d tensor (default dtype)."""
    return finish(jnp.asarray(_b.unwrap(s), float_dtype(dtype)), **kwargs)


HOST_FILL_MAX = 1 << 22  # elements; larger constant arrays are filled on the device


def _fill(shape: tuple[int, ...], value: Any, dt: Any) -> jax.Array:
    """``jnp.full(shape, value, dt)``; outside any trace, small ones are built in numpy and
    transferred (an eager ``jnp.full`` compiles one program per shape: a model file's
    ``torch.ones(T, T)`` mask would cost a compile at construction)."""
    if (
        type(value) in (builtins.int, builtins.float, builtins.bool)
        and (type(value) is not builtins.float or math.isfinite(value) or dt.kind in "fc")
        and math.prod(shape) <= HOST_FILL_MAX
        and _state.trace_is_top_level()
    ):
        try:
            return jax.device_put(np.full(shape, value, dt))
        except (OverflowError, ValueError):
            pass  # a value numpy will not cast (inf into an integer): jnp's rule
    return jnp.full(shape, value, dt)


def zeros(*size: Any, dtype: Any = None, **kwargs: Any) -> Any:
    """Zeros of shape ``size`` (``zeros(2, 3)`` or ``zeros((2, 3))``)."""
    return finish(_fill(size_of(size, kwargs), 0, float_dtype(dtype)), **kwargs)


def ones(*size: Any, dtype: Any = None, **kwargs: Any) -> Any:
    """Ones of shape ``size``."""
    return finish(_fill(size_of(size, kwargs, "ones"), 1, float_dtype(dtype)), **kwargs)


def empty(*size: Any, dtype: Any = None, **kwargs: Any) -> Any:
    """JAX has no uninitialised memory: zeros of shape ``size``."""
    return zeros(*size, dtype=dtype, **kwargs)


def empty_strided(size: Any, stride: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
    """Zeros of shape ``size`` (strides are not modelled)."""
    return zeros(tuple(size), dtype=dtype, **kwargs)


def _fill_dtype(v: Any) -> np.dtype:
    v = _b.unwrap(v)
    if isinstance(v, (jax.Array, np.ndarray, np.generic)):
        return _dt.as_dtype(v.dtype)
    if isinstance(v, builtins.bool):
        return _dt.bool
    if isinstance(v, builtins.int):
        return _dt.wide("long")
    if isinstance(v, builtins.complex):
        return _dt.complex64
    return _dt.default_np()


def full(size: Any, fill_value: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
    """``fill_value`` everywhere; the dtype follows the value (bool, long, float)."""
    dt = _dt.as_dtype(dtype) or _fill_dtype(fill_value)
    return finish(_fill(_shape((size,)), _b.unwrap(fill_value), dt), **kwargs)


def _like(input: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
    a = _b.unwrap(input)
    return tuple(a.shape), _dt.as_dtype(dtype) or a.dtype


def zeros_like(input: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
    """Zeros with ``input``'s shape and dtype."""
    shape, dt = _like(input, dtype)
    return finish(_fill(shape, 0, dt), **kwargs)


def ones_like(input: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
    """Ones with ``input``'s shape and dtype."""
    shape, dt = _like(input, dtype)
    return finish(_fill(shape, 1, dt), **kwargs)


def empty_like(input: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
    """Zeros with ``input``'s shape and dtype."""
    return zeros_like(input, dtype=dtype, **kwargs)


def full_like(input: Any, fill_value: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
    """``fill_value`` with ``input``'s shape and dtype."""
    shape, dt = _like(input, dtype)
    return finish(_fill(shape, _b.unwrap(fill_value), dt), **kwargs)


def _num(x: Any) -> Any:
    x = _b.unwrap(x)
    return x.item() if isinstance(x, (jax.Array, np.ndarray, np.generic)) else x


def arange(start: Any = 0, end: Any = None, step: Any = 1, *, dtype: Any = None,
           **kwargs: Any) -> Any:  # fmt: skip
    """``[start, end)`` in steps of ``step``; ``long`` unless an argument is a float."""
    start, end, step = _num(start), _num(end), _num(step)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    floats = any(isinstance(v, builtins.float) for v in (start, end, step))
    dt = _dt.as_dtype(dtype) or (_dt.default_np() if floats else _dt.wide("long"))
    n = max(0, math.ceil((end - start) / step))
    if dt.kind in "iu" and not floats:
        value = jnp.arange(start, end, step, dtype=dt)
    else:
        value = (start + step * np.arange(n, dtype=np.float64)).astype(dt)
        value = jnp.asarray(value)
    return finish(value, **kwargs)


def range(start: Any = 0, end: Any = None, step: Any = 1, *, dtype: Any = None,
          **kwargs: Any) -> Any:  # fmt: skip
    """``[start, end]`` inclusive (torch's deprecated ``range``), default dtype."""
    start, end, step = _num(start), _num(end), _num(step)
    if end is None:
        start, end = 0, start
    n = int(math.floor((end - start) / step)) + 1
    value = start + step * np.arange(max(n, 0), dtype=np.float64)
    return finish(jnp.asarray(value.astype(float_dtype(dtype))), **kwargs)


def linspace(start: Any, end: Any, steps: int, *, dtype: Any = None, **kwargs: Any) -> Any:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    vals = _linspace(_num(start), _num(end), steps)
    return finish(jnp.asarray(vals.astype(float_dtype(dtype))), **kwargs)


def _linspace(start: float, end: float, steps: int) -> np.ndarray:
    """torch's linspace in float64: the first half counts up from ``start``, the second
    down from ``end`` (so both ends are exact)."""
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    if steps == 1:
        return np.full(1, start, np.float64)
    i = np.arange(steps, dtype=np.float64)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    return np.where(i < steps // 2, start + step * i, end - step * (steps - 1 - i))


def logspace(start: Any, end: Any, steps: int, base: float = 10.0, *, dtype: Any = None,
             **kwargs: Any) -> Any:  # fmt: skip
    """``base ** linspace(start, end, steps)``."""
    vals = np.power(base, _linspace(_num(start), _num(end), steps))
    return finish(jnp.asarray(vals.astype(float_dtype(dtype))), **kwargs)


def eye(n: int, m: int | None = None, *, dtype: Any = None, **kwargs: Any) -> Any:
    """The identity matrix (``n`` by ``m``)."""
    return finish(jnp.eye(n, m, dtype=float_dtype(dtype)), **kwargs)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype: Any = None,
                 **kwargs: Any) -> Any:  # fmt: skip
    """The ``(2, N)`` row/column indices of the lower triangle."""
    r, c = np.tril_indices(row, offset, col)
    dt = _dt.as_dtype(dtype) or _dt.wide("long")
    return finish(jnp.asarray(np.stack([r, c])).astype(dt), **kwargs)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype: Any = None,
                 **kwargs: Any) -> Any:  # fmt: skip
    """The ``(2, N)`` row/column indices of the upper triangle."""
    r, c = np.triu_indices(row, offset, col)
    dt = _dt.as_dtype(dtype) or _dt.wide("long")
    return finish(jnp.asarray(np.stack([r, c])).astype(dt), **kwargs)


def _float_pair(fn: str, names: tuple[str, str], a: Any, b: Any) -> tuple[Any, Any]:
    """``torch.complex`` / ``torch.polar``'s checks: two floating tensors of one dtype whose
    shapes broadcast; returns them broadcast to one shape (``lax.complex`` needs it)."""
    for pos, (name, x) in enumerate(zip(names, (a, b)), 1):
        if not isinstance(x, (jax.Array, np.ndarray, _b.TensorBase)):
            raise TypeError(
                f"{fn}(): argument '{name}' (position {pos}) must be Tensor, not {type(x).__name__}"
            )
    a, b = jnp.asarray(_b.unwrap(a)), jnp.asarray(_b.unwrap(b))
    floats = (jnp.float16, jnp.float32, jnp.float64)
    if a.dtype not in floats or b.dtype not in floats:
        raise RuntimeError(
            "Expected both inputs to be Half, Float or Double tensors but got "
            f"{_dt.torch_name(a.dtype)} and {_dt.torch_name(b.dtype)}"
        )
    if a.dtype != b.dtype:
        raise RuntimeError(
            f"Expected object of scalar type {_dt.torch_name(a.dtype)} but got scalar type "
            f"{_dt.torch_name(b.dtype)} for second argument"
        )
    if a.dtype == jnp.float16:
        raise NotImplementedError(
            f"torch.{fn} of Half tensors: torch's complex32 has no JAX dtype; convert with "
            ".float() first"
        )
    _err.check_broadcast(a.shape, b.shape)
    return tuple(jnp.broadcast_arrays(a, b))  # type: ignore[return-value]


def complex(real: Any, imag: Any) -> Any:
    """``real + i * imag`` (``torch.complex``: two float tensors of one dtype)."""
    r, i = _float_pair("complex", ("real", "imag"), real, imag)
    return _b.wrap_like(jax.lax.complex(r, i), real, imag)


def polar(abs: Any, angle: Any) -> Any:
    """``abs * (cos(angle) + i sin(angle))`` (``torch.polar``: two float tensors of one
    dtype)."""
    r, t = _float_pair("polar", ("abs", "angle"), abs, angle)
    return _b.wrap_like(jax.lax.complex(r * jnp.cos(t), r * jnp.sin(t)), abs, angle)


def sparse_coo_tensor(indices: Any, values: Any, size: Any = None, *, dtype: Any = None,
                      device: Any = None, requires_grad: bool = False,
                      check_invariants: Any = None, is_coalesced: Any = None) -> Any:  # fmt: skip
    """``torch.sparse_coo_tensor``, stored dense: a tensor of ``size`` that is zero except
    ``values[j]`` at ``indices[:, j]`` (repeated indices add up, as ``coalesce()`` would).

    XLA has no sparse layout; the result is an ordinary (dense, ``is_sparse`` False)
    tensor with the same values, so ``torch.sparse.mm``, ``@`` and ``.to_dense()`` give
    torch's results. Without ``size`` the shape comes from ``indices.max(1) + 1``, which
    needs concrete indices (not under ``jaxmod.jit``). Concrete indices are checked as
    torch's ``check_invariants=True`` checks them (a negative or too large index raises;
    unchecked, torch's result is undefined); traced ones are not checked."""
    idx = jnp.asarray(_b.unwrap(indices))
    vals = jnp.asarray(_b.unwrap(values))
    if dtype is not None:
        vals = vals.astype(_dt.as_dtype(dtype))
    if idx.ndim != 2:
        raise RuntimeError(f"indices must be sparse_dim x nnz, but got: {list(idx.shape)}")
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        idx = idx.astype(_dt.wide("long"))  # torch casts the indices to long
    nnz = vals.shape[0] if vals.ndim else 1
    if idx.shape[1] != nnz:
        raise RuntimeError(
            "indices and values must have same nnz, but got nnz from indices: "
            f"{idx.shape[1]}, nnz from values: {nnz}"
        )
    sparse_dim, dense_shape = idx.shape[0], tuple(vals.shape[1:])
    concrete = not isinstance(idx, _Tracer)
    if size is None:
        if not concrete:
            raise _err.traced(
                "sparse_coo_tensor without size=",
                "Pass size= (the shape is read from the indices' values otherwise).",
            )
        top = np.asarray(idx).max(1) + 1 if nnz else np.zeros(sparse_dim, np.int64)
        size = tuple(int(m) for m in top) + dense_shape
    shape = _shape((size,), "sparse_coo_tensor")
    if len(shape) != sparse_dim + len(dense_shape):
        raise RuntimeError(
            f"'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = {len(shape)}, "
            f"sparse_dim = {sparse_dim}, dense_dim = {len(dense_shape)}"
        )
    if tuple(shape[sparse_dim:]) != dense_shape:
        raise RuntimeError(
            f"values has incorrect size, expected {list((nnz,) + tuple(shape[sparse_dim:]))}, "
            f"got {list(vals.shape)}"
        )
    if concrete and nnz:
        _check_coo_indices(np.asarray(idx), shape)
    vals = jnp.broadcast_to(vals, (nnz,) + dense_shape)
    summed = jnp.int32 if vals.dtype == jnp.bool_ else vals.dtype  # bools add up as OR
    out = jnp.zeros(shape, summed).at[tuple(idx)].add(vals.astype(summed)).astype(vals.dtype)
    dense = finish(out, device=device)
    t = _b.sparse_make(_b.unwrap(dense), idx, vals, bool(is_coalesced) and concrete)
    if requires_grad:
        t.requires_grad = True  # raises, naming the dense way
    return t


def _check_coo_indices(idx: np.ndarray, shape: tuple) -> None:
    """torch's ``check_invariants=True`` index checks (jaxmod's scatter would wrap a
    negative index and drop a too large one)."""
    for d, row in enumerate(idx):
        lo, hi = int(row.min()), int(row.max())
        if lo < 0:
            raise RuntimeError(f"found negative index {lo} for dim {d}")
        if hi >= shape[d]:
            raise RuntimeError(
                f"size is inconsistent with indices: for dim {d}, size is {shape[d]} but found "
                f"index {hi}"
            )


FACTORIES: dict[str, Any] = {
    f.__name__: f
    for f in (tensor, as_tensor, asarray, from_numpy, scalar_tensor, zeros, ones, empty,
              empty_strided, full, zeros_like, ones_like, empty_like, full_like, arange, range,
              linspace, logspace, eye, tril_indices, triu_indices, complex, polar,
              sparse_coo_tensor)
}  # fmt: skip
