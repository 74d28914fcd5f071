"""Hugging Face-style sharded safetensors: write, read lazily one shard at a time, fail loudly."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy

import jaxmod
from jaxmod.io import CheckpointError, load_sharded, save_sharded


def state_dict():
    rng = np.random.default_rng(0)
    return {
        "embed.weight": rng.standard_normal((64, 16)).astype(np.float32),  # 4096 bytes
        "layers.0.weight": rng.standard_normal((16, 16)).astype(ml_dtypes.bfloat16),  # 512
        "layers.0.bias": np.arange(16, dtype=np.int64),  # 128
        "layers.1.weight": jnp.ones((32, 16)),  # 2048
        "norm.scale": np.ones(16, np.float64),  # 128
        "head.weight": rng.standard_normal((48, 16)).astype(np.float32),  # 3072
    }


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture
def sharded(tmp_path):
    return save_sharded(state_dict(), tmp_path / "ckpt", max_shard_size="4KB"), tmp_path / "ckpt"


def test_save_sharded_writes_hugging_face_shards_and_index(sharded):
    index_path, directory = sharded
    assert index_path == str(directory / "model.safetensors.index.json")
    shards = sorted(n for n in os.listdir(directory) if n.endswith(".safetensors"))
    assert shards == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    sd = state_dict()
    assert list(index["weight_map"]) == list(sd)
    assert index["metadata"]["total_size"] == sum(np.asarray(v).nbytes for v in sd.values())
    for shard in shards:  # each shard is a plain safetensors file other tools read
        names = set(safetensors.numpy.load_file(directory / shard))
        assert names == {k for k, f in index["weight_map"].items() if f == shard}
        with safetensors.safe_open(directory / shard, "np") as f:
            assert f.metadata() == {"format": "pt"}  # what transformers checks for
        assert os.path.getsize(directory / shard) < 4000 + 512 or len(names) == 1


@pytest.mark.parametrize("how", ["load_sharded", "load-index", "load-directory"])
def test_sharded_checkpoint_loads_bit_exact_in_index_order(sharded, how):
    index_path, directory = sharded
    out = {
        "load_sharded": lambda: load_sharded(index_path),
        "load-index": lambda: jaxmod.load(index_path, map_location="numpy"),
        "load-directory": lambda: jaxmod.load(directory, map_location="numpy"),
    }[how]()
    sd = state_dict()
    assert list(out) == list(sd)
    for k, v in sd.items():
        assert isinstance(out[k], np.ndarray) and same_bits(out[k], v), k


def test_shards_are_read_one_at_a_time_and_only_listed_tensors_are_copied(sharded, monkeypatch):
    index_path, directory = sharded
    real = safetensors.safe_open
    events, open_now = [], []

    class Spy:
        def __init__(self, path, *a, **kw):
            self.inner, self.name = real(path, *a, **kw), os.path.basename(path)

        def __enter__(self):
            open_now.append(self.name)
            assert len(open_now) == 1, open_now  # never two shards at once
            events.append(("open", self.name))
            self.inner.__enter__()
            return self

        def __exit__(self, *exc):
            open_now.remove(self.name)
            return self.inner.__exit__(*exc)

        def get_tensor(self, name):
            events.append(("read", name))
            return self.inner.get_tensor(name)

        def __getattr__(self, attr):
            return getattr(self.inner, attr)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    load_sharded(index_path)
    opened = [name for kind, name in events if kind == "open"]
    assert opened == sorted(set(opened)) and len(opened) == 3
    assert sorted(n for kind, n in events if kind == "read") == sorted(state_dict())


def test_map_location_places_each_shard_on_the_device(sharded):
    index_path, _ = sharded
    dev = jax.devices()[0]
    out = load_sharded(index_path, map_location=dev)
    assert all(isinstance(v, jax.Array) and v.devices() == {dev} for v in out.values())
    only = load_sharded(
        index_path, sharding={"head.weight": jax.sharding.SingleDeviceSharding(dev)}
    )
    assert isinstance(only["head.weight"], jax.Array)
    assert isinstance(only["embed.weight"], np.ndarray)


def test_sharded_checkpoint_loads_into_a_model(tmp_path):
    model = jaxmod.nn.Sequential(jaxmod.nn.Linear(8, 16), jaxmod.nn.Linear(16, 4))
    path = save_sharded(model.state_dict(), tmp_path, max_shard_size=600)
    assert path.endswith(".index.json")
    clone = jaxmod.nn.Sequential(jaxmod.nn.Linear(8, 16), jaxmod.nn.Linear(16, 4))
    clone.load_state_dict(jaxmod.load(path))
    x = jnp.ones((2, 8))
    np.testing.assert_array_equal(clone(x), model(x))


def _break(directory, how):
    shard = directory / "model-00002-of-00003.safetensors"
    if how == "missing":
        shard.unlink()
    elif how == "truncated":
        shard.write_bytes(shard.read_bytes()[:-10])
    elif how == "garbage":
        shard.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    else:  # a shard that lacks a tensor its index lists
        safetensors.numpy.save_file({"x": np.ones(1, np.float32)}, shard)
    return shard.name


@pytest.mark.parametrize("how", ["missing", "truncated", "garbage", "lacks-a-tensor"])
def test_a_missing_or_corrupt_shard_raises_naming_the_shard(sharded, how):
    index_path, directory = sharded
    name = _break(directory, how)
    with pytest.raises(CheckpointError, match=name) as info:
        jaxmod.load(index_path)
    msg = str(info.value)
    if how == "missing":
        assert "missing" in msg and index_path in msg
    if how == "lacks-a-tensor":
        assert "has no tensor" in msg


@pytest.mark.parametrize(
    "index",
    [b"{not json", b'{"metadata": {}}', b'{"weight_map": {"w": "../outside.safetensors"}}',
     b'{"weight_map": {"w": "/etc/passwd"}}', b'{"weight_map": {"w": 3}}'],
    ids=["not-json", "no-weight-map", "parent-dir", "absolute", "not-a-name"],
)  # fmt: skip
def test_malformed_index_files_raise_checkpoint_error(tmp_path, index):
    path = tmp_path / "model.safetensors.index.json"
    path.write_bytes(index)
    with pytest.raises(CheckpointError, match=str(path)):
        load_sharded(path)


def test_one_shard_is_a_single_file_and_stale_shards_are_removed(tmp_path):
    sd = state_dict()
    save_sharded(sd, tmp_path, max_shard_size="4KB")
    assert len(os.listdir(tmp_path)) == 4  # 3 shards + index
    path = save_sharded(sd, tmp_path)  # 5GB default: one file, as save_pretrained writes
    assert os.listdir(tmp_path) == ["model.safetensors"] and path.endswith("model.safetensors")
    assert all(same_bits(v, sd[k]) for k, v in jaxmod.load(path, map_location="numpy").items())
    save_sharded(sd, tmp_path, max_shard_size="8KB")
    assert sorted(os.listdir(tmp_path)) == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]


@pytest.mark.parametrize(
    "size,expected", [(4096, 4096), ("4KB", 4000), ("4KiB", 4096), ("1.5 MB", 1_500_000)]
)
def test_max_shard_size_accepts_bytes_and_units(size, expected):
    from jaxmod.io.sharded import parse_size

    assert parse_size(size) == expected


def test_save_sharded_refuses_nested_checkpoints_and_bad_sizes_naming_the_entry(tmp_path):
    with pytest.raises(TypeError, match="'optim'.*jaxmod.save"):
        save_sharded({"w": np.ones(1), "optim": {"state": {}}}, tmp_path)
    with pytest.raises(TypeError, match="'rng'.*PRNG key"):
        save_sharded({"rng": jax.random.key(0)}, tmp_path)
    with pytest.raises(ValueError, match="max_shard_size"):
        save_sharded({"w": np.ones(1)}, tmp_path, max_shard_size="lots")
    assert os.listdir(tmp_path) == []
