"""Generated straight-line code for the hot paths, each keeping its source.

The steady-state call of a jaxmod.jit function (check identities, gather values, call,
scatter values), the re-check of a plain object's attributes a cached plan depends on, and
the rebuild of a module graph from leaves are written out per layout as Python source with
its constants inlined, compiled once, and registered with :mod:`linecache` (``<jaxmod ...>``
file names), so tracebacks show the lines and ``source_of(fn)`` returns them. Measured when
introduced (CPU): jit call 2.1 -> 1.1 us of Python at depth 2, 8 -> 3.4 us at depth 32;
unflatten about twice as fast as the generic C-level passes.
"""

from __future__ import annotations

import builtins
import itertools
import linecache
from collections.abc import Sequence
from typing import Any

__all__ = [
    "compile_source",
    "source_of",
    "jit_call_factory",
    "unflatten_builder",
    "attribute_guard",
]

_counter = itertools.count()


def compile_source(src: str, name: str, scope: dict[str, Any] | None = None) -> dict[str, Any]:
    """Exec ``src`` as a file named ``<jaxmod name #n>`` registered in linecache."""
    filename = f"<jaxmod {name} #{next(_counter)}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    namespace: dict[str, Any] = dict(scope or {})
    exec(builtins.compile(src, filename, "exec"), namespace)
    namespace["__source__"] = src
    return namespace


def source_of(fn: Any) -> str | None:
    """The generated source a function came from (None for ordinary functions)."""
    code = getattr(fn, "__code__", None)
    entry = linecache.cache.get(code.co_filename) if code is not None else None
    return "".join(entry[2]) if entry else None


def jit_call_factory(
    nargs: int, stateful: Sequence[int], static: Sequence[int], dyn: Sequence[int],
    ncells: int, nglobs: int, nguards: int, nmut: int, nro: int, unwrap: Sequence[int] = (),
    wrap: bool = False) -> Any:  # fmt: skip
    """The steady-state call of one jaxmod.jit plan layout, as ``factory(...) -> fast``:
    ``fast(args, kwargs)`` returns the result, or ``MISS`` when the call does not fit the
    plan (the caller re-plans): it checks the structure version, no keyword arguments, the
    argument count, state arguments by identity, static ones by equality, closure cells,
    globals and the plan's guards; then calls ``jitted`` under the call lock and stores
    the new state values. Traced arguments are of type ``TT`` exactly at ``unwrap`` (and
    go in as their ``_value``), elsewhere not; ``wrap``: the result is passed to ``NT``.
    """
    names = [f"s{i}" for i in stateful] + [f"t{i}" for i in static]
    names += [f"{x}{k}" for k in range(ncells) for x in ("c", "oc")]
    names += [f"{x}{k}" for k in range(nglobs) for x in ("gd", "gn", "go")]
    names += [f"q{k}" for k in range(nguards)]  # then m (mutable) and r (read-only) cells
    names += [f"m{k}" for k in range(nmut)] + [f"r{k}" for k in range(nro)]
    checks = [f"args[{i}] is not s{i}" for i in stateful]
    checks += [f"(args[{i}] is not t{i} and args[{i}] != t{i})" for i in static]
    checks += [f"c{k}.cell_contents is not oc{k}" for k in range(ncells)]
    checks += [f"gd{k}.get(gn{k}) is not go{k}" for k in range(nglobs)]
    checks += [f"not q{k}(args)" for k in range(nguards)]  # then the traced args' types
    checks += [f"type(args[{i}]) is {'not ' * (i in unwrap)}TT" for i in dyn]
    mut, ro = ("".join(f"{c}{k}._value, " for k in range(n)) for c, n in (("m", nmut), ("r", nro)))
    dyn_args = "".join(f"args[{i}]._value, " if i in unwrap else f"args[{i}], " for i in dyn)
    src = "\n".join([
        f"def factory(S, MISS, lock, this, plan, jitted, V, TT, NT, {', '.join(names)}):",
        "    def fast(args, kwargs):",
        f"        if S._version != V or kwargs or len(args) != {nargs}:",
        "            return MISS",
        *(f"        if {c}:\n            return MISS" for c in checks),
        "        with lock:",
        "            this._ctx = (plan, args, kwargs)",
        "            try:",
        f"                out, new = jitted([{mut}], [{ro}], [{dyn_args}], {{}})",
        "            except Exception as e:",
        "                return this._failed(plan, e, args, kwargs)",
        "            finally:",
        "                this._ctx = None",
        *([f"            {mut}= new"] if nmut else []),
        "        return NT(out)" if wrap else "        return out",
        "    return fast",
    ])  # fmt: skip
    return compile_source(src, f"jit call {nargs}/{nmut}")["factory"]


def unflatten_builder(box_specs: Sequence, box_classes: Sequence, modules: Sequence, aux_names: Any,
                      setter: Any, plain_slots: Any) -> tuple[Any, list[Any]]:  # fmt: skip
    """``(build, K)``: ``build(leaves, templates, C, M, K)`` rebuilds one module graph layout.

    ``box_specs[j] = (cls, aux)``, ``box_classes[j]`` the class to create (None: an array
    attribute), ``modules[j] = ((pkeys, pidx), (bkeys, bidx), (ckeys, cidx), arrays)``; where
    ``plain_slots(cls, names)`` is false, the ``setter(cls, name)`` descriptors are called.
    """
    consts: list[Any] = []

    def const(v: Any) -> str:
        if v is None or type(v) in (bool, int, str):
            return repr(v)
        consts.append(v)
        return f"K[{len(consts) - 1}]"

    def items(keys: tuple, idx: tuple, src: str) -> str:
        return "{" + ", ".join(f"{k!r}: {src}[{i}]" for k, i in zip(keys, idx)) + "}"

    lines = ["def build(l, T, C, M, K):", f"    b = [None] * {len(box_classes) + 1}"]
    for j, ((cls, aux), real) in enumerate(zip(box_specs, box_classes)):
        if real is None:
            continue
        names = ("_value", *aux_names[cls])
        if plain_slots(real, names):
            sets = "".join(f"; x.{n} = {const(v)}" for n, v in zip(names[1:], aux))
            lines.append(f"    x = N(C[{j}]); x._value = l[{j}]{sets}; b[{j}] = x")
        else:  # properties or a custom __setattr__: their setters
            values = (f"l[{j}]", *(const(v) for v in aux))
            setters = (const(setter(real, n)) for n in names)
            sets = "".join(f"; {s}(x, {v})" for s, v in zip(setters, values))
            lines.append(f"    x = N(C[{j}]){sets}; b[{j}] = x")
    lines.append("    m = list(map(N, M)); m.append(None)")
    for j, ((pk, pi), (bk, bi), (ck, ci), arrays) in enumerate(modules):
        arr = "".join(
            f"; d[{k!r}] = l[{i}]" if w is None else f"; d[{k!r}] = {const(w)}(l[{i}])"
            for k, i, w in arrays
        )
        lines.append(
            f"    d = m[{j}].__dict__; d.update(T[{j}]); "
            f"d['_parameters'] = {items(pk, pi, 'b')}; d['_buffers'] = {items(bk, bi, 'b')}; "
            f"d['_modules'] = {items(ck, ci, 'm')}{arr}"
        )
    lines.append("    return m[0]")
    ns = compile_source("\n".join(lines), "unflatten", {"N": object.__new__})
    return ns["build"], consts


def attribute_guard(obj: Any, checks: Sequence[tuple[str, str, Any]], wrapper_of: Any,
                    is_value: Any, equal: Any) -> Any:  # fmt: skip
    """``guard(args) -> bool``: whether ``obj``'s checked attributes are as discovered.

    ``checks`` are ``(attr, kind, expected)``, kind ``"is"`` (the same object), ``"value"``
    (an array of the same wrapper kind), ``"eq"`` (equal) or ``"len"`` (the dict's size).
    """
    consts: list[Any] = [obj]
    parts = []
    for attr, kind, expected in checks:
        consts.append(expected)
        k = f"K[{len(consts) - 1}]"
        if kind == "len":
            parts.append(f"len(d) == {expected}")
        elif kind == "is":
            parts.append(f"d.get({attr!r}, M) is {k}")
        elif kind == "value":
            parts.append(f"W(d.get({attr!r}, M)) is {k} and V(d.get({attr!r}, M))")
        else:
            parts.append(f"E(d.get({attr!r}, M), {k})")
    src = "def guard(args):\n    d = K[0].__dict__\n    return " + " and ".join(parts) + "\n"
    scope = {"K": consts, "M": object(), "W": wrapper_of, "V": is_value, "E": equal}
    return compile_source(src, f"guard {type(obj).__name__}", scope)["guard"]
