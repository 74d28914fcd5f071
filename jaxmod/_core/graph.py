"""A module graph as a pytree: its unique state cells plus a hashable :class:`GraphDef`.

**The one rule for what is static.** A value is *dynamic* (a traced input of compiled
code, free to change without recompiling) exactly when it lives in a state cell: a
Parameter, a Buffer, any box, an array or Tensor attribute, an optimizer's hyper-parameter
cell, a generator's key. Everything else -- Python numbers, strings, flags, tuples,
functions, classes -- is *static*: part of the description compiled code is cached on,
compared by value (hashable values) or identity (anything else), so a new value compiles
a new variant once. Optimizers keep numeric hyper-parameters in cells (``lr`` changing
every step never recompiles); a module number meant to change freely belongs in a buffer.

A Module's leaves are the values of its unique boxes and array attributes, each box once
however many modules hold it: that keeps tied weights tied through ``tree_map`` and
``jax.grad``. Walks are cached per root and invalidated by the structure version.
"""

from __future__ import annotations

import weakref
from typing import Any

import jax

from jaxmod._core import state
from jaxmod._core.cells import AttrRef, Variable, box_aux, is_value, wrapper_of

__all__ = ["GraphDef", "ById", "graph_state", "flatten", "flatten_with_keys", "static_key"]

_STATE_KEYS = ("_parameters", "_buffers", "_modules")
# Attributes never part of a module's description (a compiled forward, bound jitted methods).
_SKIP_KEYS = frozenset({"_jaxmod_compiled", "_jaxmod_bound"})


class ById:
    """Static stand-in for an unhashable value: equal only to itself."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ById) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


_SIMPLE = (int, float, str, bool, type(None), type, complex, bytes)


def static_key(v: Any) -> Any:
    """A hashable, value-comparable stand-in for a static value (see the module docs)."""
    t = type(v)
    if t in _SIMPLE:
        return v
    if isinstance(v, (list, tuple)):
        return (t, tuple(static_key(x) for x in v))
    if isinstance(v, dict):
        return (t, tuple((k, static_key(x)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        return (t, frozenset(static_key(x) for x in v))
    if isinstance(v, Variable) or wrapper_of(v) is not None:
        return ById(v)  # boxes and Tensors hash by id but compare elementwise, as in torch
    try:
        hash(v)
    except TypeError:
        return ById(v)
    return v


class GraphDef:
    """The static part of a flattened module graph (hashable, compared by value): ``key``
    describes every module and box; ``names[i]`` is leaf i's first qualified name."""

    __slots__ = ("key", "_hash", "templates", "names", "_plan")

    def __init__(self, key: tuple, templates: list[dict], names: list[str]) -> None:
        self.key = key
        self._hash = hash(key)
        self.templates = templates
        self.names = names
        self._plan: Any = None  # the rebuild plan (jaxmod.nn._pytree), made on first use

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, GraphDef) and self._hash == other._hash and self.key == other.key
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"GraphDef({self.key[0][0][0].__name__}, {len(self.names)} leaves)"


def _build(root: Any) -> tuple[int, list[Any], GraphDef]:
    cells: list[Any] = []
    names: list[str] = []
    index: dict[int, int] = {}
    box_specs: list[Any] = []
    mod_index: dict[int, int] = {}
    specs: list[Any] = []
    templates: list[dict] = []

    def slot(box: Any, name: str) -> Any:
        if box is None:
            return None
        i = index.get(id(box))
        if i is None:
            i = index[id(box)] = len(cells)
            cells.append(box)
            names.append(name)
            box_specs.append((type(box), box_aux(box)))
        return i

    def visit(m: Any, prefix: str) -> int:
        i = mod_index.get(id(m))
        if i is not None:
            return i
        i = mod_index[id(m)] = len(specs)
        specs.append(None)
        templates.append({})
        d = m.__dict__
        dot = prefix + "." if prefix else ""
        params = tuple((k, slot(b, dot + k)) for k, b in d["_parameters"].items())
        buffers = tuple((k, slot(b, dot + k)) for k, b in d["_buffers"].items())
        static: list[Any] = []
        arrays: list[Any] = []
        template = templates[i]
        for k, v in d.items():
            if k in _STATE_KEYS or k in _SKIP_KEYS:
                continue
            if is_value(v):
                arrays.append((k, len(cells), wrapper_of(v)))
                cells.append(AttrRef(m, k))
                names.append(dot + k)
                box_specs.append((None, None))
            else:
                template[k] = v
                static.append((k, static_key(v)))
        children = tuple(
            (k, None if c is None else visit(c, dot + k)) for k, c in d["_modules"].items()
        )
        specs[i] = (type(m), tuple(static), params, buffers, tuple(arrays), children)
        return i

    visit(root, "")
    return state._version, cells, GraphDef((tuple(specs), tuple(box_specs)), templates, names)


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def graph_state(root: Any) -> tuple[list[Any], GraphDef]:
    """The unique state cells (boxes and array-attribute refs) of ``root``, and its graphdef.

    Cached until the next structural change anywhere.
    """
    c = _cache.get(root)
    if c is None or c[0] != state._version:
        c = _cache[root] = _build(root)
    return c[1], c[2]


def flatten(m: Any) -> tuple[list[Any], GraphDef]:
    cells, gdef = graph_state(m)
    return [v._value for v in cells], gdef


def flatten_with_keys(m: Any) -> tuple[list[Any], GraphDef]:
    cells, gdef = graph_state(m)
    return [(jax.tree_util.GetAttrKey(n), v._value) for n, v in zip(gdef.names, cells)], gdef
