"""safetensors files, on the ``safetensors`` library: atomic save, lazy mmap'd load, skeleton.

A flat state_dict is stored as one tensor per key, named by the key. Anything else (an
optimizer's int-keyed state, lists, tuples, scalars, strings, ``None``, PRNG keys) becomes
tensors named by their dotted paths plus a JSON *skeleton* of the structure, kept in the
file's ``__metadata__["jaxmod"]``. The skeleton's nodes are JSON strings, numbers, bools and
null standing for themselves, JSON lists standing for lists, and objects tagged by ``"@"``:
``tensor`` (``name``, optional ``scalar``), ``prng_key`` (``impl``, ``name`` of its key
data), ``dict``/``odict`` (``items``: ``[[key, value], ...]``, keys encoded like values),
``tuple`` (``items``) and ``bytes`` (``hex``). The torch writer reuses the same skeleton.

Reading goes through ``safetensors.safe_open`` (the header is parsed and validated by the
library, tensors are copied out of a memory map one at a time), so a file is refused exactly
when the library refuses it: overlapping or out-of-order offsets, holes, trailing bytes,
non-integer shapes, a header longer than the file.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from typing import IO, Any

import jax
import numpy as np
import safetensors
import safetensors.numpy

from jaxmod.io._common import (
    ST_CODES,
    ST_DTYPES,
    CheckpointError,
    PathLike,
    atomic_write,
    is_arraylike,
    is_prng_key,
    join,
    little_endian,
    to_numpy,
    unwrap,
    wrap_key,
)

SKELETON_VERSION = 1
_META_KEY = "jaxmod"
_VALUES = "arrays, dicts, lists, tuples, str, bytes, int, float, bool and None"


# --------------------------------------------------------------------------------------
# the skeleton
# --------------------------------------------------------------------------------------


class Flattener:
    """Turns a checkpoint into ``{tensor_name: ndarray}`` plus a JSON-able skeleton.

    Args:
        dtypes: the numpy dtypes the target format stores.
        format_name: the format, for error messages.
        share: one tensor for an array object reached twice (``torch.save`` keeps ties);
            otherwise every occurrence gets its own tensor (a flat safetensors file needs a
            tensor under every key).
    """

    def __init__(self, dtypes: Collection[np.dtype], format_name: str, share: bool = False):
        self.tensors: dict[str, np.ndarray] = {}
        self.dtypes = dtypes
        self.format_name = format_name
        self._shared: dict[int, dict] | None = {} if share else None
        self._alive: list[Any] = []  # keeps shared objects alive so their ids stay unique

    def root(self, obj: Any) -> Any:
        """The skeleton of ``obj``; a flat state_dict's tensors are named by its keys."""
        try:
            if _is_flat_state_dict(obj):
                items = [[k, self.tensor(k, unwrap(v))] for k, v in obj.items()]
                return {"@": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
            return self.encode(obj, "")
        except RecursionError:
            raise ValueError(
                "save: the checkpoint is nested deeper than Python's recursion limit"
            ) from None

    def tensor(self, path: str, x: Any) -> dict:
        if self._shared is not None and id(x) in self._shared:
            return self._shared[id(x)]
        if is_prng_key(x):
            impl = str(jax.random.key_impl(x))
            node = {"@": "prng_key", "impl": impl, "name": self._add(path, jax.random.key_data(x))}
        else:
            node = {"@": "tensor", "name": self._add(path, x)}
            if isinstance(x, np.generic):
                node["scalar"] = True
        if self._shared is not None:
            self._shared[id(x)] = node
            self._alive.append(x)
        return node

    def _add(self, path: str, x: Any) -> str:
        where = path or "<root>"
        try:
            a = to_numpy(x)
        except Exception as e:  # a tracer, a deleted (donated) array, an exotic dtype
            raise TypeError(
                f"save: cannot store the array at {where!r}: {type(e).__name__}: {e}"
            ) from e
        native = a.dtype.newbyteorder("=") if a.dtype.byteorder == ">" else a.dtype
        if native not in self.dtypes:
            supported = ", ".join(sorted({str(d) for d in self.dtypes}))
            raise TypeError(
                f"save: the array at {where!r} has dtype {a.dtype}, which {self.format_name} "
                f"cannot store (supported: {supported})"
            )
        name, n = path, 1
        while name in self.tensors:
            n += 1
            name = f"{path}#{n}"
        self.tensors[name] = a
        return name

    def encode(self, obj: Any, path: str, stack: tuple[int, ...] = ()) -> Any:
        obj = unwrap(obj)
        if is_arraylike(obj):
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
                items.append([self.encode_key(k, path), self.encode(v, join(path, k), stack)])
            return {"@": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
        if isinstance(obj, list):
            return [self.encode(v, join(path, i), stack) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            items = [self.encode(v, join(path, i), stack) for i, v in enumerate(obj)]
            return {"@": "tuple", "items": items}
        hint = ""
        if type(obj).__name__ == "Generator" and hasattr(obj, "get_state"):
            hint = " (save its state: generator.get_state(), a typed PRNG key array)"
        elif hasattr(obj, "state_dict") and callable(obj.state_dict):
            hint = (
                " (torch.save(model) pickles the whole object, which jaxmod does not do: "
                "save its state_dict() and rebuild the object in code, then "
                "load_state_dict(jaxmod.load(path)))"
            )
        raise TypeError(
            f"save: cannot store {type(obj).__qualname__} at {path or '<root>'!r}{hint}; "
            f"checkpoints may hold {_VALUES}"
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
    return all(isinstance(k, str) and is_arraylike(unwrap(v)) for k, v in obj.items())


def decode(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Rebuild the saved structure from a skeleton node and the file's tensors."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [decode(v, arrays) for v in node]
    tag = node["@"]
    if tag == "tensor":
        a = arrays[node["name"]]
        return a[()] if node.get("scalar") else a
    if tag == "prng_key":
        return wrap_key(node["impl"], arrays[node["name"]])
    if tag in ("dict", "odict"):
        cls = OrderedDict if tag == "odict" else dict
        return cls((decode(k, arrays), decode(v, arrays)) for k, v in node["items"])
    if tag == "tuple":
        return tuple(decode(v, arrays) for v in node["items"])
    if tag == "bytes":
        return bytes.fromhex(node["hex"])
    raise ValueError(f"unknown skeleton node {tag!r}")


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------


def save_file(obj: Any, path: PathLike) -> None:
    """Write ``obj`` (a state_dict or a nested checkpoint) as one safetensors file, atomically.

    Everything is converted and checked before the file is created, so an unsupported value
    raises (naming its entry) without touching ``path``.
    """
    flat = Flattener(ST_CODES, "safetensors")
    skeleton = flat.root(obj)
    meta = json.dumps({"version": SKELETON_VERSION, "root": skeleton}, separators=(",", ":"))
    metadata = {"format": "pt", _META_KEY: meta}  # "pt": torch layout, as HF loaders expect
    atomic_write(path, lambda tmp: _write_safetensors(tmp, flat.tensors, metadata))


def _write_safetensors(path: str, tensors: Mapping[str, np.ndarray], metadata: dict) -> None:
    """Write a safetensors file at ``path`` with the library (arrays are not copied)."""
    safetensors.numpy.save_file(
        {k: little_endian(a) for k, a in tensors.items()}, path, metadata=metadata
    )


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def read_tensors(
    path: str, where: str, names: Iterable[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({name: array}, metadata)`` of a safetensors file, read lazily through a memory map.

    Only ``names`` are read when given (each must be in the file); every other tensor's
    bytes stay on disk.
    """
    try:
        with safetensors.safe_open(path, framework="np") as f:
            metadata = f.metadata() or {}
            present = f.offset_keys()
            wanted = present if names is None else list(names)
            missing = sorted(set(wanted) - set(present))
            if missing:
                raise CheckpointError(f"{where}: has no tensor {missing[0]!r}")
            arrays = {}
            for name in wanted:
                code = f.get_slice(name).get_dtype()
                if code not in ST_DTYPES:
                    raise CheckpointError(f"{where}: tensor {name!r} has unsupported dtype {code}")
                if code.startswith("F8"):  # numpy has no float8: read the validated bytes
                    arrays[name] = _read_raw(path, name, ST_DTYPES[code])
                else:
                    arrays[name] = f.get_tensor(name)
    except safetensors.SafetensorError as e:
        raise CheckpointError(f"{where}: not a valid safetensors file: {e}") from e
    return arrays, metadata


def _read_raw(path: str, name: str, dtype: np.dtype) -> np.ndarray:
    """One tensor's bytes, at the offsets the library has already validated."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        spec = json.loads(f.read(n))[name]
        begin, end = spec["data_offsets"]
        f.seek(8 + n + begin)
        a = np.frombuffer(bytearray(f.read(end - begin)), dtype=dtype)
    return a.reshape(spec["shape"])


def read_bytes(data: bytes, where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """:func:`read_tensors` for a file already in memory (a file object passed to load)."""
    try:
        entries = safetensors.deserialize(data)
    except safetensors.SafetensorError as e:
        raise CheckpointError(f"{where}: not a valid safetensors file: {e}") from e
    arrays = {}
    for name, spec in entries:
        dtype = ST_DTYPES.get(spec["dtype"])
        if dtype is None:
            raise CheckpointError(f"{where}: tensor {name!r} has unsupported dtype {spec['dtype']}")
        arrays[name] = np.frombuffer(spec["data"], dtype=dtype).reshape(spec["shape"])
    n = int.from_bytes(data[:8], "little")  # valid: the library just parsed it
    metadata = json.loads(bytes(data[8 : 8 + n])).get("__metadata__") or {}
    return arrays, metadata


def load_file(f: IO[bytes] | None, path: str | None, where: str) -> Any:
    """Load a safetensors file (by path, or from an open binary file) and rebuild its object."""
    if path is not None:
        arrays, metadata = read_tensors(os.fspath(path), where)
    else:
        assert f is not None
        f.seek(0)
        arrays, metadata = read_bytes(f.read(), where)
    meta = metadata.get(_META_KEY)
    if meta is None:
        return arrays
    try:
        skel = json.loads(meta)
        if not isinstance(skel, dict) or skel.get("version") != SKELETON_VERSION:
            raise ValueError(f"unknown skeleton version {_version_of(skel)}")
        return decode(skel["root"], arrays)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
        raise CheckpointError(
            f"{where}: corrupt jaxmod metadata in safetensors header ({type(e).__name__}: {e})"
        ) from e


def _version_of(skel: Any) -> str:
    return repr(skel.get("version")) if isinstance(skel, dict) else type(skel).__name__
