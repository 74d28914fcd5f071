"""Honest file formats: ``jaxmod.save`` to a torch name writes what ``torch.load`` reads.

Also: typed PRNG keys (``Generator.get_state()``) save and load in both formats, and a value
that cannot be saved raises naming its entry.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections import OrderedDict

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jaxmod
from jaxmod.io import load, save
from tests._checkpoints import DTYPES, MORE_DTYPES, Box, load_exact, random_array

torch = pytest.importorskip("torch")

ALL_DTYPES = {**DTYPES, **MORE_DTYPES}


def torch_bits(t):
    """The raw bytes of a torch tensor, through a same-size integer view."""
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    return t.contiguous().reshape(-1).view(ints[t.element_size()]).numpy().tobytes()


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "model.bin", "checkpoint.pth.tar"])
def test_torch_names_write_a_zip_that_torch_load_weights_only_reads_bit_exact(tmp_path, name):
    sd = OrderedDict((k, random_array(k, (3, 4), seed=i)) for i, k in enumerate(ALL_DTYPES))
    sd["scalar0d"] = random_array("float32", (), seed=99)
    sd["empty"] = np.zeros((0, 5), np.float32)
    sd["non_contiguous"] = random_array("float32", (4, 6), seed=7)[:, ::2].T
    sd["jax_bf16"] = jnp.arange(6, dtype=jnp.bfloat16)
    sd["box"] = Box(jnp.ones((2, 2)))
    path = tmp_path / name
    save(sd, path)
    assert zipfile.is_zipfile(path)
    out = torch.load(path, weights_only=True)
    assert type(out) is OrderedDict and list(out) == list(sd)
    for k, v in sd.items():
        ref = np.asarray(getattr(v, "_value", v))
        assert tuple(out[k].shape) == ref.shape, k
        assert str(out[k].dtype) == f"torch.{ref.dtype}", k
        assert torch_bits(out[k]) == np.ascontiguousarray(ref).tobytes(), k
    mapped = torch.load(path, weights_only=True, mmap=True)  # records are 64-byte aligned
    assert torch.equal(mapped["int64"], out["int64"])


def test_jaxmod_training_checkpoint_as_pt_resumes_in_torch_with_the_same_next_step(tmp_path):
    model = jaxmod.nn.Linear(3, 2)
    opt = jaxmod.optim.Adam(model.parameters(), lr=1e-2)
    x = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)

    def step():
        _, grads = jaxmod.value_and_grad(lambda m: (m(x) ** 2).sum())(model)
        opt.step(grads)

    step()
    ckpt = {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 1, "tag": b"v1"}
    save(ckpt, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert loaded["epoch"] == 1 and loaded["tag"] == b"v1"
    assert list(loaded["optim"]["state"]) == [0, 1]
    assert loaded["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)
    tmodel = torch.nn.Linear(3, 2)
    tmodel.load_state_dict(loaded["model"])
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-2)
    topt.load_state_dict(loaded["optim"])
    (tmodel(torch.from_numpy(np.array(x))) ** 2).sum().backward()
    topt.step()
    step()
    np.testing.assert_allclose(np.asarray(model.weight), tmodel.weight.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(np.asarray(model.bias), tmodel.bias.detach().numpy(), atol=1e-6)


NESTED = {
    "model": OrderedDict([("fc.weight", np.arange(6, dtype=np.float32).reshape(2, 3))]),
    "optim": {
        "state": {0: {"exp_avg": np.full(3, 0.5), "step": 3}, 1: {"step": 3}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "x": None}],
    },
    "layers": [np.ones(2, np.int64), [np.zeros(1, np.bool_)], ()],
    "loss": float("nan"),
    "big": -(2**70),
    "name": "run-1 ✓",
    "raw": b"\x00\xff",
    "empty": b"",
    (1, "a"): "tuple key",
    2.5: "float key",
}


@pytest.mark.parametrize("ext", [".pt", ".safetensors"])
def test_nested_checkpoint_round_trips_through_jaxmod_in_both_formats(tmp_path, ext):
    save(NESTED, tmp_path / f"c{ext}")
    out = load_exact(tmp_path / f"c{ext}")
    assert list(out) == list(NESTED) and type(out["model"]) is OrderedDict
    assert list(out["optim"]["state"]) == [0, 1]
    assert out["optim"]["param_groups"] == NESTED["optim"]["param_groups"]
    np.testing.assert_array_equal(out["optim"]["state"][0]["exp_avg"], np.full(3, 0.5))
    assert out["optim"]["state"][0]["exp_avg"].dtype == np.float64
    assert out["layers"][0].dtype == np.int64 and out["layers"][1][0].dtype == np.bool_
    assert out["layers"][2] == () and np.isnan(out["loss"]) and out["big"] == -(2**70)
    assert out["name"] == "run-1 ✓" and out["raw"] == b"\x00\xff" and out["empty"] == b""
    assert out[(1, "a")] == "tuple key" and out[2.5] == "float key"
    if ext == ".pt":
        t = torch.load(tmp_path / "c.pt", weights_only=True)
        assert t["optim"]["state"][0]["exp_avg"].dtype == torch.float64
        assert t[(1, "a")] == "tuple key" and t["big"] == -(2**70)


def test_tied_arrays_stay_one_tensor_in_torch_and_in_jaxmod(tmp_path):
    w = np.arange(4, dtype=np.float32)
    save({"embed.weight": w, "head.weight": w, "other": w.copy()}, tmp_path / "tied.pt")
    t = torch.load(tmp_path / "tied.pt", weights_only=True)
    assert t["embed.weight"].data_ptr() == t["head.weight"].data_ptr()
    assert t["embed.weight"].data_ptr() != t["other"].data_ptr()
    out = load_exact(tmp_path / "tied.pt")
    assert out["embed.weight"] is out["head.weight"]


@pytest.mark.parametrize("name", ["checkpoint", "weights.ckpt", "model.weights"])
def test_unknown_extensions_get_torch_format_as_torch_save_writes_them(tmp_path, name):
    save({"w": np.ones(2, np.float32)}, tmp_path / name)
    assert zipfile.is_zipfile(tmp_path / name)
    assert torch.load(tmp_path / name, weights_only=True)["w"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "name,what",
    [("w.npz", "numpy's .npz"), ("w.h5", "HDF5"), ("w.json", "JSON"),
     ("model.safetensors.index.json", "save_sharded")],
)  # fmt: skip
def test_names_of_other_formats_are_refused_and_nothing_is_written(tmp_path, name, what):
    with pytest.raises(ValueError, match=what):
        save({"w": np.ones(2, np.float32)}, tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_safetensors_names_keep_safetensors(tmp_path):
    import safetensors.numpy

    save({"w": np.ones(2, np.float32)}, tmp_path / "w.safetensors")
    assert not zipfile.is_zipfile(tmp_path / "w.safetensors")
    assert safetensors.numpy.load_file(tmp_path / "w.safetensors")["w"].tolist() == [1.0, 1.0]


def test_save_to_a_file_object_writes_torch_format(tmp_path):
    buf = io.BytesIO()
    save({"w": np.arange(3, dtype=np.int32)}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["w"].tolist() == [0, 1, 2]
    buf.seek(0)
    assert load_exact(buf)["w"].tolist() == [0, 1, 2]

    class Stream(io.RawIOBase):  # unseekable, like a pipe
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += bytes(b)
            return len(b)

    stream = Stream()
    save({"w": np.arange(3, dtype=np.int32)}, stream)
    assert torch.load(io.BytesIO(bytes(stream.data)), weights_only=True)["w"].tolist() == [0, 1, 2]


def test_saves_are_byte_identical_across_runs(tmp_path):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        save(NESTED, tmp_path / run / "c.pt")
    assert (tmp_path / "a" / "c.pt").read_bytes() == (tmp_path / "b" / "c.pt").read_bytes()


def test_pt_files_are_written_without_torch_installed(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises
        "import numpy as np, jaxmod\n"
        f"jaxmod.save({{'w': np.arange(3.0)}}, {str(tmp_path / 'x.pt')!r})\n"
        "assert sys.modules['torch'] is None\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert torch.load(tmp_path / "x.pt", weights_only=True)["w"].tolist() == [0.0, 1.0, 2.0]


# --------------------------------------------------------------------------------------
# generator state (typed PRNG keys) and values that cannot be saved
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".pt", ".safetensors"])
def test_generator_state_saves_and_loads_as_an_equal_typed_key(tmp_path, ext):
    gen = jaxmod.Generator(7)
    gen.next_key()
    state = gen.get_state()
    keys = {"gen": state, "split": jax.random.split(state, 3), "rbg": jax.random.key(1, impl="rbg")}
    save({"rng": keys, "model": {"w": np.ones(2, np.float32)}}, tmp_path / f"c{ext}")
    out = load_exact(tmp_path / f"c{ext}")["rng"]
    for k, v in keys.items():
        assert jax.dtypes.issubdtype(out[k].dtype, jax.dtypes.prng_key), k
        assert out[k].dtype == v.dtype and out[k].shape == v.shape, k
        assert str(jax.random.key_impl(out[k])) == str(jax.random.key_impl(v)), k
        np.testing.assert_array_equal(jax.random.key_data(out[k]), jax.random.key_data(v))
    resumed = jaxmod.Generator(0)
    resumed.set_state(out["gen"])
    np.testing.assert_array_equal(
        jax.random.normal(resumed.next_key(), (3,)), jax.random.normal(gen.next_key(), (3,))
    )
    placed = load(tmp_path / f"c{ext}", map_location=jax.devices()[0])["rng"]["gen"]
    assert placed.devices() == {jax.devices()[0]}


@pytest.mark.parametrize("ext", [".pt", ".safetensors"])
@pytest.mark.parametrize(
    "value,expected",
    [
        (object(), "cannot store object"),
        (print, "cannot store builtin_function_or_method"),
        (jaxmod.Generator(0), "generator.get_state()"),
        (np.zeros(2, ml_dtypes.int4), "dtype int4"),
        (np.array(["a"]), "dtype <U1"),
        (jaxmod.nn.Linear(2, 2), "save its state_dict() and rebuild the object"),
    ],
    ids=["object", "function", "generator", "int4", "strings", "whole_module"],
)
def test_values_that_cannot_be_saved_raise_naming_their_entry(tmp_path, ext, value, expected):
    ckpt = {"optimizer": {"state": {3: {"exp_avg": value}}}}
    with pytest.raises(TypeError, match=r"'optimizer\.state\.3\.exp_avg'") as info:
        save(ckpt, tmp_path / f"c{ext}")
    assert expected in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_deleted_array_raises_naming_its_entry(tmp_path):
    x = jnp.ones(3)
    x.delete()  # what a donated buffer looks like after a jitted step
    with pytest.raises(TypeError, match=r"'model\.w'.*deleted"):
        save({"model": {"w": x}}, tmp_path / "c.pt")


def test_load_takes_torchs_keywords(tmp_path):
    save({"w": np.ones(2, np.float32)}, tmp_path / "c.pt")
    for kw in [dict(weights_only=True), dict(weights_only=False), dict(mmap=True),
               dict(map_location="cpu", weights_only=True, encoding="utf-8")]:  # fmt: skip
        assert load(tmp_path / "c.pt", **kw)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        load_exact(tmp_path / "c.pt", nope=1)
    with pytest.raises(TypeError, match="pickle_module is not supported"):
        load_exact(tmp_path / "c.pt", pickle_module=object())


def test_weights_only_false_still_refuses_objects_and_says_why(tmp_path):
    import argparse

    import torch

    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.ones(2)}, tmp_path / "c.pt")
    with pytest.raises(jaxmod.io.UnsafeCheckpointError, match="argparse.Namespace") as info:
        load_exact(tmp_path / "c.pt", weights_only=False)
    assert "never unpickles arbitrary objects" in info.value.__notes__[0]


# --------------------------------------------------------------------------------------
# torch.load's answer: Tensors, not numpy arrays
# --------------------------------------------------------------------------------------


def _leaves(obj, path=""):
    """``{path: leaf}`` of a loaded checkpoint (dicts, lists and tuples walked)."""
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in _leaves(val, f"{path}.{key}").items()}
    if isinstance(obj, (list, tuple)):
        return {k: v for i, val in enumerate(obj) for k, v in _leaves(val, f"{path}.{i}").items()}
    return {path: obj}


def test_load_gives_tensors_where_torch_load_gives_tensors(tmp_path):
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    tm(torch.randn(5, 3)).sum().backward()
    opt.step()
    hist = [torch.ones(2), (torch.arange(3), "x")]
    ckpt = {"model": tm.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
            "best": torch.tensor(0.25), "hist": hist}  # fmt: skip
    ckpt["tied"] = ckpt["model"]["0.weight"]
    torch.save(ckpt, tmp_path / "ckpt.pt")

    ours, theirs = jaxmod.load(tmp_path / "ckpt.pt"), torch.load(tmp_path / "ckpt.pt")
    assert type(ours["model"]) is type(theirs["model"])  # OrderedDict kept
    mine, ref = _leaves(ours), _leaves(theirs)
    assert list(mine) == list(ref)
    for path, t in ref.items():
        got = mine[path]
        if not isinstance(t, torch.Tensor):
            assert got == t, path
            continue
        assert isinstance(got, jaxmod.Tensor), path
        assert got.size() == t.size() and str(got.dtype) == str(t.dtype), path
        np.testing.assert_array_equal(got.numpy(), t.numpy(), err_msg=path)
    assert ours["tied"] is ours["model"]["0.weight"]  # torch.load ties them too
    assert ours["best"].item() == 0.25 and ours["model"]["0.weight"].float().t().shape == (3, 4)

    jm = jaxmod.nn.Sequential(jaxmod.nn.Linear(3, 4), jaxmod.nn.BatchNorm1d(4))
    jm.load_state_dict(ours["model"])
    jopt = jaxmod.optim.Adam(jm.parameters(), lr=1e-3)
    jopt.load_state_dict(ours["optimizer"])
    np.testing.assert_array_equal(jm[0].weight.numpy(), tm[0].weight.detach().numpy())


def test_load_int64_that_jax_cannot_hold_raises_naming_the_entry_and_numpy_keeps_it(tmp_path):
    torch.save({"w": torch.ones(2), "ids": torch.tensor([1, 2**40])}, tmp_path / "big.pt")
    with pytest.raises(OverflowError, match=r"'ids'.*1099511627776 does not fit int32.*"
                                            r"map_location='numpy'"):  # fmt: skip
        jaxmod.load(tmp_path / "big.pt")
    kept = jaxmod.load(tmp_path / "big.pt", map_location="numpy")["ids"]
    assert kept.dtype == np.int64 and kept.tolist() == [1, 2**40]


def test_map_location_takes_torchs_function_and_dict_forms(tmp_path):
    torch.save({"w": torch.arange(4.0)}, tmp_path / "w.pt")
    seen = []

    def to_cpu(storage, location):
        seen.append(location)
        return storage

    for where in (to_cpu, lambda s, loc: None, {"cuda:0": "cpu"}, {}, torch.device("cpu")):
        w = jaxmod.load(tmp_path / "w.pt", map_location=where)["w"]
        assert isinstance(w, jaxmod.Tensor) and w.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert seen == ["cpu"]
    doubled = jaxmod.load(tmp_path / "w.pt", map_location=lambda s, loc: s * 2)["w"]
    assert doubled.tolist() == [0.0, 2.0, 4.0, 6.0]
    with pytest.raises(ValueError, match="several devices"):
        jaxmod.load(tmp_path / "w.pt", map_location={"cuda:0": "cpu", "cuda:1": "cuda:0"})
