"""Saving and loading checkpoints: safetensors files, PyTorch ``torch.save`` files, orbax.

* :func:`save` writes a state_dict (or a nested training checkpoint) as a safetensors file,
  atomically. Arrays are stored as flat tensors; the surrounding structure (dicts with int
  keys, lists, tuples, scalars, strings, ``None``) is a JSON skeleton in the file's
  ``__metadata__`` under the key ``"jaxmod"``.
* :func:`load` reads those files, any other safetensors file, and PyTorch checkpoints (the
  zip format and the legacy pre-1.6 format) **without importing torch**. Torch pickles are
  read by a restricted unpickler that only knows how to rebuild tensors, Parameters,
  ``OrderedDict`` and a few builtins; any other global raises
  :class:`UnsafeCheckpointError` before it can run.
* :func:`convert_state_dict` renames keys and transposes 2-D weights when porting weights.
* :func:`checkpoint_manager` returns an ``orbax.checkpoint.CheckpointManager`` for large or
  sharded models (orbax is an optional dependency, imported lazily).

Arrays come back from :func:`load` as numpy arrays so that float64 and int64 survive (JAX
runs with x64 off); pass ``map_location`` or ``sharding`` to get JAX arrays on a device.
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import io
import json
import math
import os
import pickle
import re
import secrets
import struct
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, BinaryIO

import jax
import ml_dtypes
import numpy as np

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "save",
    "load",
    "convert_state_dict",
    "checkpoint_manager",
]

PathLike = str | os.PathLike


class CheckpointError(ValueError):
    """A checkpoint file is malformed, truncated, or not in a format jaxmod can read."""


class UnsafeCheckpointError(pickle.UnpicklingError, CheckpointError):
    """A pickle in a checkpoint names a global outside jaxmod's allow-list.

    Attributes:
        path: the file being loaded.
        global_name: the refused global, as ``"module.name"``.
    """

    def __init__(self, path: str, global_name: str) -> None:
        self.path = path
        self.global_name = global_name
        super().__init__(
            f"{path}: refused to load global '{global_name}' from the checkpoint's pickle. "
            "jaxmod.load only reads tensor state_dicts (tensors, Parameters, dicts, lists, "
            "tuples, numbers, strings); unpickling any other object can execute arbitrary "
            "code. If you trust this file, convert it in a trusted environment with torch, "
            "e.g. safetensors.torch.save_file(torch.load(path, weights_only=True), "
            "'model.safetensors'), and load the .safetensors file instead."
        )


# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------

_ST_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
_ST_CODES: dict[np.dtype, str] = {dt: code for code, dt in _ST_DTYPES.items()}

_TORCH_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64),
    "ComplexDoubleStorage": np.dtype(np.complex128),
    "UntypedStorage": np.dtype(np.uint8),
}

_TORCH_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype(np.float32),
    "float": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "double": np.dtype(np.float64),
    "float16": np.dtype(np.float16),
    "half": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "int8": np.dtype(np.int8),
    "int16": np.dtype(np.int16),
    "short": np.dtype(np.int16),
    "int32": np.dtype(np.int32),
    "int": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "long": np.dtype(np.int64),
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "uint32": np.dtype(np.uint32),
    "uint64": np.dtype(np.uint64),
    "bool": np.dtype(np.bool_),
    "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn),
    "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
    "complex64": np.dtype(np.complex64),
    "cfloat": np.dtype(np.complex64),
    "complex128": np.dtype(np.complex128),
    "cdouble": np.dtype(np.complex128),
}


def _byteswapped(a: np.ndarray) -> np.ndarray:
    """A native-order copy of ``a`` whose elements were stored with the other byte order."""
    dt = a.dtype
    unit = dt.itemsize // 2 if dt.kind == "c" else dt.itemsize  # complex: swap each half
    if unit <= 1:
        return a.copy()
    return a.view(f"u{unit}").byteswap().view(dt)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _unwrap(x: Any) -> Any:
    """The array inside a jaxmod box (any object with ``_value``), else ``x``.

    ``jax.Array`` is checked first: JAX arrays have a ``_value`` attribute of their own (their
    cached numpy copy), which must not be mistaken for a box.
    """
    if isinstance(x, (jax.Array, np.ndarray)):
        return x
    return getattr(x, "_value", x)


def _is_arraylike(x: Any) -> bool:
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):
        return True
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def _to_numpy(x: Any) -> np.ndarray:
    """``x`` (numpy, JAX, numpy scalar, torch tensor) as a numpy array, dtype unchanged."""
    if type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach"):
        # The caller already holds a torch tensor, so torch is imported; never import it here.
        torch = sys.modules["torch"]
        t = x.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return t.numpy()
    return np.asarray(x)


def _join(prefix: str, key: Any) -> str:
    return str(key) if not prefix else f"{prefix}.{key}"


def _describe(path: Any) -> str:
    if hasattr(path, "read") and not isinstance(path, (str, os.PathLike)):
        return str(getattr(path, "name", None) or f"<{type(path).__name__}>")
    return os.fspath(path)


# --------------------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------------------

_SKELETON_VERSION = 1


class _Flattener:
    """Turns a checkpoint into ``{tensor_name: ndarray}`` plus a JSON-able skeleton.

    Skeleton nodes: JSON strings, ints, floats, bools and null stand for themselves; a JSON
    list is a Python list; every JSON object is tagged by its ``"@"`` field: ``tensor``
    (``name``, optional ``scalar``), ``dict``/``odict`` (``items``: ``[[key, value], ...]``,
    keys encoded like values), ``tuple`` (``items``) and ``bytes`` (``hex``).
    """

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}

    def tensor(self, name: str, x: Any) -> dict:
        base, n = name, 1
        while name in self.tensors:
            n += 1
            name = f"{base}#{n}"
        self.tensors[name] = _to_numpy(x)
        node: dict[str, Any] = {"@": "tensor", "name": name}
        if isinstance(x, np.generic):
            node["scalar"] = True
        return node

    def encode(self, obj: Any, path: str, stack: tuple[int, ...] = ()) -> Any:
        obj = _unwrap(obj)
        if _is_arraylike(obj):
            return self.tensor(path, obj)
        if obj is None or isinstance(obj, (bool, int, float, str)):
            if isinstance(obj, float) and type(obj) is not float:
                obj = float(obj)
            elif isinstance(obj, int) and not isinstance(obj, bool) and type(obj) is not int:
                obj = int(obj)
            return obj
        if isinstance(obj, (bytes, bytearray)):
            return {"@": "bytes", "hex": bytes(obj).hex()}
        if id(obj) in stack:
            raise ValueError(f"save: the checkpoint contains a reference cycle at {path!r}")
        stack = (*stack, id(obj))
        if isinstance(obj, Mapping):
            items = []
            for k, v in obj.items():
                items.append([self.encode_key(k, path), self.encode(v, _join(path, k), stack)])
            return {"@": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
        if isinstance(obj, list):
            return [self.encode(v, _join(path, i), stack) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            items = [self.encode(v, _join(path, i), stack) for i, v in enumerate(obj)]
            return {"@": "tuple", "items": items}
        raise TypeError(
            f"save: cannot store {type(obj).__qualname__} at {path or '<root>'!r}; checkpoints "
            "may hold arrays, dicts, lists, tuples, str, bytes, int, float, bool and None"
        )

    def encode_key(self, k: Any, path: str) -> Any:
        if k is None or isinstance(k, (bool, int, float, str)):
            return self.encode(k, path)
        if isinstance(k, tuple):
            return {"@": "tuple", "items": [self.encode_key(x, path) for x in k]}
        raise TypeError(f"save: unsupported dict key {k!r} ({type(k).__qualname__}) at {path!r}")


def _is_flat_state_dict(obj: Any) -> bool:
    if not isinstance(obj, Mapping):
        return False
    return all(isinstance(k, str) and _is_arraylike(_unwrap(v)) for k, v in obj.items())


def _safetensors_header(tensors: Mapping[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, a in tensors.items():
        code = _ST_CODES.get(a.dtype.newbyteorder("=") if a.dtype.byteorder == ">" else a.dtype)
        if code is None:
            raise TypeError(
                f"save: tensor {name!r} has dtype {a.dtype}, which safetensors cannot store "
                f"(supported: {', '.join(str(d) for d in _ST_DTYPES.values())})"
            )
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, 0]}
        offset += a.size * a.dtype.itemsize
        header[name]["data_offsets"][1] = offset
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw


def _little_endian_bytes(a: np.ndarray) -> np.ndarray:
    """``a`` as a contiguous little-endian uint8 buffer."""
    a = np.ascontiguousarray(a.reshape(-1))
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.view(np.uint8)


def _write_safetensors(f: BinaryIO, header: bytes, tensors: Mapping[str, np.ndarray]) -> None:
    """Write a safetensors file body (header, then each tensor's bytes in order) to ``f``."""
    f.write(header)
    for a in tensors.values():
        if a.size:
            f.write(memoryview(_little_endian_bytes(a)))


def save(obj: Any, path: PathLike) -> None:
    """Save a state_dict or a nested checkpoint to ``path`` as a safetensors file.

    Args:
        obj: a state_dict (``{name: array}``; arrays may be ``jax.Array``, ``numpy.ndarray``
            or jaxmod boxes such as ``Parameter``), or a nested structure of dicts (any
            str/int/float/bool/None/tuple keys, e.g. an optimizer's int parameter ids),
            lists and tuples holding arrays, ``int``, ``float``, ``bool``, ``None``, ``str``
            and ``bytes``, e.g. ``{"model": sd, "optim": opt_sd, "epoch": 3}``.
        path: the file to write. It is replaced atomically: the data goes to a temporary file
            in the same directory, is flushed and fsynced, then ``os.replace``-d onto
            ``path``, so a crash mid-save never leaves a truncated file under ``path``.

    Every array is stored as one tensor, bit-exact, with its dtype (bool, (u)int8-64,
    float16, bfloat16, float32, float64, float8). For a flat state_dict the tensor names are
    exactly its keys, so ``safetensors.torch.load_file(path)`` returns the same names; in a
    nested checkpoint a tensor is named by its dotted path (``"model.fc.weight"``,
    ``"optim.state.0.exp_avg"``). The structure around the arrays is a JSON skeleton kept in
    the file's ``__metadata__["jaxmod"]``, which :func:`load` uses to rebuild ``obj``.
    """
    flat = _Flattener()
    if _is_flat_state_dict(obj):
        items = []
        for k, v in obj.items():
            items.append([k, flat.tensor(k, _unwrap(v))])
        kind = "odict" if isinstance(obj, OrderedDict) else "dict"
        skeleton: Any = {"@": kind, "items": items}
    else:
        skeleton = flat.encode(obj, "")
    meta = json.dumps({"version": _SKELETON_VERSION, "root": skeleton}, separators=(",", ":"))
    header = _safetensors_header(flat.tensors, {"jaxmod": meta})

    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(
        directory, f".{os.path.basename(target)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    # 0o666 through O_CREAT lets the umask decide permissions, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with open(fd, "wb") as f:
            _write_safetensors(f, header, flat.tensors)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --------------------------------------------------------------------------------------
# load: safetensors
# --------------------------------------------------------------------------------------

_MAX_HEADER = 100_000_000


def _read_exact(f: IO[bytes], n: int, where: str, what: str) -> bytearray:
    buf = bytearray(n)
    got = f.readinto(buf) if n else 0
    if got != n:
        raise CheckpointError(
            f"{where}: file is truncated (expected {n} bytes of {what}, got {got})"
        )
    return buf


def _load_safetensors(f: IO[bytes], where: str, size: int) -> Any:
    f.seek(0)
    (n,) = struct.unpack("<Q", _read_exact(f, 8, where, "safetensors header length"))
    if n > _MAX_HEADER or 8 + n > size:
        raise CheckpointError(
            f"{where}: corrupt safetensors header: declared header length {n} bytes but the "
            f"file has {size} bytes"
        )
    try:
        header = json.loads(bytes(_read_exact(f, n, where, "safetensors header")))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{where}: corrupt safetensors header: invalid JSON ({e})") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: corrupt safetensors header: not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_start, data_len = 8 + n, size - 8 - n
    specs = []
    for name, spec in header.items():
        try:
            dtype = _ST_DTYPES[spec["dtype"]]
            shape = tuple(int(d) for d in spec["shape"])
            begin, end = (int(o) for o in spec["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(spec, dict) and spec.get("dtype") not in _ST_DTYPES:
                msg = f"unsupported dtype {spec.get('dtype')!r}"
            else:
                msg = f"malformed entry {spec!r}"
            raise CheckpointError(f"{where}: corrupt safetensors header: {name!r}: {msg}") from e
        if any(d < 0 for d in shape) or not 0 <= begin <= end:
            raise CheckpointError(f"{where}: corrupt safetensors header: bad entry {name!r}")
        if end - begin != math.prod(shape) * dtype.itemsize:
            raise CheckpointError(
                f"{where}: corrupt safetensors header: {name!r} has shape {list(shape)} "
                f"({dtype}) but spans {end - begin} bytes"
            )
        if end > data_len:
            raise CheckpointError(
                f"{where}: file is truncated: tensor {name!r} ends at byte {data_start + end} "
                f"but the file has {size} bytes"
            )
        specs.append((name, dtype, shape, begin, end))
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, shape, begin, end in sorted(specs, key=lambda s: s[3]):
        f.seek(data_start + begin)
        buf = _read_exact(f, end - begin, where, f"tensor {name!r}")
        a = np.frombuffer(buf, dtype=dtype)
        if sys.byteorder == "big":  # safetensors data is little-endian
            a = _byteswapped(a)
        arrays[name] = a.reshape(shape)
    arrays = {name: arrays[name] for name, *_ in specs}  # header order

    meta = metadata.get("jaxmod") if isinstance(metadata, dict) else None
    if meta is None:
        return arrays
    try:
        skel = json.loads(meta)
        if not isinstance(skel, dict) or skel.get("version") != _SKELETON_VERSION:
            raise ValueError(f"unknown skeleton version {skel.get('version')!r}")
        return _decode(skel["root"], arrays)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(
            f"{where}: corrupt jaxmod metadata in safetensors header ({e})"
        ) from e


def _decode(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    tag = node["@"]
    if tag == "tensor":
        a = arrays[node["name"]]
        return a[()] if node.get("scalar") else a
    if tag in ("dict", "odict"):
        cls = OrderedDict if tag == "odict" else dict
        return cls((_decode(k, arrays), _decode(v, arrays)) for k, v in node["items"])
    if tag == "tuple":
        return tuple(_decode(v, arrays) for v in node["items"])
    if tag == "bytes":
        return bytes.fromhex(node["hex"])
    raise ValueError(f"unknown skeleton node {tag!r}")


# --------------------------------------------------------------------------------------
# load: torch pickles, restricted
# --------------------------------------------------------------------------------------

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


class _NoState:
    """Refuses pickle BUILD (``__setstate__``) on jaxmod's stand-in objects."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError(f"pickle tried to set state on {type(self).__name__}")


class _StorageType(_NoState):
    """Stand-in for ``torch.FloatStorage`` & co.: only carries the element dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name = name
        self.dtype = dtype


class _TorchDtype(_NoState):
    """Stand-in for ``torch.float32`` & co."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name = name
        self.dtype = dtype


class _Storage(_NoState):
    """One storage record: raw bytes (filled in when read), element dtype and byte order."""

    __slots__ = ("key", "dtype", "numel", "data", "big_endian", "base", "elem_offset", "_cache")

    def __init__(self, key: str, dtype: np.dtype, numel: int) -> None:
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.data: bytes | bytearray | None = None
        self.big_endian = False
        self.base: _Storage | None = None  # legacy storage views
        self.elem_offset = 0
        self._cache: dict[np.dtype, np.ndarray] = {}

    def elements(self, dtype: np.dtype, where: str) -> np.ndarray:
        if self.base is not None:
            return self.base.elements(dtype, where)[self.elem_offset :]
        if dtype in self._cache:
            return self._cache[dtype]
        if self.data is None:
            raise CheckpointError(f"{where}: storage {self.key!r} has no data in the file")
        if len(self.data) % dtype.itemsize:
            raise CheckpointError(
                f"{where}: storage {self.key!r} has {len(self.data)} bytes, not a multiple "
                f"of the {dtype} element size"
            )
        a = np.frombuffer(self.data, dtype=dtype)
        a = _byteswapped(a) if self.big_endian != (sys.byteorder == "big") else a
        self._cache[dtype] = a
        return a


class _LazyTensor(_NoState):
    """A tensor record whose storage bytes may not have been read yet (legacy format)."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype", "metadata")

    def __init__(self, storage: _Storage, offset: int, size: Any, stride: Any, dtype: Any):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride
        self.dtype = dtype
        self.metadata: Any = None  # torch's lazy conj/neg bits: {"conj": True, "neg": True}

    def materialize(self, where: str) -> np.ndarray:
        st = self.storage
        if not isinstance(st, _Storage):
            raise CheckpointError(f"{where}: tensor record without a storage ({type(st)})")
        dtype = self.dtype.dtype if isinstance(self.dtype, _TorchDtype) else st.dtype
        try:
            size = tuple(_as_int(d) for d in self.size)
            stride = tuple(_as_int(s) for s in self.stride)
            offset = _as_int(self.offset)
        except TypeError as e:
            raise CheckpointError(f"{where}: malformed tensor record ({e})") from e
        if len(size) != len(stride) or any(d < 0 for d in size) or any(s < 0 for s in stride):
            raise CheckpointError(f"{where}: malformed tensor record: size {size}, stride {stride}")
        if offset < 0:
            raise CheckpointError(f"{where}: malformed tensor record: offset {offset}")
        if math.prod(size) == 0:
            return np.zeros(size, dtype=dtype)
        elems = st.elements(dtype, where)
        last = offset + sum((d - 1) * s for d, s in zip(size, stride))
        if last >= elems.size:
            raise CheckpointError(
                f"{where}: tensor of size {list(size)} with stride {list(stride)} at offset "
                f"{offset} reads past the end of its storage ({elems.size} elements)"
            )
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


def _as_int(x: Any) -> int:
    """``x`` as an int; refuses bools, floats and other objects from a pickle."""
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"expected an int, got {type(x).__name__}")
    return int(x)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _LazyTensor:
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"tensor record without a storage ({type(storage).__name__})")
    return _LazyTensor(storage, storage_offset, size, stride, None)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> _LazyTensor:
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
) -> _LazyTensor:
    if not isinstance(dtype, _TorchDtype):
        raise CheckpointError(f"tensor record with dtype {dtype!r}")
    t = _rebuild_tensor(storage, storage_offset, size, stride)
    t.dtype, t.metadata = dtype, metadata
    return t


def _rebuild_parameter(data: Any, requires_grad: Any = True, backward_hooks: Any = None) -> Any:
    if not isinstance(data, _LazyTensor):
        raise CheckpointError(f"Parameter record wrapping {type(data).__name__}")
    return data


def _rebuild_parameter_with_state(
    data: Any, requires_grad: Any, backward_hooks: Any, state: Any
) -> Any:
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _torch_size(dims: Iterable[Any] = ()) -> tuple:
    return tuple(_as_int(d) for d in dims)


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1").
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise CheckpointError(f"_codecs.encode with {type(obj).__name__}, {encoding!r}")
    return obj.encode(encoding, errors if errors in ("strict",) else "strict")


def _safe_globals() -> dict[tuple[str, str], Any]:
    g: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("collections", "OrderedDict"): OrderedDict,
        ("torch", "Size"): _torch_size,
        ("_codecs", "encode"): _codecs_encode,
    }
    for obj in (set, frozenset, slice, complex):
        g[("builtins", obj.__name__)] = obj
    for name, dt in _TORCH_STORAGE_DTYPES.items():
        g[("torch", name)] = _StorageType(name, dt)
    g[("torch.storage", "UntypedStorage")] = g[("torch", "UntypedStorage")]
    for name, dt in _TORCH_DTYPES.items():
        g[("torch", name)] = _TorchDtype(name, dt)
    return g


_SAFE_GLOBALS = _safe_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals, to jaxmod's own functions."""

    def __init__(self, file: IO[bytes], where: str, storage_loader: Callable | None) -> None:
        super().__init__(file, encoding="utf-8")
        self.where = where
        self.storage_loader = storage_loader
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles (torch's default) use Python 2 names such as __builtin__.set.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            return _SAFE_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeCheckpointError(self.where, f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        if (
            not isinstance(pid, tuple)
            or len(pid) not in (5, 6)
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
            or not isinstance(pid[2], str)
        ):
            raise CheckpointError(f"{self.where}: unexpected persistent id {pid!r:.200}")
        if self.storage_loader is None:
            raise CheckpointError(f"{self.where}: storage record in a plain pickle")
        stype, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        st = self.storages.get(key)
        if st is None:
            st = _Storage(key, stype.dtype, _as_int(numel))
            self.storages[key] = st
            self.storage_loader(st)
        if view is not None:  # legacy (torch < 0.4) storage views
            view_key, offset, _view_size = view
            v = self.storages.get(view_key)
            if v is None:
                v = _Storage(view_key, stype.dtype, 0)
                v.base, v.elem_offset = st, _as_int(offset)
                self.storages[view_key] = v
            return v
        return st


def _unpickle(up: _RestrictedUnpickler) -> Any:
    try:
        return up.load()
    except (UnsafeCheckpointError, CheckpointError):
        raise
    except Exception as e:
        raise CheckpointError(
            f"{up.where}: cannot read the checkpoint's pickle "
            f"(truncated or corrupt file?): {type(e).__name__}: {e}"
        ) from e


def _resolve_lazy(obj: Any, where: str) -> Any:
    """Replace every tensor record in ``obj`` with a numpy array, keeping container types."""
    done: dict[int, np.ndarray] = {}

    def leaf(_path: str, x: Any) -> Any:
        if id(x) not in done:
            done[id(x)] = x.materialize(where)
        return done[id(x)]

    return _map_leaves(obj, leaf, lambda x: isinstance(x, _LazyTensor), where)


def _map_leaves(
    obj: Any, fn: Callable[[str, Any], Any], is_leaf: Callable[[Any], bool], where: str
) -> Any:
    """Apply ``fn(dotted_path, leaf)`` to leaves; dicts and lists are updated in place."""
    seen: set[int] = set()

    def walk(x: Any, path: str) -> Any:
        if is_leaf(x):
            return fn(path, x)
        if isinstance(x, dict):
            if id(x) not in seen:
                seen.add(id(x))
                for k, v in list(x.items()):
                    x[k] = walk(v, _join(path, k))
            return x
        if isinstance(x, list):
            if id(x) not in seen:
                seen.add(id(x))
                x[:] = [walk(v, _join(path, i)) for i, v in enumerate(x)]
            return x
        if isinstance(x, tuple):
            return type(x)(walk(v, _join(path, i)) for i, v in enumerate(x))
        if isinstance(x, (set, frozenset)) and any(is_leaf(v) for v in x):
            raise CheckpointError(f"{where}: tensors inside a set are not supported")
        return x

    return walk(obj, "")


def _load_torch_zip(f: IO[bytes], where: str) -> Any:
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{where}: truncated or corrupt zip archive ({e})") from e
    with zf:
        names = zf.namelist()
        pkls = [n for n in names if re.fullmatch(r"[^/]+/data\.pkl", n)]
        if not pkls:
            raise CheckpointError(
                f"{where}: zip archive is not a torch.save checkpoint (no <archive>/data.pkl)"
            )
        prefix = pkls[0][: -len("/data.pkl")]
        if f"{prefix}/constants.pkl" in names and f"{prefix}/code/" in "".join(names):
            raise CheckpointError(
                f"{where}: this is a TorchScript archive (torch.jit.save), not a torch.save "
                "checkpoint; save its state_dict() with torch.save instead"
            )

        def read(name: str) -> bytes:
            try:
                return zf.read(name)
            except KeyError:
                raise CheckpointError(f"{where}: archive has no record {name!r}") from None
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise CheckpointError(f"{where}: cannot read {name!r}: {e}") from e

        big = False
        if f"{prefix}/byteorder" in names:
            order = read(f"{prefix}/byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise CheckpointError(f"{where}: unknown byteorder record {order!r}")
            big = order == "big"

        def load_storage(st: _Storage) -> None:
            st.data = read(f"{prefix}/data/{st.key}")
            st.big_endian = big

        up = _RestrictedUnpickler(io.BytesIO(read(f"{prefix}/data.pkl")), where, load_storage)
        obj = _unpickle(up)
        return _resolve_lazy(obj, where)


def _load_torch_pickle(f: IO[bytes], where: str, size: int) -> Any:
    f.seek(0)
    magic = _unpickle(_RestrictedUnpickler(f, where, None))
    if magic != _TORCH_MAGIC:
        raise CheckpointError(
            f"{where}: a pickle file but not a torch.save checkpoint (no torch magic number)"
        )
    protocol = _unpickle(_RestrictedUnpickler(f, where, None))
    if protocol != _TORCH_LEGACY_PROTOCOL:
        raise CheckpointError(f"{where}: unsupported legacy torch protocol {protocol!r}")
    sys_info = _unpickle(_RestrictedUnpickler(f, where, None))
    big = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
    up = _RestrictedUnpickler(f, where, lambda st: None)
    obj = _unpickle(up)
    keys = _unpickle(_RestrictedUnpickler(f, where, None))
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{where}: malformed storage key list")
    for key in keys:
        st = up.storages.get(key)
        if st is None or st.base is not None:
            raise CheckpointError(f"{where}: storage key {key!r} not referenced by any tensor")
        (numel,) = struct.unpack(
            ">q" if big else "<q", _read_exact(f, 8, where, f"storage {key!r} size")
        )
        if numel < 0:
            raise CheckpointError(f"{where}: storage {key!r} has corrupt size {numel}")
        if numel * st.dtype.itemsize > size - f.tell():  # check before allocating
            raise CheckpointError(
                f"{where}: file is truncated (storage {key!r} needs "
                f"{numel * st.dtype.itemsize} bytes, {size - f.tell()} left)"
            )
        st.data = _read_exact(f, numel * st.dtype.itemsize, where, f"storage {key!r}")
        st.big_endian = big
    return _resolve_lazy(obj, where)


# --------------------------------------------------------------------------------------
# load: entry point and placement
# --------------------------------------------------------------------------------------


def _placement(map_location: Any, sharding: Any) -> Callable[[str, np.ndarray], Any] | None:
    from jax.sharding import Sharding

    device: Any = None
    if map_location is None:
        pass
    elif isinstance(map_location, (jax.Device, Sharding)):
        device = map_location
    elif isinstance(map_location, str) or type(map_location).__name__ == "device":
        spec = str(map_location)
        base, _, index = spec.partition(":")
        if base != "cpu":
            platform = {"cuda": "gpu", "gpu": "gpu", "rocm": "gpu", "tpu": "tpu"}.get(base)
            if platform is None:
                raise ValueError(
                    f"map_location={spec!r}: expected 'cpu', 'cuda[:N]', 'gpu[:N]', 'tpu[:N]'"
                )
            try:
                devices = jax.devices(platform)
            except RuntimeError as e:
                raise ValueError(f"map_location={spec!r}: JAX has no {platform} device") from e
            i = int(index) if index else 0
            if not 0 <= i < len(devices):
                raise ValueError(f"map_location={spec!r}: only {len(devices)} device(s)")
            device = devices[i]
    else:
        raise TypeError(
            "map_location must be None, 'cpu', 'cuda[:N]', 'gpu[:N]', a jax.Device or a "
            f"jax.sharding.Sharding, not {type(map_location).__name__}"
        )
    if sharding is None and device is None:
        return None
    if sharding is not None and not isinstance(sharding, (Sharding, Mapping)):
        raise TypeError(f"sharding must be a jax.sharding.Sharding or a dict, not {sharding!r}")

    def place(path: str, a: np.ndarray) -> Any:
        target = device
        if isinstance(sharding, Mapping):
            target = sharding.get(path, device)
        elif sharding is not None:
            target = sharding
        return a if target is None else jax.device_put(a, target)

    return place


def load(path: PathLike | BinaryIO, map_location: Any = None, *, sharding: Any = None) -> Any:
    """Load a checkpoint written by :func:`save`, any safetensors file, or a ``torch.save`` file.

    The format is detected from the file's first bytes: safetensors (8-byte header length then
    ``{``), the torch zip format (``PK\\x03\\x04``, torch >= 1.6) or the legacy torch pickle
    format (``_use_new_zipfile_serialization=False``). Torch files are read without importing
    torch, by an unpickler that only rebuilds tensors, Parameters, ``OrderedDict``, ``set``,
    ``frozenset``, ``slice``, ``complex`` and ``bytes``; any other global raises
    :class:`UnsafeCheckpointError` before it is called. Strided views, storages shared by
    several tensors and big-endian files are handled.

    Args:
        path: a file path, or a binary file object opened for reading.
        map_location: where arrays go. ``None`` or ``"cpu"``: numpy arrays (the default, so
            float64/int64 keep their dtype although JAX has x64 off). A ``jax.Device``,
            ``"cuda[:N]"``/``"gpu[:N]"``/``"tpu[:N]"`` or a ``Sharding``: JAX arrays placed
            there with ``jax.device_put`` (which converts 64-bit dtypes to 32-bit unless x64
            is on).
        sharding: a ``jax.sharding.Sharding`` for every array, or a dict from tensor name (the
            state_dict key; a dotted path such as ``"model.fc.weight"`` in nested checkpoints)
            to ``Sharding``; arrays missing from the dict follow ``map_location``. Arrays are
            placed with ``jax.device_put(numpy_array, sharding)``, which transfers to each
            device only the shard it holds.

    Returns:
        The saved structure with numpy (or, when placed, JAX) arrays. A safetensors file
        without jaxmod metadata gives a flat ``dict[str, np.ndarray]``; a torch file gives
        what was pickled, ``OrderedDict`` kept, tensors and Parameters as arrays.

    Raises:
        CheckpointError: the file is empty, truncated, corrupt or in an unknown format.
        UnsafeCheckpointError: a torch pickle references a global outside the allow-list.
    """
    place = _placement(map_location, sharding)
    if hasattr(path, "read") and not isinstance(path, (str, os.PathLike)):
        where = _describe(path)
        obj = _load_from(path, where)
    else:
        where = os.fspath(path)
        try:
            f = open(where, "rb")
        except IsADirectoryError as e:
            raise CheckpointError(
                f"{where}: is a directory; orbax checkpoints are restored with "
                "jaxmod.serialization.checkpoint_manager"
            ) from e
        with f:
            obj = _load_from(f, where)
    if place is None:
        return obj
    return _map_leaves(obj, place, lambda x: isinstance(x, np.ndarray), where)


def _load_from(f: IO[bytes], where: str) -> Any:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    head = f.read(16)
    if not head:
        raise CheckpointError(f"{where}: file is empty")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        f.seek(0)
        return _load_torch_zip(f, where)
    if len(head) >= 9 and head[8:9] == b"{":
        return _load_safetensors(f, where, size)
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return _load_torch_pickle(f, where, size)
    raise CheckpointError(
        f"{where}: unrecognized checkpoint format (first bytes {head[:8]!r}); expected a "
        "safetensors file, a torch.save zip archive or a legacy torch.save pickle"
    )


# --------------------------------------------------------------------------------------
# porting helpers
# --------------------------------------------------------------------------------------


def convert_state_dict(
    sd: Mapping[str, Any],
    rename: Mapping[str, str] | None = None,
    transpose: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Rename keys and transpose 2-D weights of a state_dict, e.g. to port foreign weights.

    Args:
        sd: ``{name: array}``; values are numpy/JAX arrays or jaxmod boxes.
        rename: ``{pattern: replacement}``. Each pattern is a regular expression applied to
            every key with ``re.sub(pattern, replacement, key)``, in the dict's order, each on
            the result of the previous one. Anchor prefixes (``r"^encoder\\."``) and escape dots
            to avoid matching inside names; replacements may use groups (``r"\\1"``).
        transpose: key names or regular expressions; an array is transposed when a pattern
            equals, or ``re.fullmatch``-es, its original key or its renamed key (useful for
            Keras/Flax ``Dense`` kernels, which are ``(in, out)`` where torch's ``Linear``
            weight is ``(out, in)``). Matched arrays must be 2-D.

    Returns:
        A new dict in the same key order. Values not transposed are the same objects.

    Raises:
        ValueError: two keys are renamed to the same name, or a matched array is not 2-D.
        KeyError: a ``transpose`` pattern matches no key (likely a typo).
    """
    rules = [(re.compile(p), r) for p, r in (rename or {}).items()]
    patterns = [(p, re.compile(p)) for p in (transpose or ())]
    used = [False] * len(patterns)
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in sd.items():
        new = key
        for rx, repl in rules:
            new = rx.sub(repl, new)
        if new in out:
            raise ValueError(
                f"convert_state_dict: {key!r} and {origin[new]!r} are both renamed to {new!r}"
            )
        origin[new] = key
        hit = False
        for i, (p, rx) in enumerate(patterns):
            if p in (key, new) or rx.fullmatch(key) or rx.fullmatch(new):
                used[i] = hit = True
        if hit:
            a = _unwrap(value)
            if np.ndim(a) != 2:
                raise ValueError(
                    f"convert_state_dict: cannot transpose {key!r}: shape {np.shape(a)} is not 2-D"
                )
            value = np.ascontiguousarray(a.T) if isinstance(a, np.ndarray) else a.T
        out[new] = value
    missing = [p for (p, _), u in zip(patterns, used) if not u]
    if missing:
        raise KeyError(f"convert_state_dict: transpose patterns matched no key: {missing}")
    return out


def checkpoint_manager(
    directory: PathLike, max_to_keep: int | None = 3, async_save: bool = True
) -> Any:
    """An ``orbax.checkpoint.CheckpointManager`` for pytrees of arrays, e.g. state_dicts.

    Use orbax for large or sharded models: each host writes its own shards, restores can
    target a sharding, and saves can run in the background. Save with
    ``mngr.save(step, args=ocp.args.StandardSave(state))``; with ``async_save=True`` the call
    returns once arrays are copied off the device, and ``mngr.wait_until_finished()`` blocks
    until the checkpoint is durable (call it before exiting or reading the files). Restore
    with ``mngr.restore(step)`` or ``mngr.restore(step, args=ocp.args.StandardRestore(like))``
    where ``like`` is a pytree of arrays or ``jax.ShapeDtypeStruct`` with shardings.

    Args:
        directory: where step subdirectories go (created if missing; made absolute).
        max_to_keep: how many recent steps to keep (``None`` keeps all).
        async_save: save in a background thread.

    Raises:
        ImportError: ``orbax-checkpoint`` is not installed (it is an optional dependency).
    """
    try:
        import orbax.checkpoint as ocp
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "jaxmod.serialization.checkpoint_manager needs orbax: pip install orbax-checkpoint"
        ) from e
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True
    )
    return ocp.CheckpointManager(
        os.path.abspath(os.fspath(directory)),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=options,
    )
