"""Checkpoint I/O: safetensors round trips, torch.save files read without torch, safety."""

from __future__ import annotations

import builtins
import collections
import functools
import io
import os
import pickle
import re
import subprocess
import sys
import zipfile
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy
from jax.sharding import SingleDeviceSharding

import jaxmod
from jaxmod import serialization as S
from jaxmod.io import safetensors as ST
from jaxmod.serialization import (
    CheckpointError,
    UnsafeCheckpointError,
    convert_state_dict,
    load,
    save,
)
from tests._checkpoints import DTYPES, Box, load_exact, random_array, same_bits

JAX_OK = {k for k in DTYPES if k not in ("float64", "int64")}  # x64 is off


# --------------------------------------------------------------------------------------
# safetensors round trips
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DTYPES))
def test_save_load_is_bit_exact_for_every_dtype(tmp_path, name):
    sd = {
        "matrix": random_array(name, (3, 5), seed=1),
        "scalar0d": random_array(name, (), seed=2),
        "empty": random_array(name, (0, 4), seed=3),
        "non_contiguous": random_array(name, (4, 6), seed=4)[:, ::2].T,
    }
    if name in JAX_OK:
        sd["jax"] = jnp.asarray(random_array(name, (7,), seed=5))
        sd["box"] = Box(jnp.asarray(random_array(name, (2, 2), seed=6)))
    save(sd, tmp_path / "m.safetensors")
    out = load_exact(tmp_path / "m.safetensors")
    assert list(out) == list(sd)
    for k, v in sd.items():
        assert isinstance(out[k], np.ndarray)
        assert same_bits(out[k], getattr(v, "_value", v)), k


def test_nested_checkpoint_with_int_keys_scalars_strings_and_none_round_trips(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    ckpt = {
        "model": OrderedDict([("fc.weight", w), ("fc.bias", jnp.ones(3, jnp.bfloat16))]),
        "optim": {
            "state": {0: {"exp_avg": np.full(3, 0.5), "step": 3}, 1: {"step": 3}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "x": None}],
        },
        "epoch": 3,
        "loss": float("nan"),
        "big": 2**70,
        "name": "run-1 ✓",
        "flags": [True, False, None],
        "raw": b"\x00\xff",
        "np_scalar": np.float64(1.25),
        (1, "a"): "tuple key",
        2.5: "float key",
    }
    save(ckpt, tmp_path / "ckpt.safetensors")
    out = load_exact(tmp_path / "ckpt.safetensors")

    assert list(out) == list(ckpt)
    assert type(out["model"]) is OrderedDict
    assert list(out["model"]) == ["fc.weight", "fc.bias"]
    assert same_bits(out["model"]["fc.weight"], w)
    assert same_bits(out["model"]["fc.bias"], jnp.ones(3, jnp.bfloat16))
    state = out["optim"]["state"]
    assert list(state) == [0, 1] and all(type(k) is int for k in state)
    assert same_bits(state[0]["exp_avg"], np.full(3, 0.5))
    assert state[0]["step"] == 3 and type(state[0]["step"]) is int
    assert out["optim"]["param_groups"] == [
        {"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "x": None}
    ]
    assert out["epoch"] == 3 and np.isnan(out["loss"]) and out["big"] == 2**70
    assert out["name"] == "run-1 ✓" and out["flags"] == [True, False, None]
    assert out["raw"] == b"\x00\xff"
    assert type(out["np_scalar"]) is np.float64 and out["np_scalar"] == 1.25
    assert out[(1, "a")] == "tuple key" and out[2.5] == "float key"

    # Tensors are stored under their dotted paths.
    names = set(safetensors.numpy.load_file(tmp_path / "ckpt.safetensors"))
    assert {"model.fc.weight", "model.fc.bias", "optim.state.0.exp_avg", "np_scalar"} == names


def test_tensor_name_collisions_in_nested_paths_stay_distinct(tmp_path):
    ckpt = {"a.b": np.zeros(1), "a": {"b": np.ones(1)}}
    save(ckpt, tmp_path / "c.safetensors")
    out = load_exact(tmp_path / "c.safetensors")
    assert same_bits(out["a.b"], np.zeros(1)) and same_bits(out["a"]["b"], np.ones(1))


def test_safetensors_numpy_and_torch_read_a_saved_state_dict_with_the_same_names(tmp_path):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    sd = {name: random_array(name, (2, 3), seed=i) for i, name in enumerate(DTYPES)}
    sd["layer.0.weight"] = jnp.arange(4.0)
    save(sd, tmp_path / "m.safetensors")

    as_np = safetensors.numpy.load_file(tmp_path / "m.safetensors")
    assert set(as_np) == set(sd)
    for k, v in sd.items():
        assert same_bits(as_np[k], v), k

    as_torch = safetensors.torch.load_file(tmp_path / "m.safetensors")
    assert set(as_torch) == set(sd)
    assert as_torch["bfloat16"].dtype == torch.bfloat16
    for k, v in sd.items():
        t = as_torch[k]
        raw = t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()
        assert raw.tobytes() == np.asarray(v).tobytes(), k


def test_plain_safetensors_file_without_jaxmod_metadata_loads_as_flat_dict(tmp_path):
    sd = {"w": np.ones((2, 2), np.float32), "b": np.arange(3, dtype=np.int64)}
    safetensors.numpy.save_file(sd, tmp_path / "plain.safetensors", metadata={"format": "np"})
    out = load_exact(tmp_path / "plain.safetensors")
    assert type(out) is dict and set(out) == {"w", "b"}
    assert same_bits(out["w"], sd["w"]) and same_bits(out["b"], sd["b"])


def test_save_rejects_unsupported_values_naming_their_path(tmp_path):
    with pytest.raises(TypeError, match=r"'opt\.fn'"):
        save({"opt": {"fn": print}}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="complex64"):
        save({"z": np.zeros(2, np.complex64)}, tmp_path / "x.safetensors")
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------


def test_exception_during_write_leaves_existing_file_intact_and_no_temp_files(
    tmp_path, monkeypatch
):
    target = tmp_path / "model.safetensors"
    save({"w": np.arange(1000, dtype=np.float32)}, target)
    before = target.read_bytes()
    listing = sorted(os.listdir(tmp_path))

    real_write = ST._write_safetensors

    def crash_half_way(path, tensors, metadata):
        with open(path, "wb") as f:  # the temporary file, half written
            f.write(before[: len(before) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(ST, "_write_safetensors", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        save({"w": np.zeros(5000, dtype=np.float32)}, target)

    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing

    monkeypatch.setattr(ST, "_write_safetensors", real_write)
    save({"w": np.zeros(3, dtype=np.float32)}, target)
    assert same_bits(load_exact(target)["w"], np.zeros(3, np.float32))
    assert sorted(os.listdir(tmp_path)) == listing


# --------------------------------------------------------------------------------------
# torch.save files, read without torch
# --------------------------------------------------------------------------------------

TORCH_DTYPES = [*DTYPES, "uint16", "uint32", "uint64"]


@pytest.fixture(params=["zip", "legacy"])
def torch_save(request):
    """``torch_save(obj, path)`` in the zip format or the legacy pickle format."""
    torch = pytest.importorskip("torch")

    def _save(obj, path):
        torch.save(obj, path, _use_new_zipfile_serialization=request.param == "zip")
        return path

    _save.format = request.param
    return _save


def torch_random(name: str, shape, seed: int = 0):
    """A torch tensor with random bits and the numpy array with the same bytes."""
    torch = pytest.importorskip("torch")
    if name.startswith("uint") and name != "uint8":
        np_dt = np.dtype(name)
        ref = np.frombuffer(
            np.random.default_rng(seed).bytes(int(np.prod(shape)) * np_dt.itemsize), np_dt
        ).reshape(shape)
    else:
        ref = random_array(name, shape, seed)
    t = torch.frombuffer(bytearray(ref.tobytes()) or bytearray(1), dtype=getattr(torch, name))
    return t[: ref.size].reshape(shape).clone(), ref


def test_torch_files_load_bit_exact_for_every_dtype(tmp_path, torch_save):
    tensors, expected = {}, {}
    for i, name in enumerate(TORCH_DTYPES):
        tensors[name], expected[name] = torch_random(name, (3, 4), seed=i)
        tensors[name + "_0d"], expected[name + "_0d"] = torch_random(name, (), seed=100 + i)
    out = load_exact(torch_save(tensors, tmp_path / "t.pt"))
    assert type(out) is dict and list(out) == list(tensors)
    for k, ref in expected.items():
        assert isinstance(out[k], np.ndarray)
        assert same_bits(out[k], ref), k


def test_torch_strided_views_and_shared_storages_load_correctly(tmp_path, torch_save):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {
        "base": base,
        "transposed": base.T,
        "slice": base[1:, ::2],
        "row": base[2],
        "element": base[3, 5],
        "tied_a": base,
    }
    sd["tied_b"] = sd["tied_a"]
    path = torch_save(sd, tmp_path / "views.pt")
    if torch_save.format == "zip":  # everything above is one storage in the file
        names = zipfile.ZipFile(path).namelist()
        assert len([n for n in names if re.search(r"/data/\d+$", n)]) == 1
    out = load_exact(path)
    for k, t in sd.items():
        assert same_bits(out[k], t.contiguous().numpy()), k
        assert out[k].flags.c_contiguous
    assert out["tied_a"] is out["tied_b"]
    out["base"][0, 0] = 100.0  # copies, not views of one buffer
    assert out["transposed"][0, 0] == 0.0


def test_torch_lazy_conj_and_neg_views_load_with_their_logical_values(tmp_path, torch_save):
    torch = pytest.importorskip("torch")
    z, w = torch.randn(3, dtype=torch.complex64), torch.randn(3, dtype=torch.complex64)
    sd = {"conj": z.conj(), "neg_imag": w.conj().imag, "complex128": z.to(torch.complex128)}
    assert sd["conj"].is_conj() and sd["neg_imag"].is_neg()
    out = load_exact(torch_save(sd, tmp_path / "c.pt"))
    for k, t in sd.items():
        assert same_bits(out[k], t.resolve_conj().resolve_neg().numpy()), k


def test_torch_linear_state_dict_keeps_ordered_dict_type_and_metadata(tmp_path, torch_save):
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(3, 2)
    sd = lin.state_dict()
    out = load_exact(torch_save(sd, tmp_path / "lin.pt"))
    assert type(out) is OrderedDict
    assert list(out) == ["weight", "bias"]
    assert same_bits(out["weight"], lin.weight.detach().numpy())
    assert same_bits(out["bias"], lin.bias.detach().numpy())
    assert out._metadata == sd._metadata


def test_torch_parameters_saved_directly_load_as_arrays(tmp_path, torch_save):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.randn(2, 3))
    q = torch.nn.Parameter(torch.randn(4))
    q.custom_attribute = "kept by torch, ignored here"  # pickled with _rebuild_parameter_with_state
    assert same_bits(load_exact(torch_save(p, tmp_path / "p.pt")), p.detach().numpy())
    out = load_exact(torch_save({"p": p, "q": q, "n": [p]}, tmp_path / "pq.pt"))
    assert same_bits(out["q"], q.detach().numpy()) and out["n"][0] is out["p"]


def test_torch_training_checkpoint_with_optimizer_state_loads(tmp_path, torch_save):
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3, "tag": b"x"}
    out = load_exact(torch_save(ckpt, tmp_path / "ckpt.pt"))
    assert out["epoch"] == 3 and out["tag"] == b"x"
    assert list(out["optim"]["state"]) == [0, 1]
    exp_avg = opt.state_dict()["state"][0]["exp_avg"]
    assert same_bits(out["optim"]["state"][0]["exp_avg"], exp_avg.numpy())
    assert out["optim"]["param_groups"][0]["lr"] == 0.01
    assert out["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_torch_file_loads_without_importing_torch(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2, dtype=torch.bfloat16)}, tmp_path / "a.pt")
    torch.save({"w": torch.ones(2)}, tmp_path / "b.pt", _use_new_zipfile_serialization=False)
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises
        "from jaxmod.serialization import load\n"
        f"a = load({str(tmp_path / 'a.pt')!r}); b = load({str(tmp_path / 'b.pt')!r})\n"
        "assert str(a['w'].dtype) == 'torch.bfloat16' and b['w'].tolist() == [1.0, 1.0]\n"
        "assert sys.modules['torch'] is None\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _byteswap_like_a_big_endian_host(raw: bytes, dtype: np.dtype) -> bytes:
    a = np.frombuffer(raw, dtype=dtype)
    unit = dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize
    if unit == 1:
        return raw
    return a.view(f"u{unit}").byteswap().tobytes()


def _rewrite_zip(src, dst, replace):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, replace(info.filename, data))


def test_big_endian_zip_checkpoint_is_byteswapped_on_load(tmp_path):
    torch = pytest.importorskip("torch")
    names = ["float32", "float16", "bfloat16", "float64", "int16", "int32", "int64", "uint8"]
    tensors, expected = {}, {}
    for i, name in enumerate(names):
        tensors[name], expected[name] = torch_random(name, (2, 3), seed=i)
    torch.save(tensors, tmp_path / "little.pt")
    # torch numbers storages "0", "1", ... in pickling order, i.e. in dict order here.
    dtype_of_key = {str(i): np.dtype(DTYPES[name]) for i, name in enumerate(names)}

    def to_big(name: str, data: bytes) -> bytes:
        if name.endswith("/byteorder"):
            return b"big"
        m = re.search(r"/data/(\d+)$", name)
        return _byteswap_like_a_big_endian_host(data, dtype_of_key[m[1]]) if m else data

    _rewrite_zip(tmp_path / "little.pt", tmp_path / "big.pt", to_big)
    assert zipfile.ZipFile(tmp_path / "big.pt").read("little/byteorder") == b"big"
    out = load_exact(tmp_path / "big.pt")
    for name in names:
        assert same_bits(out[name], expected[name]), name


# --------------------------------------------------------------------------------------
# security: only tensor state_dicts unpickle
# --------------------------------------------------------------------------------------


def _gadgets(sentinel):
    cmd = f"touch {sentinel}"

    class OsSystem:
        def __reduce__(self):
            return (os.system, (cmd,))

    class Eval:
        def __reduce__(self):
            return (builtins.eval, (f"__import__('os').system({cmd!r})",))

    class SubprocessCall:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(sentinel)],))

    class GetattrGadget:  # reach os.system through an allowed class's attributes
        def __reduce__(self):
            return (getattr, (OrderedDict, "__init_subclass__"))

    class Partial:
        def __reduce__(self):
            return (functools.partial, (os.system, cmd))

    class NamedTuple:
        def __reduce__(self):
            return (collections.namedtuple, ("P", "x y"))

    return {
        f"{os.system.__module__}.system": OsSystem(),
        "builtins.eval": Eval(),
        "subprocess.call": SubprocessCall(),
        "builtins.getattr": GetattrGadget(),
        "functools.partial": Partial(),
        "collections.namedtuple": NamedTuple(),
    }


GADGET_NAMES = [
    f"{os.system.__module__}.system",
    "builtins.eval",
    "subprocess.call",
    "builtins.getattr",
    "functools.partial",
    "collections.namedtuple",
]


def _malicious_file(kind: str, payload, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / f"evil-{kind}.pt"
    # The payload sits next to real tensors, as it would in a tampered checkpoint.
    obj = {"weight": torch.ones(2), "evil": payload}
    if kind == "plain-pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    elif kind == "legacy":
        # Exactly torch's legacy layout, with the payload in the main pickle.
        buf = io.BytesIO()
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001}):
            pickle.dump(header, buf, protocol=2)
        pickle.dump({"evil": payload}, buf, protocol=2)
        pickle.dump([], buf, protocol=2)
        path.write_bytes(buf.getvalue())
    else:  # zip: a real torch.save archive whose data.pkl is replaced
        torch.save({"weight": torch.ones(2)}, tmp_path / "clean.pt")
        evil_pkl = pickle.dumps(obj | {"weight": None}, protocol=2)
        _rewrite_zip(
            tmp_path / "clean.pt",
            path,
            lambda name, data: evil_pkl if name.endswith("/data.pkl") else data,
        )
    return path


@pytest.mark.parametrize("kind", ["zip", "legacy", "plain-pickle"])
@pytest.mark.parametrize("gadget", GADGET_NAMES)
def test_malicious_pickles_are_refused_naming_the_global(tmp_path, kind, gadget):
    sentinel = tmp_path / "pwned"
    path = _malicious_file(kind, _gadgets(sentinel)[gadget], tmp_path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_exact(path)
    assert info.value.global_name == gadget
    msg = str(info.value)
    assert gadget in msg and str(path) in msg and "safetensors" in msg
    assert isinstance(info.value, pickle.UnpicklingError)
    assert not sentinel.exists()


def test_plain_pickle_without_globals_is_not_a_torch_checkpoint(tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(CheckpointError, match="not a torch.save checkpoint"):
        load_exact(tmp_path / "x.pkl")


def test_tensor_record_pointing_outside_its_storage_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(4)}, tmp_path / "ok.pt")
    pkl = zipfile.ZipFile(tmp_path / "ok.pt").read("ok/data.pkl")
    # size (4,) -> (400,): as_strided would read far past the 16-byte storage.
    assert pkl.count(b"K\x04\x85") == 1
    _rewrite_zip(
        tmp_path / "ok.pt",
        tmp_path / "oob.pt",
        lambda n, d: d.replace(b"K\x04\x85", b"M\x90\x01\x85") if n.endswith("data.pkl") else d,
    )
    with pytest.raises(CheckpointError, match="past the end of its storage"):
        load_exact(tmp_path / "oob.pt")


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def _files_to_truncate(tmp_path):
    torch = pytest.importorskip("torch")
    save({"w": np.arange(100, dtype=np.float32)}, tmp_path / "a.safetensors")
    torch.save({"w": torch.arange(100.0)}, tmp_path / "b.pt")
    torch.save({"w": torch.arange(100.0)}, tmp_path / "c.pt", _use_new_zipfile_serialization=False)
    return [tmp_path / "a.safetensors", tmp_path / "b.pt", tmp_path / "c.pt"]


def test_truncated_files_raise_checkpoint_error_naming_the_path(tmp_path):
    for full in _files_to_truncate(tmp_path):
        data = full.read_bytes()
        for cut in (len(data) // 3, len(data) - 7, 20):
            path = tmp_path / f"cut-{cut}-{full.name}"
            path.write_bytes(data[:cut])
            with pytest.raises(CheckpointError, match=re.escape(str(path))):
                load_exact(path)


def test_wrong_magic_and_empty_files_raise_checkpoint_error_naming_the_path(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=re.escape(str(text)) + ".*unrecognized"):
        load_exact(text)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(str(empty)) + ".*empty"):
        load_exact(empty)
    with pytest.raises(CheckpointError, match="directory"):
        load_exact(tmp_path)


def test_corrupt_safetensors_headers_raise_checkpoint_error_naming_the_path(tmp_path):
    good = tmp_path / "good.safetensors"
    save({"w": np.ones(4, np.float32)}, good)
    data = good.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + n]
    cases = {
        "bad-json": data[:8] + b"{" + b"\x00" * (n - 1) + data[8 + n :],
        "huge-length": (10**12).to_bytes(8, "little") + data[8:],
        "bad-dtype": data.replace(b'"F32"', b'"X32"'),
        "bad-shape": data.replace(b'"shape":[4]', b'"shape":[5]'),
        "bad-skeleton": data[:8] + header.replace(b'\\"@\\"', b'\\"?\\"') + data[8 + n :],
    }
    for what, corrupt in cases.items():
        assert corrupt != data, what
        path = tmp_path / f"{what}.safetensors"
        path.write_bytes(corrupt)
        with pytest.raises(CheckpointError, match=re.escape(str(path))):
            load_exact(path)


# --------------------------------------------------------------------------------------
# placement
# --------------------------------------------------------------------------------------


def test_map_location_and_sharding_place_tensors_on_a_jax_device(tmp_path):
    dev = jax.devices()[0]
    sd = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, np.float32)}
    save({"model": sd, "step": 1}, tmp_path / "c.safetensors")

    on_dev = load(tmp_path / "c.safetensors", map_location=dev)
    w = on_dev["model"]["w"]
    assert isinstance(w, jaxmod.Tensor) and jnp.asarray(w).devices() == {dev}
    assert on_dev["step"] == 1
    np.testing.assert_array_equal(w, sd["w"])

    for where in ("cpu", None, jaxmod.device("cpu")):
        assert isinstance(load(tmp_path / "c.safetensors", map_location=where)["model"]["w"],
                          jaxmod.Tensor)  # fmt: skip
    assert isinstance(load_exact(tmp_path / "c.safetensors")["model"]["w"], np.ndarray)

    sharding = SingleDeviceSharding(dev)
    sharded = load(tmp_path / "c.safetensors", sharding=sharding)
    assert jnp.asarray(sharded["model"]["b"]).sharding == sharding

    only_w = load_exact(tmp_path / "c.safetensors", sharding={"model.w": sharding})
    assert isinstance(only_w["model"]["w"], jax.Array)
    assert isinstance(only_w["model"]["b"], np.ndarray)

    with pytest.raises(ValueError, match="map_location"):
        load(tmp_path / "c.safetensors", map_location="mps")
    if not any(d.platform == "gpu" for d in jax.devices()):
        with pytest.raises(ValueError, match="No CUDA device is available"):
            load(tmp_path / "c.safetensors", map_location="cuda")


def test_map_location_places_torch_checkpoint_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2, 2)}, tmp_path / "w.pt")
    out = load(tmp_path / "w.pt", map_location=jax.devices()[0])
    assert isinstance(out["w"], jaxmod.Tensor) and out["w"].dtype == jnp.float32


def test_load_accepts_binary_file_objects(tmp_path):
    save({"w": np.ones(3, np.int64)}, tmp_path / "w.safetensors")
    with open(tmp_path / "w.safetensors", "rb") as f:
        assert same_bits(load_exact(f)["w"], np.ones(3, np.int64))
    buf = io.BytesIO((tmp_path / "w.safetensors").read_bytes())
    assert same_bits(load_exact(buf)["w"], np.ones(3, np.int64))


# --------------------------------------------------------------------------------------
# convert_state_dict
# --------------------------------------------------------------------------------------


def test_convert_state_dict_renames_with_ordered_regexes_and_transposes_2d_kernels():
    kernel = np.arange(6, dtype=np.float32).reshape(2, 3)  # Flax Dense: (in, out)
    sd = {
        "encoder.dense.kernel": kernel,
        "encoder.dense.bias": np.zeros(3, np.float32),
        "encoder.proj.kernel": jnp.asarray(kernel),
        "head.w": Box(jnp.ones((4, 5))),
    }
    out = convert_state_dict(
        sd,
        rename={r"^encoder\.": "", r"\.kernel$": ".weight", r"^dense\.(\w+)": r"fc.\1"},
        transpose=["encoder.dense.kernel", r".*proj\.weight", "head.w"],
    )
    assert list(out) == ["fc.weight", "fc.bias", "proj.weight", "head.w"]
    assert same_bits(out["fc.weight"], kernel.T.copy()) and out["fc.weight"].flags.c_contiguous
    assert out["fc.bias"] is sd["encoder.dense.bias"]
    assert isinstance(out["proj.weight"], jax.Array) and out["proj.weight"].shape == (3, 2)
    assert out["head.w"].shape == (5, 4)
    assert list(sd) == ["encoder.dense.kernel", "encoder.dense.bias", *list(sd)[2:]]


def test_convert_state_dict_rejects_collisions_non_2d_and_unmatched_patterns():
    sd = {"a.weight": np.ones((2, 2)), "b.weight": np.ones(3)}
    with pytest.raises(ValueError, match="both renamed"):
        convert_state_dict(sd, rename={r"^\w+\.": ""})
    with pytest.raises(ValueError, match="not 2-D"):
        convert_state_dict(sd, transpose=[r".*weight"])
    with pytest.raises(KeyError, match="c.weight"):
        convert_state_dict(sd, transpose=["c.weight"])


# --------------------------------------------------------------------------------------
# orbax
# --------------------------------------------------------------------------------------


def test_orbax_checkpoint_manager_saves_async_and_restores_a_state_dict(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint", reason="orbax-checkpoint is not installed")
    state = {"fc.weight": jnp.arange(6.0).reshape(2, 3), "fc.bias": jnp.ones(3, jnp.bfloat16)}
    mngr = S.checkpoint_manager(tmp_path / "ckpt", max_to_keep=2, async_save=True)
    try:
        for step in range(3):
            mngr.save(step, args=ocp.args.StandardSave({k: v + step for k, v in state.items()}))
        mngr.wait_until_finished()
        assert list(mngr.all_steps()) == [1, 2]
        restored = mngr.restore(2, args=ocp.args.StandardRestore(state))
        plain = mngr.restore(2)
    finally:
        mngr.close()
    for k, v in state.items():
        assert same_bits(restored[k], v + 2) and same_bits(plain[k], v + 2)
