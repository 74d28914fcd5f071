"""Writing ``torch.save``'s zip format without torch.

The archive holds what torch 2.x writes: ``<archive>/data.pkl`` (a protocol-2 pickle whose
tensors are ``torch._utils._rebuild_tensor_v2``/``_v3`` calls on persistent storage ids),
one ``<archive>/data/<key>`` record per array, 64-byte aligned as torch aligns them (so
``torch.load(..., mmap=True)`` works), ``byteorder``, ``version`` and the format records.
The pickle uses only globals that ``torch.load(path, weights_only=True)`` allows.

The pickle is emitted opcode by opcode from the same skeleton the safetensors writer uses
(``jaxmod.io.safetensors.Flattener``), because the globals it names (``torch._utils...``)
cannot be pickled by :mod:`pickle` in a process without torch.
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from jaxmod.io._common import PRNG_MARKER, TORCH_DTYPES, TORCH_STORAGES, little_endian
from jaxmod.io.safetensors import Flattener

_ALIGNMENT = 64
_STORAGE_OF = {dt: name for name, dt in TORCH_STORAGES.items() if name != "UntypedStorage"}
# dtypes torch >= 2.3 pickles as UntypedStorage + _rebuild_tensor_v3(..., dtype)
_V3_DTYPES = {np.dtype(name): name for name in ("uint16", "uint32", "uint64")} | {
    TORCH_DTYPES["float8_e4m3fn"]: "float8_e4m3fn",
    TORCH_DTYPES["float8_e5m2"]: "float8_e5m2",
}
DTYPES = set(_STORAGE_OF) | set(_V3_DTYPES)

# protocol-2 opcodes
_MARK, _STOP, _NONE, _TRUE, _FALSE = b"(", b".", b"N", b"\x88", b"\x89"
_EMPTY_DICT, _EMPTY_LIST, _EMPTY_TUPLE = b"}", b"]", b")"
_SETITEMS, _APPENDS, _TUPLE, _REDUCE, _BINPERSID = b"u", b"e", b"t", b"R", b"Q"
_TUPLES = {1: b"\x85", 2: b"\x86", 3: b"\x87"}
_BATCH = 1000  # items per SETITEMS/APPENDS, as pickle batches them


class _Pickle:
    """Emits a protocol-2 pickle of a skeleton, with tensors as torch storage records."""

    def __init__(self, tensors: Mapping[str, np.ndarray]) -> None:
        self.tensors = tensors
        self.out = bytearray(b"\x80\x02")
        self.keys: dict[str, str] = {}  # tensor name -> storage key, in pickling order
        self.memo: dict[str, int] = {}  # tensor name -> memo slot of its rebuilt tensor

    def dumps(self, skeleton: Any) -> bytes:
        self.value(skeleton)
        self.out += _STOP
        return bytes(self.out)

    def value(self, node: Any) -> None:
        out = self.out
        if node is None:
            out += _NONE
        elif node is True or node is False:
            out += _TRUE if node else _FALSE
        elif isinstance(node, int):
            self.int(node)
        elif isinstance(node, float):
            out += b"G" + struct.pack(">d", node)
        elif isinstance(node, str):
            self.str(node)
        elif isinstance(node, list):
            out += _EMPTY_LIST
            self.batched(node, _APPENDS, self.value)
        else:
            self.tagged(node)

    def tagged(self, node: dict) -> None:
        tag = node["@"]
        if tag in ("dict", "odict"):
            if tag == "odict":
                self.global_("collections", "OrderedDict")
                self.out += _EMPTY_TUPLE + _REDUCE
            else:
                self.out += _EMPTY_DICT
            self.batched(
                node["items"], _SETITEMS, lambda kv: (self.value(kv[0]), self.value(kv[1]))
            )
        elif tag == "tuple":
            self.tuple(node["items"])
        elif tag == "bytes":  # what protocol 2 writes for bytes
            self.global_("_codecs", "encode")
            self.str(bytes.fromhex(node["hex"]).decode("latin1"))
            self.str("latin1")
            self.out += _TUPLES[2] + _REDUCE
        elif tag == "tensor":
            self.tensor(node["name"])
        else:  # prng_key: torch has no key dtype; a dict names the implementation
            self.out += _EMPTY_DICT + _MARK
            self.str(PRNG_MARKER)
            self.str(node["impl"])
            self.str("key_data")
            self.tensor(node["name"])
            self.out += _SETITEMS

    def batched(self, items: list, op: bytes, emit: Any) -> None:
        for i in range(0, len(items), _BATCH):
            self.out += _MARK
            for item in items[i : i + _BATCH]:
                emit(item)
            self.out += op

    def tuple(self, items: list) -> None:
        if not items:
            self.out += _EMPTY_TUPLE
            return
        if len(items) > 3:
            self.out += _MARK
        for v in items:
            self.value(v)
        self.out += _TUPLES.get(len(items), _TUPLE)

    def int(self, x: int) -> None:
        if 0 <= x < 256:
            self.out += b"K" + bytes([x])
        elif 0 <= x < 65536:
            self.out += b"M" + struct.pack("<H", x)
        elif -(2**31) <= x < 2**31:
            self.out += b"J" + struct.pack("<i", x)
        else:
            raw = x.to_bytes((x.bit_length() + 8) // 8, "little", signed=True)
            if len(raw) < 256:
                self.out += b"\x8a" + bytes([len(raw)]) + raw
            else:
                self.out += b"\x8b" + struct.pack("<i", len(raw)) + raw

    def str(self, s: str) -> None:
        raw = s.encode("utf-8", "surrogatepass")
        self.out += b"X" + struct.pack("<I", len(raw)) + raw

    def global_(self, module: str, name: str) -> None:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def tensor(self, name: str) -> None:
        if name in self.memo:  # the same array again: torch keeps the tie
            slot = self.memo[name]
            self.out += b"h" + bytes([slot]) if slot < 256 else b"j" + struct.pack("<I", slot)
            return
        a = self.tensors[name]
        key = self.keys[name] = str(len(self.keys))
        v3 = a.dtype in _V3_DTYPES
        self.global_("torch._utils", "_rebuild_tensor_v3" if v3 else "_rebuild_tensor_v2")
        self.out += _MARK + _MARK  # the arguments, then the persistent id tuple
        self.str("storage")
        self.global_(
            *(("torch.storage", "UntypedStorage") if v3 else ("torch", _STORAGE_OF[a.dtype]))
        )
        self.str(key)
        self.str("cpu")
        self.int(a.nbytes if v3 else a.size)
        self.out += _TUPLE + _BINPERSID
        self.int(0)  # storage offset
        strides = np.cumprod((1, *a.shape[:0:-1]))[::-1] if a.ndim else ()
        self.tuple(list(a.shape))
        self.tuple([int(s) for s in strides])
        self.out += _FALSE  # requires_grad
        self.global_("collections", "OrderedDict")  # backward hooks
        self.out += _EMPTY_TUPLE + _REDUCE
        if v3:
            self.global_("torch", _V3_DTYPES[a.dtype])
        self.out += _TUPLE + _REDUCE
        slot = self.memo[name] = len(self.memo)
        self.out += b"q" + bytes([slot]) if slot < 256 else b"r" + struct.pack("<I", slot)


class Prepared:
    """A checkpoint converted and checked for the torch format, ready to be written."""

    def __init__(self, obj: Any) -> None:
        flat = Flattener(DTYPES, "torch.save's format", share=True)
        skeleton = flat.root(obj)
        pickler = _Pickle(flat.tensors)
        self.data_pkl = pickler.dumps(skeleton)
        self.storages = [(key, flat.tensors[name]) for name, key in pickler.keys.items()]

    def write(self, f: IO[bytes], archive: str) -> None:
        """Write the zip archive to the binary file ``f``, records under ``archive``."""
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            _write(zf, f, f"{archive}/data.pkl", self.data_pkl)
            _write(zf, f, f"{archive}/.format_version", b"1")
            _write(zf, f, f"{archive}/.storage_alignment", str(_ALIGNMENT).encode())
            _write(zf, f, f"{archive}/byteorder", b"little")
            for key, a in self.storages:
                raw = little_endian(a).reshape(-1).view(np.uint8)
                _write(zf, f, f"{archive}/data/{key}", raw)
            _write(zf, f, f"{archive}/version", b"3\n")


def _write(zf: zipfile.ZipFile, f: IO[bytes], name: str, data: bytes | np.ndarray) -> None:
    """One stored record (bytes, or a uint8 array) whose data starts 64-byte aligned."""
    nbytes = data.nbytes if isinstance(data, np.ndarray) else len(data)
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = nbytes
    zip64 = nbytes * 1.05 > zipfile.ZIP64_LIMIT  # the rule ZipFile.open(mode="w") applies
    header = 30 + len(name.encode()) + 4 + (20 if zip64 else 0)  # + our padding field's head
    try:
        pad = -(f.tell() + header) % _ALIGNMENT
    except (OSError, AttributeError):  # an unseekable stream: no alignment, still valid
        pad = 0
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # "FB" padding, as torch's
    with zf.open(info, "w") as out:
        if nbytes:
            out.write(memoryview(data))


def archive_name(path: Any) -> str:
    """The record prefix torch would use: the file name without its extension."""
    if hasattr(path, "write") and not isinstance(path, (str, os.PathLike)):
        return "archive"
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return stem or "archive"
