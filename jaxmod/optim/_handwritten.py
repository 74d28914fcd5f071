"""Optimizers written by hand in torch's style: a subclass of
:class:`~jaxmod.optim.Optimizer` that defines ``step()`` and no ``_transform``.

Research code subclasses ``torch.optim.Optimizer`` (Lion, Sophia, Adafactor variants):
``__init__`` passes ``defaults``; ``step()`` walks ``self.param_groups``, reads ``p.grad``,
keeps tensors in ``self.state[p]`` and updates in place (``p.add_(u, alpha=-lr)``). For
such a class the base keeps torch's plain layout: ``state`` is a ``defaultdict(dict)``
keyed by parameter, and ``state_dict()`` / ``load_state_dict()`` are torch's (state by
parameter index, groups with ``"params"`` as indices; torch's checks and messages). The
update runs eagerly, as written; a ``jaxmod.jit`` step cannot lift state it cannot see,
so it raises :class:`HandWrittenOptimizerError` instead of compiling stale constants.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b

__all__ = ["HandWrittenOptimizerError", "is_handwritten", "state", "state_dict", "load_state_dict"]


class HandWrittenOptimizerError(TypeError):
    """A hand-written optimizer (``step()`` without ``_transform``) was used inside a
    compiled step."""


def is_handwritten(cls: type, base: type) -> bool:
    """Whether ``cls`` writes its own ``step()`` and no optax ``_transform`` (a user's
    torch-style class, or jaxmod's LBFGS, which runs torch's algorithm on the host)."""
    return cls._transform is base._transform and cls.step is not base.step


def state(opt: Any) -> defaultdict:
    """The optimizer's ``state``: a ``defaultdict(dict)`` keyed by parameter."""
    s = opt.__dict__.get("_manual_state")
    if s is None:
        s = opt.__dict__["_manual_state"] = defaultdict(dict)
    return s


def _index(opt: Any) -> dict[int, int]:
    return {id(p): i for i, p in enumerate(p for g in opt.param_groups for p in g["params"])}


def state_dict(opt: Any) -> dict[str, Any]:
    """torch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [i]}]}``."""
    index = _index(opt)
    groups = []
    for g in opt.param_groups:
        packed = {k: v for k, v in g.items() if k != "params"}
        packed["params"] = [index[id(p)] for p in g["params"]]
        groups.append(packed)
    st = {index[id(p)]: v for p, v in state(opt).items() if id(p) in index}
    return {"state": st, "param_groups": groups}


def load_state_dict(opt: Any, sd: Mapping[str, Any]) -> None:
    """Load torch's layout (checked before anything changes, with torch's messages)."""
    groups, saved = opt.param_groups, sd["param_groups"]
    if len(groups) != len(saved):
        raise ValueError("loaded state dict has a different number of parameter groups")
    if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved)):
        raise ValueError(
            "loaded state dict contains a parameter group that doesn't match the size of "
            "optimizer's group"
        )
    by_index = {}
    for g, s in zip(groups, saved):
        by_index.update(zip(s["params"], g["params"]))
    new_state: defaultdict = defaultdict(dict)
    for k, v in sd["state"].items():
        p = by_index.get(int(k))
        if p is None:
            continue
        new_state[p] = {name: _loaded(x) for name, x in v.items()}
    for g, s in zip(groups, saved):
        params = g["params"]
        g.clear()
        g.update({k: copy.deepcopy(v) for k, v in s.items() if k != "params"})
        g["params"] = params
    opt.__dict__["_manual_state"] = new_state


def _loaded(x: Any) -> Any:
    """A saved state value as the optimizer keeps it: arrays and tensors (jaxmod's, numpy's,
    torch's) as fresh Tensors (torch copies state on load), anything else deep-copied."""
    if type(x) in _b.TT or isinstance(x, jax.Array):
        return _b.new(jnp.array(_b.unwrap(x)))
    if isinstance(x, np.ndarray) or (hasattr(x, "__array__") and hasattr(x, "shape")):
        return _b.new(jnp.asarray(np.array(x)))
    return copy.deepcopy(x)


def refuse_jit(opt: Any) -> None:
    """Raise :class:`HandWrittenOptimizerError` (``jaxmod.jit`` met the optimizer)."""
    raise HandWrittenOptimizerError(
        f"{type(opt).__name__} is a hand-written optimizer (its own step() updating "
        "self.state in place), which runs eagerly only: a compiled step cannot see the "
        "tensors it keeps in self.state. Call it outside jaxmod.jit "
        "(loss.backward(); opt.step()), or give the class an optax _transform "
        "(see docs/optim.md) to compile it."
    )
