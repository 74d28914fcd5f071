"""Stateful transforms: ``jit``, ``grad``, ``value_and_grad``, ``vmap``, ``checkpoint``.

All of them rest on one idea (Objax's): find the state boxes reachable from the
function's arguments, closure and globals; swap traced values into those boxes; run
the user's function unchanged; read the boxes' new values back; restore the boxes in a
``finally``. The user's function keeps its in-place, torch-style code, and JAX sees a
pure function of arrays.

``jit`` caches both levels of work: the walk that finds the boxes is redone only when
the global structure version changes (a submodule added, ``train()``/``eval()``, a
hook registered, ...), and one ``jax.jit`` per static structure holds the compiled
code. A steady-state call is: check identities, gather box values, call the compiled
function (donating the old state buffers), write the new values back.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod import random as _random
from jaxmod.nn import _graph
from jaxmod.nn import module as _module
from jaxmod.nn import parameter as _parameter
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Parameter, Variable

__all__ = [
    "jit",
    "grad",
    "value_and_grad",
    "vmap",
    "checkpoint",
    "compile",
    "scan_layers",
    "Grads",
    "TraceError",
]


class TraceError(RuntimeError):
    """Python code needed a concrete value where jaxmod.jit only has a traced one."""


_TRACE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)


# --------------------------------------------------------------------------- state
def _is_stateful(x: Any) -> bool:
    return isinstance(x, (Module, Variable)) or hasattr(type(x), "_jaxmod_vars_")


def _vars_of(obj: Any) -> list[Any]:
    if isinstance(obj, Module):
        return _graph.graph_state(obj)[0]
    if isinstance(obj, Variable):
        return [obj]
    return list(obj._jaxmod_vars_())


def _static_of(obj: Any) -> Any:
    """What about a stateful object, besides its values, shapes the traced code."""
    if isinstance(obj, Module):
        return _graph.graph_state(obj)[1]
    if isinstance(obj, Variable):
        return type(obj), _parameter._box_aux(obj)
    static = getattr(obj, "_jaxmod_static_", None)
    if static is not None:
        return static()
    groups = getattr(obj, "param_groups", None)
    if groups is not None:
        dynamic = {
            (id(v.group), k)
            for v in obj._jaxmod_vars_()
            if hasattr(v, "group")
            for k in getattr(v, "keys", None) or (v.key,)
        }  # fmt: skip
        return type(obj), tuple(
            tuple(
                (k, _graph._static_key(v))
                for k, v in g.items()
                if k != "params" and (id(g), k) not in dynamic
            )
            for g in groups
        )
    return type(obj)


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_names(c)


def _captured(fn: Any) -> tuple[list[Any], list[tuple[Any, Any]], list[tuple[str, Any]]]:
    """Stateful objects a function reaches through ``self``, its closure and its globals.

    Returns the objects, and the (cell, object) / (global name, object) pairs whose
    identity must hold for a cached lifting to stay valid.
    """
    objs: list[Any] = []
    cells: list[tuple[Any, Any]] = []
    globs: list[tuple[str, Any]] = []
    self_obj = getattr(fn, "__self__", None)
    if self_obj is not None and _is_stateful(self_obj):
        objs.append(self_obj)
    fn = inspect.unwrap(getattr(fn, "__func__", fn))
    code = getattr(fn, "__code__", None)
    if code is None:
        if _is_stateful(fn):  # a Module passed as the function
            objs.append(fn)
        return objs, cells, globs
    for cell in fn.__closure__ or ():
        try:
            v = cell.cell_contents
        except ValueError:
            continue
        if _is_stateful(v):
            objs.append(v)
            cells.append((cell, v))
    g = fn.__globals__
    for name in dict.fromkeys(_code_names(code)):
        v = g.get(name)
        if v is not None and _is_stateful(v) and not isinstance(v, type):
            objs.append(v)
            globs.append((name, v))
    return objs, cells, globs


def _collect_vars(objs: Sequence[Any]) -> list[Any]:
    seen: set[int] = set()
    out: list[Any] = []
    for obj in objs:
        for v in _vars_of(obj):
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    return out


class _Swap:
    """Swap values into state boxes; restore the originals on exit."""

    __slots__ = ("vars", "old")

    def __init__(self, vars_: Sequence[Any], values: Sequence[Any]) -> None:
        self.vars = vars_
        self.old = [v._value for v in vars_]
        for v, val in zip(vars_, values):
            v._value = val
        _parameter._lift_depth += 1

    def restore(self) -> None:
        _parameter._lift_depth -= 1
        for v, old in zip(self.vars, self.old):
            v._value = old


def _module_path(mod: Any, roots: Sequence[tuple[str, Any]]) -> str | None:
    if mod is None:
        return None
    for root_name, root in roots:
        if isinstance(root, Module):
            for name, m in root.named_modules(remove_duplicate=False):
                if m is mod:
                    return f"{root_name}.{name}" if name else root_name
    return None


def _trace_error(e: BaseException, roots: Sequence[tuple[str, Any]]) -> TraceError:
    mod = getattr(e, "_jaxmod_module", None)
    path = _module_path(mod, roots)
    where = (
        f" in module '{path}' ({type(mod).__name__})"
        if path
        else f" in {type(mod).__name__}.forward"
        if mod is not None
        else ""
    )
    return TraceError(
        f"jaxmod.jit: Python code{where} needed a concrete value, but inside jaxmod.jit "
        "arrays are traced (no value exists until the compiled function runs). This happens "
        "with `if x.sum() > 0:`, `while x.norm() > 1:`, `.item()`, `float(x)` or `int(x)` "
        "on arrays. Fixes: make the value a static argument (static_argnums=/"
        "static_argnames=), express the branch with jax.lax.cond / jnp.where / "
        "jax.lax.while_loop, or run this code eagerly (without jaxmod.jit).\n"
        f"Original JAX error: {type(e).__name__}: {e}"
    )


def _arg_names(fn: Any) -> list[str]:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


# ---------------------------------------------------------------------------- jit
class _Plan:
    """Everything a steady-state call needs, valid while ``version`` is current."""

    __slots__ = (
        "version", "nargs", "kw_names", "stateful_pos", "static_pos", "dyn_pos", "cells",
        "globs", "mut_vars", "ro_vars", "objs", "jitted", "roots", "dyn_now", "fast",
    )  # fmt: skip


_MISS = object()  # a fast path's answer when the plan does not fit the call
_fast_factories: dict[tuple, Callable] = {}


def _fast_path(this: Jit, p: _Plan) -> Callable[[tuple, dict], Any]:
    """The steady-state call for one plan as straight-line code: ``fast(args, kwargs)``.

    It does what ``Jit.__call__``'s checks and ``Jit._run`` do with loops, unrolled, with
    the plan's objects bound as closure variables: measured Python time per call 1.1 µs
    instead of 2.1 µs for a depth-2 MLP with Adam, 3.4 instead of 8 µs at depth 32.
    Returns ``_MISS`` when the call does not fit the plan. The code depends only on the
    plan's layout (argument positions, counts), so it is generated once per layout and
    reused by every later plan with that layout.
    """
    layout = (
        p.nargs, tuple(i for i, _ in p.stateful_pos), tuple(i for i, _ in p.static_pos),
        p.dyn_pos, len(p.cells), len(p.globs), len(p.mut_vars), len(p.ro_vars),
    )  # fmt: skip
    factory = _fast_factories.get(layout)
    if factory is None:
        if len(_fast_factories) > 64:
            _fast_factories.clear()
        factory = _fast_factories[layout] = _fast_factory(*layout)
    return factory(
        _module, _MISS, this, p, p.jitted, p.version, getattr(this.fn, "__globals__", None),
        *(o for _, o in p.stateful_pos), *(v for _, v in p.static_pos),
        *(x for c in p.cells for x in c), *(x for g in p.globs for x in g),
        *p.mut_vars, *p.ro_vars,
    )  # fmt: skip


def _fast_factory(
    nargs: int, stateful: tuple[int, ...], static: tuple[int, ...], dyn: tuple[int, ...],
    ncells: int, nglobs: int, nmut: int, nro: int,
) -> Callable:  # fmt: skip
    """Compile one layout's fast path (see :func:`_fast_path`); returns a factory that
    binds a plan's objects and gives its ``fast`` function."""
    names = [f"s{i}" for i in stateful] + [f"t{i}" for i in static]
    names += [f"{x}{k}" for k in range(ncells) for x in ("c", "oc")]
    names += [f"{x}{k}" for k in range(nglobs) for x in ("gn", "go")]
    names += [f"m{k}" for k in range(nmut)] + [f"r{k}" for k in range(nro)]
    checks = [f"args[{i}] is not s{i}" for i in stateful]
    checks += [f"(args[{i}] is not t{i} and args[{i}] != t{i})" for i in static]
    checks += [f"c{k}.cell_contents is not oc{k}" for k in range(ncells)]
    checks += [f"g.get(gn{k}) is not go{k}" for k in range(nglobs)]
    mut = "".join(f"m{k}._value, " for k in range(nmut))
    src = "\n".join([
        f"def factory(_mod, MISS, this, plan, jitted, V, g, {', '.join(names)}):",
        "    def fast(args, kwargs):",
        f"        if _mod._version != V or kwargs or len(args) != {nargs}:",
        "            return MISS",
        *(f"        if {c}:\n            return MISS" for c in checks),
        "        this._ctx = (plan, args, kwargs)",
        "        try:",
        f"            out, new = jitted([{mut}], [{''.join(f'r{k}._value, ' for k in range(nro))}],"
        f" [{''.join(f'args[{i}], ' for i in dyn)}], {{}})",
        "        except Exception as e:",
        "            return this._failed(plan, e, args, kwargs)",
        "        finally:",
        "            this._ctx = None",
        *([f"        {mut}= new"] if nmut else []),
        "        return out",
        "    return fast",
    ])  # fmt: skip
    scope: dict[str, Any] = {}
    exec(builtins.compile(src, f"<jaxmod.jit fast path {nargs}/{nmut}>", "exec"), scope)
    return scope["factory"]


_ArrayImpl = type(jnp.zeros(()))  # concrete arrays (not tracers)


def _state_shardings(mut: Sequence[Any], ro: Sequence[Any]) -> Any:
    """Shardings to pin state to (inputs and outputs alike), or None on one device.

    Only when some state spans several devices: then each state array keeps its own
    sharding across calls (XLA's partitioner may not gather or reshard it), and state
    not committed to any device (a fresh RNG key, a step counter) is replicated over the
    mesh now, where the first call would leave it anyway (placing it inside the call
    would change its type and retrace on the second call). Runs once per plan; returns
    ``(key, (mut_trees, ro_trees))`` with a hashable ``key``.
    """
    from jax.sharding import NamedSharding, PartitionSpec

    from jaxmod.distributed import _place

    boxes = (*mut, *ro)
    mesh = None
    for v in boxes:  # the common single-device case ends after this cheap scan
        val = v._value
        for a in (val,) if type(val) is _ArrayImpl else jax.tree_util.tree_leaves(val):
            if type(a) is _ArrayImpl:
                s = a.sharding
                if type(s) is NamedSharding and len(s.device_set) > 1:
                    mesh = s.mesh
                    break
        if mesh is not None:
            break
    if mesh is None:
        return None
    leaves = [jax.tree_util.tree_flatten(v._value) for v in boxes]
    replicated = NamedSharding(mesh, PartitionSpec())

    def loose(a: Any) -> bool:
        return isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer) and not a.committed

    flat = []
    for v, (ls, tdef) in zip(boxes, leaves):
        if any(loose(a) for a in ls):
            ls = [_place(a, replicated) if loose(a) else a for a in ls]
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
        self._plan: _Plan | None = None
        self._ctx: Any = None
        self._names = _arg_names(fn)
        self._bound: dict[int, Any] = {}
        # Generators found (at trace time) to be drawn from; lifted on every later call.
        self._extra: list[Any] = []

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        j = self._bound.get(id(obj))
        if j is None or j[0] is not obj:
            method = types.MethodType(self.fn, obj)
            j = self._bound[id(obj)] = (
                obj, Jit(method, self.static_argnums, self.static_argnames, self.donate,
                         self.in_shardings, self.out_shardings)
            )  # fmt: skip
        return j[1]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        p = self._plan
        if p is not None and p.fast is not None:
            out = p.fast(args, kwargs)
            if out is not _MISS:
                return out
        elif (
            p is not None
            and p.version == _module._version
            and len(args) == p.nargs
            and (not kwargs or p.kw_names == tuple(kwargs))
        ):
            for i, o in p.stateful_pos:
                if args[i] is not o:
                    break
            else:
                for i, v in p.static_pos:
                    if args[i] is not v and args[i] != v:
                        break
                else:
                    for cell, o in p.cells:
                        if cell.cell_contents is not o:
                            break
                    else:
                        g = self.fn.__globals__ if p.globs else None
                        for name, o in p.globs:
                            if g.get(name) is not o:
                                break
                        else:
                            return self._run(p, [args[i] for i in p.dyn_pos], args, kwargs)
        for _ in range(8):
            p = self._plan = self._make_plan(args, kwargs)
            try:
                return self._run(p, p.dyn_now, args, kwargs)
            except _parameter.NeedsLift as e:
                # A generator was drawn from (lift it from now on), or an optimizer must
                # re-lay its state with concrete values (``then``): trace again.
                self.trace_count -= 1
                if e.obj is not None:
                    self._extra.append(e.obj)
                if e.then is not None:
                    e.then()
        raise RuntimeError("jaxmod.jit: could not determine the state to lift")

    def _run(self, p: _Plan, dyn: list[Any], args: tuple, kwargs: dict) -> Any:
        mut = p.mut_vars
        self._ctx = (p, args, kwargs)
        try:
            out, new = p.jitted(
                [v._value for v in mut],
                [v._value for v in p.ro_vars],
                dyn,
                {k: v for k, v in kwargs.items()
                 if k not in self.static_argnames and not _is_stateful(v)} if kwargs else {},
            )  # fmt: skip
        except Exception as e:
            return self._failed(p, e, args, kwargs)
        finally:
            self._ctx = None
        for v, val in zip(mut, new):
            v._value = val
        return out

    def _failed(self, p: _Plan, e: Exception, args: tuple, kwargs: dict) -> Any:
        """A call of ``p.jitted`` raised ``e``: explain it, or re-plan and run again."""
        if isinstance(e, _TRACE_ERRORS):
            raise _trace_error(e, p.roots) from e
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
        p.version = _module._version
        p.nargs = len(args)
        p.kw_names = tuple(kwargs)
        stateful: list[tuple[int, Any]] = []
        static: list[tuple[int, Any]] = []
        dyn_pos: list[int] = []
        dyn_now: list[Any] = []
        simple = True
        objs: list[Any] = []
        # How to rebuild each argument at trace time: static, state, dyn or nested.
        structure: list[Any] = []
        for i, a in enumerate(args):
            if i in self.static_argnums:
                static.append((i, a))
                structure.append(("static", i, _graph._static_key(a)))
            elif _is_stateful(a):
                stateful.append((i, a))
                objs.append(a)
                structure.append(("state", i))
            else:
                leaves, tdef = jax.tree_util.tree_flatten(a, is_leaf=_is_stateful)
                inner = tuple(j for j, leaf in enumerate(leaves) if _is_stateful(leaf))
                if inner:
                    simple = False
                    objs.extend(leaves[j] for j in inner)
                    structure.append(("nested", i, tdef, inner))
                    dyn_now.append([x for j, x in enumerate(leaves) if j not in inner])
                else:
                    structure.append(("dyn", i))
                    dyn_now.append(a)
                dyn_pos.append(i)
        kw_state = tuple(k for k, v in kwargs.items() if _is_stateful(v))
        objs.extend(kwargs[k] for k in kw_state)
        captured, cells, globs = _captured(self.fn)
        objs.extend(captured)
        objs.extend(self._extra)
        all_vars = _collect_vars(objs)
        index = {id(v): i for i, v in enumerate(all_vars)}
        p.mut_vars = [v for v in all_vars if not getattr(v, "_jaxmod_readonly", False)]
        p.ro_vars = [v for v in all_vars if getattr(v, "_jaxmod_readonly", False)]
        p.objs = objs
        shardings = _state_shardings(p.mut_vars, p.ro_vars)
        static_key = (
            tuple(_static_of(o) for o in objs),
            tuple(tuple(index[id(v)] for v in _vars_of(o)) for o in objs),
            tuple(structure),
            tuple(
                (k, _graph._static_key(v)) for k, v in kwargs.items() if k in self.static_argnames
            ),  # fmt: skip
            kw_state,
            shardings and shardings[0],
        )
        jitted = self._compiled.get(static_key)
        if jitted is None:
            jitted = self._compiled[static_key] = self._build(
                structure, kw_state, shardings and shardings[1]
            )
        p.jitted = jitted
        p.stateful_pos = tuple(stateful)
        p.static_pos = tuple(static)
        p.dyn_pos = tuple(dyn_pos)
        p.dyn_now = dyn_now
        p.cells, p.globs = tuple(cells), tuple(globs)
        p.roots = (
            [(self._names[i] if i < len(self._names) else f"args[{i}]", a) for i, a in stateful]
            + [(k, kwargs[k]) for k in kw_state]
            + list(globs)
            + [(_cell_name(self.fn, c), o) for c, o in cells]
        )
        p.fast = None
        if not simple or kw_state:
            p.version = -1  # state nested in containers: re-plan on every call
        elif not p.kw_names:
            p.fast = _fast_path(self, p)
        return p

    def _build(
        self, structure: list[Any], kw_state: tuple[str, ...], state_sh: Any = None
    ) -> Callable:
        """One jax.jit-compiled pure function for one static structure.

        The traced function takes the state objects from the call being traced
        (``self._ctx``), so one compiled function serves every object graph of the
        same structure. ``state_sh`` (mutable, read-only state shardings) pins the state
        to its placement; ``self.in_shardings``/``out_shardings`` place the user's
        arguments and result.
        """
        fn = self.fn
        static_names = self.static_argnames
        this = self

        def pure(mut_vals: list, ro_vals: list, dyn: list, dyn_kwargs: dict) -> Any:
            this.trace_count += 1
            plan, cur_args, cur_kwargs = this._ctx
            mv = plan.mut_vars
            swap = _Swap(mv + plan.ro_vars, list(mut_vals) + list(ro_vals))
            version_before = _module._version
            _parameter._jit_depth += 1
            _parameter._describe_unlifted = functools.partial(_describe_box, fn)
            try:
                call_args: list[Any] = []
                di = iter(dyn)
                for s in structure:
                    if s[0] in ("static", "state"):
                        call_args.append(cur_args[s[1]])
                    elif s[0] == "dyn":
                        call_args.append(next(di))
                    else:  # nested: stateful leaves from the call, traced leaves from dyn
                        _, i, tdef, inner = s
                        leaves = jax.tree_util.tree_leaves(cur_args[i], is_leaf=_is_stateful)
                        traced = iter(next(di))
                        leaves = [x if j in inner else next(traced) for j, x in enumerate(leaves)]
                        call_args.append(jax.tree_util.tree_unflatten(tdef, leaves))
                kw = dict(dyn_kwargs)
                kw.update({k: v for k, v in cur_kwargs.items() if k in static_names})
                kw.update({k: cur_kwargs[k] for k in kw_state})
                out = _unbox(fn(*call_args, **kw))
                new = [v._value for v in mv]
                if _module._version != version_before:
                    _check_leaks(plan.objs, mv + plan.ro_vars)
            finally:
                _parameter._jit_depth -= 1
                _parameter._describe_unlifted = None
                swap.restore()
            return out, new

        donate = (0,) if self.donate else ()
        user_in, user_out = self.in_shardings, self.out_shardings
        if state_sh is None and user_in is None and user_out is None:
            return jax.jit(pure, donate_argnums=donate)
        mut_sh, ro_sh = state_sh if state_sh is not None else (None, None)
        dyn_sh = None
        if user_in is not None:
            dyn_sh = [_arg_sharding(user_in, s) for s in structure if s[0] in ("dyn", "nested")]
        return jax.jit(
            pure,
            donate_argnums=donate,
            in_shardings=(mut_sh, ro_sh, dyn_sh, None),
            out_shardings=(user_out, mut_sh),
        )


def _arg_sharding(user_in: Any, s: tuple) -> Any:
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


def _visible(fn: Any, depth: int = 3) -> dict[str, Any]:
    """Names a function can reach: its globals and closure, and those of functions in them."""
    f = inspect.unwrap(getattr(fn, "__func__", fn))
    scopes: dict[str, Any] = {}
    code = getattr(f, "__code__", None)
    if code is None:
        return scopes
    if f.__closure__:
        for name, c in zip(code.co_freevars, f.__closure__):
            try:
                scopes[name] = c.cell_contents
            except ValueError:
                pass
    for name in _code_names(code):
        if name in f.__globals__:
            scopes.setdefault(name, f.__globals__[name])
    if depth > 0:
        for v in list(scopes.values()):
            if isinstance(v, (types.FunctionType, types.MethodType)):
                for k, w in _visible(v, depth - 1).items():
                    scopes.setdefault(k, w)
    return scopes


def _describe_box(fn: Any, box: Any) -> str | None:
    """Name an unlifted box (``model.hidden.weight``) by searching what ``fn`` can see."""
    candidates: list[tuple[str, Any]] = []
    for name, obj in _visible(fn).items():
        if isinstance(obj, Module):
            candidates.append((name, obj))
        elif hasattr(obj, "__dict__") and not isinstance(obj, (type, types.ModuleType)):
            candidates += [(f"{name}.{k}", v) for k, v in vars(obj).items()
                           if isinstance(v, Module)]  # fmt: skip
    for root, m in candidates:
        for n, b in (*m.named_parameters(remove_duplicate=False),
                     *m.named_buffers(remove_duplicate=False)):  # fmt: skip
            if b is box:
                return f"{type(box).__name__} '{root}.{n}'"
    return None


def _cell_name(fn: Any, cell: Any) -> str:
    f = inspect.unwrap(getattr(fn, "__func__", fn))
    code = getattr(f, "__code__", None)
    if code is not None and f.__closure__:
        for name, c in zip(code.co_freevars, f.__closure__):
            if c is cell:
                return name
    return "<closure>"


def _unbox(tree: Any) -> Any:
    """Return arrays rather than boxes from compiled functions."""
    return jax.tree_util.tree_map(
        lambda x: x._value if isinstance(x, Variable) else x,
        tree,
        is_leaf=lambda x: isinstance(x, (Variable, Module)),
    )


def _check_leaks(objs: Sequence[Any], lifted: Sequence[Any]) -> None:
    """After a trace that changed structure, find traced values left outside the state.

    Lifted boxes hold tracers during the trace (they are restored afterwards); anything
    else holding one — a new attribute, a box registered inside the function — would
    leak it.
    """
    boxes = {id(v) for v in lifted}
    attrs = {(id(v.module), v.name) for v in lifted if isinstance(v, _graph._AttrRef)}
    for obj in objs:
        if not isinstance(obj, Module):
            continue
        for name, m in obj.named_modules():
            for k, v in m.__dict__.items():
                bad = isinstance(v, jax.core.Tracer) and (id(m), k) not in attrs
                if not bad and k in ("_parameters", "_buffers"):
                    for bk, box in v.items():
                        if (
                            box is not None
                            and id(box) not in boxes
                            and isinstance(box._value, jax.core.Tracer)
                        ):
                            k, bad = bk, True
                            break
                if bad:
                    where = f"{name}.{k}" if name else k
                    raise RuntimeError(
                        f"jaxmod.jit: the function stored a traced value in a new attribute "
                        f"'{where}' of {type(m).__name__}. Only state that existed before the "
                        "call (parameters, buffers, array attributes) can be updated inside "
                        "jaxmod.jit; create new parameters/buffers/attributes outside the "
                        "compiled function, or return the value instead."
                    )


def jit(
    fn: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
    static_argnames: str | Sequence[str] = (), donate: bool = True,
    in_shardings: Any = None, out_shardings: Any = None,
) -> Any:  # fmt: skip
    """Compile ``fn`` with XLA, keeping torch's in-place semantics for its state.

    Every Module, Optimizer, Generator and Parameter reachable from the arguments (also
    inside lists, tuples and dicts), from the function's closure or globals, or from a
    bound method's ``self`` is state: its current values go in, and whatever the
    function changes (parameters stepped by an optimizer, BatchNorm statistics, RNG
    keys, optimizer moments) is written back to the same Python objects after the call.

    Args:
        fn: the function (usable as ``@jaxmod.jit`` or ``@jaxmod.jit(donate=False)``).
        static_argnums: positions of hashable arguments baked into the trace.
        static_argnames: names of keyword arguments baked into the trace.
        donate: donate the old state buffers to XLA (in-place updates, no extra memory).
            Arrays read out of the state before the call (``w = p.value``) are then
            deleted by the call; using them raises JAX's "Array has been deleted" error.
            Take a copy (``jnp.copy``) first, or pass ``donate=False``.
        in_shardings: placement of the arguments that are not state: one
            ``jax.sharding.Sharding`` for all of them, or a sequence with one entry (a
            Sharding, a pytree of them matching the argument, or ``None``: as given) per
            positional argument; entries of Module/optimizer/static arguments are ignored.
            Arguments not yet on a device are placed; committed arrays must already match.
        out_shardings: placement of the function's result (a Sharding or a pytree prefix
            of the result), as in ``jax.jit``.

    State is never moved: when parameters, buffers or optimizer state span several
    devices (see :mod:`jaxmod.distributed`), each array comes back with the sharding it
    went in with, and state on no particular device (RNG keys) is replicated over the
    mesh. Changing a parameter's sharding between calls (``model.to(sharding)``) makes a
    new compiled variant.

    Returns:
        A :class:`Jit` callable with a ``trace_count`` attribute.
    """
    if fn is None:
        return functools.partial(
            jit, static_argnums=static_argnums, static_argnames=static_argnames, donate=donate,
            in_shardings=in_shardings, out_shardings=out_shardings,
        )  # fmt: skip
    return Jit(fn, static_argnums, static_argnames, donate, in_shardings, out_shardings)


# ---------------------------------------------------------------------- gradients
class Grads(Mapping):
    """Gradients of a Module's trainable parameters, keyed by qualified name.

    Ordered as ``named_parameters()``; ``grads.params`` maps the same names to the
    Parameter boxes, which is how ``opt.step(grads)`` finds the right parameters (also
    with parameter groups and tied weights). A pytree: ``jax.tree_util.tree_map`` and
    optax work on it directly.
    """

    __slots__ = ("_data", "params")

    def __init__(self, data: Mapping[str, Any], params: Mapping[str, Parameter]) -> None:
        self._data = OrderedDict(data)
        self.params = dict(params)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._data:
            raise KeyError(f"{key!r} is not a parameter with a gradient here")
        self._data[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        lines = [
            f"  {k}: {getattr(v, 'dtype', '')}{list(getattr(v, 'shape', ()))}"
            for k, v in self._data.items()
        ]
        return "Grads(\n" + "\n".join(lines) + "\n)" if lines else "Grads()"


def _grads_flatten(g: Grads) -> Any:
    keys = tuple(g._data)
    return (
        [(jax.tree_util.DictKey(k), v) for k, v in g._data.items()],
        (keys, tuple(g.params[k] for k in keys)),
    )


def _grads_unflatten(aux: Any, leaves: Any) -> Grads:
    keys, boxes = aux
    return Grads(zip(keys, leaves), zip(keys, boxes))


jax.tree_util.register_pytree_with_keys(
    Grads,
    _grads_flatten,
    _grads_unflatten,
    flatten_func=lambda g: (list(g._data.values()), _grads_flatten(g)[1]),
)


def value_and_grad(
    fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable:
    """Like ``jax.value_and_grad``, with Module arguments differentiated in place.

    For a Module argument the gradient is a :class:`Grads` mapping over its trainable
    parameters (``requires_grad=True``); frozen parameters get no gradient. Other
    arguments are differentiated as ``jax.grad`` does. State the function mutates
    (BatchNorm statistics, RNG keys) is written back, as in eager torch code.
    """
    argnums_t = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        diff_specs = []
        diff_inputs = []
        for i in argnums_t:
            a = args[i]
            if isinstance(a, Module):
                named = [(n, p) for n, p in a.named_parameters() if p.requires_grad]
                diff_specs.append(("module", named))
                diff_inputs.append([p._value for _, p in named])
            elif isinstance(a, Parameter):
                diff_specs.append(("param", a))
                diff_inputs.append(a._value)
            else:
                diff_specs.append(("plain", None))
                diff_inputs.append(a)
        diff_boxes = [p for kind, s in diff_specs if kind == "module" for _, p in s] + [
            s for kind, s in diff_specs if kind == "param"
        ]
        diff_ids = {id(b) for b in diff_boxes}
        objs = [a for a in args if _is_stateful(a)]
        objs += [v for v in kwargs.values() if _is_stateful(v)]
        objs += _captured(fn)[0]
        objs.append(_random.default_generator)
        side_vars = [
            v for v in _collect_vars(objs)
            if id(v) not in diff_ids and not getattr(v, "_jaxmod_readonly", False)
        ]  # fmt: skip

        def inner(diff_vals: list) -> Any:
            boxes: list[Any] = []
            vals: list[Any] = []
            call_args = list(args)
            for (kind, spec), val, i in zip(diff_specs, diff_vals, argnums_t):
                if kind == "module":
                    boxes += [p for _, p in spec]
                    vals += list(val)
                elif kind == "param":
                    boxes.append(spec)
                    vals.append(val)
                else:
                    call_args[i] = val
            swap = _Swap(boxes + side_vars, vals + [v._value for v in side_vars])
            try:
                out = fn(*call_args, **kwargs)
                new_side = [v._value for v in side_vars]
            finally:
                swap.restore()
            loss, aux = out if has_aux else (out, None)
            loss = loss._value if isinstance(loss, Variable) else loss
            return loss, (aux, [jax.lax.stop_gradient(x) for x in new_side])

        (value, (aux, new_side)), raw = jax.value_and_grad(inner, has_aux=True)(diff_inputs)
        for v, val in zip(side_vars, new_side):
            v._value = val
        grads = []
        for (kind, spec), g in zip(diff_specs, raw):
            if kind == "module":
                grads.append(Grads(((n, gi) for (n, _), gi in zip(spec, g)), spec))
            else:
                grads.append(g)
        g_out = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((value, aux), g_out) if has_aux else (value, g_out)

    return wrapper


def grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """Like ``jax.grad``; a Module argument's gradient is a :class:`Grads` mapping.

    Example:
        >>> grads = jaxmod.grad(lambda m: F.mse_loss(m(x), y))(model)
        >>> grads["hidden.weight"].shape
    """
    vg = value_and_grad(fn, argnums, has_aux)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        (value_aux, g) = vg(*args, **kwargs)
        return (g, value_aux[1]) if has_aux else g

    return wrapper


# ------------------------------------------------------------------ vmap / remat
def _functional(fn: Callable, objs: list[Any]) -> tuple[Callable, list[Any]]:
    """A pure version of ``fn``: ``pure(state_values, *args) -> (out, new_state_values)``."""
    vars_ = [v for v in _collect_vars(objs) if not getattr(v, "_jaxmod_readonly", False)]

    def pure(vals: list, *args: Any, **kwargs: Any) -> Any:
        swap = _Swap(vars_, vals)
        try:
            out = _unbox(fn(*args, **kwargs))
            return out, [v._value for v in vars_]
        finally:
            swap.restore()

    return pure, vars_


def vmap(
    fn: Callable, in_axes: Any = 0, out_axes: Any = 0, *, axis_name: Any = None,
    axis_size: int | None = None, randomness: str = "different",
) -> Callable:  # fmt: skip
    """Vectorise ``fn`` like ``jax.vmap``, with stateful Module arguments.

    A Module argument mapped over axis 0 (``in_axes`` entry 0) is a stacked ensemble:
    every parameter has a leading ensemble axis (build one with
    :func:`jaxmod.stack_modules`). ``None`` shares the module across the batch (e.g.
    per-example gradients: ``vmap(grad(loss), in_axes=(None, 0, 0))``). State changed
    inside (BatchNorm statistics) is written back, keeping its axis. With
    ``randomness="different"`` each lane draws its own dropout masks from the global
    generator; ``"same"`` shares one key across lanes.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"vmap in_axes has {len(axes)} entries for {len(args)} arguments")
        groups: list[tuple[Any, list[Any]]] = []
        plain_args: list[Any] = []
        plain_axes: list[Any] = []
        slots: list[Any] = []
        for a, ax in zip(args, axes):
            if _is_stateful(a):
                vs = [v for v in _vars_of(a) if not getattr(v, "_jaxmod_readonly", False)]
                groups.append((ax, vs))
                slots.append(("state", a))
            else:
                slots.append(("plain", len(plain_args)))
                plain_args.append(a)
                plain_axes.append(ax)
        seen: set[int] = set()
        state_vars: list[Any] = []
        state_axes: list[Any] = []
        for ax, vs in groups:
            for v in vs:
                if id(v) not in seen:
                    seen.add(id(v))
                    state_vars.append(v)
                    state_axes.append(ax)
        gen = _random.default_generator
        mapped = [i for i, ax in enumerate(state_axes) if ax is not None]

        def body(state_vals: list, keys: Any, plain: list) -> Any:
            swap = _Swap(state_vars + [gen._key], list(state_vals) + [keys])
            try:
                call = [a if kind == "state" else plain[a] for kind, a in slots]
                out = _unbox(fn(*call))
                for i, ax in enumerate(state_axes):
                    if ax is None and state_vars[i]._value is not state_vals[i]:
                        raise ValueError(
                            "jaxmod.vmap: the function updated state of an argument that is "
                            "shared across the batch (in_axes None), which would need one "
                            "value per lane. Map that module over an axis (an ensemble built "
                            "with jaxmod.stack_modules), or call it in eval mode."
                        )
                new = [state_vars[i]._value for i in mapped]
            finally:
                swap.restore()
            return out, new

        size = axis_size or _axis_size(plain_args, plain_axes, state_vars, state_axes)
        base = gen.next_key()
        keys = jax.random.split(base, size) if randomness == "different" else base
        out, new = jax.vmap(
            body,
            in_axes=(
                list(state_axes),
                0 if randomness == "different" else None,
                list(plain_axes),
            ),  # fmt: skip
            out_axes=(out_axes, [state_axes[i] for i in mapped]),
            axis_name=axis_name,
            axis_size=size,
        )([v._value for v in state_vars], keys, plain_args)
        for i, val in zip(mapped, new):
            state_vars[i]._value = val
        return out

    return wrapper


def _axis_size(plain: list, plain_axes: list, state: list, state_axes: list) -> int | None:
    for a, ax in zip(plain, plain_axes):
        if ax is not None:
            leaves = jax.tree_util.tree_leaves(a)
            if leaves:
                return jnp.shape(leaves[0])[ax]
    for v, ax in zip(state, state_axes):
        if ax is not None:
            return jnp.shape(jax.tree_util.tree_leaves(v._value)[0])[ax]
    return None


def stack_modules(modules: Sequence[Module]) -> Module:
    """Stack identically-structured modules into one ensemble module (leading axis)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *modules)


def checkpoint(fn: Callable, *, policy: Any = None, prevent_cse: bool = True) -> Callable:
    """Rematerialise ``fn`` (a function or a Module) in the backward pass.

    Activations inside are recomputed during differentiation instead of stored, as
    ``torch.utils.checkpoint`` does. State rules are those of :func:`jit`: parameters
    reached through the Module or the function's closure are lifted, not baked in.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        objs = [a for a in args if _is_stateful(a)] + _captured(fn)[0]
        if isinstance(fn, Module):
            objs.append(fn)
        objs.append(_random.default_generator)
        pure, vars_ = _functional(fn, objs)
        out, new = jax.checkpoint(pure, policy=policy, prevent_cse=prevent_cse)(
            [v._value for v in vars_], *args, **kwargs
        )
        for v, val in zip(vars_, new):
            v._value = val
        return out

    return wrapper


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
    gdef0 = _graph.graph_state(first)[1]
    for i, layer in enumerate(layers[1:], 1):
        if _graph.graph_state(layer)[1] != gdef0:
            raise ValueError(
                f"scan_layers needs layers of one structure; layer {i} ({type(layer).__name__}) "
                f"differs from layer 0 ({type(first).__name__})"
            )
    vars0 = [v for v in _graph.graph_state(first)[0]]
    stacked = [jnp.stack([_graph.graph_state(m)[0][j]._value for m in layers])
               for j in range(len(vars0))]  # fmt: skip
    gen = _random.default_generator

    def body(carry: Any, layer_vals: list) -> Any:
        h, key = carry
        swap = _Swap(vars0 + [gen._key], list(layer_vals) + [key])
        try:
            h = first(h, *args, **kwargs)
            new = [v._value for v in vars0]
            key = gen._key._value
        finally:
            swap.restore()
        return (h, key), new

    (out, key), new = jax.lax.scan(body, (x, gen._key._value), stacked)
    gen._key._value = key
    for j in range(len(vars0)):
        for i, m in enumerate(layers):
            _graph.graph_state(m)[0][j]._value = new[j][i]
    return out


# ---------------------------------------------------------------------- compile
def _compile_module(module: Module, **jit_kwargs: Any) -> None:
    def run(m: Module, *args: Any, **kwargs: Any) -> Any:
        return m(*args, **kwargs)

    module.__dict__["_jaxmod_compiled"] = jit(run, **jit_kwargs)


def compile(model: Any = None, **kwargs: Any) -> Any:
    """``torch.compile`` for jaxmod: compile a Module in place (and return it), or jit a function.

    Extra torch.compile options (``mode=``, ``fullgraph=``, ``backend=``...) are accepted
    and ignored: XLA always compiles the whole graph.
    """
    jit_kwargs = {k: v for k, v in kwargs.items() if k in ("donate", "static_argnames")}
    if model is None:
        return functools.partial(compile, **kwargs)
    if isinstance(model, Module):
        _compile_module(model, **jit_kwargs)
        return model
    return jit(model, **jit_kwargs)
