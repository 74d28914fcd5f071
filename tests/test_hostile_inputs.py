"""Hostile and malformed checkpoint files: nothing runs, nothing is changed, nothing explodes.

Every payload is built here (tests/_hostile.py has the builders). Payloads that do harm are
first shown doing it under plain ``pickle`` (a sentinel file appears, a function's defaults
change, memory balloons), then shown refused by ``jaxmod.load`` with no trace of the harm.
Resource bombs are refused within asserted time and peak traced memory.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import stat
import struct
import zipfile
import zlib
from collections import OrderedDict

import jax
import numpy as np
import pytest
import safetensors
import safetensors.numpy

import jaxmod
from jaxmod.io import CheckpointError, UnsafeCheckpointError, load, save
from jaxmod.io import _torch_records as TR
from tests import _hostile as H
from tests._checkpoints import load_exact

F4 = np.arange(4, dtype=np.float32).tobytes()  # one 4-element float32 storage
MiB = 1 << 20


def rec(storage=None, **kw):
    return H.Record(storage or H.Storage("0", numel=4), **{"size": (4,), "stride": (1,), **kw})


def in_zip(tmp_path, obj_or_pkl, storages=None, name="evil.pt"):
    pkl = obj_or_pkl if isinstance(obj_or_pkl, bytes) else H.torch_pickle(obj_or_pkl)
    return H.zip_checkpoint(tmp_path / name, pkl, {"0": F4} if storages is None else storages)


def in_legacy(tmp_path, obj_or_pkl, storages=None, name="evil-legacy.pt", keys=None):
    pkl = obj_or_pkl if isinstance(obj_or_pkl, bytes) else H.torch_pickle(obj_or_pkl)
    storages = {"0": (4, F4)} if storages is None else storages
    return H.legacy_checkpoint(tmp_path / name, pkl, storages, keys)


LAYOUTS = {"zip": in_zip, "legacy": in_legacy}


def refused(path, exc=CheckpointError):
    """The error ``load(path)`` raises; it must be exactly a CheckpointError (or subclass)."""
    with pytest.raises(exc) as info:
        load_exact(path)
    assert type(info.value) in (CheckpointError, UnsafeCheckpointError), type(info.value)
    assert str(path) in str(info.value)
    return info.value


def clean_file_loads_unchanged(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.arange(4.0)}, tmp_path / "clean.pt")
    np.testing.assert_array_equal(load_exact(tmp_path / "clean.pt")["w"], [0.0, 1.0, 2.0, 3.0])
    assert not np.signbit(load_exact(tmp_path / "clean.pt")["w"]).any()  # not [-0, -1, -2, -3]


# --------------------------------------------------------------------------------------
# writes into allow-listed objects (issue 15.1)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_build_poisoning_an_allow_listed_rebuild_function_is_refused(tmp_path, layout):
    # Harm under plain pickle: BUILD rewrites a function's __defaults__ for the process.
    assert H.victim(3) == 3
    try:
        pickle.loads(H.poison_defaults("tests._hostile", "victim", b"J\xff\xff\xff\xff\x85"))
        assert H.victim(3) == -3
    finally:
        H.victim.__defaults__ = (1,)
    # The same opcodes aimed at torch's rebuild function: metadata={"neg": True} by default
    # would negate every tensor loaded afterwards.
    neg_default = b"\x89N}(" + H.op_str("neg") + b"\x88u\x87"
    payload = H.poison_defaults("torch._utils", "_rebuild_tensor_v2", neg_default)
    err = refused(LAYOUTS[layout](tmp_path, payload), UnsafeCheckpointError)
    assert err.global_name == "allow-listed global 'torch._utils._rebuild_tensor_v2'"
    assert "BUILD" in str(err)
    assert TR._rebuild_tensor_v2.__defaults__ == (False, None, None)
    clean_file_loads_unchanged(tmp_path)


@pytest.mark.parametrize("write", ["setitem", "append", "build"])
@pytest.mark.parametrize(
    "target",
    ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage",
     "torch.float32", "_codecs.encode", "__builtin__.set"],
)  # fmt: skip
def test_setitem_append_and_build_into_any_allow_listed_global_are_refused(tmp_path, write, target):
    make = {
        "setitem": H.poison_setitem,
        "append": H.poison_append,
        "build": lambda m, n: H.poison_defaults(m, n, b")"),
    }[write]
    H.REGISTRY.clear()
    pickle.loads(make("tests._hostile", "REGISTRY") if write == "setitem" else b"N.")
    assert write != "setitem" or H.REGISTRY == {"pwned": True}  # harm under plain pickle
    H.REGISTRY.clear()
    module, name = target.rsplit(".", 1)
    err = refused(in_zip(tmp_path, make(module, name)), UnsafeCheckpointError)
    assert "refused a pickle write" in str(err) and "archive/data.pkl" in str(err)


def test_fresh_objects_built_by_the_pickle_may_still_be_filled_in(tmp_path):
    torch = pytest.importorskip("torch")
    sd = torch.nn.Linear(2, 1).state_dict()  # OrderedDict + BUILD of its _metadata
    torch.save({"sd": sd, "s": {1, 2}, "l": [1, [2]]}, tmp_path / "ok.pt")
    out = load_exact(tmp_path / "ok.pt")
    assert out["sd"]._metadata == sd._metadata and out["s"] == {1, 2}


# --------------------------------------------------------------------------------------
# EXT opcodes (issue 15.2)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("opcode,code", [("EXT1", 0xF1), ("EXT2", 0xF1F1), ("EXT4", 0x7F1F1F1F)])
def test_ext_opcodes_are_refused_even_with_the_global_in_copyregs_cache(
    tmp_path, layout, opcode, code
):
    sentinel = tmp_path / "pwned"
    payload = H.ext_call(opcode, code, f"touch {sentinel}")
    copyreg.add_extension("os", "system", code)
    try:
        pickle.loads(payload)  # harm under plain pickle; also fills copyreg's cache
        assert sentinel.exists() and code in copyreg._extension_cache
        sentinel.unlink()
        err = refused(LAYOUTS[layout](tmp_path, payload), UnsafeCheckpointError)
    finally:
        copyreg.remove_extension("os", "system", code)
    assert f"{opcode} (extension code {code})" in str(err)
    assert not sentinel.exists()


# --------------------------------------------------------------------------------------
# resource bombs (issue 15.3)
# --------------------------------------------------------------------------------------


def test_stride_0_record_over_a_huge_shape_is_refused_fast_in_little_memory(tmp_path):
    torch = pytest.importorskip("torch")
    big = torch.zeros(1).expand(2**17, 2**17)  # 64 GiB as a dense copy; torch keeps a view
    torch.save({"w": big}, tmp_path / "zip.pt")
    hand = in_legacy(tmp_path, {"w": rec(size=(2**17, 2**17), stride=(0, 0))})
    for path in (tmp_path / "zip.pt", hand):
        assert path.stat().st_size < 2000
        err, seconds, peak = H.measure(lambda p=path: load_exact(p))
        assert type(err) is CheckpointError and "w: the tensor record asks for" in str(err)
        assert seconds < 1.0 and peak < 8 * MiB, (seconds, peak)


def test_small_expanded_views_still_load_with_torchs_values(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {"row": torch.arange(3.0).expand(4, 3), "col": torch.ones(2, 1).expand(2, 5)}
    torch.save(sd, tmp_path / "views.pt")
    out = load_exact(tmp_path / "views.pt")
    for k, t in sd.items():
        np.testing.assert_array_equal(out[k], t.contiguous().numpy())


def _bomb_zip(tmp_path, declared, name="bomb.pt", mib=32):
    pkl = H.torch_pickle({"w": rec()})
    stream = H.deflated_zeros(mib)
    crc = zlib.crc32(bytes(declared)) if declared < 1 << 20 else 0
    members = {
        "archive/data.pkl": (0, pkl, len(pkl), zlib.crc32(pkl)),
        "archive/data/0": (8, stream, declared, crc),
    }
    return H.raw_zip(tmp_path / name, members)


def test_deflate_member_inflating_past_its_declared_size_is_refused(tmp_path):
    path = _bomb_zip(tmp_path, declared=16)  # 16 bytes declared (CRC of 16 zeros), 32 MiB inside
    assert path.stat().st_size < 64 * 1024
    # Harm: plain zipfile inflates the whole stream before cutting it to the declared size.
    _, _, plain_peak = H.measure(lambda: zipfile.ZipFile(path).read("archive/data/0"))
    assert plain_peak > 32 * MiB
    err, seconds, peak = H.measure(lambda: load_exact(path))
    assert type(err) is CheckpointError and "'archive/data/0' inflates past" in str(err)
    assert seconds < 1.0 and peak < 2 * MiB, (seconds, peak)


def test_deflate_member_declaring_more_than_deflate_can_produce_is_refused_unread(tmp_path):
    path = _bomb_zip(tmp_path, declared=2**32 - 1, mib=1)  # 4 GiB claimed from ~1 KB
    err, seconds, peak = H.measure(lambda: load_exact(path))
    assert type(err) is CheckpointError and "more than deflate can produce" in str(err)
    assert seconds < 1.0 and peak < 1 * MiB, (seconds, peak)


def test_honestly_deflated_torch_archive_still_loads(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(1000), "b": torch.arange(5.0)}, tmp_path / "stored.pt")
    with zipfile.ZipFile(tmp_path / "stored.pt") as zin:
        with zipfile.ZipFile(tmp_path / "deflated.pt", "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info.filename))
    out = load_exact(tmp_path / "deflated.pt")
    np.testing.assert_array_equal(out["b"], np.arange(5.0, dtype=np.float32))


def test_shared_tuples_load_in_linear_time_keeping_their_sharing(tmp_path):
    leaf = rec()
    t = leaf
    for _ in range(24):  # 2**24 paths down to the tensor; 24 tuples in the file
        t = (t, t)
    path = in_zip(tmp_path, {"t": t})
    assert path.stat().st_size < 2000
    for placed in (None, jax.devices()[0]):  # placing the arrays walks the result once too
        err, seconds, _ = H.measure(lambda m=placed: load(path, map_location=m))
        assert err is None and seconds < 1.0, (err, seconds)
    out = load_exact(path)["t"]
    assert out[0] is out[1]
    for _ in range(23):
        out = out[0]
    np.testing.assert_array_equal(out[1], np.arange(4, dtype=np.float32))


def test_bytes_call_that_would_allocate_is_refused(tmp_path):
    payload = b"\x80\x02" + H.op_global("__builtin__", "bytes") + b"J\x00\x00\x00\x04\x85R."
    _, _, plain_peak = H.measure(lambda: pickle.loads(payload))  # bytes(64 MiB)
    assert plain_peak >= 64 * MiB
    err, seconds, peak = H.measure(lambda: load_exact(in_zip(tmp_path, payload)))
    assert type(err) is CheckpointError and "builtins.bytes called with arguments" in str(err)
    assert seconds < 1.0 and peak < 1 * MiB


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pickle_declaring_a_huge_string_never_allocates_it(tmp_path, layout):
    payload = b"\x80\x04\x8d" + struct.pack("<Q", 2**40) + b"abc"  # BINUNICODE8 of 1 TiB
    err, seconds, peak = H.measure(lambda: load_exact(LAYOUTS[layout](tmp_path, payload)))
    assert type(err) is CheckpointError and "truncated or corrupt pickle" in str(err)
    assert seconds < 1.0 and peak < 1 * MiB


# --------------------------------------------------------------------------------------
# malformed records: always a CheckpointError naming the file and the entry (issue 15.4)
# --------------------------------------------------------------------------------------


class _Reduce:
    def __init__(self, fn_name, *args):
        self.fn_name, self.args = fn_name, args

    def __reduce__(self):
        import torch._utils

        return (getattr(torch._utils, self.fn_name), self.args)


def _raw_members(tmp_path, data0):
    pkl = H.torch_pickle({"w": rec()})
    return H.raw_zip(
        tmp_path / "raw.pt",
        {"archive/data.pkl": (0, pkl, len(pkl), zlib.crc32(pkl)), "archive/data/0": data0},
    )


MALFORMED = {
    "negative-offset": (lambda p: in_zip(p, {"w": rec(offset=-1)}), ": w: malformed tensor record"),
    "stride-rank": (lambda p: in_zip(p, {"w": rec(size=(2, 2))}), ": w: malformed tensor record"),
    "negative-stride": (lambda p: in_zip(p, {"w": rec(stride=(-1,))}), ": w: malformed"),
    "float-size": (lambda p: in_zip(p, {"w": rec(size=(1.5,))}), ": w: malformed"),
    "bool-size": (lambda p: in_zip(p, {"w": rec(size=(True,))}), ": w: malformed"),
    "int-size": (lambda p: in_zip(p, {"w": rec(size=4)}), ": w: malformed"),
    "65-dims": (
        lambda p: in_zip(p, {"w": rec(size=(1,) * 65, stride=(1,) * 65)}),
        ": w: malformed",
    ),
    "neg-bit-on-bools": (
        lambda p: in_zip(p, {"w": rec(H.Storage("0", "BoolStorage", 4), metadata={"neg": True})}),
        ": w: malformed tensor record",
    ),
    "past-the-end": (lambda p: in_zip(p, {"w": rec(offset=2)}), ": w: tensor of size [4]"),
    "ragged-storage": (lambda p: in_zip(p, {"w": rec()}, {"0": b"\0" * 3}), "not a multiple"),
    "missing-storage": (lambda p: in_zip(p, {"w": rec()}, {}), "no record 'archive/data/0'"),
    "junk-persistent-id": (lambda p: in_zip(p, {"w": H.RawPid("junk")}), "unexpected persistent"),
    "negative-numel": (lambda p: in_zip(p, {"w": rec(H.Storage("0", numel=-1))}), "negative size"),
    "parameter-of-int": (
        lambda p: in_zip(p, {"w": _Reduce("_rebuild_parameter", 5, True, OrderedDict())}),
        "Parameter record wrapping int",
    ),
    "v3-dtype-junk": (
        lambda p: in_zip(
            p, {"w": _Reduce("_rebuild_tensor_v3", H.Storage("0"), 0, (1,), (1,), False, {}, "x")}
        ),
        "tensor record with dtype 'x'",
    ),
    "tensors-in-a-set": (lambda p: in_zip(p, {"s": frozenset([rec()])}), "s: tensors inside a set"),
    "deep-nesting": (lambda p: in_zip(p, H.nested_lists(50_000)), "nested deeper"),
    "bad-byteorder": (lambda p: _byteorder(p), "unknown byteorder"),
    "stored-size-lie": (lambda p: _raw_members(p, (0, F4, 32, zlib.crc32(F4))), "corrupt stored"),
    "bzip2-member": (lambda p: _raw_members(p, (12, F4, 16, zlib.crc32(F4))), "method 12"),
    "bad-crc": (lambda p: _raw_members(p, (0, F4, 16, 1234)), "(bad CRC-32)"),
    "legacy-negative-view-offset": (
        lambda p: in_legacy(p, {"w": rec(H.Storage("0", numel=4, view=("v", -1, 1)), size=(1,))}),
        "storage view 'v' of '0' has offset -1",
    ),
    "legacy-view-past-base": (
        lambda p: in_legacy(p, {"w": rec(H.Storage("0", numel=4, view=("v", 3, 2)), size=(2,))}),
        ": w: tensor of size [2]",
    ),
    "legacy-key-twice": (lambda p: in_legacy(p, {"w": rec()}, keys=["0", "0"]), "listed twice"),
    "legacy-unknown-key": (lambda p: in_legacy(p, {"w": rec()}, keys=["9"]), "'9' not referenced"),
    "legacy-huge-storage": (
        lambda p: in_legacy(p, {"w": rec()}, {"0": (2**60, F4)}),
        "storage '0' needs 4611686018427387904 bytes",
    ),
}


def _byteorder(tmp_path):
    path = tmp_path / "bo.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/data.pkl", H.torch_pickle({}))
        zf.writestr("a/byteorder", "middle")
    return path


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_records_raise_checkpoint_error_naming_file_and_entry(tmp_path, case):
    build, expected = MALFORMED[case]
    err = refused(build(tmp_path))
    assert expected in str(err), str(err)


def _mutants(data: bytes, step: int):
    for i in range(0, len(data), step):
        yield data[:i]  # truncated
        yield data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]  # one byte flipped


def test_every_truncation_or_flipped_byte_gives_a_checkpoint_error_or_a_load(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {"w": torch.arange(6.0).reshape(2, 3), "n": {"step": 3, "b": b"x"}}
    torch.save(sd, tmp_path / "zip.pt")
    torch.save(sd, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    save({"w": np.ones(3, np.float32), "n": {"step": 3}}, tmp_path / "j.safetensors")
    save({"w": np.ones(3, np.float32), "n": {"step": 3}}, tmp_path / "j.pt")
    loads = 0
    for name in ("zip.pt", "legacy.pt", "j.safetensors", "j.pt"):
        data = (tmp_path / name).read_bytes()
        for mutant in _mutants(data, max(1, len(data) // 150)):
            buf = io.BytesIO(mutant)
            try:
                load_exact(buf)
            except CheckpointError as e:
                assert type(e) in (CheckpointError, UnsafeCheckpointError), repr(e)
            loads += 1
    assert loads > 1000


# --------------------------------------------------------------------------------------
# safetensors: refused exactly when the safetensors library refuses (issue 15.5)
# --------------------------------------------------------------------------------------

_F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
SAFETENSORS_CASES = {
    "overlapping-offsets": ({"a": _F32x2, "b": _F32x2}, bytes(8)),
    "hole": ({"a": _F32x2, "b": {**_F32x2, "data_offsets": [12, 20]}}, bytes(20)),
    "trailing-bytes": ({"a": _F32x2}, bytes(12)),
    "non-integer-shape": ({"a": {**_F32x2, "shape": [2.0]}}, bytes(8)),
    "negative-shape": ({"a": {**_F32x2, "shape": [-2]}}, bytes(8)),
    "reversed-offsets": ({"a": {**_F32x2, "data_offsets": [8, 0]}}, bytes(8)),
    "short-data": ({"a": _F32x2}, bytes(4)),
    "shape-mismatch": ({"a": {**_F32x2, "shape": [3]}}, bytes(8)),
    "unknown-dtype": ({"a": {**_F32x2, "dtype": "X32"}}, bytes(8)),
    "metadata-not-strings": ({"__metadata__": {"k": 1}, "a": _F32x2}, bytes(8)),
}


@pytest.mark.parametrize("source", ["path", "file-object"])
@pytest.mark.parametrize("case", SAFETENSORS_CASES)
def test_safetensors_reader_refuses_what_the_library_refuses(tmp_path, case, source):
    header, data = SAFETENSORS_CASES[case]
    raw = H.safetensors_bytes(header, data)
    with pytest.raises(Exception):  # noqa: B017 - the library's own verdict
        safetensors.numpy.load(raw)
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(raw)
    if source == "path":
        err = refused(path)
    else:
        with pytest.raises(CheckpointError) as info:
            load_exact(io.BytesIO(raw))
        err = info.value
    assert type(err) is CheckpointError and "safetensors" in str(err)


def test_safetensors_file_the_library_accepts_loads(tmp_path):
    raw = safetensors.numpy.save({"b": np.ones(2, np.float32), "a": np.arange(3)})
    (tmp_path / "ok.safetensors").write_bytes(raw)
    for src in (tmp_path / "ok.safetensors", io.BytesIO(raw)):
        out = load_exact(src)
        assert set(out) == {"a", "b"} and out["a"].tolist() == [0, 1, 2]


# --------------------------------------------------------------------------------------
# save keeps permissions (issue 15.6)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ckpt.safetensors", "ckpt.pt"])
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_save_keeps_the_permissions_of_the_file_it_replaces(tmp_path, name, mode):
    path = tmp_path / name
    save({"w": np.zeros(2, np.float32)}, path)
    os.chmod(path, mode)
    save({"w": np.ones(2, np.float32)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    np.testing.assert_array_equal(load_exact(path)["w"], [1.0, 1.0])
    assert sorted(os.listdir(tmp_path)) == [name]


def test_new_file_gets_the_umask_permissions_and_symlinks_are_written_through(tmp_path):
    umask = os.umask(0o027)
    try:
        save({"w": np.zeros(2, np.float32)}, tmp_path / "new.pt")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.pt").stat().st_mode) == 0o640
    os.symlink("new.pt", tmp_path / "latest.pt")
    jaxmod.save({"w": np.ones(2, np.float32)}, tmp_path / "latest.pt")
    assert os.path.islink(tmp_path / "latest.pt")
    np.testing.assert_array_equal(load_exact(tmp_path / "new.pt")["w"], [1.0, 1.0])
