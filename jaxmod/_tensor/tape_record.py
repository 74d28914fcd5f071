"""The autograd tape, recording: what an eager operation on tensors that require grad
leaves behind for ``backward()`` (:mod:`jaxmod._tensor.tape` has the overview).

An eager operation with an input that requires grad (a ``Parameter`` with
``requires_grad``, a tensor after ``requires_grad_()``, or a tensor the tape made) runs as
it always does and also records a :class:`Node`: the callable, its arguments (array
references, not copies) and the generator key and autocast policy it ran under. A whole
eager module call is one node (its parameters and buffers are saved by reference), so a
forward pass records a handful of nodes, not one per layer. Its Tensor outputs become tape
tensors (``requires_grad`` true, ``grad_fn`` set). Tensor methods are wrapped here once
(:func:`_install`); an unrecorded call pays one type check per argument.
"""

from __future__ import annotations

import functools
import itertools
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod import _autograd
from jaxmod._core import lifting, state
from jaxmod._core.cells import Variable
from jaxmod._core.rng import default_generator
from jaxmod._tensor import base as _b
from jaxmod._tensor import grad_names as _names
from jaxmod._tensor.tensor import Tensor, TensorMethods, _GradTensor, _GradView, _View
from jaxmod.amp import _state as _amp

__all__ = ["TapeError", "Node", "is_replaying", "record", "record_module", "module_wanted",
           "recording", "marked", "register_linkable"]  # fmt: skip

_ctx = state.ctx
_Tracer = jax.core.Tracer
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
        self._gd = None if value is None else _b.as_tensor(value)

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
                 "mutated", "seq", "freed", "retained", "eager", "hooks", "tname")  # fmt: skip

    def name(self) -> str:
        """torch's ``grad_fn.name()`` for the operation, e.g. ``"NllLossBackward0"`` (see
        :mod:`jaxmod._tensor.grad_names`)."""
        return self.tname

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
    if t is _GradTensor or t is _GradView:
        return True
    return isinstance(x, Variable) and bool(getattr(x, "_requires_grad", False))


def _marks(a: Any) -> bool:
    t = type(a)
    if t is _TapeTensor or t is _GradTensor or t is _GradView:
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
           cells: list | None = None, run: Callable | None = None,
           name: str | None = None) -> Any:  # fmt: skip
    """Run ``fn(*args, **kwargs)`` and record it, when an input (or a cell) requires grad.
    ``run``: what to call now instead of ``fn`` (the same function, compiled); the replay
    calls ``fn``. ``name``: the node's ``grad_fn.name()`` (default: torch's name for
    ``label``'s operation)."""
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
    if name is None:
        module = fn.args[0] if isinstance(fn, functools.partial) and fn.func is _call else None
        name = _names.torch_name(label, args, kwargs, module, _b.unwrap(out_flat[positions[0]])
                                 if positions else None)  # fmt: skip
    node.tname = name
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
          "pin_memory", "share_memory_", "zero_", "fill_",
          # the COO accessors: values() records its own indexing with the indices found
          # on the host (a replay of the whole method would need the values)
          "coalesce", "is_coalesced", "indices", "_indices", "values", "_values", "_nnz",
          "sparse_dim", "dense_dim"}  # fmt: skip


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


def _call_and_read(module: Any, paths: tuple, *args: Any, **kwargs: Any) -> Any:
    out = module(*args, **kwargs)
    return out, tuple(m.__dict__[name] for m, name in paths)


def _tensor_attributes(module: Any) -> dict[tuple[int, str], Any]:
    """The Tensor-valued plain attributes of ``module`` and its submodules."""
    found: dict[tuple[int, str], Any] = {}
    for m in module.modules() if hasattr(module, "modules") else ():
        for name, v in m.__dict__.items():
            if type(v) in _b.TT:
                found[(id(m), name)] = v
    return found


def _promote_attributes(module: Any, before: dict, out: Any) -> None:
    """Tensors the forward stored on its modules (``self.loss = F.mse_loss(...)`` in style
    transfer, ``self.aux_loss`` in a mixture of experts) become outputs of the call's node,
    so ``module.loss.backward()`` reaches the parameters, as in torch."""
    node = next((t._ag[0] for t in jax.tree_util.tree_leaves(out, is_leaf=_stop)
                 if type(t) is _TapeTensor), None)  # fmt: skip
    if node is None or node.mutated or not isinstance(node.fn, functools.partial):
        return
    paths, values = [], []
    for m in module.modules():
        for name, v in m.__dict__.items():
            if (type(v) in (Tensor, _View) and before.get((id(m), name)) is not v
                    and _float(_b.unwrap(v))):  # fmt: skip
                paths.append((m, name))
                values.append(v)
    if not paths:
        return
    n_out = len(jax.tree_util.tree_leaves(out, is_leaf=_stop))
    base = len(node.positions)
    node.fn = functools.partial(_call_and_read, module, tuple(paths))
    node.positions = list(node.positions) + [n_out + i for i in range(len(paths))]
    for i, ((m, name), v) in enumerate(zip(paths, values)):
        t = _new(_TapeTensor)
        t._value = _b.unwrap(v)
        t._ag = (node, base + i)
        m.__dict__[name] = t


def record_module(module: Any, args: tuple, kwargs: dict, eager: bool = False,
                  run: Callable | None = None) -> Any:  # fmt: skip
    """Run an outermost eager module call, recording it as one node when its parameters
    (or inputs) require grad. ``eager``: the module has backward hooks, so a backward
    through it runs uncompiled (the hooks see gradients with values, once). Float tensors
    the forward stores on its modules are outputs of the node too."""
    found = lifting.discover([("module", module)], None)
    cells = found.cells + found.ro
    fn = functools.partial(_call, module)
    before = _tensor_attributes(module)
    out = record(fn, type(module).__name__, args, kwargs, cells=cells, run=run)
    _promote_attributes(module, before, out)
    if eager:
        for t in jax.tree_util.tree_leaves(out, is_leaf=_stop):
            if type(t) is _TapeTensor:
                t._ag[0].eager = True
    return out
