"""Builders of hostile and malformed checkpoint files, for tests/test_hostile_inputs.py.

Everything is built here from scratch: raw pickle opcodes, torch tensor records with any
storage/offset/size/stride, torch's zip and legacy layouts, hand-made zip members and
safetensors headers. Building torch records needs torch importable (the globals
``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` are pickled by reference).
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections import OrderedDict

TORCH_MAGIC = 0x1950A86A20F9469CFC6C

# Targets a poisoning payload can reach under plain pickle.load (see test_hostile_inputs).
REGISTRY: dict = {}


def victim(x, sign=1):
    """An innocent function whose defaults a pickle can rewrite."""
    return sign * x


# --------------------------------------------------------------------------------------
# raw pickle opcodes
# --------------------------------------------------------------------------------------


def op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def poison_defaults(module: str, name: str, defaults: bytes) -> bytes:
    """A pickle that BUILDs ``{"__defaults__": <defaults>}`` into a global, then returns {}.

    ``defaults`` are the opcodes of a tuple. BUILD with a ``(None, slotstate)`` state calls
    ``setattr`` for each slot, which rewrites a function's ``__defaults__``.
    """
    state = b"N" + b"}(" + op_str("__defaults__") + defaults + b"u" + b"\x86"
    return b"\x80\x02" + op_global(module, name) + state + b"b" + b"0" + b"}."


def poison_setitem(module: str, name: str) -> bytes:
    """A pickle that does ``<global>["pwned"] = True`` (SETITEM), then returns {}."""
    return b"\x80\x02" + op_global(module, name) + op_str("pwned") + b"\x88s0}."


def ext_call(opcode: str, code: int, arg: str) -> bytes:
    """A pickle calling the global registered under extension ``code`` with ``arg``."""
    if opcode == "EXT1":
        ext = b"\x82" + struct.pack("<B", code)
    elif opcode == "EXT2":
        ext = b"\x83" + struct.pack("<H", code)
    else:
        ext = b"\x84" + struct.pack("<i", code)
    return b"\x80\x02" + ext + op_str(arg) + b"\x85R."


def shared_tuples(levels: int, leaf: bytes = b"N") -> bytes:
    """Pickle opcodes of ``t_n`` where ``t_0 = leaf`` and ``t_k = (t_{k-1}, t_{k-1})``.

    ``levels`` opcodes build ``2**levels`` paths down to the leaf (every level is stored in
    the memo once and fetched twice).
    """
    out = leaf + b"q\x00"
    for i in range(levels):
        out += b"h" + bytes([i % 256]) + b"h" + bytes([i % 256]) + b"\x86q" + bytes([(i + 1) % 256])
    return out


# --------------------------------------------------------------------------------------
# torch tensor records
# --------------------------------------------------------------------------------------


class Storage:
    """A storage record: ``key``, torch storage class name, element count, optional view."""

    def __init__(self, key, stype="FloatStorage", numel=1, view=None):
        self.key, self.stype, self.numel, self.view = key, stype, numel, view


class Record:
    """A ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` call."""

    def __init__(self, storage, offset=0, size=(1,), stride=(1,), metadata=None):
        self.args = (storage, offset, size, stride, False, OrderedDict(), metadata)

    def __reduce__(self):
        import torch._utils

        args = self.args if self.args[-1] is not None else self.args[:-1]
        return (torch._utils._rebuild_tensor_v2, args)


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            import torch

            pid = ("storage", getattr(torch, obj.stype), obj.key, "cpu", obj.numel)
            return pid if obj.view is None else (*pid, obj.view)
        if isinstance(obj, RawPid):
            return obj.pid
        return None


def torch_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def zip_checkpoint(path, data_pkl: bytes, storages: dict, archive: str = "archive"):
    """A torch zip archive with the given ``data.pkl`` and ``{key: bytes}`` storages."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{archive}/data.pkl", data_pkl)
        zf.writestr(f"{archive}/byteorder", "little")
        for key, raw in storages.items():
            zf.writestr(f"{archive}/data/{key}", raw)
        zf.writestr(f"{archive}/version", "3\n")
    return path


def legacy_checkpoint(path, main: bytes, storages: dict, keys=None):
    """torch's legacy stream: magic, protocol, sys info, ``main`` pickle, keys, storages.

    ``storages`` maps key to ``(numel, raw bytes)``.
    """
    buf = io.BytesIO()
    for header in (TORCH_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    buf.write(main)
    pickle.dump(list(storages) if keys is None else keys, buf, protocol=2)
    for numel, raw in storages.values():
        buf.write(struct.pack("<q", numel) + raw)
    path.write_bytes(buf.getvalue())
    return path


def raw_zip(path, members: dict):
    """A zip written by hand: ``{name: (method, payload, declared_size, crc)}``.

    ``payload`` is stored as is (already deflated for method 8), so the declared size and
    CRC can lie about it.
    """
    out, central = bytearray(), bytearray()
    for name, (method, payload, size, crc) in members.items():
        fname = name.encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), size,
            len(fname), 0,
        ) + fname + payload  # fmt: skip
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(payload),
            size, len(fname), 0, 0, 0, 0, 0, offset,
        ) + fname  # fmt: skip
    n = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def deflated_zeros(mib: int) -> bytes:
    """A raw deflate stream of ``mib`` MiB of zero bytes, built in milliseconds.

    One MiB is compressed and sync-flushed (a byte-aligned block that only refers back to
    zeros it wrote itself), repeated, and closed with an empty final block.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_SYNC_FLUSH)
    return chunk * mib + b"\x03\x00"


# --------------------------------------------------------------------------------------
# safetensors headers
# --------------------------------------------------------------------------------------


def safetensors_bytes(header: dict, data: bytes, raw_header: bytes | None = None) -> bytes:
    raw = json.dumps(header).encode() if raw_header is None else raw_header
    return struct.pack("<Q", len(raw)) + raw + data


# --------------------------------------------------------------------------------------
# measuring a refusal
# --------------------------------------------------------------------------------------


def measure(fn):
    """``(exception or None, seconds, peak traced bytes)`` of calling ``fn()``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    err = None
    try:
        fn()
    except Exception as e:
        err = e
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return err, seconds, peak


def poison_append(module: str, name: str) -> bytes:
    """A pickle that does ``<global>.append(True)`` (APPEND), then returns {}."""
    return b"\x80\x02" + op_global(module, name) + b"\x88a0}."


def nested_lists(depth: int) -> bytes:
    """A pickle of ``depth`` lists nested in each other (linear opcodes, deep structure)."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


class RawPid:
    """An object pickled as the persistent id ``pid`` (any value, malformed on purpose)."""

    def __init__(self, pid):
        self.pid = pid
