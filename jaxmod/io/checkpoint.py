"""``save`` and ``load``: one entry point, the file format chosen honestly.

``save`` picks the format from the file name: ``.safetensors`` gets safetensors, and every
other name gets ``torch.save``'s zip format (what ``torch.save`` writes whatever the name),
so a ``.pt``/``.pth``/``.bin`` file is always one ``torch.load`` reads. Names of other
formats (``.npz``, ``.h5``, ``.json``, ...) are refused. ``load`` ignores the name and
reads the file's first bytes.
"""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
import zlib
from typing import IO, Any, BinaryIO

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _tb
from jaxmod._tensor import dtypes as _dt
from jaxmod.io import safetensors as _st
from jaxmod.io import sharded as _sharded
from jaxmod.io import torch_pickle as _tp
from jaxmod.io import torch_writer as _tw
from jaxmod.io._common import (
    CheckpointError,
    PathLike,
    UnsafeCheckpointError,
    atomic_write,
    describe,
    is_loaded_leaf,
    is_prng_key,
    map_leaves,
    placement,
)

_FOREIGN = {
    ".npz": "numpy's .npz",
    ".npy": "numpy's .npy",
    ".h5": "HDF5",
    ".hdf5": "HDF5",
    ".keras": "Keras",
    ".msgpack": "msgpack (Flax)",
    ".gguf": "GGUF",
    ".onnx": "ONNX",
    ".json": "JSON",
}
# What a hostile or broken file can make the parsers raise; load reports each as corrupt.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RuntimeError,  # RecursionError, zipfile's "encrypted" error
    ArithmeticError,  # OverflowError
    MemoryError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    EOFError,
)


def file_format(path: PathLike | IO[bytes]) -> str:
    """``"safetensors"`` or ``"torch"``: the format :func:`save` writes for ``path``.

    Raises:
        ValueError: the name's extension belongs to another format (``.npz``, ``.h5``, ...).
    """
    if hasattr(path, "write") and not isinstance(path, (str, os.PathLike)):
        return "torch"
    name = os.fspath(path).lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    ext = os.path.splitext(name)[1]
    if name.endswith(_sharded.INDEX_SUFFIX):
        raise ValueError(
            f"save: {os.fspath(path)!r} names a sharded safetensors index; write sharded "
            "checkpoints with jaxmod.io.save_sharded(state_dict, directory)"
        )
    if ext in _FOREIGN:
        raise ValueError(
            f"save: {os.fspath(path)!r} names a {_FOREIGN[ext]} file, a format jaxmod.save "
            "does not write; use '.safetensors' (safetensors) or '.pt'/'.pth'/'.bin' "
            "(torch.save's zip format, which torch.load reads)"
        )
    return "torch"


def save(obj: Any, path: PathLike | BinaryIO) -> None:
    """Save a state_dict or a nested checkpoint, in the format its file name says.

    * ``*.safetensors``: a safetensors file, written with the ``safetensors`` library.
      A flat state_dict's tensors are named by its keys (so ``safetensors.torch.load_file``
      and Hugging Face loaders see the same names); a nested checkpoint's by their dotted
      paths (``"optim.state.0.exp_avg"``), with the structure in the file's metadata.
    * any other name (``.pt``, ``.pth``, ``.bin``, ``.pth.tar``, no extension), or a binary
      file object: ``torch.save``'s zip format, readable by
      ``torch.load(path, weights_only=True)`` and by :func:`load`, without torch installed
      here. Arrays reached twice stay one tensor (``torch.load`` gives tied tensors).
    * names of other formats (``.npz``, ``.npy``, ``.h5``, ``.json``, ...): ``ValueError``.

    A file is replaced atomically: the data goes to a temporary file in the same
    directory, is fsynced, then renamed onto ``path``, so a crash mid-save never leaves a
    truncated file; the permissions of the file being replaced are kept, and a symlink is
    written through (as ``torch.save`` does).

    Args:
        obj: a state_dict (``{name: array}``; arrays may be ``jax.Array``, ``numpy.ndarray``
            or jaxmod boxes such as ``Parameter``), or a nested structure of dicts (keys:
            str/int/float/bool/None/tuple, e.g. an optimizer's int parameter ids), lists and
            tuples holding arrays, typed PRNG key arrays (``Generator.get_state()``),
            ``int``, ``float``, ``bool``, ``None``, ``str`` and ``bytes``, e.g.
            ``{"model": sd, "optim": opt_sd, "rng": gen.get_state(), "epoch": 3}``.
        path: the file to write, or a binary file object (written in torch's format).

    Every array is stored bit-exact with its dtype: bool, (u)int8-64, float16, bfloat16,
    float32, float64, float8 (and complex64/128 in the torch format). A typed PRNG key is
    stored as its ``uint32`` key data plus its implementation's name, and loads back as an
    equal typed key. A numpy scalar comes back as a numpy scalar from safetensors files and
    as a 0-d array from torch files (torch has no scalars).

    Raises:
        TypeError: a value cannot be stored (a function, a Generator object, a tracer, an
            unsupported dtype); the message names its entry, e.g. ``'optim.state.3.exp_avg'``.
            Nothing is written.
        ValueError: a reference cycle, or a file name of another format.
    """
    fmt = file_format(path)
    if fmt == "safetensors":
        _st.save_file(obj, os.fspath(path))  # type: ignore[arg-type]
        return
    prepared = _tw.Prepared(obj)  # everything is checked before a file is touched
    archive = _tw.archive_name(path)
    if hasattr(path, "write") and not isinstance(path, (str, os.PathLike)):
        prepared.write(path, archive)  # type: ignore[arg-type]
        return

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            prepared.write(f, archive)

    atomic_write(path, write)  # type: ignore[arg-type]


def load(
    path: PathLike | BinaryIO,
    map_location: Any = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    sharding: Any = None,
    **pickle_load_args: Any,
) -> Any:
    """Load a checkpoint: safetensors, ``torch.save`` files, or sharded safetensors.

    The format is detected from the file's first bytes, never from its name: safetensors
    (8-byte header length then ``{``), the torch zip format (``PK\\x03\\x04``, torch >= 1.6),
    the legacy torch pickle format (``_use_new_zipfile_serialization=False``), or a Hugging
    Face ``*.safetensors.index.json`` (a JSON object; its shards are read one at a time, see
    :func:`jaxmod.io.load_sharded`). A directory holding exactly one such index loads it.

    Torch files are read without importing torch, by a restricted unpickler that only
    rebuilds tensors, Parameters, ``OrderedDict``, ``set``, ``frozenset``, ``slice``,
    ``complex`` and ``bytes``: any other global, an ``EXT`` opcode or a pickle write into an
    allow-listed object raises :class:`UnsafeCheckpointError` before anything runs, and
    resource limits bound the memory and time of a hostile file (see the "Threat model" in
    docs/checkpoints.md). Strided views, storages shared by several tensors and big-endian
    files are handled.

    Args:
        path: a file path, a directory with one sharded index, or a binary file object.
        map_location: where tensors go. ``None``, ``"cpu"`` or ``torch.device("cpu")``:
            jaxmod Tensors on JAX's default device, as ``torch.load`` gives CPU tensors. A
            ``jax.Device``, ``"cuda[:N]"``/``"gpu[:N]"``/``"tpu[:N]"`` or a ``Sharding``:
            Tensors placed there with ``jax.device_put``. A function
            ``map_location(tensor, "cpu")`` (torch's ``lambda storage, loc: storage``) is
            called on each Tensor and its result kept (``None`` keeps the Tensor); a dict
            maps saved locations to targets (``{"cuda:0": "cpu"}``): every tensor goes to
            its one target. ``"numpy"`` (jaxmod's own): numpy arrays, every dtype exactly as
            stored. With JAX's 64-bit mode off (the default) a Tensor holds float64 as
            float32 and int64 as int32, as every jaxmod tensor does; an int64 value that
            does not fit int32 raises ``OverflowError`` naming its entry (load with
            ``map_location="numpy"`` or turn x64 on).
        pickle_module: torch's argument; only ``None`` or the ``pickle`` module (jaxmod
            always uses its own restricted unpickler).
        weights_only: torch's flag. jaxmod only ever loads weights (tensors in plain
            containers), so ``True``, ``None`` and ``False`` read the same; with ``False``
            a refused object's error says so, instead of running the file's code.
        mmap: accepted for torch code; the file is read, not memory-mapped.
        sharding: a ``jax.sharding.Sharding`` for every array, or a dict from tensor name (the
            state_dict key; a dotted path such as ``"model.fc.weight"`` in nested checkpoints)
            to ``Sharding``; arrays missing from the dict follow ``map_location``. Arrays are
            placed with ``jax.device_put(numpy_array, sharding)``, which transfers to each
            device only the shard it holds.

    Returns:
        The saved structure with :class:`jaxmod.Tensor` values (numpy arrays with
        ``map_location="numpy"``) and typed PRNG keys as JAX key arrays. A safetensors file
        without jaxmod metadata gives a flat ``dict[str, Tensor]``; a torch file gives what
        was pickled, ``OrderedDict`` kept, tensors and Parameters as Tensors (one Tensor
        where the file shares one tensor between entries).

    Raises:
        CheckpointError: the file is empty, truncated, corrupt, hostile or in an unknown
            format; the message names the file and the record or entry.
        UnsafeCheckpointError: a torch pickle tried to run or change something.
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise TypeError(
            "load: pickle_module is not supported; jaxmod reads torch files with its own "
            "restricted unpickler (pass pickle_module=None)"
        )
    unknown = set(pickle_load_args) - {"encoding"}
    if unknown:
        raise TypeError(f"load() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    fn = map_location if callable(map_location) and not _is_device(map_location) else None
    if fn is not None:
        map_location = None
    elif isinstance(map_location, dict):
        map_location = _one_target(map_location)
    numpy = isinstance(map_location, str) and map_location == "numpy"
    try:
        obj = _load(path, None if numpy else map_location, sharding)
    except UnsafeCheckpointError as e:
        if weights_only is False:
            e.add_note(
                "load(weights_only=False): jaxmod never unpickles arbitrary objects, even when "
                "asked to trust the file. Save tensors in plain containers (a state_dict, "
                "dicts, lists, numbers, strings) and rebuild the objects in code."
            )
        raise
    if numpy:
        return obj
    return map_leaves(obj, _to_tensor(fn, describe(path)), _is_array, describe(path))


_NUMPY_FIX = ", or load numpy arrays with every dtype as stored: load(..., map_location='numpy')"


def _is_device(x: Any) -> bool:
    return isinstance(x, jax.Device) or type(x).__name__ == "device"


def _one_target(locations: dict) -> Any:
    """torch's ``{saved_location: target}``: the one target every tensor goes to here
    (jaxmod reads every tensor to the host, whatever location it was saved from)."""
    targets = {str(v) for v in locations.values()}
    if len(targets) > 1:
        raise ValueError(
            f"load: map_location={locations!r} sends tensors to several devices; jaxmod reads "
            "every tensor to one place: pass that device (map_location='cpu' or 'cuda:0')"
        )
    return targets.pop() if targets else None


def _is_array(x: Any) -> bool:
    return isinstance(x, (np.ndarray, jax.Array))


def _to_tensor(fn: Any, where: str) -> Any:
    """``leaf(path, array)``: a loaded array as a Tensor, then through torch's
    ``map_location(tensor, location)`` function ``fn`` when there is one."""

    def leaf(path: str, a: Any) -> Any:
        if is_prng_key(a):
            return a
        if isinstance(a, np.ndarray):
            target = jax.dtypes.canonicalize_dtype(a.dtype)
            _dt.check_fits(a, target, f"load {where}: {path!r}", _NUMPY_FIX)
            a = jnp.asarray(a)
        t = _tb.new(a)
        if fn is None:
            return t
        out = fn(t, "cpu")
        return t if out is None else out

    return leaf


def _load(path: PathLike | BinaryIO, map_location: Any, sharding: Any) -> Any:
    place = placement(map_location, sharding)
    if hasattr(path, "read") and not isinstance(path, (str, os.PathLike)):
        obj = _load_from(path, describe(path), None)  # type: ignore[arg-type]
    else:
        where = os.fspath(path)
        if os.path.isdir(where):
            index = _sharded.find_index(where)
            if index is None:
                raise CheckpointError(
                    f"{where}: is a directory; orbax checkpoints are restored with "
                    "jaxmod.serialization.checkpoint_manager, sharded safetensors need one "
                    f"*{_sharded.INDEX_SUFFIX} in it"
                )
            return _sharded.load_sharded(index, map_location, sharding=sharding)
        with open(where, "rb") as f:
            if _kind(f.read(16)) == "index":
                return _sharded.load_sharded(where, map_location, sharding=sharding)
            obj = _load_from(f, where, where)
    if place is None:
        return obj
    return map_leaves(obj, place, is_loaded_leaf, describe(path))


def _load_from(f: IO[bytes], where: str, path: str | None) -> Any:
    try:
        return _detect_and_read(f, where, path)
    except CheckpointError:
        raise
    except _PARSE_ERRORS as e:  # a parser met input it does not expect: corrupt, not a bug
        raise CheckpointError(
            f"{where}: corrupt checkpoint ({type(e).__name__}: {str(e)[:200]})"
        ) from e


def _kind(head: bytes) -> str | None:
    """The format a file's first 16 bytes announce, or ``None``."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{":  # before JSON: a length's low byte may be "{"
        return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "legacy"
    if head.lstrip()[:1] == b"{":
        return "index"
    return None


def _detect_and_read(f: IO[bytes], where: str, path: str | None) -> Any:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    head = f.read(16)
    if not head:
        raise CheckpointError(f"{where}: file is empty")
    kind = _kind(head)
    f.seek(0)
    if kind == "zip":
        return _tp.load_zip(f, where, size)
    if kind == "safetensors":
        return _st.load_file(f, path, where)
    if kind == "legacy":
        return _tp.load_legacy(f, where, size)
    if kind == "index":
        raise CheckpointError(f"{where}: a JSON file; load a sharded safetensors index by path")
    raise CheckpointError(
        f"{where}: unrecognized checkpoint format (first bytes {head[:8]!r}); expected a "
        "safetensors file, a torch.save zip archive or a legacy torch.save pickle"
    )
