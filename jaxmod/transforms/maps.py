"""``vmap``, ``checkpoint``, ``scan_layers`` and ``stack_modules`` over stateful modules.

Each lifts the state its call reaches with the kernel's ``discover``/``lift`` and hands
the pure function to ``jax.vmap``, ``jax.checkpoint`` or ``jax.lax.scan``; state the
function changes (BatchNorm statistics, RNG keys) is written back afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._core import lifting, rng
from jaxmod._core.cells import is_value
from jaxmod._core.graph import graph_state
from jaxmod._core.lifting import cells_of, discover, enclosed, is_stateful, lift
from jaxmod.nn.module import Module
from jaxmod.transforms.jit import unbox

__all__ = ["vmap", "checkpoint", "scan_layers", "stack_modules"]


def vmap(
    fn: Callable, in_axes: Any = 0, out_axes: Any = 0, *, axis_name: Any = None,
    axis_size: int | None = None, randomness: str = "different",
) -> Callable:  # fmt: skip
    """Vectorise ``fn`` like ``jax.vmap``, with stateful Module arguments.

    A Module argument mapped over axis 0 (``in_axes`` entry 0) is a stacked ensemble:
    every parameter has a leading ensemble axis (build one with :func:`stack_modules`).
    ``None`` shares the module across the batch (e.g. per-example gradients:
    ``vmap(grad(loss), in_axes=(None, 0, 0))``). State changed inside (BatchNorm
    statistics) is written back, keeping its axis. With ``randomness="different"`` each
    lane draws its own dropout masks from the global generator; ``"same"`` shares one key.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"vmap in_axes has {len(axes)} entries for {len(args)} arguments")
        cells: list[Any] = []
        cell_axes: list[Any] = []
        seen: set[int] = set()
        plain: list[Any] = []
        plain_axes: list[Any] = []
        slots: list[Any] = []
        for a, ax in zip(args, axes):
            if is_stateful(a):
                for c in enclosed(v for v in cells_of(a) if not getattr(v, "_jaxmod_readonly", 0)):
                    if id(c) not in seen:
                        seen.add(id(c))
                        cells.append(c)
                        cell_axes.append(ax)
                slots.append(("state", a))
            else:
                slots.append(("plain", len(plain)))
                plain.append(a)
                plain_axes.append(ax)
        gen = rng.default_generator
        mapped = [i for i, ax in enumerate(cell_axes) if ax is not None]

        def call(state_vals: list, plain_vals: list) -> Any:
            out = unbox(fn(*(a if kind == "state" else plain_vals[a] for kind, a in slots)))
            for i, ax in enumerate(cell_axes):
                if ax is None and cells[i]._value is not state_vals[i]:
                    raise ValueError(
                        "jaxmod.vmap: the function updated state of an argument that is "
                        "shared across the batch (in_axes None), which would need one value "
                        "per lane. Map that module over an axis (an ensemble built with "
                        "jaxmod.stack_modules), or call it in eval mode."
                    )
            return out

        keyed = [*cells, gen._key]
        run = lift(call, keyed)

        def body(state_vals: list, key: Any, plain_vals: list) -> Any:
            out, new = run([*state_vals, key], [], list(state_vals), plain_vals)
            return out, [new[i] for i in mapped]

        size = axis_size or _axis_size(plain, plain_axes, cells, cell_axes)
        base = gen.next_key()
        keys = jax.random.split(base, size) if randomness == "different" else base
        out, new = jax.vmap(
            body,
            in_axes=(list(cell_axes), 0 if randomness == "different" else None, list(plain_axes)),
            out_axes=(out_axes, [cell_axes[i] for i in mapped]),
            axis_name=axis_name,
            axis_size=size,
        )([c._value for c in cells], keys, plain)
        for i, val in zip(mapped, new):
            cells[i]._value = val
        return out

    return wrapper


def _axis_size(plain: list, plain_axes: list, cells: list, cell_axes: list) -> int | None:
    for a, ax in zip(plain, plain_axes):
        if ax is not None:
            leaves = jax.tree_util.tree_leaves(a)
            if leaves:
                return jnp.shape(leaves[0])[ax]
    for c, ax in zip(cells, cell_axes):
        if ax is not None:
            return jnp.shape(jax.tree_util.tree_leaves(c._value)[0])[ax]
    return None


def stack_modules(modules: Sequence[Module]) -> Module:
    """Stack identically-structured modules into one ensemble module (leading axis)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *modules)


def checkpoint(fn: Callable, *, policy: Any = None, prevent_cse: bool = True) -> Callable:
    """Rematerialise ``fn`` (a function or a Module) in the backward pass.

    Activations inside are recomputed during differentiation instead of stored, as
    ``torch.utils.checkpoint`` does. State rules are those of :func:`jaxmod.jit`:
    parameters reached through the arguments, the Module or the function's closure are
    lifted, not baked in. Unlike torch, the forward runs once: stateful layers inside
    (BatchNorm) update their statistics once (torch's recomputation updates them twice).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        roots = [*lifting.call_roots(fn, args, kwargs), ("generator", rng.default_generator)]
        found = discover(roots, lifting.reachable_names(fn))
        cells, ro = enclosed(found.cells), enclosed(found.ro)
        # Only array arguments go through jax.checkpoint; modules, flags and numbers reach
        # the function as they are (a module passed through would be a rebuilt copy whose
        # BatchNorm updates were lost; a flag would be traced).
        flat, tdef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=_holds_state)
        traced = [i for i, x in enumerate(flat) if is_value(x) and not is_stateful(x)]

        def call(vals: list, ro_vals: list, arrays: list) -> Any:
            leaves = list(flat)
            for i, a in zip(traced, arrays):
                leaves[i] = a
            a, k = jax.tree_util.tree_unflatten(tdef, leaves)
            return lift(lambda: unbox(fn(*a, **k)), cells, ro)(vals, ro_vals)

        out, new = jax.checkpoint(call, policy=policy, prevent_cse=prevent_cse)(
            [c._value for c in cells], [c._value for c in ro], [flat[i] for i in traced]
        )
        for c, val in zip(cells, new):
            c._value = val
        return out

    return wrapper


def _holds_state(x: Any) -> bool:
    return is_stateful(x) or lifting.searchable(x)


def scan_layers(layers: Sequence[Module], x: Any, *args: Any, **kwargs: Any) -> Any:
    """Apply identical layers in sequence with ``jax.lax.scan`` (constant compile time).

    ``scan_layers(self.blocks, x)`` equals ``for b in self.blocks: x = b(x, *args)``,
    but traces one layer instead of all of them, so a 100-layer model compiles as
    fast as a 1-layer one. The layers must share one structure (same classes, shapes
    and settings). Buffer updates made by the layers are written back to each.
    """
    layers = list(layers)
    if not layers:
        return x
    first = layers[0]
    cells0, gdef0 = graph_state(first)
    for i, layer in enumerate(layers[1:], 1):
        if graph_state(layer)[1] != gdef0:
            raise ValueError(
                f"scan_layers needs layers of one structure; layer {i} ({type(layer).__name__}) "
                f"differs from layer 0 ({type(first).__name__})"
            )
    per_layer = [graph_state(m)[0] for m in layers]
    stacked = [jnp.stack([cs[j]._value for cs in per_layer]) for j in range(len(cells0))]
    gen = rng.default_generator
    run = lift(lambda h: first(h, *args, **kwargs), [*cells0, gen._key])

    written: list[int] = []  # the cells a layer's forward wrote (buffers), found by tracing

    def body(carry: Any, layer_vals: list) -> Any:
        h, key = carry
        h, new = run([*layer_vals, key], [], h)
        # a cell the forward did not write comes back as its input: stacking it as an output
        # would copy every parameter of every layer (and slice it out again) for nothing
        written[:] = [j for j, (v, n) in enumerate(zip(layer_vals, new)) if n is not v]
        return (h, new[-1]), [new[j] for j in written]

    (out, key), new = jax.lax.scan(body, (x, gen._key._value), stacked)
    gen._key._value = key
    for j, vals in zip(written, new):
        for i, cs in enumerate(per_layer):
            cs[j]._value = vals[i]
    return out
