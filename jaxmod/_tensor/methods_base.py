"""Tensor methods: attributes, dtype and device conversion, Python protocols, in-place core."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import cells as _cells
from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err
from jaxmod._tensor import geometry as _geo
from jaxmod._tensor.factories import _shape, finish
from jaxmod._tensor.printing import tensor_repr

_Tracer = jax.core.Tracer


def _concrete(self: Any, what: str) -> Any:
    v = self._jx()
    if isinstance(v, _Tracer):
        raise _err.traced(
            what,
            "Return the tensor from the jitted function and convert it outside, use "
            "jax.debug.print to print it, or jaxmod.where (torch.where) / jax.lax.cond instead "
            "of Python control flow on it.",
        )
    return v


def _can_cast(src: np.dtype, dst: np.dtype) -> bool:
    """torch's rule for in-place results: no complex -> real, float -> int, or -> bool."""
    k, d = src.kind, dst.kind
    if k == "c" and d != "c":
        return False
    if k == "f" and d in "iub" or src == _dt.bfloat16 and d in "iub":
        return False
    return not (d == "b" and k != "b")


def _parse_to(args: tuple, kwargs: dict) -> tuple[Any, Any, bool]:
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    copy = bool(kwargs.pop("copy", False))
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, _b.TensorBase):
            dtype = a.dtype
            v = a._jx()
            if not isinstance(v, _Tracer):
                dev = next(iter(v.devices()))
        elif _dt.is_dtype(a):
            dtype = a
        elif isinstance(a, bool):
            pass  # to(dtype, non_blocking) positional form
        elif a is not None:
            dev = a
    return dtype, dev, copy


class BaseMethods(_b.TensorBase):
    """Attributes, conversions and Python protocols of a tensor."""

    __slots__ = ()
    __array_priority__ = 1000
    __array_ufunc__ = None  # numpy defers ``ndarray + tensor`` to the tensor

    # -- attributes ------------------------------------------------------------------
    @property
    def shape(self) -> _dt.Size:
        """The shape, a ``torch.Size``."""
        return _dt.Size(self._jx().shape)

    @property
    def dtype(self) -> _dt.dtype:
        """The dtype, a ``torch.dtype`` (``torch.float32``; equal to the numpy dtype)."""
        return _dt.of(self._jx().dtype)

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._jx().ndim

    @property
    def device(self) -> _dt.device:
        """The device holding the values (under a trace: the default device)."""
        v = self._jx()
        if isinstance(v, _Tracer):
            return _dt.device._of(_dt.default_jax_device())
        devs = v.devices()
        return _dt.device._of(next(iter(devs)) if len(devs) == 1 else _dt.default_jax_device())

    @property
    def is_cuda(self) -> bool:
        """Whether the values live on a GPU."""
        return self.device.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        """Whether the values live on the CPU."""
        return self.device.type == "cpu"

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self._jx().dtype.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of all elements."""
        return self.numel() * self._jx().dtype.itemsize

    @property
    def layout(self) -> str:
        """Always ``"strided"`` (dense)."""
        return "torch.strided"

    @property
    def is_sparse(self) -> bool:
        """Always False: jaxmod tensors are dense."""
        return False

    def is_conj(self) -> bool:
        """Always False: ``conj()`` computes the conjugate (jaxmod has no lazy conjugate bit,
        so ``view_as_real(x.conj())`` works where torch asks for ``resolve_conj()``)."""
        return False

    def is_neg(self) -> bool:
        """Always False (no lazy negation bit)."""
        return False

    def resolve_conj(self) -> Any:
        """The tensor itself (its conjugation, if any, is already computed)."""
        return self

    def resolve_neg(self) -> Any:
        """The tensor itself (no lazy negation bit)."""
        return self

    def to_dense(self, dtype: Any = None, *, masked_grad: Any = None) -> Any:
        """The tensor itself (jaxmod tensors, ``sparse_coo_tensor``'s included, are dense);
        ``dtype`` converts."""
        return self if dtype is None else self.to(dtype)

    # ``torch.sparse_coo_tensor`` gives a dense tensor here, so graph code that goes on with
    # ``adj.coalesce().indices()`` / ``.values()`` / ``._nnz()`` reads the COO form back from
    # the values: the non-zero entries in row-major order, which is the order of torch's
    # coalesced indices. An entry whose (summed) value is exactly zero is not listed (torch
    # keeps explicitly stored zeros), and every dimension counts as sparse (hybrid tensors'
    # dense value dimensions are not known after construction).

    def coalesce(self) -> Any:
        """The tensor itself: a dense tensor holds each index once, summed (torch's
        ``coalesce()`` of the COO tensor ``sparse_coo_tensor`` builds)."""
        return self

    def is_coalesced(self) -> bool:
        """Always True (see :meth:`coalesce`)."""
        return True

    def indices(self) -> Any:
        """The ``(ndim, nnz)`` long indices of the non-zero entries, row-major (torch's
        coalesced COO ``indices()``; eager only, since ``nnz`` depends on the values)."""
        _concrete(self, "indices() of a sparse_coo_tensor")
        return self.nonzero().t().contiguous()

    def values(self) -> Any:
        """The non-zero entries, in the order of :meth:`indices` (torch's COO ``values()``;
        eager only)."""
        _concrete(self, "values() of a sparse_coo_tensor")
        return self[tuple(self.nonzero().t())]

    _indices = indices
    _values = values

    def _nnz(self) -> int:
        """The number of non-zero entries (torch's COO ``_nnz()``; eager only)."""
        return int(np.count_nonzero(np.asarray(_concrete(self, "_nnz()"))))

    def sparse_dim(self) -> int:
        """Every dimension (see :meth:`indices`)."""
        return self._jx().ndim

    def dense_dim(self) -> int:
        """0 (see :meth:`indices`)."""
        return 0

    @property
    def is_quantized(self) -> bool:
        """Always False."""
        return False

    @property
    def is_meta(self) -> bool:
        """Always False."""
        return False

    def size(self, dim: int | None = None) -> Any:
        """The shape as a ``torch.Size``, or the size of dimension ``dim``."""
        shape = self._jx().shape
        if dim is None:
            return _dt.Size(shape)
        return shape[_err.dim(dim, len(shape))]

    def dim(self) -> int:
        """The number of dimensions."""
        return self._jx().ndim

    ndimension = dim

    def numel(self) -> int:
        """The number of elements."""
        return _b._numel(self._jx().shape)

    nelement = numel

    def element_size(self) -> int:
        """Bytes per element."""
        return self._jx().dtype.itemsize

    def stride(self, dim: int | None = None) -> Any:
        """Strides in elements, as torch would lay this tensor out."""
        st = _b.geometry(self)[1]
        return st if dim is None else st[_err.dim(dim, len(st))]

    def storage_offset(self) -> int:
        """Offset of the first element in its base's storage."""
        return _b.geometry(self)[2]

    def is_contiguous(self, memory_format: Any = None) -> bool:
        """Whether torch would store this tensor contiguously (views may not be)."""
        g = _b.geometry(self)
        return _geo.is_contiguous(g[0], g[1])

    def is_floating_point(self) -> bool:
        """Whether the dtype is floating-point."""
        return bool(jnp.issubdtype(self._jx().dtype, jnp.floating))

    def is_complex(self) -> bool:
        """Whether the dtype is complex."""
        return bool(jnp.issubdtype(self._jx().dtype, jnp.complexfloating))

    def is_signed(self) -> bool:
        """Whether the dtype is signed."""
        return self._jx().dtype.kind in "ifc" or self._jx().dtype == _dt.bfloat16

    def get_device(self) -> int:
        """The GPU index, or -1 on the CPU."""
        d = self.device
        return -1 if d.type == "cpu" else (d.index or 0)

    # -- conversions -----------------------------------------------------------------
    def _as(self, dtype: Any) -> Any:
        v = self._jx()
        dt = _dt.as_dtype(dtype)
        return self if v.dtype == dt else _b.new(v.astype(dt))

    def float(self, memory_format: Any = None) -> Any:
        """As float32 (``self`` when it already is)."""
        return self._as(_dt.float32)

    def double(self, memory_format: Any = None) -> Any:
        """As float64 (float32 unless JAX's x64 mode is on)."""
        return self._as(_dt.wide("double"))

    def half(self, memory_format: Any = None) -> Any:
        """As float16."""
        return self._as(_dt.float16)

    def bfloat16(self, memory_format: Any = None) -> Any:
        """As bfloat16."""
        return self._as(_dt.bfloat16)

    def int(self, memory_format: Any = None) -> Any:
        """As int32."""
        return self._as(_dt.int32)

    def long(self, memory_format: Any = None) -> Any:
        """As int64 (JAX's default integer, int32, unless x64 is on)."""
        return self._as(_dt.wide("long"))

    def short(self, memory_format: Any = None) -> Any:
        """As int16."""
        return self._as(_dt.int16)

    def char(self, memory_format: Any = None) -> Any:
        """As int8."""
        return self._as(_dt.int8)

    def byte(self, memory_format: Any = None) -> Any:
        """As uint8."""
        return self._as(_dt.uint8)

    def bool(self, memory_format: Any = None) -> Any:
        """As bool."""
        return self._as(_dt.bool)

    def cfloat(self) -> Any:
        """As complex64."""
        return self._as(_dt.complex64)

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``: ``self`` when
        nothing changes (as in torch); ``non_blocking`` and ``memory_format`` are accepted."""
        dtype, dev, copy = _parse_to(args, kwargs)
        out = self._as(dtype) if dtype is not None else self
        if dev is not None:
            out = out._to_device(dev)
        if copy and out is self:
            out = _b.new(jnp.array(self._jx(), copy=True))
        return out

    def _to_device(self, dev: Any) -> Any:
        v = self._jx()
        if isinstance(v, _Tracer):
            return self
        target = _dt.to_jax_device(dev)
        if v.devices() == {target}:
            return self
        return _b.new(jax.device_put(v, target))

    def cpu(self, memory_format: Any = None) -> Any:
        """On the CPU (``self`` when already there)."""
        return self._to_device("cpu")

    def cuda(self, device: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
        """On a GPU (raises when JAX sees none)."""
        if device is None:
            device = "cuda"
        elif isinstance(device, int):
            device = f"cuda:{device}"
        return self._to_device(device)

    def type(self, dtype: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
        """Without arguments, torch's type name (``"torch.FloatTensor"``); else ``to(dtype)``."""
        if dtype is None:
            name = _dt.torch_name(self._jx().dtype)
            return f"torch.{name}Tensor"
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            names = {f"torch.{v}Tensor": k for k, v in _dt._TORCH_NAMES.items()}
            dtype = names[dtype]
        return self._as(dtype)

    def type_as(self, other: Any) -> Any:
        """As ``other``'s dtype."""
        return self._as(_b.unwrap(other).dtype)

    def item(self) -> Any:
        """The single value as a Python number (not under jit: raises ``TraceError``)."""
        v = _concrete(self, ".item()")
        if v.size != 1:
            raise RuntimeError(f"a Tensor with {v.size} elements cannot be converted to Scalar")
        return v.item()

    def tolist(self) -> Any:
        """Nested Python lists of the values (not under jit)."""
        return _concrete(self, ".tolist()").tolist()

    def numpy(self, force: bool = False) -> np.ndarray:
        """A numpy copy of the values (not under jit)."""
        return np.array(_concrete(self, ".numpy()"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = np.asarray(_concrete(self, "Converting a tensor to numpy"))
        return a.astype(dtype) if dtype is not None else a

    def __jax_array__(self) -> Any:
        return self._jx()

    def detach(self) -> Any:
        """The same values cut from autodiff (``jax.lax.stop_gradient``); a view, as in
        torch: in-place ops on it write through."""
        v = _b.view(self, jax.lax.stop_gradient(self._jx()), _same)
        v._detached = True
        return v

    def detach_(self) -> Any:
        """Cut from autodiff in place."""
        return self._rebind(jax.lax.stop_gradient(self._jx()))

    def clone(self, memory_format: Any = None) -> Any:
        """A copy that shares nothing with this tensor."""
        return _b.new(jnp.array(self._jx(), copy=True))

    def contiguous(self, memory_format: Any = None) -> Any:
        """``self`` if torch would store it contiguously, else a copy."""
        return self if self.is_contiguous() else _b.new(self._jx())

    def pin_memory(self) -> Any:
        """No-op (JAX manages host memory)."""
        return self

    def share_memory_(self) -> Any:
        """No-op."""
        return self

    def backward(
        self, gradient: Any = None, retain_graph: Any = None, create_graph: bool = False,
        inputs: Any = None,
    ) -> None:  # fmt: skip
        """Add the gradient of this tensor into the ``.grad`` of every parameter (and
        ``requires_grad`` tensor) it was computed from eagerly, as torch does (see
        ``jaxmod._tensor.tape``). Inside ``jaxmod.jit`` raises, showing
        ``jaxmod.value_and_grad``."""
        _b.tape_backward(self, gradient, retain_graph, create_graph, inputs)

    def register_hook(self, hook: Any) -> Any:
        """torch's tensor hook: ``hook(grad)`` runs when this tensor's gradient is computed
        by ``backward()`` / ``autograd.grad`` and may return a replacement. Returns a handle
        with ``remove()``. Raises for a tensor that does not require grad, as torch does."""
        return _b.tape_register_hook(self, hook)

    def retain_grad(self) -> None:
        """No-op on a leaf or a tensor outside the graph (a leaf keeps its ``.grad``)."""

    # -- Python protocols ------------------------------------------------------------
    def __repr__(self) -> str:
        gf = getattr(self, "grad_fn", None)
        flag = f"grad_fn=<{gf.name()}>" if gf is not None else getattr(self, "requires_grad", False)
        return self._text(self._jx(), flag)

    def _text(self, v: Any, requires_grad: bool | str) -> str:
        """torch's tensor text for value ``v`` held here (its device from ``self.device``)."""
        dev = None
        if not isinstance(v, _Tracer):
            d = self.device
            dev = None if d.type == "cpu" else str(d)
        return tensor_repr(v, requires_grad, dev)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        # torch: a 0-d Tensor formats as its Python number (f"{loss}" -> "0.25"); anything
        # else (a 0-d Parameter too) only with an empty spec, as its str
        v = self._jx()
        if v.ndim == 0 and type(self) in _b.TT and not isinstance(v, jax.core.Tracer):
            return format(self.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string passed to {type(self).__name__}.__format__")
        return str(self)

    def __bool__(self) -> bool:
        v = _concrete(self, "bool(tensor) (an `if` or `while` on a tensor)")
        if v.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(v)

    def __float__(self) -> float:
        v = _concrete(self, "float(tensor)")
        if v.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return float(v.reshape(()))

    def __int__(self) -> int:
        v = _concrete(self, "int(tensor)")
        if v.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return int(v.reshape(()))

    def __complex__(self) -> complex:
        return complex(_concrete(self, "complex(tensor)").reshape(()))

    def __index__(self) -> int:
        v = _concrete(self, "Using a tensor as an index")
        if v.size != 1 or v.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(v.reshape(()))

    def __len__(self) -> int:
        shape = self._jx().shape
        if not shape:
            raise TypeError("len() of a 0-d tensor")
        return shape[0]

    def __iter__(self) -> Any:
        if self._jx().ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))  # type: ignore[attr-defined]

    def __contains__(self, element: Any) -> bool:
        return bool(jnp.any(self._jx() == _b.unwrap(element)))

    __hash__ = object.__hash__

    # copies keep the requires_grad flag, as torch's do
    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_rebuild, (np.asarray(self._jx()), bool(getattr(self, "requires_grad", False))))

    def __copy__(self) -> Any:
        return _flagged(_b.new(self._jx()), self)

    def __deepcopy__(self, memo: Any) -> Any:
        return _flagged(self.clone(), self)

    # -- in-place core ---------------------------------------------------------------
    def _inplace(self, result: Any, check: Any = True) -> Any:
        """Store ``result`` in place: broadcast to this shape and cast to this dtype, with
        torch's errors for results that do not fit (``check``: the dtype rule applies)."""
        cur = self._jx()
        result = jnp.asarray(result)
        if result.shape != cur.shape:
            try:
                bshape = jnp.broadcast_shapes(result.shape, cur.shape)
            except ValueError:
                bshape = None
            if bshape != cur.shape:
                raise _err.ShapeError(
                    f"output with shape {list(cur.shape)} doesn't match the broadcast shape "
                    f"{list(bshape) if bshape is not None else list(result.shape)}"
                )
            result = jnp.broadcast_to(result, cur.shape)
        if result.dtype != cur.dtype:
            if check and not _can_cast(result.dtype, cur.dtype):
                raise RuntimeError(
                    f"result type {_dt.torch_name(result.dtype)} can't be cast to the desired "
                    f"output type {_dt.torch_name(cur.dtype)}"
                )
            result = result.astype(cur.dtype)
        return self._rebind(result)

    def fill_(self, value: Any) -> Any:
        """Set every element to ``value``."""
        return self._inplace(jnp.asarray(_b.unwrap(value)), check=False)

    def apply_(self, callable: Any) -> Any:
        """Replace every element ``v`` with ``callable(v)`` (a Python call per element, on
        the host, as torch's CPU-only method; not under jit)."""
        a = np.array(_concrete(self, ".apply_()"))
        flat = [callable(v) for v in a.ravel().tolist()]
        return self._rebind(jnp.asarray(np.asarray(flat, a.dtype).reshape(a.shape)))

    def map_(self, tensor: Any, callable: Any) -> Any:
        """Replace every element ``v`` with ``callable(v, w)``, ``w`` the element of
        ``tensor`` broadcast to this shape (per element on the host; not under jit)."""
        a = np.array(_concrete(self, ".map_()"))
        b = np.broadcast_to(np.asarray(_concrete(_b.as_tensor(tensor), ".map_()")), a.shape)
        flat = [callable(v, w) for v, w in zip(a.ravel().tolist(), b.ravel().tolist())]
        return self._rebind(jnp.asarray(np.asarray(flat, a.dtype).reshape(a.shape)))

    def zero_(self) -> Any:
        """Set every element to zero."""
        cur = self._jx()
        return self._rebind(jnp.zeros(cur.shape, cur.dtype))

    def copy_(self, src: Any, non_blocking: bool = False) -> Any:
        """Copy ``src`` (broadcast and cast) into this tensor."""
        return self._inplace(_to_array(src), check=False)

    # -- new tensors like this one ---------------------------------------------------
    def _new_like(self, fn: Any, size: Any, dtype: Any, **kwargs: Any) -> Any:
        dt = _dt.as_dtype(dtype) if dtype is not None else self._jx().dtype
        return _finish(fn(_shape(size), dt), kwargs)

    def new_zeros(self, *size: Any, dtype: Any = None, **kwargs: Any) -> Any:
        """Zeros of ``size`` with this dtype (unless ``dtype``)."""
        return self._new_like(jnp.zeros, size, dtype, **kwargs)

    def new_ones(self, *size: Any, dtype: Any = None, **kwargs: Any) -> Any:
        """Ones of ``size`` with this dtype."""
        return self._new_like(jnp.ones, size, dtype, **kwargs)

    def new_empty(self, *size: Any, dtype: Any = None, **kwargs: Any) -> Any:
        """Zeros (JAX has no uninitialised memory) of ``size`` with this dtype."""
        return self._new_like(jnp.zeros, size, dtype, **kwargs)

    def new_full(self, size: Any, fill_value: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
        """``fill_value`` everywhere, shape ``size``, this dtype."""
        fv = _b.unwrap(fill_value)
        return self._new_like(lambda s, d: jnp.full(s, fv, d), (size,), dtype, **kwargs)

    def new_tensor(self, data: Any, *, dtype: Any = None, **kwargs: Any) -> Any:
        """A tensor of ``data`` with this dtype (unless ``dtype``)."""
        dt = _dt.as_dtype(dtype) if dtype is not None else self._jx().dtype
        return _finish(jnp.asarray(_to_array(data), dtype=dt), kwargs)


def _finish(value: Any, kwargs: dict) -> Any:
    return finish(value, **kwargs)


def _to_array(x: Any) -> Any:
    x = _b.unwrap(x)
    if isinstance(x, jax.Array):
        return x
    if type(x).__module__.startswith("torch"):
        return _cells.to_array(x)
    return jnp.asarray(x)


def _same(g: Any) -> Any:
    return g


def _rebuild(a: np.ndarray, requires_grad: bool = False) -> Any:
    t = _b.new(jnp.asarray(a))
    if requires_grad:
        t.requires_grad = True
    return t


def _flagged(copy: Any, source: Any) -> Any:
    if getattr(source, "requires_grad", False):
        copy.requires_grad = True
    return copy
