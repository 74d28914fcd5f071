"""Eager autograd: ``loss.backward()`` by recording what produced ``loss`` and replaying it
under :func:`jax.vjp`.

JAX differentiates functions, torch programs call ``loss.backward()`` on a value. The tape
joins the two in three files:

- **Recording** (:mod:`jaxmod._tensor.tape_record`): each eager operation on inputs that
  require grad records a node; a whole eager module call is one node.
- **Replay** (:mod:`jaxmod._tensor.tape_replay`): ``backward()`` replays the recorded nodes
  that lead to the tensor as one function of the leaves, with the saved values swapped in,
  takes its :func:`jax.vjp`, compiled with ``jax.jit`` once per graph structure, so a
  training loop compiles its backward once.
- **The autograd API** (here): ``backward``, ``autograd.grad`` (also ``create_graph=True``),
  gradients added into each leaf's ``.grad``, where ``optimizer.step()`` and
  ``clip_grad_norm_`` read them.

Nothing is recorded inside ``no_grad``, inside a jaxmod transform (``jaxmod.jit``,
``jaxmod.grad``: there gradients are functional) or on traced values.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import state
from jaxmod._tensor import base as _b
from jaxmod._tensor import errors as _err
from jaxmod._tensor.tape_record import (  # noqa: F401  (re-exported: tape.X for users)
    _S,
    Node,
    TapeError,
    _is_source,
    _stop,
    _TapeTensor,
    is_replaying,
    marked,
    module_wanted,
    record,
    record_module,
    recording,
    register_linkable,
)
from jaxmod._tensor.tape_replay import (  # noqa: F401  (re-exported for tests)
    _COMPILED,
    _FAMILIES,
    _MAX_PER_FAMILY,
    _graph,
    _leaf_grad,
    _Plan,
    _replay,
    _used_leaves,
    _vjp_fn,
    register_hook,
)

__all__ = ["TapeError", "backward", "grad", "is_replaying", "record", "record_module",
           "module_wanted", "recording", "register_linkable", "register_hook"]  # fmt: skip

_ctx = state.ctx
_Tracer = jax.core.Tracer


def _roots(tensors: Any, grads: Any) -> tuple[list, list]:
    ts = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if grads is None:
        gs = [None] * len(ts)
    else:
        gs = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    if len(gs) != len(ts):
        raise RuntimeError(
            f"grad can be implicitly created only for scalar outputs (got {len(gs)} "
            f"gradients for {len(ts)} tensors)"
        )
    return ts, gs


def _check_root(t: Any) -> None:
    if type(t) is _TapeTensor:
        return
    v = _b.unwrap(t)
    if isinstance(v, _Tracer) or _ctx.lift_depth:
        raise RuntimeError(_err.BACKWARD)
    raise RuntimeError(
        "element 0 of tensors does not require grad and does not have a grad_fn "
        "(jaxmod records eager operations on parameters and requires_grad tensors outside "
        "no_grad and jaxmod transforms; this tensor was computed from none of them)"
    )


def _cotangent(t: Any, g: Any) -> Any:
    v = t._value
    if g is None:
        if np.size(v) != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return jnp.ones_like(v)
    g = jnp.asarray(_b.unwrap(g))
    if g.shape != v.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[0] has a shape of {tuple(g.shape)} and "
            f"output[0] has a shape of {tuple(v.shape)}."
        )
    return g.astype(v.dtype)


def _setup(ts: list, gs: list, taps: list) -> tuple[list, _Plan, tuple, list]:
    """The graph of roots ``ts`` laid out for a replay: (nodes, plan, the roots' (node,
    output) slots, their cotangents from ``gs``)."""
    for t in ts:
        _check_root(t)
    nodes = _graph([t._ag[0] for t in ts])
    plan = _Plan(nodes, [t._ag for t in taps])
    index = {id(n): i for i, n in enumerate(nodes)}
    outs = tuple((index[id(t._ag[0])], t._ag[1]) for t in ts)
    cots = [_cotangent(t, g) for t, g in zip(ts, gs)]
    _S.backwards += 1
    return nodes, plan, outs, cots


def _run(ts: list, gs: list, taps: list, retain_graph: bool) -> tuple[list, list, list]:
    """Differentiate tape tensors ``ts`` (cotangents ``gs``): (plan's leaves, leaf grads
    (None for leaves the roots do not depend on), tap grads)."""
    nodes, plan, outs, cots = _setup(ts, gs, taps)
    leafvals = [v for _, v in plan.leaves]
    tapvals = [jnp.zeros_like(t._value) for t in taps]
    f = _vjp_fn(plan, outs)
    _, gl, gt = f(leafvals, plan.consts, tapvals, cots)
    used = _used_leaves(plan, outs, leafvals, plan.consts, tapvals)
    if not retain_graph:
        for n in nodes:
            n.freed = True
            n.specs = n.values = ()
    gl = [g if u else None for g, u in zip(gl, used)]
    leaves = plan.leaves
    # a compiled replay keeps its first plan for retracing: not this step's arrays
    plan.leaves, plan.consts = [], []
    return leaves, gl, list(gt)


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: Any = None,
             create_graph: bool = False, inputs: Any = None) -> None:  # fmt: skip
    """``torch.autograd.backward`` / ``tensor.backward()``: add the gradients of ``tensors``
    into the ``.grad`` of every leaf they were computed from."""
    if create_graph:
        raise TapeError(_CREATE_GRAPH)
    ts, gs = _roots(tensors, grad_tensors)
    if not all(type(t) is _TapeTensor for t in ts) and all(_is_source(t) for t in ts):
        for t, g in zip(ts, gs):  # a leaf's gradient with respect to itself
            _accumulate(t, _cotangent(_b.as_tensor(t), g))
        return
    retained = _retained(ts)
    leaves, gl, gt = _run(ts, gs, retained, bool(retain_graph))
    wanted = None if inputs is None else {id(x) for x in _listed(inputs)}
    for k, (src, g) in _per_source(leaves, gl).items():
        if wanted is None or k in wanted:
            _accumulate(src, _leaf_grad(src, g))
    for t, g in zip(retained, gt):
        _accumulate(t, g)


def _retained(ts: list) -> list:
    """The tensors given ``retain_grad()`` in the graph of ``ts`` (none once it is freed:
    the backward itself then raises)."""
    try:
        nodes = _graph([t._ag[0] for t in ts if type(t) is _TapeTensor])
    except RuntimeError:
        return []
    return [t for n in nodes if n.retained for t in n.retained.values()]


def _per_source(leaves: list, grads: list, used: Any = None) -> dict[int, list]:
    """``id(source) -> [source, gradient]``, a leaf's gradient summed over the values it
    entered the graph with; ``None`` gradients (and unused leaves) left out."""
    out: dict[int, list] = {}
    for i, ((src, _), g) in enumerate(zip(leaves, grads)):
        if g is None or (used is not None and not used[i]):
            continue
        if id(src) in out:
            out[id(src)][1] = out[id(src)][1] + g
        else:
            out[id(src)] = [src, g]
    return out


def _assemble(xs: list, by_tap: dict, by_src: dict, allow_unused: bool,
              materialize: bool) -> tuple:  # fmt: skip
    """``autograd.grad``'s result: the gradient (a Tensor) of each input ``xs[i]``, from a
    tap (a computed input) or a source; an input outside the graph raises torch's error,
    or gives None (``allow_unused``) or zeros (``materialize_grads``)."""
    res = []
    for i, x in enumerate(xs):
        g = by_tap.get(id(x), by_src.get(id(x)))
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}) appears to not have been "
                    "used in the graph. Set allow_unused=True if this is the desired behavior."
                )
            g = jnp.zeros_like(_b.unwrap(x)) if materialize else None
        res.append(None if g is None else _b.as_tensor(g))
    return tuple(res)


def _listed(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _accumulate(src: Any, g: Any) -> None:
    g = jnp.asarray(g)
    old = src.grad
    src.grad = _b.new(g) if old is None else _b.new(_b.unwrap(old) + g)


_CREATE_GRAPH = (
    "backward(create_graph=True) (gradients on .grad that are themselves differentiated) "
    "is not supported by jaxmod's autograd tape. Take the gradient with "
    "torch.autograd.grad(outputs, inputs, create_graph=True), which is, or nest jaxmod.grad: "
    "gp = jaxmod.grad(lambda x: critic(x).sum())(x)."
)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: Any = None,
         create_graph: bool = False, allow_unused: Any = None,
         materialize_grads: bool = False, **kwargs: Any) -> tuple:  # fmt: skip
    """``torch.autograd.grad``: the gradients of ``outputs`` with respect to ``inputs``
    (leaves or computed tensors), returned instead of stored on ``.grad``."""
    ts, gs = _roots(outputs, grad_outputs)
    xs = _listed(inputs)
    if create_graph:
        return _grad_with_graph(ts, gs, xs, allow_unused or materialize_grads, materialize_grads)
    taps = [x for x in xs if type(x) is _TapeTensor]
    # as in torch, tensors given retain_grad() receive their gradient here too
    retained = _retained(ts)
    extra = [t for t in retained if all(t is not x for x in taps)]
    leaves, gl, gt = _run(ts, gs, taps + extra, bool(retain_graph))
    by_id = {id(t): g for t, g in zip(taps + extra, gt)}
    for t in retained:
        _accumulate(t, by_id[id(t)])
    by_src = {k: _leaf_grad(src, g) for k, (src, g) in _per_source(leaves, gl).items()}
    by_tap = {id(t): g for t, g in zip(taps, gt)}
    return _assemble(xs, by_tap, by_src, bool(allow_unused or materialize_grads),
                     materialize_grads)  # fmt: skip


class _GradOf:
    """The gradient of a graph as a function of its leaves: ``autograd.grad(...,
    create_graph=True)`` records it as an operation, so a later ``backward()`` differentiates
    the gradient (a gradient penalty). Equal for graphs of one structure (the compile key)."""

    __slots__ = ("plan", "outs", "key")

    def __init__(self, plan: _Plan, outs: tuple) -> None:
        self.plan, self.outs = plan, outs
        self.key = None if plan.key is None else (plan.key, outs, tuple(plan.taps))

    def __hash__(self) -> int:
        return hash(self.key) if self.key is not None else id(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _GradOf):
            return NotImplemented
        return self is other or (self.key is not None and self.key == other.key)

    def __call__(self, leaves: list, consts: list, taps: list, cots: list) -> tuple:
        lv = [_b.unwrap(v) for v in leaves]
        cs = [_b.unwrap(c) for c in consts]
        tv = [jnp.zeros_like(_b.unwrap(t)) for t in taps]
        _, back = jax.vjp(_replay(self.plan, cs, self.outs), lv, tv)
        gl, gt = back([_b.unwrap(c) for c in cots])
        return [_b.new(x) for x in gl], [_b.new(x) for x in gt]


def _grad_with_graph(ts: list, gs: list, xs: list, allow_unused: bool,
                     materialize: bool) -> tuple:  # fmt: skip
    """``autograd.grad(..., create_graph=True)``: gradients that are tape tensors."""
    taps = [x for x in xs if type(x) is _TapeTensor]
    _, plan, outs, cots = _setup(ts, gs, taps)
    # a leaf enters as itself (so the gradient depends on it) unless it changed since
    leaves = [src if _b.unwrap(src) is v else v for src, v in plan.leaves]
    values = [v for _, v in plan.leaves]
    used = _used_leaves(plan, outs, values, plan.consts, [jnp.zeros_like(t._value) for t in taps])
    gl, gt = record(_GradOf(plan, outs), "Grad", (leaves, list(plan.consts), taps, cots), {})
    by_src = {k: g for k, (_, g) in _per_source(plan.leaves, gl, used).items()}
    by_tap = {id(t): g for t, g in zip(taps, gt)}
    return _assemble(xs, by_tap, by_src, allow_unused, materialize)


_b.tape_marked = marked
_b.tape_register_hook = register_hook
_b.tape_recording = recording
_b.tape_record = record
_b.tape_backward = lambda t, g, retain, create, inputs: backward(t, g, retain, create, inputs)
