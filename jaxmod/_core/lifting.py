"""Lifting: find the state a function reaches, and run it as a pure function of that state.

Every jaxmod transform (jit, grad, value_and_grad, vmap, checkpoint, scan_layers) is
built from two pieces here:

- :func:`discover` finds the state a call reaches: stateful objects (``_jaxmod_cells_``:
  Module, Optimizer, Generator; bare boxes) in the arguments, the closure, the globals its
  code names, a bound method's ``self`` -- and everything reached through the attributes of
  plain objects found there (a ``Trainer`` holding ``self.model`` and ``self.opt``, a
  dataclass, nested lists/dicts; cycles are safe). Only attributes the function's code
  names are followed; each becomes a *guard* that a cached plan re-checks on every call.
- :func:`lift` turns ``fn`` into ``pure(values, ro_values, *args, **kwargs) -> (out, new)``:
  swap the values into the cells, run ``fn`` unchanged, read the cells back, restore the
  old values in ``finally`` (also on KeyboardInterrupt), check for leaked tracers.

Nesting rule: inside a jaxmod.jit trace, an inner transform lifts only cells the enclosing
jit lifted (they hold its tracers); a cell still holding a concrete array raises
:class:`StaleStateError` when read, never a silently baked constant.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax

from jaxmod._core import codegen, state
from jaxmod._core.cells import AttrRef, is_value, unlifted_read, wrapper_of
from jaxmod._core.graph import static_key
from jaxmod._core.state import Tracer, TracerLeakError

__all__ = [
    "Found", "discover", "lift", "cells_of", "static_of", "code_names",
    "enclosed", "require_lifted", "is_stateful",
    "searchable", "captured", "reachable_names", "call_roots",
]  # fmt: skip

_ctx = state.ctx


def is_stateful(x: Any) -> bool:
    """Whether ``x`` carries jaxmod state itself (a Module, Optimizer, Generator or box)."""
    t = type(x)
    return hasattr(t, "_jaxmod_cells_") or getattr(t, "_jaxmod_cell_", False)


def cells_of(obj: Any) -> list[Any]:
    """The cells of a stateful object (a box is its own single cell)."""
    return [obj] if getattr(type(obj), "_jaxmod_cell_", False) else list(obj._jaxmod_cells_())


def static_of(obj: Any) -> Any:
    """What about a stateful object, besides its values, shapes the traced code."""
    if getattr(type(obj), "_jaxmod_cell_", False):
        from_aux = getattr(type(obj), "_jaxmod_static_", None)
        return (type(obj), from_aux(obj) if from_aux is not None else None)
    return obj._jaxmod_static_()


def code_names(code: types.CodeType) -> Iterator[str]:
    """Global and attribute names a code object (and the code nested in it) mentions."""
    yield from code.co_names
    for c in (c for c in code.co_consts if isinstance(c, types.CodeType)):
        yield from code_names(c)


def _method_names(cls: type, names: set[str], depth: int = 3) -> set[str]:
    """``names`` plus those the methods/properties of ``cls`` named there mention, repeated."""
    out = set(names)
    for _ in range(depth):
        more = set()
        for n in out:
            m = inspect.getattr_static(cls, n, None)
            m = getattr(m, "fget", None) or getattr(m, "__func__", None) or m
            if isinstance(m, types.FunctionType):
                more |= set(code_names(m.__code__))
        if more <= out:
            break
        out |= more
    return out


# Plain objects are searched, except library objects and kinds that never hold model state.
_NOT_SEARCHED_ROOTS = frozenset({
    "jax", "jaxlib", "numpy", "optax", "torch", "flax", "equinox", "orbax", "builtins",
    "functools", "threading", "collections", "typing", "abc",
})  # fmt: skip
_NOT_SEARCHED_KINDS = (type, types.ModuleType, types.FunctionType, types.MethodType,
                       types.BuiltinFunctionType, types.CodeType)  # fmt: skip


def searchable(x: Any) -> bool:
    """Whether ``x`` is a plain Python object whose attributes discovery follows."""
    if isinstance(x, _NOT_SEARCHED_KINDS) or not hasattr(x, "__dict__"):
        return False
    root = (type(x).__module__ or "").partition(".")[0]
    return root not in _NOT_SEARCHED_ROOTS or dataclasses.is_dataclass(x)


MAX_ITEMS = 4096  # containers larger than this are not searched for state


class Found:
    """The state a call reaches (what :func:`discover` returns)."""

    __slots__ = ("objs", "cells", "ro", "static", "guards")

    def __init__(self) -> None:
        self.objs: list[Any] = []  # stateful objects, in discovery order
        self.cells: list[Any] = []  # unique mutable cells
        self.ro: list[Any] = []  # unique read-only cells (a Tensor written inside: error)
        self.static: list[Any] = []  # per root: a hashable description (None: nothing)
        self.guards: list[Callable[[Any], bool]] = []  # re-checked by cached plans


def discover(roots: Sequence[tuple[str, Any]], names: set[str] | None) -> Found:
    """Find the state reachable from ``roots`` (``(name, object)`` pairs): stateful roots
    whole; plain objects, lists, tuples and dicts searched through the attributes in
    ``names`` (all when None). Tensors captured by value become read-only cells, array
    attributes of plain objects mutable ones."""
    found = Found()
    seen: dict[int, int] = {}  # id -> order of first visit (stable across equal graphs)
    cell_ids: set[int] = set()

    def add(c: Any, ro: bool) -> None:
        if id(c) not in cell_ids:
            cell_ids.add(id(c))
            (found.ro if ro else found.cells).append(c)

    def visit(x: Any) -> Any:
        """Search ``x``; returns its static description (None: nothing of interest)."""
        if id(x) in seen:
            return ("seen", seen[id(x)]) if is_stateful(x) or searchable(x) else None
        if isinstance(x, (list, tuple, dict)) and len(x) > MAX_ITEMS:
            return None  # not searched (a read of state inside raises StaleStateError)
        seen[id(x)] = len(seen)
        if is_stateful(x):
            found.objs.append(x)
            for c in cells_of(x):
                add(c, getattr(c, "_jaxmod_readonly", False))
            return ("state", len(found.objs) - 1)
        if wrapper_of(x) is not None:  # a Tensor captured by value
            add(x, True)
            return ("ro", type(x))
        if type(x) in (dict, list, tuple) or (isinstance(x, tuple) and hasattr(x, "_fields")):
            items = list(x.items()) if type(x) is dict else list(enumerate(x))
            inner = tuple((k, visit(v)) for k, v in items)
            if all(d is None for _, d in inner):
                return None
            if type(x) in (list, dict):  # mutable: its items are re-checked by cached plans
                snap = type(x)(x)
                found.guards.append(lambda args, x=x, snap=snap: _equal(type(snap)(x), snap))
            return (type(x), inner)
        return visit_plain(x) if searchable(x) else None

    def visit_plain(obj: Any) -> Any:
        d = obj.__dict__
        local = None if names is None else _method_names(type(obj), names)
        desc: list[Any] = []
        checks: list[tuple[str, str, Any]] = [("", "len", len(d))]
        for k, v in list(d.items()):
            if local is not None and k not in local:
                continue
            if is_value(v) and not is_stateful(v):  # an array attribute: a mutable cell
                add(AttrRef(obj, k), False)
                checks.append((k, "value", wrapper_of(v)))
                desc.append((k, "cell", type(v).__name__))
                continue
            sub = visit(v)
            checks.append((k, "eq" if sub is None else "is", v))
            desc.append((k, ("static", static_key(v)) if sub is None else sub))
        found.guards.append(codegen.attribute_guard(obj, checks, wrapper_of, is_value, _equal))
        return (type(obj), tuple(desc))

    found.static = [visit(x) for _, x in roots]
    return found


def _equal(a: Any, b: Any) -> bool:
    try:
        return a is b or bool(a == b)
    except Exception:
        return False


def _functions(fn: Any, depth: int = 2) -> list[Any]:
    """``fn`` and the functions it reaches by name (closure, named globals), ``depth`` calls
    down: a step calling ``helper(x)`` that uses a global model reaches that model too."""
    f = inspect.unwrap(getattr(fn, "__func__", fn))
    if getattr(f, "__code__", None) is None:  # a callable object: its __call__
        f = inspect.getattr_static(type(f), "__call__", None)
    out, todo, seen = [], [(f, depth)], set()
    while todo:
        f, d = todo.pop(0)
        if getattr(f, "__code__", None) is None or id(f) in seen:
            continue
        seen.add(id(f))
        out.append(f)
        values = [c.cell_contents for c in f.__closure__ or () if _filled(c)] if d else []
        values += [f.__globals__.get(n) for n in code_names(f.__code__)] if d else []
        todo += [(v, d - 1) for v in values if isinstance(v, types.FunctionType)]
    return out


def _filled(cell: Any) -> bool:
    try:
        return cell.cell_contents is not _filled  # any value: filled
    except ValueError:
        return False


def captured(fn: Any) -> tuple[list, list, list[tuple[str, Any]]]:
    """State candidates ``fn`` reaches by name: bound ``self``, closure values and named
    globals of ``fn`` and the functions it calls, as ``(cells, globs, roots)``: (cell, value)
    and (dict, name, value) that a cached plan re-checks, and ``(name, value)`` roots."""
    roots: list[tuple[str, Any]] = []
    cells: list[tuple[Any, Any]] = []
    globs: list[tuple[dict, str, Any]] = []
    self_obj = getattr(fn, "__self__", None)
    if self_obj is not None:
        roots.append(("self", self_obj))
    f = inspect.unwrap(getattr(fn, "__func__", fn))
    if getattr(f, "__code__", None) is None and (is_stateful(f) or searchable(f)):
        roots.append((type(f).__name__, f))  # a Module (or a callable object) as the function
    for f in _functions(fn):
        code = f.__code__
        for name, cell in zip(code.co_freevars, f.__closure__ or ()):
            if _filled(cell):
                roots.append((name, cell.cell_contents))
                cells.append((cell, cell.cell_contents))
        g = f.__globals__
        for name, v in ((n, g.get(n)) for n in dict.fromkeys(code_names(code))):
            if v is not None and not isinstance(v, (type, types.ModuleType)):
                roots.append((name, v))
                globs.append((g, name, v))
    return cells, globs, roots


def reachable_names(fn: Any) -> set[str]:
    """Names ``fn`` and the functions it calls mention: attributes a call may read."""
    return {n for f in _functions(fn) for n in code_names(f.__code__)}


def call_roots(fn: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """What a call of ``fn`` reaches that may hold state: arguments (and stateful leaves of
    argument pytrees), then ``self``, closure values and named globals."""
    held = lambda x: is_stateful(x) or searchable(x)  # noqa: E731
    leaves = jax.tree_util.tree_leaves
    roots = [(f"args[{i}]", x) for i, a in enumerate((*args, *kwargs.values()))
             for x in ([a] if held(a) else leaves(a, is_leaf=held)) if held(x)]  # fmt: skip
    return roots + captured(fn)[2]


def enclosed(cells: Sequence[Any]) -> list[Any]:
    """The cells a transform may lift: inside a jaxmod.jit trace only those it lifted."""
    return [c for c in cells if not _ctx.jit_depth or isinstance(c._value, Tracer)]


def require_lifted(cells: Sequence[Any]) -> None:
    """Inside a jaxmod.jit trace, raise StaleStateError for a cell the jit did not lift."""
    for c in cells if _ctx.jit_depth else ():
        if not isinstance(c._value, Tracer):
            unlifted_read(c)


def lift(
    fn: Callable, cells: Sequence[Any], ro: Sequence[Any] = (), *, jit: bool = False,
    describe: Callable[[Any], str | None] | None = None,
    check: Callable[[Sequence[Any]], str | None] | None = None,
) -> Callable:  # fmt: skip
    """``fn`` as a pure function of ``cells``: ``pure(values, ro_values, *args, **kwargs)``
    returning ``(out, new_values)``: values swapped into the cells, the old ones restored in
    ``finally``; a read-only cell written inside raises. ``jit=True``: a jaxmod.jit trace
    (unlifted cells raise on read; ``describe`` names them). After a call that changed
    structure, ``check(cells)`` may name a leaked tracer (raised as :class:`TracerLeakError`).
    """
    cells = list(cells)
    ro = list(ro)
    every = cells + ro

    def pure(values: Sequence[Any], ro_values: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        old = [c._value for c in every]
        for c, v in zip(every, (*values, *ro_values)):
            c._value = v
        _ctx.lift_depth += 1
        if jit:
            _ctx.jit_depth += 1
            prev_describe, _ctx.describe = _ctx.describe, describe
        version = state._version
        ok = False
        try:
            out = fn(*args, **kwargs)
            new = [c._value for c in cells]
            for c, v in zip(ro, ro_values):
                if wrapper_of(c) is not None and c._value is not v:
                    raise TracerLeakError(
                        f"{_name(c, describe)} was captured by value (a Tensor in a closure "
                        "or global) and changed in place inside a jaxmod transform, which "
                        "would not be seen outside. Pass it as an argument and return the new "
                        "value, or keep it in a module (as a buffer or attribute)."
                    )
            ok = True
        finally:
            _ctx.lift_depth -= 1
            if jit:
                _ctx.jit_depth -= 1
                _ctx.describe = prev_describe
            for c, v in zip(every, old):
                c._value = v
            if check is not None and state._version != version:
                leak = check(every)
                if leak is not None and ok:
                    raise TracerLeakError(leak)
        return out, new

    return pure


def _name(cell: Any, describe: Callable[[Any], str | None] | None) -> str:
    return (describe(cell) if describe is not None else None) or f"a {type(cell).__name__}"
