"""``Optimizer.step``'s machinery: from what ``step()`` is given to new parameters and state.

:func:`resolve_grads` maps a gradient mapping, a list, or the parameters' ``.grad`` to one
gradient per parameter box, and :func:`check_matched` refuses a step that would change
nothing; :func:`compile_update` builds the jitted update of one group (one optax state over
the group's parameter list, or one per parameter whose step counts the group shares while
in lockstep); :func:`step_groups` runs it for every group with a gradient, switching a
group to one state per parameter the first time a step skips some of its parameters.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxmod._core import state as _kernel
from jaxmod._core.state import NeedsLift
from jaxmod._tensor.base import unwrap as _unwrap
from jaxmod.nn.parameter import Parameter, Variable
from jaxmod.optim._hparams import _with_constants
from jaxmod.optim._state import _scalar_mask, _to_jax, _with_scalars

__all__ = ["resolve_grads", "check_matched", "compile_update", "step_groups"]


def resolve_grads(opt: Any, grads: Any) -> dict[int, Any]:
    """Map ``id(box) -> gradient`` from a grads mapping, a list, or ``p.grad``."""
    out: dict[int, Any] = {}
    if grads is None:
        for p in opt._flat_params():
            if p.grad is not None:
                out[id(p)] = p.grad
    elif isinstance(grads, Mapping):
        boxes = getattr(grads, "params", None)
        if boxes is None:
            raise TypeError(
                "step() got a gradient mapping without a `.params` attribute; pass the "
                "mapping returned by jaxmod.grad, a list of arrays in the optimizer's "
                "parameter order, or None to use each parameter's .grad"
            )
        for name, g in grads.items():
            if g is not None and name in boxes:
                out.setdefault(id(boxes[name]), g)
    elif isinstance(grads, (list, tuple)):
        flat = opt._flat_params()
        if len(grads) != len(flat):
            raise ValueError(
                f"step() got {len(grads)} gradients for {len(flat)} parameters; a list "
                "of gradients must follow the optimizer's parameter order"
            )
        for p, g in zip(flat, grads):
            if g is not None:
                out[id(p)] = g
    else:
        raise TypeError(
            "grads must be a gradient mapping (with .params), a list of arrays or None, "
            f"got {type(grads).__name__}"
        )
    for p in opt._flat_params():
        if not p.requires_grad:
            out.pop(id(p), None)
    return out


def check_matched(opt: Any, grads: Any, gmap: dict[int, Any]) -> bool:
    """Whether the step has a gradient to apply. When ``gmap`` (``grads`` resolved) has no
    gradient for any trainable parameter of ``opt``: eagerly ``opt.step()`` (torch's
    spelling, ``grads=None``) changes nothing, as torch's does, and warns once per
    optimizer; inside a jaxmod transform, or with explicit ``grads`` for another model,
    it raises (the step would silently change nothing)."""
    own = opt._flat_params()
    matched = any(id(p) in gmap for p in own)
    trainable = 0 if matched else sum(1 for p in own if p.requires_grad)
    if trainable and grads is None and not _kernel.ctx.lift_depth:
        if not getattr(opt, "_warned_no_grad", False):
            opt._warned_no_grad = True
            warnings.warn(
                f"{type(opt).__name__}.step() found no gradient for any of its {trainable} "
                "trainable parameters (none has a .grad) and changed nothing, as torch's "
                "does. If the model should train, call loss.backward() before opt.step(), "
                "or pass the gradients: opt.step(jaxmod.grad(loss_fn)(model)).",
                UserWarning,
                stacklevel=3,
            )
        return False
    if trainable and grads is None:
        raise RuntimeError(
            f"{type(opt).__name__}.step() found no gradient for any of its {trainable} "
            "trainable parameters (none has a .grad), so it would change nothing. Call "
            "loss.backward() before opt.step(), or pass the gradients jaxmod.value_and_grad "
            "returns to the step:\n    loss, grads = jaxmod.value_and_grad(loss_fn)(model)\n"
            "    opt.step(grads)"
        )
    if trainable:
        raise ValueError(
            f"{type(opt).__name__}.step(grads) got {len(gmap)} gradient(s), none of "
            f"them for this optimizer's {trainable} trainable parameters, so it would "
            "change nothing: were they taken of another model? Pass the gradients of the "
            "model this optimizer was built over: opt.step(jaxmod.grad(loss_fn)(model))."
        )
    return True


def _grads_of(items: list[Parameter], gmap: dict[int, Any]) -> list:
    """The gradients of ``items`` as arrays, each checked against its parameter's shape."""
    grads_in = []
    for p in items:
        g = gmap[id(p)]
        # a .grad is a Tensor (backward() stores Tensors): its array, not a copy (copying
        # each gradient was a device dispatch per parameter in every eager step)
        g = g._value if isinstance(g, Variable) else _unwrap(g)
        if not isinstance(g, (jax.Array, jax.core.Tracer)):
            g = _to_jax(g)
        if tuple(jnp.shape(g)) != p.shape:
            raise ValueError(
                f"gradient of shape {tuple(jnp.shape(g))} for a parameter of shape {p.shape}"
            )
        grads_in.append(g)
    return grads_in


def compile_update(
    transform: Callable, struct: Hashable, static: dict[str, Any], grouped: bool
) -> Callable:
    """The jitted update of one group: ``grouped`` for one optax state over the group's
    parameter list, else one optax state per parameter (``lockstep``: the group's step
    counts live in its first parameter's state)."""
    if grouped:

        def run_group(hp: dict, params: list, grads: list, state: dict) -> tuple[list, dict]:
            tx = transform(struct, static, _with_constants(static, hp))
            grads = [
                jnp.asarray(g, p.dtype) if jnp.asarray(g).dtype != p.dtype else g
                for p, g in zip(params, grads)
            ]
            updates, opt_state = tx.update(grads, state["opt"], params)
            new = optax.apply_updates(params, updates)
            return new, {"step": state["step"] + 1, "opt": opt_state}

        return jax.jit(run_group)

    def run(hp: dict, params: list, grads: list, states: list, lockstep: bool) -> tuple[list, list]:
        tx = transform(struct, static, _with_constants(static, hp))
        shared = lockstep and len(states) > 1
        if shared:
            # The group's step counts live in its first parameter's state; the
            # others' stay as they are (passed through, no compute, no copy).
            mask = _scalar_mask(tx)
            old_states = states
            states = [states[0]] + [_with_scalars(s, states[0], mask) for s in states[1:]]
        new_params, new_states = [], []
        for p, g, s in zip(params, grads, states):
            g = jnp.asarray(g, p.dtype) if jnp.asarray(g).dtype != p.dtype else g
            updates, opt_state = tx.update(g, s["opt"], p)
            new_params.append(optax.apply_updates(p, updates))
            new_states.append({"step": s["step"] + 1, "opt": opt_state})
        if shared:
            new_states = [new_states[0]] + [
                _with_scalars(ns, old, mask) for ns, old in zip(new_states[1:], old_states[1:])
            ]
        return new_params, new_states

    return jax.jit(run, static_argnames="lockstep")


def _ungroup_for_partial_step(opt: Any, group: dict) -> None:
    """Before a step that skips some of ``group``'s parameters: from now on keep one
    state per parameter (their step counts will differ).

    Under :func:`jaxmod.jit` the group's state is traced and the per-parameter boxes
    do not exist yet (nothing would lift them), so the trace is abandoned, the state
    is split with concrete values, and jaxmod.jit traces again.
    """
    box = opt._group_boxes[id(group)]
    if _kernel.ctx.jit_depth > 0 and any(isinstance(x, jax.core.Tracer) for x in box._value):
        raise NeedsLift(None, then=functools.partial(opt._ungroup, group))
    opt._ungroup(group)


def step_groups(opt: Any, gmap: dict[int, Any]) -> None:
    """Update every group of ``opt`` that has a gradient in ``gmap`` (``id(box) -> grad``)."""
    for group in opt.param_groups:
        items = [p for p in group["params"] if id(p) in gmap]
        if not items:
            continue
        struct = opt._structures[id(group)]
        static = opt._static(group)
        grads_in = _grads_of(items, gmap)
        gbox = opt._group_boxes.get(id(group))
        if gbox is not None and len(items) < len(group["params"]):
            _ungroup_for_partial_step(opt, group)
            gbox = None
        if gbox is not None:
            new_p, gbox.state = opt._update_fn(struct, static, grouped=True)(
                opt._hparams(group), [p._value for p in items], grads_in, gbox.state
            )
            for p, v in zip(items, new_p):
                p._value = v
            continue
        fn = opt._update_fn(struct, static)
        boxes = [opt._state_boxes[id(p)] for p in items]
        lockstep = opt._lockstep.get(id(group), True)
        if lockstep and len(items) < len(group["params"]):
            # From now on this group's parameters may have different step counts:
            # give each its own copy of the group's counts first.
            for p in group["params"][1:]:
                box = opt._state_boxes[id(p)]
                box.state = opt._state_of(p)
            opt._lockstep[id(group)] = lockstep = False
            _kernel.bump()
        new_p, new_s = fn(
            opt._hparams(group),
            [p._value for p in items],
            grads_in,
            [b.state for b in boxes],
            lockstep=lockstep,
        )
        for p, v in zip(items, new_p):
            p._value = v
        for b, s in zip(boxes, new_s):
            b.state = s
