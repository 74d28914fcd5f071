"""Multi-device placement on JAX's SPMD engine: meshes, sharding rules, strategies.

jaxmod has no communication layer of its own. A model is distributed by giving each
parameter a ``jax.sharding.NamedSharding`` over a ``jax.sharding.Mesh``; a step compiled
with :func:`jaxmod.jit` then runs on every device of the mesh, and XLA's partitioner
inserts the collectives (all-reduce of gradients for data parallelism, all-gather /
reduce-scatter for FSDP, the matmul collectives of tensor parallelism). ``jaxmod.jit``
keeps every state array on the sharding it was given.

Strategies (each places the model in place and returns it):

* :func:`replicate`: data parallel (torch's DDP): every device holds all parameters;
  shard the batch with :func:`shard_batch`.
* :func:`fully_shard`: FSDP / ZeRO-3 style: each parameter is split along its largest
  dimension divisible by the mesh axis.
* :func:`shard`: rules from parameter-name regexes to ``PartitionSpec``\\ s, for tensor
  parallelism (Megatron-style column/row splits) or any hand-made layout.

torch's process-group calls (``is_initialized``, ``get_rank``, ``get_world_size``,
``barrier``, ``all_reduce``, ``init_process_group(world_size=1)``, ...) answer for one
process (see :mod:`jaxmod.nn._process_group`), so DDP-ready scripts run unchanged.

Multi-host: call ``jax.distributed.initialize(...)`` first in every process; the mesh
then spans the devices of all processes, and the same code runs in each (see
``docs/distributed.md``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec, Sharding

from jaxmod._core import state
from jaxmod.nn import _process_group
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Variable
from jaxmod.transforms._sharding import place

__all__ = [
    *_process_group.__all__,
    "make_mesh",
    "shard",
    "replicate",
    "fully_shard",
    "fsdp_spec",
    "shard_batch",
    "placement",
    "Rules",
]

P = PartitionSpec

globals().update({n: getattr(_process_group, n) for n in _process_group.__all__})

#: Sharding rules: ``{pattern: spec}`` or a sequence of ``(pattern, spec)`` pairs, where
#: ``spec`` is a ``PartitionSpec``, a tuple of mesh axis names/None, a ``Sharding`` or
#: ``None`` (replicated).
Rules = Mapping[str, Any] | Sequence[tuple[str, Any]]


def make_mesh(
    shape: Sequence[int], axis_names: Sequence[str], *, devices: Sequence[Any] | None = None
) -> Mesh:
    """A device mesh with *Auto* axes: XLA's partitioner chooses intermediate shardings.

    Like ``jax.make_mesh`` (which defaults to *Explicit* axes, where every sharded
    contraction needs an ``out_sharding`` annotation in the model code). The product of
    ``shape`` must equal the number of devices (all of ``jax.devices()`` by default, which
    spans every process after ``jax.distributed.initialize``).

    Example:
        >>> mesh = make_mesh((2, 4), ("data", "model"))
    """
    shape, axis_names = tuple(shape), tuple(axis_names)
    devs = list(jax.devices() if devices is None else devices)
    if math.prod(shape) != len(devs):
        raise ValueError(
            f"make_mesh: shape {shape} needs {math.prod(shape)} devices, but {len(devs)} are "
            f"given ({len(jax.devices())} visible; on one CPU machine set "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N before importing jax)"
        )
    auto = (AxisType.Auto,) * len(shape)
    return jax.make_mesh(shape, axis_names, axis_types=auto, devices=devs)


def _auto(mesh: Mesh) -> Mesh:
    """``mesh`` with Auto axes (jaxmod models are written without sharding annotations)."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"expected a jax.sharding.Mesh, got {type(mesh).__name__}")
    types = getattr(mesh, "axis_types", None)
    if types is None or all(t == AxisType.Auto for t in types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(types))


def _axis_size(mesh: Mesh, entry: Any) -> int:
    if entry is None:
        return 1
    names = entry if isinstance(entry, tuple) else (entry,)
    for n in names:
        if n not in mesh.shape:
            raise ValueError(f"mesh axis {n!r} is not in the mesh {dict(mesh.shape)}")
    return math.prod(mesh.shape[n] for n in names)


def _check(name: str, shape: tuple[int, ...], spec: PartitionSpec, mesh: Mesh) -> None:
    shape = tuple(shape)  # a box's torch.Size prints as a plain shape here, like JAX's
    if len(spec) > len(shape):
        raise ValueError(
            f"cannot shard {name!r} of shape {shape} with {spec}: the spec has {len(spec)} "
            f"entries for {len(shape)} dimensions"
        )
    for dim, entry in enumerate(spec):
        size = _axis_size(mesh, entry)
        if shape[dim] % size:
            raise ValueError(
                f"cannot shard {name!r} of shape {shape} with {spec}: dimension {dim} "
                f"(size {shape[dim]}) is not divisible by mesh axis {entry!r} of size {size} "
                f"(mesh {dict(mesh.shape)})"
            )


_place = place


def _named_state(model: Module) -> Iterable[tuple[str, Variable]]:
    seen: set[int] = set()
    for name, box in (*model.named_parameters(), *model.named_buffers()):
        if id(box) not in seen and box._value is not None:
            seen.add(id(box))
            yield name, box


def _as_spec(spec: Any) -> PartitionSpec:
    if spec is None:
        return P()
    if isinstance(spec, PartitionSpec):
        return spec
    if isinstance(spec, (tuple, list)):
        return P(*spec)
    if isinstance(spec, str):
        return P(spec)
    raise TypeError(f"a sharding rule must map to a PartitionSpec, not {spec!r}")


def _apply(model: Module, mesh: Mesh, spec_of: Any) -> Module:
    if not isinstance(model, Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    plans = []
    for name, box in _named_state(model):
        target = spec_of(name, box)
        if isinstance(target, Sharding) and not isinstance(target, NamedSharding):
            plans.append((box, target))
            continue
        if isinstance(target, NamedSharding):
            target_mesh, spec = _auto(target.mesh), target.spec
        else:
            target_mesh, spec = mesh, _as_spec(target)
        _check(name, box.shape, spec, target_mesh)  # every check before any move
        plans.append((box, NamedSharding(target_mesh, spec)))
    for box, sharding in plans:
        box._value = _place(box._value, sharding)
    state.bump()  # compiled steps pin state shardings: re-plan
    return model


def shard(model: Module, mesh: Mesh, rules: Rules, default: Any = None) -> Module:
    """Place each parameter and buffer by the first rule whose pattern matches its name.

    Patterns are regular expressions matched with ``re.fullmatch`` against the qualified
    name (``"layers.0.attn.qkv.weight"``), in order; the first match wins. A name no rule
    matches gets ``default``: replicated when it is None, else a spec, or a function
    ``default(name, shape) -> spec`` (e.g. FSDP over the data axis for everything the
    tensor-parallel rules leave out). Specs are ``PartitionSpec``\\ s over the mesh's axis
    names.

    Args:
        model: the module, placed in place.
        mesh: the device mesh (Explicit axes are treated as Auto).
        rules: ``{pattern: spec}`` or ``[(pattern, spec), ...]``.
        default: the spec of names no rule matches (see above).

    Returns:
        ``model``.

    Raises:
        ValueError: a spec does not divide a dimension, or names an unknown mesh axis
            (the message names the parameter, its shape and the axis sizes); nothing is
            moved then.

    Example (Megatron-style tensor parallelism of an MLP, torch weight layout
    ``(out, in)``)::

        shard(model, mesh, {
            r"hidden\\.weight": P("model", None),   # column parallel
            r"hidden\\.bias": P("model"),
            r"output\\.weight": P(None, "model"),   # row parallel
        })
    """
    mesh = _auto(mesh)
    items = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    compiled = [(re.compile(pat), spec) for pat, spec in items]

    def spec_of(name: str, box: Variable) -> Any:
        for pat, spec in compiled:
            if pat.fullmatch(name):
                return spec
        return default(name, box.shape) if callable(default) else default

    return _apply(model, mesh, spec_of)


def replicate(model: Module, mesh: Mesh) -> Module:
    """Data parallelism (torch DDP): every device of ``mesh`` holds every parameter.

    Shard the inputs over the data axis with :func:`shard_batch`; XLA then averages the
    gradients across devices (an all-reduce) inside the compiled step.
    """
    return _apply(model, _auto(mesh), lambda name, box: P())


def fully_shard(model: Module, mesh: Mesh, axis: str | tuple[str, ...] = "data") -> Module:
    """FSDP / ZeRO-3 style: split each parameter's largest divisible dimension over ``axis``.

    For every parameter and buffer, the largest dimension whose size is divisible by the
    size of mesh axis ``axis`` (the first such on ties) is sharded over it; arrays with no
    such dimension (small biases, scalars) are replicated. Inside a compiled step XLA
    all-gathers weights where they are used and reduce-scatters gradients, as torch's
    ``fully_shard`` does by hand. Use it with a batch sharded over the same axis.
    """
    mesh = _auto(mesh)
    return _apply(model, mesh, lambda name, box: fsdp_spec(box.shape, mesh, axis))


def fsdp_spec(
    shape: Sequence[int], mesh: Mesh, axis: str | tuple[str, ...] = "data"
) -> PartitionSpec:
    """The spec :func:`fully_shard` gives an array of ``shape``: its largest dimension
    divisible by the size of ``axis`` (the first on ties) split over ``axis``, or
    replicated (``P()``) when no dimension divides.

    Use it as ``shard(..., default=lambda name, shape: fsdp_spec(shape, mesh))`` to
    combine tensor-parallel rules with FSDP for the remaining parameters.
    """
    n = _axis_size(_auto(mesh), axis)
    dims = [d for d in range(len(shape)) if shape[d] % n == 0 and shape[d] >= n]
    if not dims:
        return P()
    d = max(dims, key=lambda i: (shape[i], -i))
    return P(*([None] * d + [axis]))


def shard_batch(x: Any, mesh: Mesh, axis: str | tuple[str, ...] = "data") -> Any:
    """Split a batch (a pytree of arrays) along dimension 0 over mesh axis ``axis``.

    Scalars are replicated. With several processes (after ``jax.distributed.initialize``)
    each process passes its own part of the batch, and the result is the global batch
    made of all processes' parts in process order
    (``jax.make_array_from_process_local_data``).

    Raises:
        ValueError: dimension 0 of an array is not divisible by the axis size.
    """
    mesh = _auto(mesh)
    n = _axis_size(mesh, axis)
    multi = jax.process_count() > 1

    def one(path: Any, a: Any) -> Any:
        a = a._value if isinstance(a, Variable) else a
        if np.ndim(a) == 0:
            return _place(a, NamedSharding(mesh, P()))
        sharding = NamedSharding(mesh, P(axis))
        if multi and not sharding.is_fully_addressable:
            return jax.make_array_from_process_local_data(sharding, np.asarray(a))
        if np.shape(a)[0] % n:
            where = jax.tree_util.keystr(path) or "the batch"
            raise ValueError(
                f"shard_batch: cannot split {where} of shape {np.shape(a)} over mesh axis "
                f"{axis!r} of size {n}: dimension 0 is not divisible by {n}"
            )
        return jax.device_put(a, sharding)

    return jax.tree_util.tree_map_with_path(one, x, is_leaf=lambda v: isinstance(v, Variable))


def placement(model: Module) -> dict[str, PartitionSpec | Sharding]:
    """Where each parameter and buffer lives: its ``PartitionSpec`` (or its Sharding).

    Example:
        >>> placement(model)
        {'hidden.weight': PartitionSpec('model', None), 'hidden.bias': PartitionSpec()}
    """
    out: dict[str, Any] = {}
    for name, box in _named_state(model):
        s = getattr(box._value, "sharding", None)
        out[name] = s.spec if isinstance(s, NamedSharding) else s
    return out
