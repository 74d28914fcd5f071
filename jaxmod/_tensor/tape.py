"""Eager autograd: ``loss.backward()`` by recording what produced ``loss`` and replaying it
under :func:`jax.vjp`.

JAX differentiates functions, torch programs call ``loss.backward()`` on a value. The tape
joins the two:

- **Recording.** An eager operation with an input that requires grad (a ``Parameter``
  with ``requires_grad``, a tensor after ``requires_grad_()``, or a tensor the tape made)
  runs as it always does and also records a :class:`Node`: the callable, its arguments
  (array references, not copies) and the generator key and autocast policy it ran under.
  A whole eager module call is one node (its parameters and buffers are saved by
  reference), so a forward pass records a handful of nodes, not one per layer. Its
  Tensor outputs become tape tensors (``requires_grad`` true, ``grad_fn`` set).
- **Replay.** ``backward()`` replays the recorded nodes that lead to the tensor as one
  function of the leaves, with the saved values swapped in (so buffer updates such as
  BatchNorm's running statistics are not applied twice and dropout draws the same masks),
  takes its :func:`jax.vjp`, and adds the gradients into each leaf's ``.grad``, where
  ``optimizer.step()`` and ``clip_grad_norm_`` read them. The replay is compiled with
  ``jax.jit`` once per graph structure, so a training loop compiles its backward once.

Nothing is recorded inside ``no_grad``, inside a jaxmod transform (``jaxmod.jit``,
``jaxmod.grad``: there gradients are functional) or on traced values.
"""

from __future__ import annotations

import functools
import itertools
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from jaxmod import _autograd
from jaxmod._core import lifting, state
from jaxmod._core.cells import Variable
from jaxmod._core.rng import default_generator
from jaxmod._tensor import base as _b
from jaxmod._tensor import errors as _err
from jaxmod._tensor.tensor import Tensor, TensorMethods, _GradTensor, _View
from jaxmod.amp import _state as _amp

__all__ = ["TapeError", "backward", "grad", "is_replaying", "record", "record_module",
           "module_wanted", "recording", "register_linkable"]  # fmt: skip

_ctx = state.ctx
_Tracer = jax.core.Tracer
_Var = jax.extend.core.Var
_Array = jax.Array
_new = object.__new__


class TapeError(RuntimeError):
    """An eager operation the autograd tape cannot record or replay faithfully."""


class _State:
    suspended = 0  # > 0 while a recorded call or a replay runs (nothing nested records)
    backwards = 0  # backward() / autograd.grad() calls that ran (read by tests)
    replaying = 0  # > 0 while backward() replays recorded calls
    seq = itertools.count()


_S = _State()


class _TapeTensor(Tensor):
    """A Tensor computed from inputs that require grad: it knows the node that made it."""

    __slots__ = ()
    _rg = True

    @property
    def requires_grad(self) -> bool:  # type: ignore[override]
        """True: this tensor was computed from inputs that require grad."""
        return True

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if not value:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to "
                "use a computed variable in a subgraph that doesn't require differentiation "
                "use var_no_grad = var.detach()."
            )

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Only ``True`` is allowed on a computed tensor (as in torch)."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self) -> Any:  # type: ignore[override]
        """The recorded operation that produced this tensor."""
        return self._ag[0]

    @property
    def is_leaf(self) -> bool:  # type: ignore[override]
        """False: this tensor was computed by a recorded operation."""
        return False

    @property
    def grad(self) -> Any:  # type: ignore[override]
        """The gradient kept by ``retain_grad()`` in the last ``backward()``, else None."""
        return getattr(self, "_gd", None)

    @grad.setter
    def grad(self, value: Any) -> None:
        self._gd = None if value is None else _as_tensor(value)

    def retain_grad(self) -> None:
        """Keep this tensor's gradient on ``.grad`` in the next ``backward()``."""
        node, k = self._ag
        if node.retained is None:
            node.retained = {}
        node.retained[k] = self  # lives as long as the graph does

    def detach(self) -> Tensor:
        """The same values as a new tensor outside the graph."""
        return _b.new(self._value)

    def detach_(self) -> Tensor:
        """Take this tensor out of the graph, in place."""
        self.__class__ = Tensor
        return self

    @property
    def data(self) -> Tensor:  # type: ignore[override]
        """The values outside the graph (a new tensor: writes to it do not reach this one)."""
        return _b.new(self._value)

    @data.setter
    def data(self, new: Any) -> None:
        v = _b.unwrap(new)
        self._value = v if isinstance(v, _Array) else jnp.asarray(v)


def _flatten(t: Tensor) -> tuple[tuple[Any], None]:
    return (t._value,), None


def _unflatten(aux: None, children: Any) -> Tensor:
    return _b.new(children[0])


jax.tree_util.register_pytree_node(_TapeTensor, _flatten, _unflatten)
_b.TT = _b.TT | {_TapeTensor}


# ----------------------------------------------------------------------------- nodes
class _Node:
    """A recorded operation (see the module docstring); ``grad_fn`` of tape tensors."""

    __slots__ = ("fn", "label", "tree", "specs", "cells", "values", "policy", "positions",
                 "mutated", "seq", "freed", "retained", "eager", "hooks")  # fmt: skip

    def name(self) -> str:
        """torch's ``grad_fn.name()``: the operation, e.g. ``"LinearBackward"``."""
        return f"{self.label}Backward"

    def __repr__(self) -> str:
        return f"<{self.name()} object>"


Node = _Node


def _stop(x: Any) -> bool:
    """Leaves of an argument walk: tensors, boxes and stateful objects stay whole."""
    return isinstance(x, (_b.TensorBase, Variable)) or lifting.is_stateful(x)


def _is_source(x: Any) -> bool:
    """A leaf gradients are stored on: a Parameter with requires_grad, a requires_grad
    tensor."""
    t = type(x)
    if t is _GradTensor:
        return True
    return isinstance(x, Variable) and bool(getattr(x, "_requires_grad", False))


def _marks(a: Any) -> bool:
    t = type(a)
    if t is _TapeTensor or t is _GradTensor:
        return True
    if isinstance(a, Variable):
        return bool(getattr(a, "_requires_grad", False))
    if t is list or t is tuple:
        return any(_marks(b) for b in a)
    return False


def marked(args: tuple, kwargs: dict) -> bool:
    """Whether an argument requires grad (a tape tensor, a source; one list level)."""
    for a in args:
        if _marks(a):
            return True
    return bool(kwargs) and any(_marks(v) for v in kwargs.values())


def is_replaying() -> bool:
    """Whether ``backward()`` is replaying recorded module calls now (forward hooks and
    forwards run again then, on traced values)."""
    return _S.replaying > 0


def recording() -> bool:
    """Whether eager operations record now (grad mode on, outside transforms and replays)."""
    return not _S.suspended and not _ctx.lift_depth and _autograd.is_grad_enabled()


def _float(v: Any) -> bool:
    return jnp.issubdtype(v.dtype, jnp.inexact)


def record(fn: Callable, label: str, args: tuple, kwargs: dict,
           cells: list | None = None, run: Callable | None = None) -> Any:  # fmt: skip
    """Run ``fn(*args, **kwargs)`` and record it, when an input (or a cell) requires grad.
    ``run``: what to call now instead of ``fn`` (the same function, compiled); the replay
    calls ``fn``."""
    flat, tree = jax.tree_util.tree_flatten((args, kwargs), is_leaf=_stop)
    specs: list[tuple] = []
    watch: list[tuple[int, Any, Any]] = []
    needed = False
    for i, x in enumerate(flat):
        t = type(x)
        if t is _TapeTensor:
            specs.append((0, x._ag))
            watch.append((i, x, x._value))
            needed = True
        elif isinstance(x, (_b.TensorBase, Variable)):
            v = _b.unwrap(x)
            if isinstance(v, _Tracer):
                return _quiet(fn, args, kwargs)
            if _is_source(x):
                specs.append((1, x, v))
                needed = True
            else:
                specs.append((2, v, True))
            watch.append((i, x, v))
        elif isinstance(x, _Tracer):
            return _quiet(fn, args, kwargs)
        elif isinstance(x, _Array):
            specs.append((2, x, False))
        else:
            specs.append((3, x))
    key_cell = default_generator._key
    cells = list(cells or ())
    if not any(c is key_cell for c in cells):
        cells.append(key_cell)
    values = [c._value for c in cells]
    if not needed and not any(_is_source(c) for c in cells):
        return _quiet(fn, args, kwargs)
    if any(isinstance(v, _Tracer) for v in values):
        return _quiet(fn, args, kwargs)
    policy = _amp.S.policy
    out = _quiet(run or fn, args, kwargs)
    mutated = [(i, x) for i, x, v in watch if _b.unwrap(x) is not v]
    out_flat, out_tree = jax.tree_util.tree_flatten(out, is_leaf=_stop)
    inputs = {id(x) for x in flat}
    positions = [j for j, o in enumerate(out_flat)
                 if type(o) in _b.TT and id(o) not in inputs and _float(_b.unwrap(o))]  # fmt: skip
    linked = _linked_ranges(out, out_flat) if _LINKABLE else []
    for _, lo, hi in linked:  # the float arrays inside a returned distribution
        positions += [j for j in range(lo, hi) if _is_float_array(out_flat[j])]
    positions.sort()
    mutated = [(i, x) for i, x in mutated if _float(_b.unwrap(x))]
    if not positions and not mutated:
        return out
    node = _new(_Node)
    node.fn, node.label, node.tree, node.specs = fn, label, tree, specs
    node.cells, node.values, node.policy = cells, values, policy
    node.positions, node.mutated = positions, [i for i, _ in mutated]
    node.seq, node.freed = next(_S.seq), False
    node.retained, node.eager, node.hooks = None, False, None
    for k, j in enumerate(positions):
        t = _new(_TapeTensor)
        t._value = _b.unwrap(out_flat[j])
        t._ag = (node, k)
        out_flat[j] = t
    for m, (_, x) in enumerate(mutated):
        _mark_mutated(x, node, len(positions) + m, label)
    if not positions:
        return out
    if linked:  # a linkable object keeps its arrays; it learns which tape tensors they are
        for obj, lo, hi in linked:
            _LINK[0](obj, out_flat[lo:hi])
            out_flat[lo:hi] = [_b.unwrap(o) for o in out_flat[lo:hi]]
        return _replace_tt(out, out_flat)
    return jax.tree_util.tree_unflatten(out_tree, out_flat)


def _is_float_array(o: Any) -> bool:
    return isinstance(o, (_Array, *_b.TT)) and _float(_b.unwrap(o))


# Objects whose methods the tape records through their arrays (distributions): set by
# register_linkable; ``_LINK[0](obj, leaves)`` tells ``obj`` which tape tensors its array
# leaves are.
_LINKABLE: tuple[type, ...] = ()
_LINK: list[Callable] = []


def register_linkable(cls: type, link: Callable[[Any, list], None]) -> None:
    """Let outputs of type ``cls`` (pytrees of arrays) carry the graph: ``link(obj,
    leaves)`` is called with the tape tensors (or constants) of ``obj``'s leaves."""
    global _LINKABLE
    _LINKABLE = (*_LINKABLE, cls)
    _LINK[:] = [link]


def _top_leaf(x: Any) -> bool:
    """Leaves of an output walk that keeps linkable objects whole."""
    return _stop(x) or isinstance(x, _LINKABLE)


def _linked_ranges(out: Any, out_flat: list) -> list[tuple[Any, int, int]]:
    """``(obj, lo, hi)`` for each linkable object in ``out``: its leaves are
    ``out_flat[lo:hi]``."""
    found, off = [], 0
    for item in jax.tree_util.tree_leaves(out, is_leaf=_top_leaf):
        n = 1
        if isinstance(item, _LINKABLE):
            n = len(jax.tree_util.tree_leaves(item, is_leaf=_stop))
            found.append((item, off, off + n))
        off += n
    assert off == len(out_flat)
    return found


def _replace_tt(out: Any, out_flat: list) -> Any:
    """``out`` with its Tensor leaves replaced by ``out_flat``'s (linkable objects kept as
    the same objects)."""
    items, tree = jax.tree_util.tree_flatten(out, is_leaf=_top_leaf)
    off, new = 0, []
    for item in items:
        if isinstance(item, _LINKABLE):
            off += len(jax.tree_util.tree_leaves(item, is_leaf=_stop))
            new.append(item)
        else:
            new.append(out_flat[off])
            off += 1
    return jax.tree_util.tree_unflatten(tree, new)


def _quiet(fn: Callable, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)`` with recording suspended (nothing inside records again)."""
    _S.suspended += 1
    try:
        return fn(*args, **kwargs)
    finally:
        _S.suspended -= 1


def _leaf_in_place(label: str) -> RuntimeError:
    return RuntimeError(
        "a leaf Variable that requires grad is being used in an in-place operation. "
        f"({label}: wrap in-place changes of parameters in `with torch.no_grad():`)"
    )


def _mark_mutated(x: Any, node: _Node, k: int, label: str) -> None:
    """``x`` was changed in place by a recorded op: from now on it is output ``k``."""
    t = type(x)
    if t is _TapeTensor or t is Tensor:
        x.__class__ = _TapeTensor
        x._ag = (node, k)
        return
    if _is_source(x):
        raise _leaf_in_place(label)
    if t is _View:
        raise TapeError(
            f"{label} changed a view of a tensor in place with values that require grad; "
            "jaxmod's autograd tape cannot follow a write through a view. Write into the "
            "tensor itself (x[idx] = v) or build the result out of place (torch.cat / "
            "torch.where)."
        )
    # a Buffer (or other box) now holds values computed from the graph: kept as values


# ---------------------------------------------------------------------- method wrappers
_INPLACE_DUNDERS = {f"__i{n}__" for n in (
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
    "lshift", "rshift")} | {"__setitem__"}  # fmt: skip
_DUNDERS = _INPLACE_DUNDERS | {f"__{p}{n}__" for p in ("", "r") for n in (
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "divmod")} | {
    "__neg__", "__pos__", "__abs__", "__getitem__"}  # fmt: skip
# Methods that never record: no differentiable result, or results outside the graph.
_NEVER = {"detach", "detach_", "requires_grad_", "backward", "register_hook", "retain_grad",
          "numpy", "tolist", "item", "size", "dim", "numel", "nelement", "element_size",
          "stride", "storage_offset", "is_contiguous", "data_ptr", "untyped_storage",
          "new", "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor",
          "type", "is_floating_point", "is_complex", "get_device", "cpu", "cuda",
          "pin_memory", "share_memory_", "zero_", "fill_"}  # fmt: skip


# Types that never require grad (``_marks`` is False for them without looking inside).
_PLAIN_SELF = frozenset({Tensor, _View})
_INERT = _PLAIN_SELF | {int, float, bool, complex, str, slice, type(None), type(Ellipsis)}


def _method(orig: Callable, name: str, inplace: bool) -> Callable:
    label = name.strip("_")
    label = label[:1].upper() + label[1:]

    @functools.wraps(orig)
    def m(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The hot path of every eager tensor op: a plain tensor with arguments of inert
        # types only is passed by one set lookup each (about 0.3 µs in all).
        if not kwargs and type(self) in _PLAIN_SELF:
            for a in args:
                if type(a) not in _INERT:
                    break
            else:
                return orig(self, *args)
        t = type(self)
        hit = t is _TapeTensor
        if not hit:
            if inplace:
                if _is_source(self) and recording():
                    raise _leaf_in_place(label)
            elif t not in _PLAIN_SELF:
                hit = _marks(self)
            if not hit:
                for a in args:
                    if type(a) not in _INERT and _marks(a):
                        hit = True
                        break
                else:
                    for v in kwargs.values():
                        if type(v) not in _INERT and _marks(v):
                            hit = True
                            break
        if hit and recording():
            return record(orig, label, (self, *args), kwargs)
        return orig(self, *args, **kwargs)

    m.__wrapped_tape__ = orig  # type: ignore[attr-defined]
    return m


def _install(cls: type) -> None:
    for name in dir(cls):
        if name in _NEVER or (name.startswith("_") and name not in _DUNDERS):
            continue
        raw = _static(cls, name)
        if isinstance(raw, types.FunctionType) and not hasattr(raw, "__wrapped_tape__"):
            inplace = name in _INPLACE_DUNDERS or (name.endswith("_") and name[0] != "_")
            setattr(cls, name, _method(raw, name, inplace))
        elif isinstance(raw, property) and name in ("T", "mT", "H", "mH", "real", "imag"):
            if not hasattr(raw.fget, "__wrapped_tape__"):
                setattr(cls, name, property(_method(raw.fget, name, False), raw.fset))


def _static(cls: type, name: str) -> Any:
    for k in cls.__mro__:
        if name in k.__dict__:
            return k.__dict__[name]
    return None


_install(TensorMethods)


# ------------------------------------------------------------------------ module calls
def module_wanted(args: tuple, kwargs: dict) -> bool:
    """Whether an outermost eager module call with these arguments should record."""
    return recording() and _b.torch_inputs(args, kwargs)


def _call(module: Any, *args: Any, **kwargs: Any) -> Any:
    return module(*args, **kwargs)


def record_module(module: Any, args: tuple, kwargs: dict, eager: bool = False,
                  run: Callable | None = None) -> Any:  # fmt: skip
    """Run an outermost eager module call, recording it as one node when its parameters
    (or inputs) require grad. ``eager``: the module has backward hooks, so a backward
    through it runs uncompiled (the hooks see gradients with values, once)."""
    found = lifting.discover([("module", module)], None)
    cells = found.cells + found.ro
    fn = functools.partial(_call, module)
    out = record(fn, type(module).__name__, args, kwargs, cells=cells, run=run)
    if eager:
        for t in jax.tree_util.tree_leaves(out, is_leaf=_stop):
            if type(t) is _TapeTensor:
                t._ag[0].eager = True
    return out


# --------------------------------------------------------------------------- backward
def _as_tensor(v: Any) -> Tensor:
    return v if type(v) in _b.TT else _b.new(jnp.asarray(_b.unwrap(v)))


def _graph(roots: list[_Node]) -> list[_Node]:
    """The nodes ``roots`` depend on, in recording order."""
    seen: dict[int, _Node] = {}
    todo = list(roots)
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        if n.freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access "
                "saved tensors after they have already been freed). Saved intermediate "
                "values of the graph are freed when you call .backward() or autograd.grad()."
                " Specify retain_graph=True if you need to backward through the graph a "
                "second time or if you need to access saved tensors after calling backward."
            )
        seen[id(n)] = n
        todo.extend(s[1][0] for s in n.specs if s[0] == 0)
    return sorted(seen.values(), key=lambda n: n.seq)


class _Plan:
    """A graph laid out as a function of (leaf values, saved values)."""

    def __init__(self, nodes: list[_Node], taps: list[tuple[_Node, int]]) -> None:
        self.nodes = nodes
        self.leaves: list[tuple[Any, Any]] = []  # (source, value) per leaf
        self.consts: list[Any] = []
        leaf_ix: dict[tuple[int, int], int] = {}
        index = {id(n): i for i, n in enumerate(nodes)}
        self.layout: list[tuple] = []  # per node: (arg slots, cell slots)
        key: list[Any] = []

        def leaf(src: Any, v: Any) -> int:
            k = (id(src), id(v))
            if k not in leaf_ix:
                leaf_ix[k] = len(self.leaves)
                self.leaves.append((src, v))
            return leaf_ix[k]

        def const(v: Any) -> int:
            self.consts.append(v)
            return len(self.consts) - 1

        for n in nodes:
            slots = []
            for s in n.specs:
                kind = s[0]
                if kind == 0:
                    slots.append((0, index[id(s[1][0])], s[1][1]))
                elif kind == 1:
                    slots.append((1, leaf(s[1], s[2])))
                elif kind == 2:
                    slots.append((2, const(s[1]), s[2]))
                else:
                    slots.append((3, s[1]))
            cslots = [(1, leaf(c, v)) if _is_source(c) else (2, const(v), False)
                      for c, v in zip(n.cells, n.values)]  # fmt: skip
            self.layout.append((slots, cslots))
            key.append((_fn_key(n.fn), n.tree, tuple(_slot_key(s) for s in slots),
                        tuple(cslots), n.policy, tuple(n.positions), tuple(n.mutated)))  # fmt: skip
        self.taps = [(index[id(n)], k) for n, k in taps]
        self.eager = any(n.eager for n in nodes)  # backward hooks: not compiled
        try:
            self.key = hash(tuple(key)) and tuple(key)
        except TypeError:
            self.key = None

    def run(self, leafvals: list, consts: list, tapvals: list, outs: list) -> list:
        """Replay the graph; returns the values of ``outs`` ((node index, k) pairs)."""
        _S.replaying += 1
        try:
            return self._run(leafvals, consts, tapvals, outs)
        finally:
            _S.replaying -= 1

    def _run(self, leafvals: list, consts: list, tapvals: list, outs: list) -> list:
        env: list[list] = []
        taps = {t: v for t, v in zip(self.taps, tapvals)}
        for ni, (n, (slots, cslots)) in enumerate(zip(self.nodes, self.layout)):
            flat = []
            for s in slots:
                kind = s[0]
                if kind == 0:
                    flat.append(_b.new(env[s[1]][s[2]]))
                elif kind == 1:
                    flat.append(_b.new(leafvals[s[1]]))
                elif kind == 2:
                    flat.append(_b.new(consts[s[1]]) if s[2] else consts[s[1]])
                else:
                    flat.append(s[1])
            values = [leafvals[c[1]] if c[0] == 1 else consts[c[1]] for c in cslots]
            args, kwargs = jax.tree_util.tree_unflatten(n.tree, flat)
            prev_policy = _amp.S.policy
            _amp.S.policy = n.policy
            _S.suspended += 1
            try:
                out, _ = lifting.lift(n.fn, n.cells)(values, (), *args, **kwargs)
            finally:
                _S.suspended -= 1
                _amp.S.policy = prev_policy
            out_flat = jax.tree_util.tree_leaves(out, is_leaf=_stop)
            res = [_b.unwrap(out_flat[j]) for j in n.positions]
            res += [_b.unwrap(flat[i]) for i in n.mutated]
            for k, hooks in (n.hooks or {}).items():
                if hooks:
                    res[k] = _through_hooks(res[k], list(hooks.values()))
            for k in range(len(res)):
                if (ni, k) in taps:
                    res[k] = res[k] + taps[(ni, k)]
            env.append(res)
        return [env[i][k] for i, k in outs]


def _run_hooks(hooks: list, g: Any) -> Any:
    """torch's tensor hooks on gradient ``g``: each gets a Tensor and may replace it."""
    t = _b.new(g)
    for h in hooks:
        r = h(t)
        if r is not None:
            t = _as_tensor(r)
    return jnp.asarray(_b.unwrap(t)).astype(jnp.result_type(g))


def _through_hooks(v: Any, hooks: list) -> Any:
    """``v`` unchanged, with ``hooks`` run on its gradient in the backward pass (the graph
    is differentiated eagerly, so they see values)."""

    @jax.custom_vjp
    def ident(x: Any) -> Any:
        return x

    ident.defvjp(lambda x: (x, None), lambda _, g: (_run_hooks(hooks, g),))
    return ident(v)


class _HookHandle:
    """What ``Tensor.register_hook`` returns: ``remove()`` takes the hook off."""

    _next = itertools.count()

    def __init__(self, hooks: dict) -> None:
        self.hooks, self.id = hooks, next(self._next)

    def remove(self) -> None:
        """Remove the hook; removing twice is harmless."""
        self.hooks.pop(self.id, None)


# hooks on leaves (requires_grad tensors, parameters): id -> (the leaf, {handle id: hook})
_LEAF_HOOKS: dict[int, tuple[Any, dict]] = {}


def register_hook(t: Any, hook: Callable) -> _HookHandle:
    """``t.register_hook(hook)``: ``hook(grad)`` runs when ``t``'s gradient is computed and
    may return a replacement (torch's tensor hooks)."""
    if type(t) is _TapeTensor:
        node, k = t._ag
        node.eager = True
        if node.hooks is None:
            node.hooks = {}
        hooks = node.hooks.setdefault(k, {})
    elif _is_source(t):
        hooks = _LEAF_HOOKS.setdefault(id(t), (t, {}))[1]
    else:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    handle = _HookHandle(hooks)
    hooks[handle.id] = hook
    return handle


def _leaf_grad(src: Any, g: Any) -> Any:
    entry = _LEAF_HOOKS.get(id(src))
    if entry is None or entry[0] is not src or not entry[1]:
        return g
    return _run_hooks(list(entry[1].values()), g)


def _fn_key(fn: Any) -> Any:
    if isinstance(fn, functools.partial):
        m = fn.args[0]
        return (fn.func, id(m), lifting.static_of(m) if lifting.is_stateful(m) else None)
    return fn


def _slot_key(s: tuple) -> Any:
    if s[0] != 3:
        return s[:1] + s[1:]
    v = s[1]
    if isinstance(v, slice):
        return (3, "slice", v.start, v.stop, v.step)
    if isinstance(v, (np.ndarray, np.generic)):
        return (3, "np", v.dtype.str, v.shape, v.tobytes())
    return (3, type(v), v)


_COMPILED: dict[Any, Callable] = {}
_USED: dict[Any, list[bool]] = {}
_MAX_COMPILED = 64
_MAX_PER_FAMILY = 16  # compiled structures per set of modules before going op by op
_FAMILIES: dict[tuple, int] = {}


def _replay(plan: _Plan, consts: list, outs: tuple) -> Callable[[list, list], list]:
    """The graph as a function ``(leaf values, tap values) -> values of outs``."""

    def g(lv: list, tv: list) -> list:
        with _autograd.enable_grad():
            return plan.run(lv, consts, tv, list(outs))

    return g


def _used_leaves(plan: _Plan, outs: tuple, leafvals: list, consts: list, tapvals: list) -> list:
    """Which leaves the outputs depend on (torch leaves ``.grad`` of the others None: a
    module call records all its parameters, also those its forward did not use). Read off
    the replay's jaxpr, once per graph structure."""
    k = None if plan.key is None else (plan.key, outs, tuple(plan.taps))
    if k is not None and k in _USED:
        return _USED[k]
    try:
        jp = jax.make_jaxpr(_replay(plan, consts, outs))(leafvals, tapvals).jaxpr
    except _NEEDS_VALUES:
        return [True] * len(leafvals)
    live = {v for v in jp.outvars if isinstance(v, _Var)}
    for eqn in reversed(jp.eqns):
        if eqn.effects or any(o in live for o in eqn.outvars):
            live.update(v for v in eqn.invars if isinstance(v, _Var))
    used = [v in live for v in jp.invars[: len(leafvals)]]
    if k is not None:
        if len(_USED) >= _MAX_COMPILED:
            _USED.pop(next(iter(_USED)))
        _USED[k] = used
    return used


def _vjp_fn(plan: _Plan, outs: tuple) -> Callable:
    """``(leafvals, consts, tapvals, cotangents) -> (outputs, leaf grads, tap grads)``,
    compiled once per graph structure when the structure is hashable."""

    def f(leafvals: list, consts: list, tapvals: list, cots: list) -> Any:
        vals, back = jax.vjp(_replay(plan, consts, outs), leafvals, tapvals)
        gl, gt = back(cots)
        return vals, gl, gt

    if plan.key is None or plan.eager:
        return f
    k = (plan.key, outs, tuple(plan.taps))
    if k in _EAGER:
        return f
    hit = _COMPILED.get(k)
    if hit is None:
        # the modules a graph runs: when their graphs keep changing structure (a Python
        # loop over varying lengths), compiling each would cost more than op by op
        family = tuple(sorted({id(n.fn.args[0]) for n in plan.nodes
                               if isinstance(n.fn, functools.partial)}))  # fmt: skip
        seen = _FAMILIES[family] = _FAMILIES.get(family, 0) + 1
        if seen > _MAX_PER_FAMILY:
            return f
        if len(_FAMILIES) > 4 * _MAX_COMPILED:
            _FAMILIES.pop(next(iter(_FAMILIES)))
        if len(_COMPILED) >= _MAX_COMPILED:
            _COMPILED.pop(next(iter(_COMPILED)))
        hit = _COMPILED[k] = jax.jit(f)
    return functools.partial(_call_plan, hit, f, k)


# errors of a replay that needs concrete values (x[mask], .item(), Python control flow on
# a value): such a graph is differentiated eagerly, op by op, from then on
_NEEDS_VALUES = (jax.errors.ConcretizationTypeError, jax.errors.NonConcreteBooleanIndexError,
                 jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError,
                 jax.errors.TracerArrayConversionError, state.TraceError)  # fmt: skip
_EAGER: set = set()


def _call_plan(compiled: Callable, eager: Callable, k: Any, *a: Any) -> Any:
    # the compiled function closes over the first plan it was traced with; later plans of
    # the same structure pass their own values (jit traces nothing again)
    try:
        return compiled(*a)
    except _NEEDS_VALUES:
        _COMPILED.pop(k, None)
        if len(_EAGER) >= _MAX_COMPILED:
            _EAGER.clear()
        _EAGER.add(k)
        return eager(*a)


def _roots(tensors: Any, grads: Any) -> tuple[list, list]:
    ts = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if grads is None:
        gs = [None] * len(ts)
    else:
        gs = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    if len(gs) != len(ts):
        raise RuntimeError(
            f"grad can be implicitly created only for scalar outputs (got {len(gs)} "
            f"gradients for {len(ts)} tensors)"
        )
    return ts, gs


def _check_root(t: Any) -> None:
    if type(t) is _TapeTensor:
        return
    v = _b.unwrap(t)
    if isinstance(v, _Tracer) or _ctx.lift_depth:
        raise RuntimeError(_err.BACKWARD)
    raise RuntimeError(
        "element 0 of tensors does not require grad and does not have a grad_fn "
        "(jaxmod records eager operations on parameters and requires_grad tensors outside "
        "no_grad and jaxmod transforms; this tensor was computed from none of them)"
    )


def _cotangent(t: Any, g: Any) -> Any:
    v = t._value
    if g is None:
        if np.size(v) != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return jnp.ones_like(v)
    g = jnp.asarray(_b.unwrap(g))
    if g.shape != v.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[0] has a shape of {tuple(g.shape)} and "
            f"output[0] has a shape of {tuple(v.shape)}."
        )
    return g.astype(v.dtype)


def _setup(ts: list, gs: list, taps: list) -> tuple[list, _Plan, tuple, list]:
    """The graph of roots ``ts`` laid out for a replay: (nodes, plan, the roots' (node,
    output) slots, their cotangents from ``gs``)."""
    for t in ts:
        _check_root(t)
    nodes = _graph([t._ag[0] for t in ts])
    plan = _Plan(nodes, [t._ag for t in taps])
    index = {id(n): i for i, n in enumerate(nodes)}
    outs = tuple((index[id(t._ag[0])], t._ag[1]) for t in ts)
    cots = [_cotangent(t, g) for t, g in zip(ts, gs)]
    _S.backwards += 1
    return nodes, plan, outs, cots


def _run(ts: list, gs: list, taps: list, retain_graph: bool) -> tuple[list, list, list]:
    """Differentiate tape tensors ``ts`` (cotangents ``gs``): (plan's leaves, leaf grads
    (None for leaves the roots do not depend on), tap grads)."""
    nodes, plan, outs, cots = _setup(ts, gs, taps)
    leafvals = [v for _, v in plan.leaves]
    tapvals = [jnp.zeros_like(t._value) for t in taps]
    f = _vjp_fn(plan, outs)
    _, gl, gt = f(leafvals, plan.consts, tapvals, cots)
    used = _used_leaves(plan, outs, leafvals, plan.consts, tapvals)
    if not retain_graph:
        for n in nodes:
            n.freed = True
            n.specs = n.values = ()
    gl = [g if u else None for g, u in zip(gl, used)]
    leaves = plan.leaves
    # a compiled replay keeps its first plan for retracing: not this step's arrays
    plan.leaves, plan.consts = [], []
    return leaves, gl, list(gt)


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: Any = None,
             create_graph: bool = False, inputs: Any = None) -> None:  # fmt: skip
    """``torch.autograd.backward`` / ``tensor.backward()``: add the gradients of ``tensors``
    into the ``.grad`` of every leaf they were computed from."""
    if create_graph:
        raise TapeError(_CREATE_GRAPH)
    ts, gs = _roots(tensors, grad_tensors)
    if not all(type(t) is _TapeTensor for t in ts) and all(_is_source(t) for t in ts):
        for t, g in zip(ts, gs):  # a leaf's gradient with respect to itself
            _accumulate(t, _cotangent(_as_tensor(t), g))
        return
    retained = _retained(ts)
    leaves, gl, gt = _run(ts, gs, retained, bool(retain_graph))
    wanted = None if inputs is None else {id(x) for x in _listed(inputs)}
    for k, (src, g) in _per_source(leaves, gl).items():
        if wanted is None or k in wanted:
            _accumulate(src, _leaf_grad(src, g))
    for t, g in zip(retained, gt):
        _accumulate(t, g)


def _retained(ts: list) -> list:
    """The tensors given ``retain_grad()`` in the graph of ``ts`` (none once it is freed:
    the backward itself then raises)."""
    try:
        nodes = _graph([t._ag[0] for t in ts if type(t) is _TapeTensor])
    except RuntimeError:
        return []
    return [t for n in nodes if n.retained for t in n.retained.values()]


def _per_source(leaves: list, grads: list, used: Any = None) -> dict[int, list]:
    """``id(source) -> [source, gradient]``, a leaf's gradient summed over the values it
    entered the graph with; ``None`` gradients (and unused leaves) left out."""
    out: dict[int, list] = {}
    for i, ((src, _), g) in enumerate(zip(leaves, grads)):
        if g is None or (used is not None and not used[i]):
            continue
        if id(src) in out:
            out[id(src)][1] = out[id(src)][1] + g
        else:
            out[id(src)] = [src, g]
    return out


def _assemble(xs: list, by_tap: dict, by_src: dict, allow_unused: bool,
              materialize: bool) -> tuple:  # fmt: skip
    """``autograd.grad``'s result: the gradient (a Tensor) of each input ``xs[i]``, from a
    tap (a computed input) or a source; an input outside the graph raises torch's error,
    or gives None (``allow_unused``) or zeros (``materialize_grads``)."""
    res = []
    for i, x in enumerate(xs):
        g = by_tap.get(id(x), by_src.get(id(x)))
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}) appears to not have been "
                    "used in the graph. Set allow_unused=True if this is the desired behavior."
                )
            g = jnp.zeros_like(_b.unwrap(x)) if materialize else None
        res.append(None if g is None else _as_tensor(g))
    return tuple(res)


def _listed(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _accumulate(src: Any, g: Any) -> None:
    g = jnp.asarray(g)
    old = src.grad
    src.grad = _b.new(g) if old is None else _b.new(_b.unwrap(old) + g)


_CREATE_GRAPH = (
    "backward(create_graph=True) (gradients on .grad that are themselves differentiated) "
    "is not supported by jaxmod's autograd tape. Take the gradient with "
    "torch.autograd.grad(outputs, inputs, create_graph=True), which is, or nest jaxmod.grad: "
    "gp = jaxmod.grad(lambda x: critic(x).sum())(x)."
)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: Any = None,
         create_graph: bool = False, allow_unused: Any = None,
         materialize_grads: bool = False, **kwargs: Any) -> tuple:  # fmt: skip
    """``torch.autograd.grad``: the gradients of ``outputs`` with respect to ``inputs``
    (leaves or computed tensors), returned instead of stored on ``.grad``."""
    ts, gs = _roots(outputs, grad_outputs)
    xs = _listed(inputs)
    if create_graph:
        return _grad_with_graph(ts, gs, xs, allow_unused or materialize_grads, materialize_grads)
    taps = [x for x in xs if type(x) is _TapeTensor]
    # as in torch, tensors given retain_grad() receive their gradient here too
    retained = _retained(ts)
    extra = [t for t in retained if all(t is not x for x in taps)]
    leaves, gl, gt = _run(ts, gs, taps + extra, bool(retain_graph))
    by_id = {id(t): g for t, g in zip(taps + extra, gt)}
    for t in retained:
        _accumulate(t, by_id[id(t)])
    by_src = {k: _leaf_grad(src, g) for k, (src, g) in _per_source(leaves, gl).items()}
    by_tap = {id(t): g for t, g in zip(taps, gt)}
    return _assemble(xs, by_tap, by_src, bool(allow_unused or materialize_grads),
                     materialize_grads)  # fmt: skip


class _GradOf:
    """The gradient of a graph as a function of its leaves: ``autograd.grad(...,
    create_graph=True)`` records it as an operation, so a later ``backward()`` differentiates
    the gradient (a gradient penalty). Equal for graphs of one structure (the compile key)."""

    __slots__ = ("plan", "outs", "key")

    def __init__(self, plan: _Plan, outs: tuple) -> None:
        self.plan, self.outs = plan, outs
        self.key = None if plan.key is None else (plan.key, outs, tuple(plan.taps))

    def __hash__(self) -> int:
        return hash(self.key) if self.key is not None else id(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _GradOf):
            return NotImplemented
        return self is other or (self.key is not None and self.key == other.key)

    def __call__(self, leaves: list, consts: list, taps: list, cots: list) -> tuple:
        lv = [_b.unwrap(v) for v in leaves]
        cs = [_b.unwrap(c) for c in consts]
        tv = [jnp.zeros_like(_b.unwrap(t)) for t in taps]
        _, back = jax.vjp(_replay(self.plan, cs, self.outs), lv, tv)
        gl, gt = back([_b.unwrap(c) for c in cots])
        return [_b.new(x) for x in gl], [_b.new(x) for x in gt]


def _grad_with_graph(ts: list, gs: list, xs: list, allow_unused: bool,
                     materialize: bool) -> tuple:  # fmt: skip
    """``autograd.grad(..., create_graph=True)``: gradients that are tape tensors."""
    taps = [x for x in xs if type(x) is _TapeTensor]
    _, plan, outs, cots = _setup(ts, gs, taps)
    # a leaf enters as itself (so the gradient depends on it) unless it changed since
    leaves = [src if _b.unwrap(src) is v else v for src, v in plan.leaves]
    values = [v for _, v in plan.leaves]
    used = _used_leaves(plan, outs, values, plan.consts, [jnp.zeros_like(t._value) for t in taps])
    gl, gt = record(_GradOf(plan, outs), "Grad", (leaves, list(plan.consts), taps, cots), {})
    by_src = {k: g for k, (_, g) in _per_source(plan.leaves, gl, used).items()}
    by_tap = {id(t): g for t, g in zip(taps, gt)}
    return _assemble(xs, by_tap, by_src, allow_unused, materialize)


_b.tape_marked = marked
_b.tape_register_hook = register_hook
_b.tape_recording = recording
_b.tape_record = record
_b.tape_backward = lambda t, g, retain, create, inputs: backward(t, g, retain, create, inputs)
