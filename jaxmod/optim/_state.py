"""Optimizer state layouts: one optax state per group (lockstep) or per parameter.

A group whose parameters have all been stepped at every step keeps *one* optax state over
the list of its parameters (what a hand-written optax step holds); once a step skips some,
each parameter gets its own. Both are stored flat in :class:`_StateBox` cells and shown in
torch's layout by :class:`_StateView` and :func:`state_dict`. :func:`init_group_state`
picks a group's layout when the group is created or loaded; :func:`state_of` reads one
parameter's state from either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmod._tensor.base import new as _tensor_new
from jaxmod.nn.parameter import Parameter, Variable


def _to_jax(x: Any, dtype: Any = None) -> Any:
    """Convert a saved value (numpy, jax, Python scalar, torch tensor) to a jax array."""
    if type(x).__module__.startswith("torch"):
        # copy: torch updates its state tensors in place, and jax may alias numpy memory
        x = np.asarray(x.detach().cpu()).copy()
    return jnp.array(x, dtype=dtype, copy=True)


def _copied(tree: Any) -> Any:
    """``tree`` with every leaf in a buffer of its own: optax inits may reuse one zeros
    array for several moments, split states share scalars, and jaxmod.jit donates every
    state leaf."""
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def _set_counts(tree: Any, step: int) -> Any:
    """Set every optax ``count`` field in ``tree`` to ``step`` (after loading torch state)."""
    if hasattr(tree, "_fields"):
        kids = [_set_counts(getattr(tree, f), step) for f in tree._fields]
        new = type(tree)(*kids)
        if "count" in tree._fields and tree.count is not None:
            new = new._replace(count=jnp.asarray(step, jnp.result_type(tree.count)))
        return new
    if isinstance(tree, Mapping):
        return type(tree)((k, _set_counts(v, step)) for k, v in tree.items())
    if isinstance(tree, (tuple, list)):
        return type(tree)(_set_counts(v, step) for v in tree)
    return tree


def _scalar_mask(tx: optax.GradientTransformation) -> list[bool]:
    """For each leaf of one parameter's optax state: is it a per-step scalar (a count)?"""
    per_param = jax.eval_shape(tx.init, jax.ShapeDtypeStruct((2,), jnp.float32))
    return [jnp.shape(leaf) == () for leaf in jax.tree_util.tree_leaves(per_param)]


def _with_scalars(state: dict, source: dict, mask: list[bool]) -> dict:
    """``state`` with its scalar leaves (step counts) taken from ``source``."""
    leaves, tdef = jax.tree_util.tree_flatten(state["opt"])
    src = jax.tree_util.tree_leaves(source["opt"])
    leaves = [s if m else x for x, s, m in zip(leaves, src, mask)]
    return {"step": source["step"], "opt": jax.tree_util.tree_unflatten(tdef, leaves)}


class _Layout:
    """How a group's state (one optax state over the list of its parameters) maps to the
    per-parameter states torch reports.

    Both are flattened ``{"step": ..., "opt": optax_state}`` trees. Every leaf ("slot") of
    one parameter's state is either a per-step scalar (the step and optax's counts,
    shared by the whole group) or a per-parameter array; in the group's leaves a scalar
    slot appears once and an array slot once per parameter, in parameter order (how optax
    flattens a state whose arrays mirror the params list).
    """

    __slots__ = ("n", "mask", "param_def")

    def __init__(self, n: int, mask: list[bool], param_def: Any) -> None:
        self.n, self.mask, self.param_def = n, mask, param_def

    def split(self, leaves: list) -> list[Any]:
        """The group's flat leaves -> one structured state per parameter."""
        n, out, i = self.n, [[] for _ in range(self.n)], 0
        for scalar in self.mask:
            if scalar:
                for o in out:
                    o.append(leaves[i])
                i += 1
            else:
                for k, o in enumerate(out):
                    o.append(leaves[i + k])
                i += n
        return [jax.tree_util.tree_unflatten(self.param_def, o) for o in out]

    def merge(self, states: list[Any]) -> list:
        """Per-parameter states -> the group's flat leaves (scalars from the first)."""
        per = [self.param_def.flatten_up_to(s) for s in states]
        out: list = []
        for j, scalar in enumerate(self.mask):
            out.extend([per[0][j]] if scalar else [p[j] for p in per])
        return out


def _layout(tx: optax.GradientTransformation, values: list, group_leaves: list) -> _Layout | None:
    """The :class:`_Layout` of ``tx``'s state over ``values``, or None when its group state
    is not slot-wise per-parameter (then the group keeps one state per parameter)."""
    one = jax.eval_shape(
        lambda: {"step": jnp.zeros((), jnp.int32), "opt": tx.init(jnp.zeros((2,)))}
    )
    leaves, param_def = jax.tree_util.tree_flatten(one)
    mask = [jnp.shape(x) == () for x in leaves]
    n = len(values)
    expected: list = []
    for scalar in mask:
        expected.extend([()] if scalar else [jnp.shape(v) for v in values])
    if [jnp.shape(x) for x in group_leaves] != expected:
        return None
    return _Layout(n, mask, param_def)


def _get_path(tree: Any, path: tuple) -> Any:
    for k in path:
        tree = tree[k] if isinstance(k, int) or isinstance(tree, Mapping) else getattr(tree, k)
    return tree


def _set_path(tree: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    k, rest = path[0], path[1:]
    if isinstance(tree, Mapping):
        new = type(tree)(tree)  # keep OrderedDict (optax's named_chain): same treedef
        new[k] = _set_path(tree[k], rest, value)
        return new
    if isinstance(k, int):
        items = list(tree)
        items[k] = _set_path(items[k], rest, value)
        return type(tree)(items) if not hasattr(tree, "_fields") else type(tree)(*items)
    return tree._replace(**{k: _set_path(getattr(tree, k), rest, value)})


class _StateView(Mapping):
    """``optimizer.state``: parameter box -> torch-layout state dict (a read-only view)."""

    def __init__(self, opt: Any) -> None:
        self._opt = opt

    def _stepped(self) -> list[Parameter]:
        return [p for g in self._opt.param_groups for p in g["params"] if self._opt._reported(p)]

    def _box(self, p: Any) -> Any:
        """The optimizer's Parameter for a plain tensor it was given (else ``p``)."""
        held = self._opt.__dict__.get("_tensor_params", {}).get(id(p))
        return held[1] if held is not None and held[0] is p else p

    def __getitem__(self, p: Any) -> dict:
        p = self._box(p)
        if not isinstance(p, Variable) or not self._opt._reported(p):
            return {}
        # values as Tensors, as torch's are (``state["exp_avg"].shape`` is a torch.Size)
        return {k: _tensor_new(v) if isinstance(v, jax.Array) else v
                for k, v in self._opt._torch_state(p).items()}  # fmt: skip

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._stepped())

    def __len__(self) -> int:
        return len(self._stepped())

    def __contains__(self, p: object) -> bool:
        p = self._box(p)
        return isinstance(p, Variable) and self._opt._reported(p)

    def __repr__(self) -> str:
        return f"OptimizerState({len(self)} stepped parameters)"


class _StateBox(Variable):
    """One parameter's optimizer state, stored flat so jaxmod.jit passes it cheaply.

    ``_value`` (what jit lifts) is the list of the state's leaves, which JAX flattens in
    C++; ``state`` is the structured view (optax's nested named tuples and ordered dicts),
    rebuilt from the leaves with the stored treedef.
    """

    __slots__ = ("treedef",)

    def __init__(self) -> None:
        super().__init__(None)
        self.treedef = None

    @property
    def state(self) -> Any:
        """The structured state (``{"step": ..., "opt": optax_state}``)."""
        return jax.tree_util.tree_unflatten(self.treedef, self._value)

    @state.setter
    def state(self, value: Any) -> None:
        leaves, self.treedef = jax.tree_util.tree_flatten(value)
        self._value = leaves


def init_group_state(opt: Any, group: dict, keep: bool = False) -> None:
    """Create fresh state for every parameter of ``group`` (keeping existing if ``keep``).

    The state is one optax state over the group's parameters when the update rule allows
    it (``opt._groupable`` and a slot-wise layout), else one per parameter.
    """
    struct = opt._structure(group)
    opt._structures[id(group)] = struct
    tx = opt._group_transform(group, struct)
    params = group["params"]
    if opt._groupable and params and not (keep and id(group) in opt._group_boxes):
        values = [p._value for p in params]
        opt_state = _copied(tx.init(values))
        state = {"step": jnp.zeros((), jnp.int32), "opt": opt_state}
        layout = _layout(tx, values, jax.tree_util.tree_leaves(state))
        if layout is not None:
            box = opt._group_boxes.get(id(group))
            if box is None:
                box = opt._group_boxes[id(group)] = _StateBox()
            box.state = state
            opt._layouts[id(group)] = layout
            opt._lockstep[id(group)] = True
            for p in params:
                opt._state_boxes.pop(id(p), None)
            return
    opt._group_boxes.pop(id(group), None)
    for p in params:
        if keep and id(p) in opt._state_boxes:
            continue
        # Distinct buffers for every leaf: optax inits may reuse one zeros array for
        # several moments, and jaxmod.jit donates state buffers.
        opt_state = _copied(tx.init(p._value))
        state = {"step": jnp.zeros((), jnp.int32), "opt": opt_state}
        box = opt._state_boxes.get(id(p))
        if box is None:
            box = opt._state_boxes[id(p)] = _StateBox()
        box.state = state


def state_of(opt: Any, p: Variable) -> dict:
    """``p``'s structured state; in a lockstep group the counts are the first param's."""
    g = opt._group_of(p)
    gbox = opt._group_boxes.get(id(g))
    if gbox is not None:
        leaves = gbox._value
        cached = opt._split_cache
        if cached is None or cached[0] is not leaves:
            cached = opt._split_cache = (leaves, opt._layouts[id(g)].split(leaves))
        return cached[1][next(i for i, q in enumerate(g["params"]) if q is p)]
    s = opt._state_boxes[id(p)].state
    first = g["params"][0]
    if first is p or not opt._lockstep.get(id(g), True):
        return s
    tx = opt._group_transform(g, opt._structures[id(g)])
    return _with_scalars(s, opt._state_boxes[id(first)].state, _scalar_mask(tx))


def state_dict(opt: Any) -> dict[str, Any]:
    """``opt.state_dict()``: torch's layout, key names and parameter indices (only
    parameters torch would have state for appear in ``"state"``)."""
    mapping: dict[int, int] = {}
    groups = []
    index = 0
    for g in opt.param_groups:
        packed = {k: v for k, v in g.items() if k != "params"}
        for p in g["params"]:
            if id(p) not in mapping:
                mapping[id(p)] = index
                index += 1
        packed["params"] = [mapping[id(p)] for p in g["params"]]
        groups.append(packed)
    # values as Tensors, as torch's are (``sd["state"][0]["step"]`` prints ``tensor(1.)``)
    state = {
        mapping[id(p)]: {
            k: _tensor_new(v) if isinstance(v, jax.Array) else v
            for k, v in opt._torch_state(p).items()
        }
        for g in opt.param_groups
        for p in g["params"]
        if opt._reported(p)
    }
    return {"state": state, "param_groups": groups}
