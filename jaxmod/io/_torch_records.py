"""What a torch pickle may build: jaxmod's stand-ins for torch's tensors, storages, dtypes.

The allow-list maps each global a ``torch.save`` pickle names (``torch._utils._rebuild_tensor_v2``,
``torch.FloatStorage``, ``collections.OrderedDict``, ...) to a factory of a *fresh* stand-in
per lookup. Stand-ins can be called or passed around, but every write a pickle can attempt on
them (``BUILD``, ``SETITEM``, ``APPEND``, ``ADDITEMS``) raises, so nothing that outlives one
load can be changed by it. Tensor records stay lazy until :meth:`LazyTensor.materialize`
checks them against their storage and the load's byte budget.
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from jaxmod.io._common import (
    TORCH_DTYPES,
    TORCH_STORAGES,
    CheckpointError,
    byteswapped,
    short_repr,
)

VIEW_FACTOR, VIEW_SLACK = 4, 64 << 20  # materialised tensor bytes <= 4 x storages + 64 MiB


class PickleWrite(Exception):
    """A pickle tried to write into one of jaxmod's stand-in objects."""


class Malformed(Exception):
    """An allow-listed call got arguments no torch file has (reported with file and record)."""


class NoState:
    """A stand-in a pickle may call or pass around but never write into."""

    __slots__ = ()

    def _refuse(self, *args: Any) -> None:
        raise PickleWrite(str(self))

    __setstate__ = __setitem__ = append = extend = add = _refuse

    def __str__(self) -> str:
        return type(self).__name__


class Global(NoState):
    """An allow-listed global: calls ``fn``; a fresh one for every lookup."""

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable, name: str) -> None:
        self.fn = fn
        self.name = name

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __str__(self) -> str:
        return f"allow-listed global '{self.name}'"


class StorageType(NoState):
    """Stand-in for ``torch.FloatStorage`` & co.: only carries the element dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name = name
        self.dtype = dtype


class TorchDtype(StorageType):
    """Stand-in for ``torch.float32`` & co."""

    __slots__ = ()


class Storage(NoState):
    """One storage record: raw bytes (filled in when read), element dtype and byte order."""

    __slots__ = ("key", "dtype", "data", "big_endian", "base", "elem_offset", "_cache")

    def __init__(self, key: str, dtype: np.dtype) -> None:
        self.key = key
        self.dtype = dtype
        self.data: bytes | bytearray | None = None
        self.big_endian = False
        self.base: Storage | None = None  # legacy storage views
        self.elem_offset = 0
        self._cache: dict[np.dtype, np.ndarray] = {}

    def elements(self, dtype: np.dtype, where: str) -> np.ndarray:
        if self.base is not None:
            return self.base.elements(dtype, where)[self.elem_offset :]
        if dtype in self._cache:
            return self._cache[dtype]
        if self.data is None:
            raise CheckpointError(
                f"{where}: storage {short_repr(self.key)} has no data in the file"
            )
        if len(self.data) % dtype.itemsize:
            raise CheckpointError(
                f"{where}: storage {short_repr(self.key)} has {len(self.data)} bytes, not a "
                f"multiple of the {dtype} element size"
            )
        a = np.frombuffer(self.data, dtype=dtype)
        a = byteswapped(a) if self.big_endian != (sys.byteorder == "big") else a
        self._cache[dtype] = a
        return a


class Budget:
    """Bounds the bytes that tensor records may materialise, relative to their storages."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.storage_bytes = 0
        self.used = 0

    def charge(self, nbytes: int, entry: str) -> None:
        limit = VIEW_FACTOR * self.storage_bytes + VIEW_SLACK
        if self.used + nbytes > limit:
            raise CheckpointError(
                f"{self.where}: {entry}: the tensor record asks for {nbytes} bytes, but the "
                f"file's storages hold {self.storage_bytes} bytes; jaxmod copies views, and "
                f"refuses to materialise more than {VIEW_FACTOR}x the storage bytes plus "
                f"{VIEW_SLACK >> 20} MiB (a stride-0 or overlapping view over a huge shape)"
            )
        self.used += nbytes


class LazyTensor(NoState):
    """A tensor record whose storage bytes may not have been read yet (legacy format)."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype", "metadata")

    def __init__(self, storage: Storage, offset: Any, size: Any, stride: Any, dtype: Any):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride
        self.dtype = dtype
        self.metadata: Any = None  # torch's lazy conj/neg bits: {"conj": True, "neg": True}

    def materialize(self, where: str, entry: str, budget: Budget) -> np.ndarray:
        try:
            return self._materialize(where, entry, budget)
        except CheckpointError:
            raise
        except Exception as e:  # numpy refusing a shape, a neg bit on bools, ...
            raise CheckpointError(
                f"{where}: {entry}: malformed tensor record ({type(e).__name__}: {str(e)[:200]})"
            ) from e

    def _materialize(self, where: str, entry: str, budget: Budget) -> np.ndarray:
        st = self.storage
        dtype = self.dtype.dtype if isinstance(self.dtype, TorchDtype) else st.dtype
        try:
            size = tuple(as_int(d) for d in self.size)
            stride = tuple(as_int(s) for s in self.stride)
            offset = as_int(self.offset)
        except TypeError as e:
            raise CheckpointError(f"{where}: {entry}: malformed tensor record ({e})") from e
        if len(size) != len(stride) or any(d < 0 for d in size) or any(s < 0 for s in stride):
            raise CheckpointError(
                f"{where}: {entry}: malformed tensor record: size {size}, stride {stride}"
            )
        if offset < 0:
            raise CheckpointError(f"{where}: {entry}: malformed tensor record: offset {offset}")
        n = math.prod(size)
        if n == 0:
            return np.zeros(size, dtype=dtype)
        elems = st.elements(dtype, where)
        last = offset + sum((d - 1) * s for d, s in zip(size, stride))
        if last >= elems.size:
            raise CheckpointError(
                f"{where}: {entry}: tensor of size {list(size)} with stride {list(stride)} at "
                f"offset {offset} reads past the end of its storage ({elems.size} elements)"
            )
        budget.charge(n * dtype.itemsize, entry)
        view = np.lib.stride_tricks.as_strided(
            elems[offset:], shape=size, strides=[s * dtype.itemsize for s in stride]
        )
        out = np.array(view, copy=True, order="C")
        if isinstance(self.metadata, dict):
            if self.metadata.get("neg") is True:
                np.negative(out, out=out)
            if self.metadata.get("conj") is True:
                np.conjugate(out, out=out)
        return out


def as_int(x: Any) -> int:
    """``x`` as an int; refuses bools, floats and other objects from a pickle."""
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"expected an int, got {type(x).__name__}")
    return int(x)


# --------------------------------------------------------------------------------------
# the allow-list: what torch's rebuild functions become
# --------------------------------------------------------------------------------------


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> LazyTensor:
    if not isinstance(storage, Storage):
        raise Malformed(f"tensor record without a storage ({type(storage).__name__})")
    return LazyTensor(storage, storage_offset, size, stride, None)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> LazyTensor:
    t = _rebuild_tensor(storage, storage_offset, size, stride)
    t.metadata = metadata
    return t


def _rebuild_tensor_v3(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    dtype: Any,
    metadata: Any = None,
) -> LazyTensor:
    if not isinstance(dtype, TorchDtype):
        raise Malformed(f"tensor record with dtype {short_repr(dtype)}")
    t = _rebuild_tensor(storage, storage_offset, size, stride)
    t.dtype, t.metadata = dtype, metadata
    return t


def _rebuild_parameter(data: Any, requires_grad: Any = True, backward_hooks: Any = None) -> Any:
    if not isinstance(data, LazyTensor):
        raise Malformed(f"Parameter record wrapping {type(data).__name__}")
    return data


def _rebuild_parameter_with_state(
    data: Any, requires_grad: Any, backward_hooks: Any, state: Any
) -> Any:
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _torch_size(dims: Iterable[Any] = ()) -> tuple:
    return tuple(as_int(d) for d in dims)


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1").
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise Malformed(f"_codecs.encode with {type(obj).__name__}, {short_repr(encoding)}")
    return obj.encode(encoding)


def _empty_bytes(*args: Any) -> bytes:
    # Protocol 2 writes b"" as bytes(); bytes(n) would allocate n bytes, so nothing else.
    if args:
        raise Malformed("builtins.bytes called with arguments")
    return b""


def _ordered_dict(*args: Any) -> OrderedDict:
    if len(args) > 1:
        raise Malformed("collections.OrderedDict called with more than one argument")
    return OrderedDict(*args)


def _allow_list() -> dict[tuple[str, str], Callable[[], Any]]:
    """``(module, name) -> factory``: each lookup gets a fresh stand-in, shared by nothing."""
    functions: dict[tuple[str, str], Callable] = {
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("collections", "OrderedDict"): _ordered_dict,
        ("torch", "Size"): _torch_size,
        ("_codecs", "encode"): _codecs_encode,
        ("builtins", "bytes"): _empty_bytes,
    }
    for cls in (set, frozenset, slice, complex):
        functions[("builtins", cls.__name__)] = cls
    out: dict[tuple[str, str], Callable[[], Any]] = {}
    for (module, name), fn in functions.items():
        out[(module, name)] = lambda fn=fn, q=f"{module}.{name}": Global(fn, q)
    for name, dt in TORCH_STORAGES.items():
        out[("torch", name)] = lambda name=name, dt=dt: StorageType(name, dt)
    out[("torch.storage", "UntypedStorage")] = out[("torch", "UntypedStorage")]
    for name, dt in TORCH_DTYPES.items():
        out[("torch", name)] = lambda name=name, dt=dt: TorchDtype(name, dt)
    return out


ALLOWED = _allow_list()
