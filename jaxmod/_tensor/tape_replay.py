"""The autograd tape, replay: a recorded graph laid out as one function of its leaves
(:class:`_Plan`), run under :func:`jax.vjp` and compiled with ``jax.jit`` once per graph
structure; tensor hooks; which leaves a graph uses.

The replay swaps the saved values in (so buffer updates such as BatchNorm's running
statistics are not applied twice and dropout draws the same masks). Graphs that need
concrete values (``x[mask]``, ``.item()``), graphs with backward hooks or tensor hooks, and
graphs whose structure keeps changing through the same modules are differentiated eagerly
(correct, slower).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from jaxmod import _autograd
from jaxmod._core import lifting, state
from jaxmod._tensor import base as _b
from jaxmod._tensor.tape_record import _S, _is_source, _Node, _stop, _TapeTensor
from jaxmod.amp import _state as _amp

__all__ = ["register_hook"]

_Var = jax.extend.core.Var


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
        """Replay the graph; returns the values of ``outs`` ((node index, k) pairs).

        Attributes the replayed forwards rebind on their modules (``self.last = h``) are
        put back afterwards: torch runs a forward once, so they keep the forward's values,
        not the replay's traced ones."""
        saved = _attributes(self.nodes)
        _S.replaying += 1
        try:
            return self._run(leafvals, consts, tapvals, outs)
        finally:
            _S.replaying -= 1
            _restore(saved)

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


def _attributes(nodes: list[_Node]) -> list[tuple[Any, dict]]:
    """The attribute dicts (shallow copies) of every module the recorded calls ran."""
    out: list[tuple[Any, dict]] = []
    seen: set[int] = set()
    for n in nodes:
        fn = n.fn
        root = fn.args[0] if isinstance(fn, functools.partial) and fn.args else None
        for m in root.modules() if hasattr(root, "modules") else ():
            if id(m) not in seen:
                seen.add(id(m))
                out.append((m, dict(m.__dict__)))
    return out


def _restore(saved: list[tuple[Any, dict]]) -> None:
    for m, before in saved:
        now = m.__dict__
        if now.keys() == before.keys() and all(now[k] is v for k, v in before.items()):
            continue
        now.clear()
        now.update(before)


def _run_hooks(hooks: list, g: Any) -> Any:
    """torch's tensor hooks on gradient ``g``: each gets a Tensor and may replace it."""
    t = _b.new(g)
    for h in hooks:
        r = h(t)
        if r is not None:
            t = _b.as_tensor(r)
    return jnp.asarray(_b.unwrap(t)).astype(jnp.asarray(g).dtype)


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
        paths = tuple((id(a), n) for a, n in fn.args[1]) if len(fn.args) > 1 else ()
        return (fn.func, id(m), lifting.static_of(m) if lifting.is_stateful(m) else None,
                paths)  # fmt: skip
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
