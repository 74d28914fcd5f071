"""``jaxmod.jit``: compile a function of stateful objects with XLA, keeping in-place semantics.

A call is planned once per structure: :func:`~jaxmod._core.lifting.discover` finds the
state the call reaches (arguments, closure, globals, ``self``, attributes of plain objects),
and one ``jax.jit`` of the :func:`~jaxmod._core.lifting.lift`-ed function is kept per
static description. A steady-state call is generated straight-line code
(:func:`~jaxmod._core.codegen.jit_call_factory`): check identities and guards, gather cell
values, call the compiled function (donating the old state buffers), store the new values.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Sequence
from typing import Any

import jax

from jaxmod._core import codegen, lifting, state
from jaxmod._core.cells import AttrRef, Variable, is_torch_tensor, torch_to_numpy
from jaxmod._core.graph import static_key
from jaxmod._core.lifting import discover, is_stateful, lift
from jaxmod._core.state import NeedsLift, TraceError, Tracer
from jaxmod._tensor import base as _tb
from jaxmod._tensor.tensor import Tensor as _TENSOR
from jaxmod.amp import _state as _amp
from jaxmod.transforms._failures import OutOfMemoryError, StateLostError, check_memory, failure
from jaxmod.transforms._sharding import arg_sharding, state_shardings

__all__ = ["jit", "Jit", "TraceError", "OutOfMemoryError", "StateLostError"]

_TRACE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)
_MISS = object()  # a fast path's answer when the plan does not fit the call
_factories: dict[tuple, Callable] = {}


def _where(e: BaseException, roots: Sequence[tuple[str, Any]]) -> str:
    """`` in module 'features.3' (Conv2d)`` for the innermost module ``e`` passed through."""
    mod = getattr(e, "_jaxmod_module", None)
    path = path_of(mod, roots) if mod is not None else None
    if path:
        return f" in module '{path}' ({type(mod).__name__})"
    return f" in {type(mod).__name__}.forward" if mod is not None else ""


def _trace_error(e: BaseException, roots: Sequence[tuple[str, Any]]) -> TraceError:
    where = _where(e, roots)
    return TraceError(
        f"jaxmod.jit: Python code{where} needed a concrete value, but inside jaxmod.jit "
        "arrays are traced (no value exists until the compiled function runs). This happens "
        "with `if x.sum() > 0:`, `while x.norm() > 1:`, `.item()`, `float(x)` or `int(x)` "
        "on arrays. Fixes: make the value a static argument (static_argnums=/"
        "static_argnames=), express the branch with jax.lax.cond / jnp.where / "
        "jax.lax.while_loop, or run this code eagerly (without jaxmod.jit).\n"
        f"Original JAX error: {type(e).__name__}: {e}"
    )


def _holds_state(x: Any) -> bool:
    """A stateful object, or a plain object whose attributes discovery searches."""
    return is_stateful(x) or lifting.searchable(x)


def _from_torch(tree: Any) -> tuple[Any, bool]:
    """``tree`` with its torch tensors (a torch DataLoader's batch) as JAX arrays: through
    DLPack, sharing a CPU tensor's memory (no copy), else through numpy. Stateful objects
    are not entered. Returns the tree and whether anything was converted."""
    found = False

    def convert(x: Any) -> Any:
        nonlocal found
        if not is_torch_tensor(x):
            return x
        found = True
        try:
            return jax.dlpack.from_dlpack(x.detach())
        except Exception:  # a device JAX does not have, a conjugate view, ...
            return jax.numpy.asarray(torch_to_numpy(x))

    out = jax.tree_util.tree_map(
        convert, tree, is_leaf=lambda x: _holds_state(x) or is_torch_tensor(x)
    )
    return out, found


_new_tensor = _tb.new


def unbox(tree: Any) -> Any:
    """Arrays rather than boxes in what a compiled function returns."""
    return jax.tree_util.tree_map(
        lambda x: x._value if isinstance(x, Variable) else x,
        tree,
        is_leaf=lambda x: isinstance(x, Variable) or hasattr(type(x), "_jaxmod_cells_"),
    )


def path_of(target: Any, roots: Sequence[tuple[str, Any]], depth: int = 6) -> str | None:
    """A path from ``roots`` to ``target`` (``"self.model.fc.weight"``), breadth first."""
    seen: set[int] = set()
    frontier = list(roots)
    for _ in range(depth):
        nxt: list[tuple[str, Any]] = []
        for path, x in frontier:
            if id(x) in seen:
                continue
            seen.add(id(x))
            if x is target:
                return path
            d = getattr(x, "__dict__", None)
            if isinstance(d, dict) and "_parameters" in d:  # a Module
                for key in ("_parameters", "_buffers", "_modules"):
                    nxt += [(f"{path}.{k}", v) for k, v in d[key].items() if v is not None]
                nxt += [(f"{path}.{k}", v) for k, v in d.items() if not k.startswith("_")]
            elif type(x) in (list, tuple) and len(x) <= lifting.MAX_ITEMS:
                nxt += [(f"{path}[{i}]", v) for i, v in enumerate(x)]
            elif type(x) is dict and len(x) <= lifting.MAX_ITEMS:
                nxt += [(f"{path}[{k!r}]", v) for k, v in x.items()]
            elif isinstance(d, dict) and not isinstance(x, (type, types.ModuleType)):
                nxt += list((f"{path}.{k}", v) for k, v in d.items())  # any object, to name
        frontier = nxt
    return None


def describe(cell: Any, roots: Sequence[tuple[str, Any]]) -> str | None:
    """Name ``cell`` by its path from ``roots`` (``"Parameter 'self.model.fc.weight'"``)."""
    path = path_of(cell, roots)
    return None if path is None else f"{type(cell).__name__} '{path}'"


def _find_leak(objs: Sequence[Any], lifted: Sequence[Any]) -> str | None:
    """After a trace that changed structure: a message naming a traced value left outside
    the lifted state (a new attribute, a box registered inside the function), or None."""
    boxes = {id(v) for v in lifted}
    attrs = {(id(v.obj), v.name) for v in lifted if isinstance(v, AttrRef)}
    for obj in objs:
        named = getattr(obj, "named_modules", None)
        if named is None:
            continue
        for name, m in named():
            for k, v in m.__dict__.items():
                bad = isinstance(v, Tracer) and (id(m), k) not in attrs
                if not bad and k in ("_parameters", "_buffers"):
                    for bk, box in v.items():
                        if (
                            box is not None
                            and id(box) not in boxes
                            and isinstance(box._value, Tracer)
                        ):
                            k, bad = bk, True
                            break
                if bad:
                    where = f"{name}.{k}" if name else k
                    return (
                        f"jaxmod.jit: the function stored a traced value in a new attribute "
                        f"'{where}' of {type(m).__name__}. Only state that existed before the "
                        "call (parameters, buffers, array attributes) can be updated inside "
                        "jaxmod.jit; create new parameters/buffers/attributes outside the "
                        "compiled function, or return the value instead."
                    )
    return None


class _Fresh:
    """A structure's compiled function before its first successful call: ``probe`` (no
    donation) traces it; ``variant(donate)`` builds (once) the one to keep (see
    ``Jit._settle``)."""

    __slots__ = ("make", "probe", "made")

    def __init__(self, make: Callable[[bool], Any]) -> None:
        self.make, self.probe, self.made = make, make(False), {}

    def variant(self, donate: bool) -> Any:
        if donate not in self.made:
            self.made[donate] = self.make(donate)
        return self.made[donate]


_CALLBACKS = ("callback", "debug_print")  # primitives that run host code at run time


def _has_callbacks(jaxpr: Any) -> bool:
    """Whether a jaxpr (or one nested in it: scan, cond, custom_vjp...) calls host code."""
    for e in jaxpr.eqns:
        if any(c in e.primitive.name for c in _CALLBACKS):
            return True
        for v in e.params.values():
            for sub in v if isinstance(v, (tuple, list)) else (v,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns") and _has_callbacks(inner):
                    return True
    return False


class _Plan:
    """Everything a steady-state call needs, valid while ``version`` is current."""

    __slots__ = ("version", "nargs", "kw_names", "stateful_pos", "static_pos", "dyn_pos", "cells",
                 "globs", "guards", "mut", "ro", "objs", "jitted", "roots", "dyn_now", "fast",
                 "kw_names_state", "key", "fresh", "tdyn", "wrap")  # fmt: skip

    def fits(self, fn: Any, args: tuple, kwargs: dict) -> bool:
        """The general (looping) form of the fast path's checks."""
        if self.version != state._version or len(args) != self.nargs:
            return False
        if tuple(kwargs) != self.kw_names:
            return False
        return (
            all(args[i] is o for i, o in self.stateful_pos)
            and all(args[i] is v or args[i] == v for i, v in self.static_pos)
            and all(c.cell_contents is o for c, o in self.cells)
            and all(g.get(n) is o for g, n, o in self.globs)
            and all(q(args) for q in self.guards)
            and all((type(args[i]) is _TENSOR) == (i in self.tdyn) for i in self.dyn_pos)
        )

    def dyn_of(self, args: tuple) -> list[Any]:
        """The traced arguments of a call that fits: plain Tensors as their arrays."""
        tdyn = self.tdyn
        return [args[i]._value if i in tdyn else args[i] for i in self.dyn_pos]


class Jit:
    """The callable returned by :func:`jaxmod.jit`.

    Attributes:
        trace_count: how many times the function has been traced (compiled). Changing
            parameter values never increases it; a new structure, new input shapes or
            a ``train()``/``eval()`` switch the first time it is seen does.
    """

    def __init__(
        self, fn: Callable, static_argnums: Sequence[int] = (),
        static_argnames: Sequence[str] = (), donate: bool = True,
        in_shardings: Any = None, out_shardings: Any = None,
    ) -> None:  # fmt: skip
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.static_argnums = frozenset(
            (static_argnums,) if isinstance(static_argnums, int) else static_argnums
        )
        self.static_argnames = frozenset(
            (static_argnames,) if isinstance(static_argnames, str) else static_argnames
        )
        self.donate = donate
        self.in_shardings = in_shardings
        self.out_shardings = out_shardings
        self.trace_count = 0
        self._compiled: dict[Any, Any] = {}
        # per structure: whether its traced function returns a plain Tensor as its array
        # (decided by its first trace; the call wraps it again, see ``_build``)
        self._wraps: dict[Any, list[bool | None]] = {}
        self._plan: _Plan | None = None
        self._ctx: Any = None
        try:
            self._names = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            self._names = []
        self._extra: list[Any] = []  # generators found (at trace time) to be drawn from
        self._unbound: dict[int, Jit] = {}  # bound Jits of objects without a __dict__

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        # One bound Jit per instance, kept in the instance's own dict: its lifetime is the
        # instance's (a cycle the garbage collector frees), so jitting a method keeps no
        # instance alive.
        d = getattr(obj, "__dict__", None)
        cache = d.get("_jaxmod_bound", {}) if d is not None else self._unbound
        bound = cache.get(id(self))
        if bound is None:
            bound = Jit(types.MethodType(self.fn, obj), self.static_argnums,
                        self.static_argnames, self.donate, self.in_shardings,
                        self.out_shardings)  # fmt: skip
            if d is not None:
                d.setdefault("_jaxmod_bound", {})[id(self)] = bound
            else:
                self._unbound[id(self)] = bound
        return bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        p = self._plan
        if p is not None and p.fast is not None:
            out = p.fast(args, kwargs)
            if out is not _MISS:
                return out
        with state.call_lock:
            if p is not None and p.fast is None and p.fits(self.fn, args, kwargs):
                return self._run(p, p.dyn_of(args), args, kwargs)
            for _ in range(8):
                p = self._plan = self._make_plan(args, kwargs)
                try:
                    return self._run(p, p.dyn_now, args, kwargs)
                except NeedsLift as e:
                    # A generator was drawn from (lift it from now on), or an optimizer
                    # must re-lay its state with concrete values (``then``): trace again.
                    self.trace_count -= 1
                    if e.obj is not None:
                        self._extra.append(e.obj)
                    if e.then is not None:
                        e.then()
        raise RuntimeError("jaxmod.jit: could not determine the state to lift")

    def _dyn_kwargs(self, p: _Plan, kwargs: dict) -> dict:
        return {k: v for k, v in kwargs.items()
                if k not in self.static_argnames and k not in p.kw_names_state}  # fmt: skip

    def trace(self, *args: Any, **kwargs: Any) -> Any:
        """Trace for these arguments without running, like ``jax.jit(f).trace``: a
        ``jax.stages.Traced`` (``.jaxpr``, ``.lower()``) of the pure step over the state."""
        with state.call_lock:
            for _ in range(8):
                p = self._plan = self._make_plan(args, kwargs)
                self._ctx = (p, args, kwargs)
                try:
                    return p.jitted.trace([v._value for v in p.mut], [v._value for v in p.ro],
                                          p.dyn_now, self._dyn_kwargs(p, kwargs))  # fmt: skip
                except NeedsLift as e:
                    self.trace_count -= 1
                    if e.obj is not None:
                        self._extra.append(e.obj)
                    if e.then is not None:
                        e.then()
                finally:
                    self._ctx = None
        raise RuntimeError("jaxmod.jit: could not determine the state to lift")

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """Lower for these arguments, like ``jax.jit(f).lower``: a ``jax.stages.Lowered``
        (``.as_text()`` is the StableHLO of the step, named after the function)."""
        return self.trace(*args, **kwargs).lower()

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        """Compile for these arguments: a ``jax.stages.Compiled`` with XLA's
        ``cost_analysis()`` (FLOPs, bytes accessed) and ``memory_analysis()``."""
        return self.lower(*args, **kwargs).compile()

    def _run(self, p: _Plan, dyn: list[Any], args: tuple, kwargs: dict) -> Any:
        self._ctx = (p, args, kwargs)
        try:
            inputs = ([v._value for v in p.mut], [v._value for v in p.ro], dyn,
                      self._dyn_kwargs(p, kwargs) if kwargs else {})  # fmt: skip
            out, new = self._settle(p, inputs) if p.fresh else p.jitted(*inputs)
        except Exception as e:
            return self._failed(p, e, args, kwargs)
        finally:
            self._ctx = None
        for v, val in zip(p.mut, new):
            v._value = val
        return _new_tensor(out) if p.wrap[0] else out

    def _failed(self, p: _Plan, e: Exception, args: tuple, kwargs: dict) -> Any:
        """A call of ``p.jitted`` raised ``e``: explain it, or re-plan and run again."""
        err = failure(e, p.mut, getattr(self.fn, "__name__", "fn"),
                      lambda c: describe(c, p.roots))  # fmt: skip
        if err is not None:
            raise err from e
        if isinstance(e, TypeError):
            # torch tensors (a torch DataLoader's batch) are converted here, off the hot
            # path: JAX refused them before anything ran
            (args, kwargs), found = _from_torch((args, kwargs))
            if found:
                self._ctx = None
                return self(*args, **kwargs)
        if isinstance(e, _TRACE_ERRORS):
            raise _trace_error(e, p.roots) from e
        if type(e) is TraceError and (where := _where(e, p.roots)):
            # a Tensor's .item() / bool() / float(): its message, and where it happened
            raise TraceError(f"jaxmod.jit: Python code{where}: {e}") from e
        if isinstance(e, ValueError) and "does not match the sharding" in str(e):
            # State placed elsewhere since the plan (``p.value = jax.device_put(...)``):
            # re-plan once with the new shardings.
            self._ctx = None
            q = self._plan = self._make_plan(args, kwargs)
            if q.jitted is not p.jitted:
                return self._run(q, q.dyn_now, args, kwargs)
        raise e

    def _make_plan(self, args: tuple, kwargs: dict) -> _Plan:
        p = _Plan()
        p.version = state._version
        p.nargs = len(args)
        p.kw_names = tuple(kwargs)
        stateful: list[tuple[int, Any]] = []
        static: list[tuple[int, Any]] = []
        dyn_pos: list[int] = []
        dyn_now: list[Any] = []
        tdyn: list[int] = []
        simple = True
        roots: list[tuple[str, Any]] = []
        structure: list[Any] = []  # how to rebuild each argument at trace time
        name = self._names.__getitem__
        for i, a in enumerate(args):
            label = name(i) if i < len(self._names) else f"args[{i}]"
            if i in self.static_argnums:
                static.append((i, a))
                structure.append(("static", i, static_key(a)))
            elif _holds_state(a):
                stateful.append((i, a))
                roots.append((label, a))
                structure.append(("state", i))
            else:
                leaves, tdef = jax.tree_util.tree_flatten(a, is_leaf=_holds_state)
                inner = tuple(j for j, leaf in enumerate(leaves) if _holds_state(leaf))
                if inner:
                    simple = False
                    roots += [(f"{label}[{j}]", leaves[j]) for j in inner]
                    structure.append(("nested", i, tdef, inner))
                    dyn_now.append([x for j, x in enumerate(leaves) if j not in inner])
                elif type(a) is _TENSOR:
                    # A plain Tensor goes in as its array and is rewrapped in the trace:
                    # jax.jit would flatten and rebuild it in Python on every call.
                    structure.append(("tdyn", i))
                    dyn_now.append(a._value)
                    tdyn.append(i)
                else:
                    structure.append(("dyn", i))
                    dyn_now.append(a)
                dyn_pos.append(i)
        kw_state = tuple(k for k, v in kwargs.items() if _holds_state(v))
        p.kw_names_state = kw_state
        roots += [(k, kwargs[k]) for k in kw_state]
        cells, globs, captured = lifting.captured(self.fn)
        roots += captured
        roots += [("generator", g) for g in self._extra]
        names = lifting.reachable_names(self.fn)
        found = discover(roots, names)
        keep = [r for r, s in zip(roots, found.static) if s is not None]
        p.mut, p.ro, p.objs, p.guards = found.cells, found.ro, found.objs, found.guards
        if _amp.used[0]:  # once autocast was ever on, every plan re-checks its state
            p.guards = [*p.guards, _amp.guard(_amp.S.policy)]
        index = {id(v): i for i, v in enumerate((*p.mut, *p.ro))}
        shardings = state_shardings(p.mut, p.ro, dyn_now)
        key = (
            tuple(found.static),
            tuple(lifting.static_of(o) for o in p.objs),
            tuple(tuple(index[id(v)] for v in lifting.cells_of(o)) for o in p.objs),
            tuple(structure),
            tuple((k, static_key(v)) for k, v in kwargs.items() if k in self.static_argnames),
            kw_state,
            shardings and shardings[0],
            _amp.S.policy,  # the autocast state decides the program (jaxmod.amp)
        )
        jitted = self._compiled.get(key)
        if jitted is None:
            self._wraps[key] = [None]
            jitted = self._compiled[key] = self._build(structure, kw_state,
                                                       shardings and shardings[1],
                                                       self._wraps[key])  # fmt: skip
        p.wrap = self._wraps[key]
        p.key, p.fresh = key, isinstance(jitted, _Fresh)
        p.jitted = jitted.probe if p.fresh else jitted
        p.stateful_pos, p.static_pos, p.dyn_pos = tuple(stateful), tuple(static), tuple(dyn_pos)
        p.dyn_now = dyn_now
        p.tdyn = tuple(tdyn)
        captured_ids = {id(o) for _, o in keep}
        p.cells = tuple((c, o) for c, o in cells if id(o) in captured_ids)
        p.globs = tuple((g, n, o) for g, n, o in globs if id(o) in captured_ids)
        p.roots = keep
        p.fast = None
        if not simple or kw_state:
            p.version = -1  # state nested in containers: re-plan on every call
        elif not p.fresh:
            self._fast(p)
        return p

    def _fast(self, p: _Plan) -> None:
        """Give ``p`` its generated steady-state call (plans without keyword arguments)."""
        if p.kw_names or p.version == -1:
            return
        layout = (p.nargs, tuple(i for i, _ in p.stateful_pos), tuple(i for i, _ in p.static_pos),
                  p.dyn_pos, len(p.cells), len(p.globs), len(p.guards), len(p.mut),
                  len(p.ro), p.tdyn, bool(p.wrap[0]))  # fmt: skip
        factory = _factories.get(layout)
        if factory is None:
            if len(_factories) > 64:
                _factories.clear()
            factory = _factories[layout] = codegen.jit_call_factory(*layout)
        p.fast = factory(
            state, _MISS, state.call_lock, self, p, p.jitted, p.version, _TENSOR, _new_tensor,
            *(o for _, o in p.stateful_pos), *(v for _, v in p.static_pos),
            *(x for c in p.cells for x in c), *(x for g in p.globs for x in g),
            *p.guards, *p.mut, *p.ro,
        )  # fmt: skip

    def _settle(self, p: _Plan, inputs: tuple) -> Any:
        """A structure's first call: trace once, decide donation from the program, check
        its memory need, run it to completion. Returns the call's results.

        Donated state buffers are gone once the step runs, so a step that can fail *at
        run time* -- one with host callbacks (``jax.debug.callback``, ``pure_callback``,
        ``io_callback``, ``jax.debug.print``), or run under ``jax_debug_nans``/``_infs`` --
        is compiled without donation: if it raises, every box still holds its array. Any
        other step donates. The trace is shared by both variants (jax caches it per
        function and input types), so deciding costs no second trace. A step whose
        buffers cannot fit on its devices is refused before it runs
        (:func:`~jaxmod.transforms._failures.check_memory`), and the first run is waited
        for, so a failure XLA reports late still raises here; the plan becomes a
        steady-state one only once a call has succeeded.
        """
        fresh = self._compiled[p.key]
        donate = self.donate and not (
            jax.config.jax_debug_nans or jax.config.jax_debug_infs
            or _has_callbacks(fresh.probe.trace(*inputs).jaxpr.jaxpr)
        )  # fmt: skip
        p.jitted = fresh.variant(donate)
        check_memory(p.jitted, inputs, getattr(self.fn, "__name__", "fn"))
        result = jax.block_until_ready(p.jitted(*inputs))
        self._compiled[p.key] = p.jitted
        p.fresh = False
        self._fast(p)
        return result

    def _build(self, structure: list[Any], kw_state: tuple[str, ...], state_sh: Any,
               wrap: list[bool | None]) -> _Fresh:  # fmt: skip
        """The jax.jit-compiled pure function of one static structure (donating or not:
        :meth:`_settle` decides at its first call).

        The traced function takes the state objects from the call being traced
        (``self._ctx``), so one compiled function serves every object graph of the same
        structure. ``state_sh`` (mutable, read-only state shardings) pins the state to its
        placement; ``in_shardings``/``out_shardings`` place the arguments and result.

        A result that is one plain Tensor leaves the trace as its array and is wrapped again
        by the caller (``wrap[0]``, set by the structure's first trace): jax.jit would
        rebuild it in Python on every call. Were a later trace of the same structure (new
        input shapes) to return a plain array instead, the caller would wrap it too: the
        same values, as a Tensor.
        """
        fn, static_names, this = self.fn, self.static_argnames, self

        def call(cur_args: tuple, cur_kwargs: dict, dyn: list, dyn_kwargs: dict) -> Any:
            call_args: list[Any] = []
            di = iter(dyn)
            for s in structure:
                if s[0] in ("static", "state"):
                    call_args.append(cur_args[s[1]])
                elif s[0] == "dyn":
                    call_args.append(next(di))
                elif s[0] == "tdyn":
                    call_args.append(_new_tensor(next(di)))
                else:  # nested: stateful leaves from the call, traced leaves from dyn
                    _, i, tdef, inner = s
                    leaves = jax.tree_util.tree_leaves(cur_args[i], is_leaf=_holds_state)
                    traced = iter(next(di))
                    leaves = [x if j in inner else next(traced) for j, x in enumerate(leaves)]
                    call_args.append(jax.tree_util.tree_unflatten(tdef, leaves))
            kw = dict(dyn_kwargs)
            kw.update({k: v for k, v in cur_kwargs.items() if k in static_names})
            kw.update({k: cur_kwargs[k] for k in kw_state})
            out = unbox(fn(*call_args, **kw))
            if wrap[0] is None:
                wrap[0] = type(out) is _TENSOR
            return out._value if wrap[0] and type(out) is _TENSOR else out

        def pure(mut_vals: list, ro_vals: list, dyn: list, dyn_kwargs: dict) -> Any:
            # jax_debug_nans re-runs a step that made a NaN eagerly, on concrete values,
            # to find the operation: that run is no trace (its reads are not stale).
            leaves = jax.tree_util.tree_leaves((mut_vals, ro_vals, dyn, dyn_kwargs))
            traced = not leaves or any(isinstance(x, Tracer) for x in leaves)
            this.trace_count += traced
            plan, cur_args, cur_kwargs = this._ctx
            run = lift(call, plan.mut, plan.ro, jit=traced,
                       describe=lambda c: describe(c, [*plan.roots, *lifting.captured(fn)[2]]),
                       check=lambda cells: _find_leak(plan.objs, cells))  # fmt: skip
            return run(mut_vals, ro_vals, cur_args, cur_kwargs, dyn, dyn_kwargs)

        pure.__name__ = pure.__qualname__ = getattr(fn, "__name__", "fn")
        user_in, user_out = self.in_shardings, self.out_shardings
        kw: dict[str, Any] = {}
        if state_sh is not None or user_in is not None or user_out is not None:
            mut_sh, ro_sh = state_sh if state_sh is not None else (None, None)
            dyn_sh = None
            if user_in is not None:
                traced = ("dyn", "tdyn", "nested")
                dyn_sh = [arg_sharding(user_in, s) for s in structure if s[0] in traced]
            kw = dict(in_shardings=(mut_sh, ro_sh, dyn_sh, None), out_shardings=(user_out, mut_sh))
        return _Fresh(lambda donate: jax.jit(pure, donate_argnums=(0,) if donate else (), **kw))


def jit(
    fn: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
    static_argnames: str | Sequence[str] = (), donate: bool = True,
    in_shardings: Any = None, out_shardings: Any = None,
) -> Any:  # fmt: skip
    """Compile ``fn`` with XLA, keeping torch's in-place semantics for its state.

    Every Module, Optimizer, Generator and Parameter the call reaches is state: in the
    arguments (also inside lists, tuples and dicts), in the function's closure or globals,
    a bound method's ``self``, and the attributes of plain Python objects found there (a
    ``Trainer`` with ``self.model`` and ``self.opt``, a dataclass). Their current values
    go in, and whatever the function changes (parameters stepped by an optimizer,
    BatchNorm statistics, RNG keys, optimizer moments, array attributes) is written back
    to the same Python objects after the call.

    Args:
        fn: the function (usable as ``@jaxmod.jit`` or ``@jaxmod.jit(donate=False)``).
        static_argnums: positions of hashable arguments baked into the trace.
        static_argnames: names of keyword arguments baked into the trace.
        donate: donate the old state buffers to XLA (in-place updates, no extra memory).
            Arrays read out of the state before the call (``w = p.value``) are then
            deleted by the call; using them raises JAX's "Array has been deleted" error.
            Take a copy (``jnp.copy``) first, or pass ``donate=False``. A step whose
            buffers cannot fit on its devices raises :class:`OutOfMemoryError` before
            it first runs, with nothing changed; one that XLA fails *after* consuming
            the donated buffers raises :class:`StateLostError` naming the lost arrays
            (``donate=False`` keeps them, at one more copy of the state in memory).
        in_shardings: placement of the arguments that are not state: one
            ``jax.sharding.Sharding`` for all of them, or a sequence with one entry (a
            Sharding, a pytree of them matching the argument, or ``None``: as given) per
            positional argument; entries of Module/optimizer/static arguments are ignored.
        out_shardings: placement of the function's result (a Sharding or a pytree prefix
            of the result), as in ``jax.jit``.

    State is never moved: when parameters, buffers or optimizer state span several
    devices (see :mod:`jaxmod.distributed`), each array comes back with the sharding it
    went in with, and state on no particular device (RNG keys) is replicated over the
    mesh. Calls from several threads are serialised (one lock).

    Returns:
        A :class:`Jit` callable with a ``trace_count`` attribute.
    """
    if fn is None:
        return functools.partial(
            jit, static_argnums=static_argnums, static_argnames=static_argnames, donate=donate,
            in_shardings=in_shardings, out_shardings=out_shardings,
        )  # fmt: skip
    return Jit(fn, static_argnums, static_argnames, donate, in_shardings, out_shardings)
