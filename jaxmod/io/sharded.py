"""Hugging Face-style sharded safetensors: ``model.safetensors.index.json`` plus shards.

The index is the JSON file Hugging Face's ``save_pretrained`` writes::

    {"metadata": {"total_size": 123456}, "weight_map": {"tensor name": "shard file", ...}}

with shards named ``model-00001-of-00003.safetensors`` beside it. Loading reads one shard
at a time through ``safetensors.safe_open`` (a memory map; only the tensors the index lists
are copied out), places them (``map_location``/``sharding``) and closes the shard before
opening the next, so with a device placement the host holds at most one shard.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxmod.io._common import (
    ST_CODES,
    CheckpointError,
    PathLike,
    atomic_write,
    is_arraylike,
    placement,
    unwrap,
)
from jaxmod.io.safetensors import Flattener, _write_safetensors, read_tensors

INDEX_SUFFIX = ".safetensors.index.json"
_UNITS = {
    "": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_MAX_INDEX = 100 << 20


def parse_size(size: int | str) -> int:
    """Bytes from an int or a string such as ``"5GB"`` (10**9) or ``"500MiB"`` (2**20)."""
    if isinstance(size, int) and not isinstance(size, bool):
        n = size
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(size))
        if m is None or m[2].lower() not in _UNITS:
            raise ValueError(f"max_shard_size={size!r}: expected bytes or e.g. '5GB', '500MiB'")
        n = int(float(m[1]) * _UNITS[m[2].lower()])
    if n <= 0:
        raise ValueError(f"max_shard_size={size!r} must be positive")
    return n


def save_sharded(
    state_dict: Mapping[str, Any],
    directory: PathLike,
    max_shard_size: int | str = "5GB",
    *,
    prefix: str = "model",
) -> str:
    """Save a flat state_dict as Hugging Face-style sharded safetensors files.

    Tensors are packed into shards in the state_dict's order, a new shard starting when the
    next tensor would take the current one over ``max_shard_size`` (a tensor larger than
    that gets a shard of its own). Each shard is written atomically, then the index, so a
    crash leaves the previous index pointing at complete files; shards of an earlier save
    with the same ``prefix`` that the new index does not list are removed afterwards. As in
    Hugging Face's ``save_pretrained``, a state_dict that fits in one shard is written as a
    single ``{prefix}.safetensors`` without an index.

    Args:
        state_dict: ``{name: array}`` (numpy, JAX, jaxmod ``Parameter``/``Buffer``).
        directory: created if missing.
        max_shard_size: bytes, or a string such as ``"5GB"`` (decimal) or ``"2GiB"``.
        prefix: file names: ``{prefix}-00001-of-00002.safetensors`` and
            ``{prefix}.safetensors.index.json``.

    Returns:
        The path to pass to :func:`load_sharded` or ``jaxmod.load``: the index file, or
        the single safetensors file.

    Raises:
        TypeError: ``state_dict`` is not a flat ``{str: array}`` mapping (save nested
            checkpoints with ``jaxmod.save``), or an array's dtype cannot be stored; the
            message names the key.
    """
    limit = parse_size(max_shard_size)
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save_sharded: expected a state_dict, not {type(state_dict).__name__}")
    flat = Flattener(ST_CODES, "safetensors")
    for k, v in state_dict.items():
        if not isinstance(k, str) or not is_arraylike(unwrap(v)):
            raise TypeError(
                f"save_sharded: entry {k!r} is not a str name with an array value; it saves "
                "flat state_dicts ({name: array}), save nested checkpoints with jaxmod.save"
            )
        if flat.tensor(k, unwrap(v))["@"] != "tensor":
            raise TypeError(f"save_sharded: entry {k!r} is a PRNG key; save it with jaxmod.save")
    shards: list[list[str]] = [[]]
    used = 0
    for name, a in flat.tensors.items():
        if shards[-1] and used + a.nbytes > limit:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += a.nbytes
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    n = len(shards)
    files = [f"{prefix}.safetensors"] if n == 1 else [
        f"{prefix}-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)
    ]  # fmt: skip
    for file, names in zip(files, shards):
        tensors = {k: flat.tensors[k] for k in names}
        atomic_write(
            os.path.join(directory, file),
            lambda tmp, t=tensors: _write_safetensors(tmp, t, {"format": "pt"}),
        )
    index_path = os.path.join(directory, prefix + INDEX_SUFFIX)
    if n > 1:
        index = {
            "metadata": {"total_size": sum(a.nbytes for a in flat.tensors.values())},
            "weight_map": {k: file for file, names in zip(files, shards) for k in names},
        }
        raw = json.dumps(index, indent=2).encode()
        atomic_write(index_path, lambda tmp: _write_bytes(tmp, raw))
    stale = re.compile(rf"{re.escape(prefix)}(-\d{{5}}-of-\d{{5}})?\.safetensors")
    for old in os.listdir(directory):
        if (stale.fullmatch(old) and old not in files) or (n == 1 and old == prefix + INDEX_SUFFIX):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, old))
    return index_path if n > 1 else os.path.join(directory, files[0])


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def find_index(directory: str) -> str | None:
    """The one ``*.safetensors.index.json`` in ``directory``, if there is exactly one."""
    found = sorted(n for n in os.listdir(directory) if n.endswith(INDEX_SUFFIX))
    return os.path.join(directory, found[0]) if len(found) == 1 else None


def _read_index(path: str) -> dict[str, str]:
    try:
        if os.path.getsize(path) > _MAX_INDEX:
            raise CheckpointError(f"{path}: index file larger than {_MAX_INDEX >> 20} MiB")
        with open(path, "rb") as f:
            index = json.loads(f.read())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors index (invalid JSON: {e})") from e
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise CheckpointError(f'{path}: not a safetensors index (no "weight_map" object)')
    for name, shard in weight_map.items():
        if (
            not isinstance(shard, str)
            or os.path.basename(shard) != shard
            or shard in ("", ".", "..")
            or not shard.endswith(".safetensors")
        ):
            raise CheckpointError(
                f"{path}: tensor {name!r} maps to {shard!r}, which is not a .safetensors file "
                "name in the index's directory"
            )
    return weight_map


def load_sharded(
    path: PathLike, map_location: Any = None, *, sharding: Any = None
) -> dict[str, Any]:
    """Load Hugging Face-style sharded safetensors (an index file plus its shards).

    Shards are read one at a time: each is opened with ``safetensors.safe_open`` (memory
    mapped), the tensors the index assigns to it are copied out and placed, and it is
    closed before the next one is opened.

    Args:
        path: the ``*.safetensors.index.json`` file, or a directory holding exactly one
            (or, without an index, a single ``model.safetensors``).
        map_location: as for ``jaxmod.load``: ``None``/``"cpu"`` give numpy arrays; a
            ``jax.Device``, ``"cuda[:N]"``, ``"tpu"`` or a ``Sharding`` give JAX arrays
            placed shard by shard.
        sharding: a ``Sharding`` for every tensor, or ``{name: Sharding}``.

    Returns:
        ``{name: array}`` in the index's order.

    Raises:
        CheckpointError: the index is malformed, or a shard is missing, corrupt, or lacks a
            tensor the index assigns to it; the message names the shard.
    """
    place = placement(map_location, sharding)
    path = os.fspath(path)
    if os.path.isdir(path):
        index = find_index(path)
        if index is None:
            single = os.path.join(path, "model.safetensors")
            if os.path.isfile(single):
                arrays, _ = read_tensors(single, single)
                return {k: place(k, a) if place else a for k, a in arrays.items()}
            raise CheckpointError(f"{path}: no *{INDEX_SUFFIX} (or model.safetensors) in it")
        path = index
    weight_map = _read_index(path)
    directory = os.path.dirname(os.path.abspath(path))
    by_shard: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        by_shard.setdefault(shard, []).append(name)
    out: dict[str, Any] = {}
    for shard, names in by_shard.items():
        shard_path = os.path.join(directory, shard)
        if not os.path.isfile(shard_path):
            raise CheckpointError(
                f"{path}: shard {shard!r} is missing ({len(names)} tensor(s) the index assigns "
                f"to it, e.g. {names[0]!r}); was the download interrupted?"
            )
        arrays: dict[str, np.ndarray] = read_tensors(shard_path, f"shard {shard_path}", names)[0]
        for name in names:
            out[name] = place(name, arrays[name]) if place else arrays[name]
        del arrays  # host copies of this shard go before the next one is read
    return {name: out[name] for name in weight_map}
