"""Flattening a module graph into a pytree: unique state leaves plus a hashable graphdef.

A Module's pytree leaves are the values of the unique boxes (parameters and buffers)
and plain array attributes reachable from it, each box once however many modules hold
it: that is what keeps tied weights tied through ``jax.tree_util.tree_map`` and
``jax.grad``. The static part (:class:`GraphDef`) records classes, names, box kinds,
``training`` flags and the other attributes, compared by value so that two instances
of the same architecture share compiled code.

Walking the graph is cached per root module and invalidated by the global structure
version (``jaxmod.nn.module._version``), so flattening an unchanged model is one list
comprehension over its boxes.
"""

from __future__ import annotations

import collections
import functools
import inspect
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax

from jaxmod.nn import module as _module
from jaxmod.nn.parameter import _BOX_AUX, _box_aux, _box_class

__all__ = ["GraphDef", "graph_state", "register"]

_STATE_KEYS = ("_parameters", "_buffers", "_modules")
# Attributes of a Module that never take part in its static description.
_SKIP_KEYS = frozenset({"_jaxmod_compiled"})


class _AttrRef:
    """A plain array attribute of a module, seen as a box (``_value`` reads/writes it)."""

    __slots__ = ("module", "name")

    def __init__(self, module: Any, name: str) -> None:
        self.module = module
        self.name = name

    @property
    def _value(self) -> Any:
        return self.module.__dict__[self.name]

    @_value.setter
    def _value(self, v: Any) -> None:
        self.module.__dict__[self.name] = v


class _ById:
    """Static stand-in for an unhashable attribute: equal only to itself."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ById) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


_SIMPLE = (int, float, str, bool, type(None), type, complex, bytes)


def _static_key(v: Any) -> Any:
    """A hashable, value-comparable stand-in for a static attribute."""
    t = type(v)
    if t in _SIMPLE:
        return v
    if t is dict or t is OrderedDict:
        return (t, tuple((k, _static_key(x)) for k, x in v.items())) if v else (t, ())
    if t is set or t is frozenset:
        return frozenset(_static_key(x) for x in v) if v else frozenset()
    if t is list or t is tuple:
        return (t, tuple(_static_key(x) for x in v))
    try:
        hash(v)
        return v
    except TypeError:
        pass
    if isinstance(v, (list, tuple)):
        return (type(v), tuple(_static_key(x) for x in v))
    if isinstance(v, dict):
        return (type(v), tuple((k, _static_key(x)) for k, x in v.items()))
    return _ById(v)


class GraphDef:
    """The static part of a flattened module graph (hashable, compared by value).

    Attributes:
        key: nested tuples describing every module and box; this is what ``==`` and
            ``hash`` use.
        names: the first qualified name of each leaf (``"hidden.weight"``).
    """

    __slots__ = ("key", "_hash", "templates", "names", "_plan")

    def __init__(self, key: tuple, templates: list[dict], names: list[str]) -> None:
        self.key = key
        self._hash = hash(key)
        self.templates = templates
        self.names = names
        self._plan: _UnflattenPlan | None = None

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, GraphDef) and self._hash == other._hash and self.key == other.key
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"GraphDef({self.key[0][0][0].__name__}, {len(self.names)} leaves)"


def _build(root: Any) -> tuple[int, list[Any], GraphDef]:
    vars_: list[Any] = []
    names: list[str] = []
    var_index: dict[int, int] = {}
    box_specs: list[Any] = []
    mod_index: dict[int, int] = {}
    specs: list[Any] = []
    templates: list[dict] = []

    def slot(box: Any, name: str) -> Any:
        if box is None:
            return None
        i = var_index.get(id(box))
        if i is None:
            i = var_index[id(box)] = len(vars_)
            vars_.append(box)
            names.append(name)
            box_specs.append((type(box), _box_aux(box)))
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
            if _module._is_array(v):
                arrays.append((k, len(vars_)))
                vars_.append(_AttrRef(m, k))
                names.append(dot + k)
                box_specs.append((None, None))
            else:
                template[k] = v
                static.append((k, _static_key(v)))
        children = tuple(
            (k, None if c is None else visit(c, dot + k)) for k, c in d["_modules"].items()
        )
        specs[i] = (type(m), tuple(static), params, buffers, tuple(arrays), children)
        return i

    visit(root, "")
    key = (tuple(specs), tuple(box_specs))
    return _module._version, vars_, GraphDef(key, templates, names)


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def graph_state(root: Any) -> tuple[list[Any], GraphDef]:
    """The unique state objects (boxes and array-attribute refs) of ``root``, and its graphdef.

    Cached until the next structural change anywhere.
    """
    c = _cache.get(root)
    if c is None or c[0] != _module._version:
        c = _build(root)
        _cache[root] = c
    return c[1], c[2]


def _flatten(m: Any) -> tuple[list[Any], GraphDef]:
    vars_, gdef = graph_state(m)
    return [v._value for v in vars_], gdef


def _flatten_with_keys(m: Any) -> tuple[list[Any], GraphDef]:
    vars_, gdef = graph_state(m)
    return [(jax.tree_util.GetAttrKey(n), v._value) for n, v in zip(gdef.names, vars_)], gdef


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The fast setter of attribute ``name`` on instances of ``cls`` (a slot's descriptor)."""
    desc = inspect.getattr_static(cls, name)
    if hasattr(desc, "__set__"):
        return desc.__set__
    return lambda obj, v: object.__setattr__(obj, name, v)


class _UnflattenPlan:
    """What :func:`_unflatten` needs, precomputed once per graph structure.

    The generic path is mostly C-level ``map`` calls: create every box, set every box's
    value and static attributes, create every module, then fill each module's dict. A
    graph unflattened again and again (``jax.tree_util.tree_map`` in a loop) gets
    :meth:`compile` instead: generated straight-line code doing the same with literal
    dicts and attribute stores, about twice as fast.
    """

    __slots__ = (
        "box_specs", "box_classes", "value_sets", "aux_sets", "mod_classes", "modules",
        "uses", "build",
    )  # fmt: skip

    def __init__(self, gdef: GraphDef) -> None:
        specs, self.box_specs = gdef.key
        # Box slots (index j) -> class; array attributes have no box (None).
        self.box_classes = [None if cls is None else _box_class(cls) for cls, _ in self.box_specs]
        value_sets: dict[Any, list[int]] = {}
        aux_sets: dict[Any, tuple[list[int], list[Any]]] = {}
        for j, ((cls, aux), real) in enumerate(zip(self.box_specs, self.box_classes)):
            if real is None:
                continue
            value_sets.setdefault(_setter(real, "_value"), []).append(j)
            for name, v in zip(_BOX_AUX[cls], aux):
                idx, vals = aux_sets.setdefault(_setter(real, name), ([], []))
                idx.append(j)
                vals.append(v)
        self.value_sets = list(value_sets.items())
        self.aux_sets = [(s, idx, vals) for s, (idx, vals) in aux_sets.items()]
        self.mod_classes = [spec[0] for spec in specs]
        # Index -1 is None (a ``None`` parameter, buffer or child): see ``_unflatten``.
        self.modules = [
            (
                *(
                    (tuple(k for k, _ in items), tuple(-1 if i is None else i for _, i in items))
                    for items in (params, buffers, children)
                ),
                arrays,
            )
            for _, _, params, buffers, arrays, children in specs
        ]
        self.uses = 0
        self.build: Callable | None = None

    def compile(self) -> Callable:
        """Generate ``build(leaves, templates, classes, module_classes, constants)``."""
        consts: list[Any] = []

        def const(v: Any) -> str:
            if v is None or type(v) in (bool, int, str):
                return repr(v)
            consts.append(v)
            return f"K[{len(consts) - 1}]"

        def items(keys: tuple, idx: tuple, src: str) -> str:
            return "{" + ", ".join(f"{k!r}: {src}[{i}]" for k, i in zip(keys, idx)) + "}"

        lines = ["def build(l, T, C, M, K):", f"    b = [None] * {len(self.box_classes) + 1}"]
        for j, ((cls, aux), real) in enumerate(zip(self.box_specs, self.box_classes)):
            if real is None:
                continue
            names = ("_value", *_BOX_AUX[cls])
            if real.__setattr__ is object.__setattr__ and all(
                isinstance(inspect.getattr_static(real, n), types.MemberDescriptorType)
                for n in names
            ):
                sets = "".join(f"; x.{n} = {const(v)}" for n, v in zip(names[1:], aux))
                lines.append(f"    x = N(C[{j}]); x._value = l[{j}]{sets}; b[{j}] = x")
            else:  # properties or a custom __setattr__: their setters
                values = (f"l[{j}]", *(const(v) for v in aux))
                setters = (const(_setter(real, n)) for n in names)
                sets = "".join(f"; {s}(x, {v})" for s, v in zip(setters, values))
                lines.append(f"    x = N(C[{j}]){sets}; b[{j}] = x")
        lines.append("    m = list(map(N, M)); m.append(None)")
        for j, ((pk, pi), (bk, bi), (ck, ci), arrays) in enumerate(self.modules):
            arr = "".join(f"; d[{k!r}] = l[{i}]" for k, i in arrays)
            lines.append(
                f"    d = m[{j}].__dict__; d.update(T[{j}]); "
                f"d['_parameters'] = {items(pk, pi, 'b')}; d['_buffers'] = {items(bk, bi, 'b')}; "
                f"d['_modules'] = {items(ck, ci, 'm')}{arr}"
            )
        lines.append("    return m[0]")
        namespace: dict[str, Any] = {"N": _new}
        exec(compile("\n".join(lines), "<jaxmod unflatten>", "exec"), namespace)
        build = namespace["build"]
        return functools.partial(build, C=self.box_classes, M=self.mod_classes, K=consts)


_new = object.__new__
_consume = collections.deque  # deque(iterator, 0) runs a map at C speed
# Unflattens of one graph structure after which its straight-line ``build`` is generated.
_COMPILE_AFTER = 3
_plans: dict[GraphDef, _UnflattenPlan] = {}


def _unflatten(gdef: GraphDef, leaves: Any) -> Any:
    plan = gdef._plan
    if plan is None:
        # Equal graphdefs (a rebuilt walk, another instance of the architecture) share one
        # plan: it depends only on the key, never on the templates' values.
        plan = _plans.get(gdef)
        if plan is None:
            if len(_plans) >= 256:
                _plans.clear()
            plan = _plans[gdef] = _UnflattenPlan(gdef)
        gdef._plan = plan
    leaves = list(leaves)
    if plan.build is not None:
        return plan.build(leaves, gdef.templates)
    plan.uses += 1
    if plan.uses >= _COMPILE_AFTER:
        plan.build = plan.compile()
    boxes = [None if cls is None else _new(cls) for cls in plan.box_classes]
    get_box = boxes.__getitem__
    for setter, idx in plan.value_sets:
        _consume(map(setter, map(get_box, idx), map(leaves.__getitem__, idx)), 0)
    for setter, idx, vals in plan.aux_sets:
        _consume(map(setter, map(get_box, idx), vals), 0)
    boxes.append(None)
    mods = list(map(_new, plan.mod_classes))
    mods.append(None)
    get_mod = mods.__getitem__
    for m, template, ((pk, pi), (bk, bi), (ck, ci), arrays) in zip(
        mods, gdef.templates, plan.modules
    ):
        d = m.__dict__
        d.update(template)
        d["_parameters"] = dict(zip(pk, map(get_box, pi))) if pk else {}
        d["_buffers"] = dict(zip(bk, map(get_box, bi))) if bk else {}
        d["_modules"] = dict(zip(ck, map(get_mod, ci))) if ck else {}
        for k, i in arrays:
            d[k] = leaves[i]
    return mods[0]


def register(cls: type) -> None:
    """Register a Module subclass as a pytree (called from ``Module.__init_subclass__``)."""
    jax.tree_util.register_pytree_with_keys(
        cls, _flatten_with_keys, _unflatten, flatten_func=_flatten
    )
