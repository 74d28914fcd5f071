"""``Optimizer.load_state_dict``: check everything first, then write; a failure changes nothing.

:func:`check` validates a state dict against the optimizer *without touching it* and
returns a :class:`_Plan` (the new param groups, and every saved state value already
converted: numeric, the right shape and dtype, placed like its parameter); :func:`load`
then writes the plan, and should anything still raise while writing (a subclass's update
rule refusing a loaded hyper-parameter), puts back every attribute it replaced, so the
optimizer keeps its state and keeps stepping.

torch's own checks keep torch's types and messages (``ValueError: loaded state dict has a
different number of parameter groups`` / ``... contains a parameter group that doesn't
match the size of optimizer's group``); what torch only finds at the next ``step()`` (or
never) -- state from a model of other shapes, a foreign optimizer's state or groups, a
string, deleted or non-finite value -- is a ``ValueError`` here that names the group,
parameter and key.
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import state as _kernel
from jaxmod._core.cells import torch_to_numpy, wrapper_of
from jaxmod.nn.parameter import Parameter, Variable
from jaxmod.optim._hparams import _is_numeric, _ParamGroup
from jaxmod.optim._state import _get_path

__all__ = ["check", "load", "check_groups"]

_NUMERIC_KINDS = "biuf"
_REPLACED = ("_structures", "_group_boxes", "_state_boxes", "_layouts", "_lockstep",
             "_vars_cache", "_split_cache", "_hp")  # fmt: skip
DONATED_HINT = (
    "its arrays were deleted: a jitted step donated them (jaxmod.jit hands the state "
    "buffers it replaces to XLA, so the arrays of an opt.state_dict() taken before a step "
    "are deleted by the step). Keep an independent copy instead: "
    "best = copy.deepcopy(opt.state_dict())"
)


class _Plan(NamedTuple):
    groups: list[_ParamGroup]
    structures: list[Hashable]
    # id(param) -> {"step": int, torch key or "optax_state": converted value}
    entries: dict[int, dict[str, Any]]


def _fail(msg: str) -> None:
    raise ValueError(msg)


def _name(opt: Any) -> str:
    return type(opt).__name__.lstrip("_")


def _from_torch(v: Any) -> Any:
    """A hyper-parameter saved by torch (a tensor, or a tuple of them) as Python numbers."""
    if type(v).__module__.startswith("torch"):
        a = np.asarray(v.detach().cpu())
        return float(a) if a.ndim == 0 else a.tolist()
    if isinstance(v, (tuple, list)) and any(type(x).__module__.startswith("torch") for x in v):
        return type(v)(_from_torch(x) for x in v)
    return v


def _option_default(opt: Any, key: str) -> Any:
    """The constructor's default of option ``key`` (what torch's ``__setstate__`` fills in
    for an option an older checkpoint lacks), else the optimizer's ``defaults``."""
    try:
        param = inspect.signature(type(opt).__init__).parameters.get(key)
    except (TypeError, ValueError):  # pragma: no cover - builtin signatures
        param = None
    if param is not None and param.default is not inspect.Parameter.empty:
        return param.default
    return opt.defaults[key]


def check_groups(opt: Any, state_dict: Any) -> list[_ParamGroup]:
    """The param groups ``opt`` would have after loading ``state_dict`` (nothing is changed).

    Checks torch's two structural conditions (with torch's messages), then that every
    saved group has every hyper-parameter the optimizer needs, of the right kind: a
    group saved by another optimizer class (SGD's into Adam) is refused here rather than
    failing at every later ``step()``. Options an older checkpoint lacks (``foreach``,
    ``differentiable``, ``decoupled_weight_decay`` ...) take the constructor's default, as
    torch's ``__setstate__`` fills them.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"{_name(opt)}.load_state_dict expects a dict with 'state' and 'param_groups' "
            f"(what state_dict() returns), got {type(state_dict).__name__}"
        )
    for key in ("state", "param_groups"):
        if key not in state_dict:
            _fail(
                f"loaded state dict has no {key!r} entry (it has {sorted(map(str, state_dict))})"
                f": pass what {_name(opt)}.state_dict() returned, not a model's state_dict"
            )
    saved_groups = state_dict["param_groups"]
    if not isinstance(saved_groups, Sequence) or isinstance(saved_groups, (str, bytes)):
        _fail(f"loaded state dict's 'param_groups' is a {type(saved_groups).__name__}, not a list")
    groups = opt.param_groups
    if len(groups) != len(saved_groups):
        _fail("loaded state dict has a different number of parameter groups")
    for i, s in enumerate(saved_groups):
        if not isinstance(s, Mapping) or "params" not in s:
            _fail(f"loaded state dict's param_groups[{i}] is not a dict with a 'params' list")
    if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
        _fail(
            "loaded state dict contains a parameter group that doesn't match the size of "
            "optimizer's group"
        )
    new_groups = []
    for i, (g, s) in enumerate(zip(groups, saved_groups)):
        ng = {k: _from_torch(v) for k, v in s.items() if k != "params"}
        for k in [k for k in opt.defaults if k not in ng]:
            # options (booleans, strings, None) an older checkpoint lacks get their
            # defaults; a missing number (or required value) means another optimizer's
            # groups
            default = _option_default(opt, k)
            if not isinstance(default, (bool, str, type(None))) or _is_numeric(opt.defaults[k]):
                foreign = sorted(set(ng) - set(opt.defaults) - {"param_names", "initial_lr"})
                holding = (
                    f" (its groups hold {', '.join(map(repr, foreign))}, which {_name(opt)} "
                    "does not use)"
                    if foreign
                    else ""
                )
                _fail(
                    f"loaded state dict's param_groups[{i}] has no {k!r}, a hyper-parameter "
                    f"of {_name(opt)}: it looks like another optimizer's state{holding}. Load "
                    "a state dict into the optimizer class that saved it"
                )
            ng[k] = default
        for k, mine in g.items():
            if k in ("params", "param_names") or k not in ng or not _is_numeric(mine):
                continue
            theirs = ng[k]
            if not _is_numeric(theirs):
                _fail(
                    f"loaded state dict's param_groups[{i}][{k!r}] is {theirs!r}, not a number"
                    f" (the optimizer's is {mine!r})"
                )
            n_mine = len(mine) if isinstance(mine, (tuple, list)) else None
            n_theirs = len(theirs) if isinstance(theirs, (tuple, list)) else None
            if n_mine != n_theirs:
                _fail(
                    f"loaded state dict's param_groups[{i}][{k!r}] is {theirs!r}; "
                    f"{_name(opt)} needs {'a number' if n_mine is None else f'{n_mine} numbers'}"
                )
        ng["params"] = g["params"]
        new_groups.append(_ParamGroup(ng))
    return new_groups


def _index(k: Any) -> int | None:
    if isinstance(k, bool):
        return None
    try:
        return int(k)
    except (TypeError, ValueError):
        return None


def _array(value: Any, what: str) -> Any:
    """A saved state value as a numpy or JAX array of numbers (refusing what is not)."""
    if type(value).__module__.startswith("torch"):
        value = np.array(torch_to_numpy(value), copy=True)  # torch updates it in place
    elif isinstance(value, Variable):
        value = value._value
    elif wrapper_of(value) is not None:  # a jaxmod.Tensor
        value = value._jaxmod_array_()
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer):
        if value.is_deleted():
            _fail(f"{what}: {DONATED_HINT}")
        return value
    try:
        arr = np.asarray(value)
    except Exception as ex:
        _fail(f"{what} is a {type(value).__name__}, not an array of numbers ({ex})")
    if arr.dtype.kind not in _NUMERIC_KINDS and not (
        arr.dtype.kind == "V" and arr.dtype.fields is None and jnp.issubdtype(arr.dtype, jnp.number)
    ):
        _fail(f"{what} is of dtype {arr.dtype} ({type(value).__name__}), not an array of numbers")
    return arr


def _leaves_like(value: Any, expected: Any, what: str, param: Parameter | None = None) -> Any:
    """``value`` converted to the structure, shapes and dtypes of ``expected`` (a tree of
    ``ShapeDtypeStruct``); parameter-shaped arrays are placed like ``param``."""
    exp_leaves, tdef = jax.tree_util.tree_flatten(expected)
    if len(exp_leaves) == 1 and not isinstance(value, (Mapping, tuple, list)):
        got = [value]
    else:
        got = jax.tree_util.tree_leaves(value, is_leaf=lambda x: x is None)
    if len(got) != len(exp_leaves):
        _fail(
            f"{what} holds {len(got)} arrays where {len(exp_leaves)} are expected: the state "
            "of another optimizer or configuration"
        )
    p = None if param is None else param._value
    committed = getattr(p, "committed", False) and not isinstance(p, jax.core.Tracer)
    out = []
    for j, (v, e) in enumerate(zip(got, exp_leaves)):
        where = what if len(exp_leaves) == 1 else f"{what} (array {j})"
        arr = _array(v, where)
        if tuple(arr.shape) != tuple(e.shape):
            shape = tuple(int(d) for d in arr.shape)
            if param is not None and tuple(e.shape) == tuple(param.shape):
                mine = f"its parameter's shape is {tuple(param.shape)}"
            else:
                mine = f"the optimizer's is {tuple(e.shape)}"
            _fail(f"{where} has shape {shape}, but {mine}: the state of a model with other shapes")
        if jnp.iscomplexobj(arr) and not jnp.issubdtype(e.dtype, jnp.complexfloating):
            _fail(f"{where} is complex; the optimizer's state is {e.dtype}")
        new = jnp.array(arr, dtype=e.dtype, copy=True)
        if committed and new.shape == p.shape and new.ndim:
            new = jax.device_put(new, p.sharding)
        out.append(new)
    return jax.tree_util.tree_unflatten(tdef, out)


def _step_of(value: Any, what: str) -> int:
    arr = _array(value, what)
    if arr.size != 1:
        _fail(f"{what} has shape {tuple(arr.shape)}; a step count is one number")
    x = np.asarray(arr).reshape(()).item()
    if not (np.isfinite(x) and x >= 0 and float(x) == int(x)):
        _fail(f"{what} is {x!r}; a step count is a whole number >= 0")
    return int(x)


def check(opt: Any, state_dict: Any) -> _Plan:
    """Validate ``state_dict`` against ``opt`` and convert every value; nothing is changed."""
    groups = check_groups(opt, state_dict)
    saved_state = state_dict["state"]
    if not isinstance(saved_state, Mapping):
        _fail(f"loaded state dict's 'state' is a {type(saved_state).__name__}, not a dict")
    where: dict[int, tuple[int, int, int]] = {}  # saved index -> (group, position, param)
    params: dict[int, Parameter] = {}
    saved_groups = state_dict["param_groups"]
    for gi, (g, s) in enumerate(zip(groups, saved_groups)):
        for j, (k, p) in enumerate(zip(s["params"], g["params"])):
            idx = _index(k)
            if idx is None or idx in params:
                _fail(
                    f"loaded state dict's param_groups[{gi}]['params'][{j}] is {k!r}: "
                    "expected distinct parameter indices"
                )
            where[idx], params[idx] = (gi, j, idx), p
    structures, transforms = [], []
    for gi, g in enumerate(groups):
        try:
            structures.append(opt._structure(g))
            transforms.append(opt._group_transform(g, structures[-1]))
        except Exception as ex:
            _fail(
                f"loaded state dict's param_groups[{gi}] does not make a valid "
                f"{_name(opt)}: {type(ex).__name__}: {ex}"
            )
    entries: dict[int, dict[str, Any]] = {}
    for k, v in saved_state.items():
        if isinstance(k, Variable):
            idx = next((i for i, p in params.items() if p is k), None)
        else:
            idx = _index(k)
        if idx not in params:
            _fail(
                f"loaded state dict has state for parameter {k!r}, but its param_groups list "
                f"only parameters {sorted(params)}"
            )
        gi, j, _ = where[idx]
        p, g = params[idx], groups[gi]
        names = g.get("param_names")
        label = f"parameter {idx} (param_groups[{gi}]['params'][{j}]" + (
            f", {names[j]!r})" if names and j < len(names) else ")"
        )
        if not isinstance(v, Mapping):
            _fail(f"loaded state dict's state for {label} is a {type(v).__name__}, not a dict")
        layout = opt._saved_layout(structures[gi], transforms[gi], p)
        entry: dict[str, Any] = {}
        for key, value in v.items():
            if value is None:
                continue
            what = f"loaded state dict's {key!r} for {label}"
            if key == "step" and "step" in layout:
                entry["step"] = _step_of(value, what)
            elif key in layout and key != "step":
                entry[key] = _leaves_like(value, layout[key], what, p)
            else:
                kept = ", ".join(repr(n) for n in layout) or "no state"
                _fail(
                    f"loaded state dict has {key!r} for {label}, which {_name(opt)} does not "
                    f"keep with these options (it keeps {kept}): the state of another "
                    "optimizer or configuration"
                )
        absent = [repr(n) for n in layout if n not in entry]
        if absent:
            _fail(
                f"loaded state dict's state for {label} lacks {', '.join(absent)}: a partial "
                "state would restart those from zero. Save the whole state, or leave the "
                "parameter out of 'state' to start it afresh"
            )
        entries[id(p)] = entry
    return _Plan(groups, structures, entries)


def load(opt: Any, state_dict: Any) -> None:
    """Check ``state_dict`` (see :func:`check`), then write it into ``opt``, atomically."""
    plan = check(opt, state_dict)
    saved = {name: getattr(opt, name) for name in _REPLACED}
    saved = {k: (dict(v) if isinstance(v, dict) else v) for k, v in saved.items()}
    old_groups = list(opt.param_groups)
    try:
        _write(opt, plan)
    except BaseException:
        opt.param_groups[:] = old_groups
        for name, value in saved.items():
            setattr(opt, name, value)
        _kernel.bump()
        raise


def _write(opt: Any, plan: _Plan) -> None:
    opt.param_groups[:] = plan.groups
    opt._structures = {}
    opt._group_boxes, opt._state_boxes, opt._layouts, opt._lockstep = {}, {}, {}, {}
    opt._split_cache = None
    for g in opt.param_groups:
        opt._init_group_state(g)
        struct = opt._structures[id(g)]
        gbox = opt._group_boxes.get(id(g))
        if gbox is not None:
            states = opt._layouts[id(g)].split(gbox._value)
        else:
            states = [opt._state_boxes[id(p)].state for p in g["params"]]
        for i, p in enumerate(g["params"]):
            entry = plan.entries.get(id(p))
            if entry is None:
                continue
            step = entry.get("step", 1)
            opt_state = opt._apply_saved(struct, states[i]["opt"], entry, step)
            states[i] = {"step": jnp.asarray(step, jnp.int32), "opt": opt_state}
        # Equal step counts: the group steps in lockstep again (grouped if it was).
        lockstep = len({int(s["step"]) for s in states}) <= 1
        opt._lockstep[id(g)] = lockstep
        if gbox is not None and lockstep:
            gbox._value = opt._layouts[id(g)].merge(states)
            continue
        opt._group_boxes.pop(id(g), None)
        opt._own_boxes(g, states, split=gbox is not None)
    opt._vars_cache = None
    _kernel.bump()


def saved_layout(opt: Any, struct: Hashable, tx: Any, p: Parameter) -> dict[str, Any]:
    """torch key -> ``ShapeDtypeStruct`` of what ``opt`` keeps for ``p`` (and ``"step"``)."""
    init = jax.eval_shape(tx.init, jax.ShapeDtypeStruct(p.shape, p.dtype))
    out: dict[str, Any] = {}
    if opt._torch_has_step:
        out["step"] = jax.ShapeDtypeStruct((), jnp.float32)
    for key, path in opt._torch_paths(struct).items():
        out[key] = _get_path(init, path)
    return out
