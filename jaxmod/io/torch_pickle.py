"""Reading ``torch.save`` files without torch: a restricted unpickler and its limits.

Both of torch's formats are read: the zip archive (torch >= 1.6: ``<archive>/data.pkl`` plus
one ``<archive>/data/<key>`` record per storage) and the legacy pickle stream. What a
hostile file cannot do here:

* **run anything**: only allow-listed globals resolve, each to a fresh stand-in built by
  jaxmod (nothing from torch is imported or called); ``EXT1/2/4`` opcodes, which fetch
  globals from the process's ``copyreg`` cache without asking ``find_class``, are refused
  before unpickling starts (every pickle is scanned with ``pickletools`` first);
* **change anything that outlives the load**: ``BUILD``, ``SETITEM``, ``APPEND`` and
  attribute writes into a stand-in raise, so no pickle can mutate an allow-listed function
  (e.g. its ``__defaults__``) or class; a pickle fills only the dicts, lists and sets it
  creates itself;
* **exhaust memory or time**: no read goes past the end of the file; a zip member is
  inflated with its declared size as a hard limit, and a deflated member may not declare
  more than deflate's maximum ratio (1032:1) over its compressed size; tensors may
  materialise at most ``4 x`` the bytes of their storages plus 64 MiB (a stride-0 record
  cannot ask for 16 GiB); shared sub-objects are walked once (linear time);
* **crash the loader**: every malformed input raises :class:`CheckpointError` naming the
  file and the record or entry (never a raw ``ValueError``/``TypeError``/``RecursionError``).
"""

from __future__ import annotations

import _compat_pickle
import copy
import io
import pickle
import pickletools
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

from jaxmod.io._common import (
    PRNG_MARKER,
    CheckpointError,
    UnsafeCheckpointError,
    map_leaves,
    short_repr,
    wrap_key,
)
from jaxmod.io._torch_records import (
    ALLOWED,
    Budget,
    LazyTensor,
    Malformed,
    PickleWrite,
    Storage,
    StorageType,
    TorchDtype,
    as_int,
)

TORCH_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PROTOCOL = 1001
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand more than this: a larger claim is a lie
_EXT_OPCODES = {"EXT1", "EXT2", "EXT4"}


# --------------------------------------------------------------------------------------
# the unpickler
# --------------------------------------------------------------------------------------


class _Clamped:
    """A read-only view of a seekable file that never reads (or allocates) past ``size``."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f = f
        self._size = size

    def _left(self) -> int:
        return max(self._size - self._f.tell(), 0)

    def read(self, n: int | None = -1) -> bytes:
        left = self._left()
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def readinto(self, b: Any) -> int:
        data = self.read(len(memoryview(b).cast("B")))
        memoryview(b).cast("B")[: len(data)] = data
        return len(data)

    def readline(self, limit: int = -1) -> bytes:
        left = self._left()
        return self._f.readline(left if limit is None or limit < 0 else min(limit, left))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def seekable(self) -> bool:
        return True


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals, to jaxmod's own stand-ins."""

    def __init__(self, file: Any, where: str, record: str, storage_loader: Callable | None) -> None:
        super().__init__(file, encoding="utf-8")
        self.where = where
        self.record = record
        self.storage_loader = storage_loader
        self.storages: dict[str, Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles (torch's default) use Python 2 names such as __builtin__.set.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        factory = ALLOWED.get((module, name))
        if factory is None:
            raise UnsafeCheckpointError(self.where, f"{module}.{name}")
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        if (
            not isinstance(pid, tuple)
            or len(pid) not in (5, 6)
            or pid[0] != "storage"
            or not isinstance(pid[1], StorageType)
            or isinstance(pid[1], TorchDtype)
            or not isinstance(pid[2], str)
        ):
            raise CheckpointError(
                f"{self.where}: {self.record}: unexpected persistent id {short_repr(pid)}"
            )
        if self.storage_loader is None:
            raise CheckpointError(f"{self.where}: {self.record}: storage record in a plain pickle")
        stype, key, _location, numel = pid[1:5]
        if as_int(numel) < 0:
            raise CheckpointError(
                f"{self.where}: storage {short_repr(key)} has negative size {numel}"
            )
        st = self.storages.get(key)
        if st is None:
            st = self.storages[key] = Storage(key, stype.dtype)
            self.storage_loader(st)
        if len(pid) == 6 and pid[5] is not None:  # legacy (torch < 0.4) storage views
            view_key, offset, view_size = pid[5]
            if not isinstance(view_key, str) or as_int(offset) < 0 or as_int(view_size) < 0:
                raise CheckpointError(
                    f"{self.where}: storage view {short_repr(view_key)} of {short_repr(key)} "
                    f"has offset {short_repr(offset)} and size {short_repr(view_size)}"
                )
            v = self.storages.get(view_key)
            if v is None:
                v = self.storages[view_key] = Storage(view_key, stype.dtype)
                v.base, v.elem_offset = st, offset
            return v
        return st


def _scan(f: Any, where: str, record: str) -> None:
    """Refuse opcodes that bypass ``find_class``, reading one pickle (``f`` is rewound)."""
    start = f.tell()
    try:
        for op, arg, _pos in pickletools.genops(f):
            if op.name in _EXT_OPCODES:
                raise UnsafeCheckpointError(
                    where,
                    f"{op.name} {arg}",
                    f"{record}: refused pickle opcode {op.name} (extension code {arg}): it "
                    "fetches a global from the process's copyreg registry, bypassing the "
                    "allow-list",
                )
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(
            f"{where}: {record}: truncated or corrupt pickle ({type(e).__name__}: {str(e)[:200]})"
        ) from e
    f.seek(start)


def unpickle(
    file: Any, where: str, record: str, storage_loader: Callable | None = None
) -> tuple[Any, dict[str, Storage]]:
    """One pickle from ``file`` through the scan and the restricted unpickler."""
    _scan(file, where, record)
    up = _RestrictedUnpickler(file, where, record, storage_loader)
    try:
        return up.load(), up.storages
    except CheckpointError:
        raise
    except Malformed as e:
        raise CheckpointError(f"{where}: {record}: {e}") from None
    except PickleWrite as e:
        raise UnsafeCheckpointError(
            where,
            str(e),
            f"{record}: refused a pickle write (BUILD/SETITEM/APPEND) into the {e}; a "
            "checkpoint's pickle may only fill in the objects it creates",
        ) from None
    except Exception as e:
        raise CheckpointError(
            f"{where}: {record}: cannot read the checkpoint's pickle (truncated or corrupt "
            f"file?): {type(e).__name__}: {str(e)[:200]}"
        ) from e


def _is_key_marker(x: Any) -> bool:
    return isinstance(x, dict) and len(x) == 2 and PRNG_MARKER in x and "key_data" in x


def resolve(obj: Any, where: str, budget: Budget) -> Any:
    """Replace every tensor record with a numpy array (and key markers with PRNG keys)."""

    def leaf(path: str, x: Any) -> Any:
        if isinstance(x, LazyTensor):
            return x.materialize(where, path or "<root>", budget)
        data = x["key_data"]
        if not isinstance(data, LazyTensor):
            raise CheckpointError(f"{where}: {path}: PRNG key record without key data")
        try:
            return wrap_key(x[PRNG_MARKER], data.materialize(where, path, budget))
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(f"{where}: {path}: malformed PRNG key record ({e})") from e

    return map_leaves(obj, leaf, lambda x: isinstance(x, LazyTensor) or _is_key_marker(x), where)


# --------------------------------------------------------------------------------------
# the two file layouts
# --------------------------------------------------------------------------------------


def _read_member(zf: zipfile.ZipFile, name: str, where: str) -> bytes:
    """A zip member's bytes, inflated with its declared size as a hard limit."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise CheckpointError(f"{where}: archive has no record {short_repr(name)}") from None
    if info.flag_bits & 0x1:
        raise CheckpointError(f"{where}: record {short_repr(name)} is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise CheckpointError(f"{where}: record {short_repr(name)}: corrupt stored sizes")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > DEFLATE_MAX_RATIO * max(info.compress_size, 1):
            raise CheckpointError(
                f"{where}: record {short_repr(name)} declares {info.file_size} bytes from "
                f"{info.compress_size} compressed bytes, more than deflate can produce"
            )
    else:
        raise CheckpointError(
            f"{where}: record {short_repr(name)} uses zip compression method {info.compress_type}; "
            "torch checkpoints are stored or deflated"
        )
    declared = info.file_size
    probe = copy.copy(info)
    probe.file_size = declared + 1  # zipfile stops inflating at file_size: one byte of slack
    del probe.CRC  # (checked below, once the size is known to be right)
    try:
        with zf.open(probe) as member:
            data = member.read(declared + 1)  # inflates at most declared + 1 bytes
    except Exception as e:  # BadZipFile (bad CRC), zlib.error, EOFError, OSError, ...
        raise CheckpointError(f"{where}: cannot read record {short_repr(name)}: {e}") from e
    if len(data) > declared:
        raise CheckpointError(
            f"{where}: record {short_repr(name)} inflates past its declared size of "
            f"{declared} bytes (a zip bomb?)"
        )
    if len(data) != declared:
        raise CheckpointError(f"{where}: record {short_repr(name)} is truncated")
    if zlib.crc32(data) != info.CRC:
        raise CheckpointError(f"{where}: record {short_repr(name)} is corrupt (bad CRC-32)")
    return data


def load_zip(f: IO[bytes], where: str, size: int) -> Any:
    try:
        zf = zipfile.ZipFile(_Clamped(f, size))  # type: ignore[arg-type]
    except Exception as e:  # BadZipFile, OSError, EOFError, ValueError, struct.error
        raise CheckpointError(f"{where}: truncated or corrupt zip archive ({e})") from e
    with zf:
        names = zf.namelist()
        pkls = [n for n in names if re.fullmatch(r"[^/]+/data\.pkl", n)]
        if not pkls:
            raise CheckpointError(
                f"{where}: zip archive is not a torch.save checkpoint (no <archive>/data.pkl)"
            )
        prefix = pkls[0][: -len("/data.pkl")]
        if f"{prefix}/constants.pkl" in names and any(
            n.startswith(f"{prefix}/code/") for n in names
        ):
            raise CheckpointError(
                f"{where}: this is a TorchScript archive (torch.jit.save), not a torch.save "
                "checkpoint; save its state_dict() with torch.save instead"
            )
        big = False
        if f"{prefix}/byteorder" in names:
            order = _read_member(zf, f"{prefix}/byteorder", where)
            order_s = order.decode("ascii", "replace").strip()
            if order_s not in ("little", "big"):
                raise CheckpointError(f"{where}: unknown byteorder record {order_s[:20]!r}")
            big = order_s == "big"
        budget = Budget(where)

        def load_storage(st: Storage) -> None:
            st.data = _read_member(zf, f"{prefix}/data/{st.key}", where)
            st.big_endian = big
            budget.storage_bytes += len(st.data)

        record = f"{prefix}/data.pkl"
        data = _read_member(zf, record, where)
        obj, _ = unpickle(io.BytesIO(data), where, record, load_storage)
        return resolve(obj, where, budget)


def _read_exact(f: Any, n: int, where: str, what: str) -> bytearray:
    buf = bytearray(n)
    got = f.readinto(buf) if n else 0
    if got != n:
        raise CheckpointError(
            f"{where}: file is truncated (expected {n} bytes of {what}, got {got})"
        )
    return buf


def load_legacy(f: IO[bytes], where: str, size: int) -> Any:
    f.seek(0)
    c = _Clamped(f, size)
    magic, _ = unpickle(c, where, "magic number")
    if magic != TORCH_MAGIC:
        raise CheckpointError(
            f"{where}: a pickle file but not a torch.save checkpoint (no torch magic number)"
        )
    protocol, _ = unpickle(c, where, "protocol version")
    if protocol != TORCH_LEGACY_PROTOCOL:
        raise CheckpointError(f"{where}: unsupported legacy torch protocol {short_repr(protocol)}")
    sys_info, _ = unpickle(c, where, "system info")
    big = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
    obj, storages = unpickle(c, where, "main pickle", lambda st: None)
    keys, _ = unpickle(c, where, "storage key list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{where}: malformed storage key list")
    budget = Budget(where)
    for key in keys:
        st = storages.get(key)
        if st is None or st.base is not None:
            raise CheckpointError(
                f"{where}: storage key {short_repr(key)} not referenced by any tensor"
            )
        if st.data is not None:
            raise CheckpointError(f"{where}: storage key {short_repr(key)} listed twice")
        (numel,) = struct.unpack(
            ">q" if big else "<q", _read_exact(c, 8, where, f"storage {short_repr(key)} size")
        )
        nbytes = numel * st.dtype.itemsize
        if numel < 0:
            raise CheckpointError(f"{where}: storage {short_repr(key)} has corrupt size {numel}")
        if nbytes > size - c.tell():  # check before allocating
            raise CheckpointError(
                f"{where}: file is truncated (storage {short_repr(key)} needs {nbytes} bytes, "
                f"{size - c.tell()} left)"
            )
        st.data = _read_exact(c, nbytes, where, f"storage {short_repr(key)}")
        st.big_endian = big
        budget.storage_bytes += nbytes
    return resolve(obj, where, budget)
