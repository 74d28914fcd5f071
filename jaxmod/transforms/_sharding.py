"""Pinning state to its placement across jitted calls (multi-device state)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec, Sharding

__all__ = ["state_shardings", "arg_sharding", "place"]


def place(value: Any, sharding: Sharding) -> Any:
    """``value`` on ``sharding``; across processes every process must hold the same value."""
    if sharding.is_fully_addressable:
        return jax.device_put(value, sharding)
    if jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key):
        data = place(jax.random.key_data(value), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(value))
    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


_ArrayImpl = type(jnp.zeros(()))  # concrete arrays (not tracers)


def state_shardings(mut: Sequence[Any], ro: Sequence[Any], dyn: Any = ()) -> Any:
    """Shardings to pin state to (inputs and outputs alike), or None on one device.

    Only when some state spans several devices: then each state array keeps its own
    sharding across calls (XLA's partitioner may not gather or reshard it), and state
    not committed to any device (a fresh RNG key, a step counter) is replicated over the
    mesh now, where the first call would leave it anyway (placing it inside the call
    would change its type and retrace on the second call). Runs once per plan; returns
    ``(key, (mut_trees, ro_trees))`` with a hashable ``key``. On one device, state that is
    on no particular device is committed where other state or the inputs ``dyn`` are
    (see :func:`_commit_loose`), and None is returned.
    """
    boxes = (*mut, *ro)
    mesh = None
    device = None  # a device some state is committed to (single-device case)
    loose_seen = False
    for v in boxes:
        val = v._value
        for a in (val,) if type(val) is _ArrayImpl else jax.tree_util.tree_leaves(val):
            if type(a) is _ArrayImpl:
                if not a.committed:
                    loose_seen = True
                    continue
                s = a.sharding
                if type(s) is NamedSharding and len(s.device_set) > 1:
                    mesh = s.mesh
                    break
                if device is None and len(s.device_set) == 1:
                    device = next(iter(s.device_set))
        if mesh is not None:
            break
    if mesh is None:
        if device is None and loose_seen:  # committed inputs commit the outputs too
            for a in jax.tree_util.tree_leaves(dyn):
                if type(a) is _ArrayImpl and a.committed and len(a.sharding.device_set) == 1:
                    device = next(iter(a.sharding.device_set))
                    break
        if device is not None and loose_seen:
            _commit_loose(boxes, device)
        return None
    leaves = [jax.tree_util.tree_flatten(v._value) for v in boxes]
    replicated = NamedSharding(mesh, PartitionSpec())

    def loose(a: Any) -> bool:
        return isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer) and not a.committed

    flat = []
    for v, (ls, tdef) in zip(boxes, leaves):
        if any(loose(a) for a in ls):
            ls = [place(a, replicated) if loose(a) else a for a in ls]
            v._value = jax.tree_util.tree_unflatten(tdef, ls)
        sh = tuple(
            None if not isinstance(a, jax.Array) or isinstance(a, jax.core.Tracer)
            else a.sharding
            for a in ls
        )  # fmt: skip
        flat.append((tdef, sh))
    trees = [jax.tree_util.tree_unflatten(tdef, sh) for tdef, sh in flat]
    n = len(mut)
    return tuple(flat), (trees[:n], trees[n:])


def _commit_loose(boxes: Sequence[Any], device: Any) -> None:
    """Commit the state arrays that are on no particular device to ``device``.

    jax.jit's cache tells committed from uncommitted inputs, and a step's outputs are
    committed once any input is: state mixing both (parameters placed by ``model.to`` or
    ``load_state_dict``, optimizer moments fresh from ``jnp.zeros``) would compile the step
    a second time on its second call. Committing every state array on the first call makes
    the first and every later call alike.
    """
    for v in boxes:
        if getattr(v, "_jaxmod_readonly", False):
            continue  # rebuilt by its owner on every change (hyper-parameters)
        leaves, tdef = jax.tree_util.tree_flatten(v._value)
        if any(type(a) is _ArrayImpl and not a.committed for a in leaves):
            leaves = [jax.device_put(a, device) if type(a) is _ArrayImpl and not a.committed
                      else a for a in leaves]  # fmt: skip
            v._value = jax.tree_util.tree_unflatten(tdef, leaves)


def arg_sharding(user_in: Any, s: tuple) -> Any:
    """The user's ``in_shardings`` entry for one non-state positional argument."""
    if isinstance(user_in, jax.sharding.Sharding):
        return user_in
    i = s[1]
    sh = user_in[i] if i < len(user_in) else None
    if s[0] == "nested" and sh is not None and not isinstance(sh, jax.sharding.Sharding):
        raise ValueError(
            f"jaxmod.jit: in_shardings[{i}] must be None or one Sharding: that argument holds "
            "Modules or optimizers, whose placement comes from their parameters"
        )
    return sh
