"""Modules as pytrees: rebuilding a module graph from its leaves and GraphDef.

The kernel flattens any module graph to its unique cells and a hashable
:class:`~jaxmod._core.graph.GraphDef`; this module registers every Module class as a
pytree and rebuilds torch-layout modules (``_parameters``/``_buffers``/``_modules``
dicts, boxes with their static slots) from leaves: C-level ``map`` passes at first, and
for a structure rebuilt again and again the kernel's generated straight-line builder.
"""

from __future__ import annotations

import collections
import inspect
import types
from collections.abc import Callable
from typing import Any

import jax

from jaxmod._core import codegen, graph
from jaxmod._core.cells import _AUX, box_class
from jaxmod._core.graph import GraphDef

__all__ = ["register"]


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The fast setter of attribute ``name`` on instances of ``cls`` (a slot's descriptor)."""
    desc = inspect.getattr_static(cls, name)
    if hasattr(desc, "__set__"):
        return desc.__set__
    return lambda obj, v: object.__setattr__(obj, name, v)


def _plain_slots(cls: type, names: tuple) -> bool:
    return cls.__setattr__ is object.__setattr__ and all(
        isinstance(inspect.getattr_static(cls, n), types.MemberDescriptorType) for n in names
    )


class _UnflattenPlan:
    """What :func:`_unflatten` needs, precomputed once per graph structure: C-level ``map``
    passes (create boxes, set values and static slots, create modules, fill their dicts),
    and after a few uses generated straight-line code (:func:`codegen.unflatten_builder`)."""

    __slots__ = ("box_specs", "box_classes", "value_sets", "aux_sets", "mod_classes", "modules",
                 "uses", "build")  # fmt: skip

    def __init__(self, gdef: GraphDef) -> None:
        specs, self.box_specs = gdef.key
        self.box_classes = [None if cls is None else box_class(cls) for cls, _ in self.box_specs]
        value_sets: dict[Any, list[int]] = {}
        aux_sets: dict[Any, tuple[list[int], list[Any]]] = {}
        for j, ((cls, aux), real) in enumerate(zip(self.box_specs, self.box_classes)):
            if real is None:
                continue
            value_sets.setdefault(_setter(real, "_value"), []).append(j)
            for name, v in zip(_AUX[cls], aux):
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
        fn, consts = codegen.unflatten_builder(
            self.box_specs, self.box_classes, self.modules, _AUX, _setter, _plain_slots
        )
        return lambda leaves, templates: fn(leaves, templates, self.box_classes,
                                            self.mod_classes, consts)  # fmt: skip


_new = object.__new__
_consume = collections.deque  # deque(iterator, 0) runs a map at C speed
_COMPILE_AFTER = 3  # unflattens of one structure after which its straight-line build is made
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
        for k, i, wrap in arrays:
            d[k] = leaves[i] if wrap is None else wrap(leaves[i])
    return mods[0]


def register(cls: type) -> None:
    """Register a Module class as a pytree (``Module.__init_subclass__`` calls this)."""
    jax.tree_util.register_pytree_with_keys(
        cls, graph.flatten_with_keys, _unflatten, flatten_func=graph.flatten
    )
