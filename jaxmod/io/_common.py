"""What every checkpoint format shares: errors, dtypes, values, atomic writes, placement.

Nothing here knows a file format. It imports only jax, numpy, ml_dtypes and the kernel's
device parser.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import reprlib
import secrets
import stat
import sys
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_dtypes
import numpy as np

from jaxmod._core.devices import resolve_device

PathLike = str | os.PathLike


class CheckpointError(ValueError):
    """A checkpoint file is malformed, truncated, hostile, or not in a format jaxmod reads."""

    __module__ = "jaxmod.io"  # as tracebacks should spell it


class UnsafeCheckpointError(pickle.UnpicklingError, CheckpointError):
    """A pickle in a checkpoint tried something outside jaxmod's allow-list.

    Raised before the refused object can run: a global outside the allow-list, an
    ``EXT1/2/4`` opcode (which looks globals up through the process's ``copyreg`` cache,
    bypassing the allow-list), or a write (pickle ``BUILD``/``SETITEM``) into an allow-listed
    object.

    Attributes:
        path: the file being loaded.
        global_name: the refused global, as ``"module.name"``, or what was refused.
    """

    __module__ = "jaxmod.io"

    def __init__(self, path: str, global_name: str, reason: str | None = None) -> None:
        self.path = path
        self.global_name = global_name
        self.reason = reason
        what = reason or f"refused to load global '{global_name}' from the checkpoint's pickle"
        super().__init__(
            f"{path}: {what}. jaxmod.load only reads tensor state_dicts (tensors, Parameters, "
            "dicts, lists, tuples, numbers, strings); unpickling any other object can execute "
            "arbitrary code. If you trust this file, convert it in a trusted environment with "
            "torch, e.g. safetensors.torch.save_file(torch.load(path, weights_only=True), "
            "'model.safetensors'), and load the .safetensors file instead."
        )

    def __reduce__(self) -> tuple:  # picklable (e.g. raised in a DataLoader worker)
        return (type(self), (self.path, self.global_name, self.reason))


# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------

# safetensors dtype codes jaxmod reads and writes.
ST_DTYPES: dict[str, np.dtype] = {
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
ST_CODES: dict[np.dtype, str] = {dt: code for code, dt in ST_DTYPES.items()}

# torch dtype names (``torch.<name>``) and the numpy dtype each stands for.
TORCH_DTYPES: dict[str, np.dtype] = {
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

# torch's typed storage classes (``torch.<name>``); torch >= 2.3 writes newer dtypes as
# ``torch.storage.UntypedStorage`` plus a dtype argument to ``_rebuild_tensor_v3``.
TORCH_STORAGES: dict[str, np.dtype] = {
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


def byteswapped(a: np.ndarray) -> np.ndarray:
    """A native-order copy of ``a`` whose elements were stored with the other byte order."""
    dt = a.dtype
    unit = dt.itemsize // 2 if dt.kind == "c" else dt.itemsize  # complex: swap each half
    if unit <= 1:
        return a.copy()
    return a.view(f"u{unit}").byteswap().view(dt)


def little_endian(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous array in little-endian byte order (no copy when it is one)."""
    a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


# --------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------

PRNG_MARKER = "__jax_prng_key__"  # how a typed key array travels in formats without one


def unwrap(x: Any) -> Any:
    """The array inside a jaxmod box (any object with ``_value``), else ``x``.

    ``jax.Array`` is checked first: JAX arrays have a ``_value`` attribute of their own (their
    cached numpy copy), which must not be mistaken for a box.
    """
    if isinstance(x, (jax.Array, np.ndarray)):
        return x
    return getattr(x, "_value", x)


def is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def is_arraylike(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic, jax.Array)) or is_torch_tensor(x)


def is_prng_key(x: Any) -> bool:
    """A typed JAX PRNG key array (``jax.random.key(0)``, ``Generator.get_state()``)."""
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_numpy(x: Any) -> np.ndarray:
    """``x`` (numpy, JAX, numpy scalar, torch tensor) as a numpy array, dtype unchanged."""
    if is_torch_tensor(x):
        # The caller already holds a torch tensor, so torch is imported; never import it here.
        torch = sys.modules["torch"]
        t = x.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return t.numpy()
    return np.asarray(x)


def wrap_key(impl: Any, data: np.ndarray) -> jax.Array:
    """A typed key array from its implementation name and ``uint32`` key data."""
    if not isinstance(impl, str):
        raise TypeError(f"PRNG implementation name must be a str, not {type(impl).__name__}")
    return jax.random.wrap_key_data(np.asarray(data), impl=impl)


def join(prefix: str, key: Any) -> str:
    return str(key) if not prefix else f"{prefix}.{key}"


def describe(path: Any) -> str:
    if hasattr(path, "read") and not isinstance(path, (str, os.PathLike)):
        return str(getattr(path, "name", None) or f"<{type(path).__name__}>")
    return os.fspath(path)


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_short.maxlevel = 3


def short_repr(x: Any) -> str:
    """A repr bounded in length, depth and time (hostile objects can be huge or shared)."""
    try:
        return _short.repr(x)
    except Exception:  # a repr that fails must not mask the error being reported
        return f"<{type(x).__name__}>"


def map_leaves(
    obj: Any, fn: Callable[[str, Any], Any], is_leaf: Callable[[Any], bool], where: str
) -> Any:
    """Apply ``fn(dotted_path, leaf)`` to leaves; dicts and lists are updated in place.

    Every container is visited once (results are memoised by identity), so a structure
    whose parts are shared many times over (a pickle can build ``2**n`` paths from ``n``
    tuples) is walked in linear time, and shared leaves map to one result.
    """
    done: dict[int, Any] = {}

    def walk(x: Any, path: str) -> Any:
        key = id(x)
        if key in done:
            return done[key]
        if is_leaf(x):
            out = done[key] = fn(path, x)
            return out
        if isinstance(x, dict):
            done[key] = x
            for k, v in list(x.items()):
                x[k] = walk(v, join(path, k))
        elif isinstance(x, list):
            done[key] = x
            x[:] = [walk(v, join(path, i)) for i, v in enumerate(x)]
        elif isinstance(x, tuple):
            done[key] = out = type(x)(walk(v, join(path, i)) for i, v in enumerate(x))
            return out
        elif isinstance(x, (set, frozenset)) and any(is_leaf(v) for v in x):
            raise CheckpointError(f"{where}: {path or '<root>'}: tensors inside a set")
        return x

    keep = obj  # ids stay unique while the tree is alive
    try:
        return walk(keep, "")
    except RecursionError:
        raise CheckpointError(
            f"{where}: the checkpoint is nested deeper than Python's recursion limit "
            f"({sys.getrecursionlimit()})"
        ) from None


# --------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------


def atomic_write(path: PathLike, write: Callable[[str], None]) -> None:
    """Run ``write(tmp_path)``, then make ``tmp_path`` durable and rename it onto ``path``.

    The temporary file lives in the target's directory (so the rename is atomic), is fsynced
    before the rename, and is removed if anything fails, so ``path`` holds either the old
    file or the complete new one. A symlink is written through (the file it points to is
    replaced, as ``torch.save`` writes through it), and the permissions of the file being
    replaced are kept (a ``0o600`` checkpoint stays ``0o600``); a new file gets the
    umask's, as ``open()`` would.
    """
    target = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(target)
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = os.path.join(
        directory, f".{os.path.basename(target)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    # O_EXCL: never write through a file or link someone else put at the temporary name.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    os.close(fd)
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        _fsync_path(tmp, os.O_RDONLY)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable (POSIX)
        _fsync_path(directory, os.O_RDONLY)


def _fsync_path(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------
# placement (map_location / sharding)
# --------------------------------------------------------------------------------------


def placement(map_location: Any, sharding: Any) -> Callable[[str, Any], Any] | None:
    """``place(path, array)`` putting loaded arrays where the caller asked, or ``None``."""
    from jax.sharding import Sharding

    device: Any = None
    if map_location is None or map_location == "numpy":
        pass
    elif isinstance(map_location, (jax.Device, Sharding)):
        device = map_location
    elif isinstance(map_location, str) or type(map_location).__name__ == "device":
        device = _parse_device(str(map_location))
    else:
        raise TypeError(
            "map_location must be None, 'cpu', 'numpy', 'cuda[:N]', 'gpu[:N]', a jax.Device, "
            "a jax.sharding.Sharding, a function (tensor, location) -> tensor or a dict "
            f"{{saved_location: target}}, not {type(map_location).__name__}"
        )
    if sharding is None and device is None:
        return None
    if sharding is not None and not isinstance(sharding, (Sharding, Mapping)):
        raise TypeError(f"sharding must be a jax.sharding.Sharding or a dict, not {sharding!r}")

    def place(path: str, a: Any) -> Any:
        target = device
        if isinstance(sharding, Mapping):
            target = sharding.get(path, device)
        elif sharding is not None:
            target = sharding
        return a if target is None else jax.device_put(a, target)

    return place


def _parse_device(spec: str) -> Any:
    """The device ``spec`` names (the kernel's one parser, shared with ``Module.to``);
    ``"cpu"`` is None: arrays stay numpy, as ``torch.load`` returns CPU tensors."""
    if spec.partition(":")[0] == "cpu":
        return None
    try:
        return resolve_device(spec, "map_location")
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"map_location={spec!r}: {e}") from e


def is_loaded_leaf(x: Any) -> bool:
    return isinstance(x, np.ndarray) or is_prng_key(x)
