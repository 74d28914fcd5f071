"""``torch.amp.GradScaler``: dynamic loss scaling for float16 training, on device.

The scale and the growth tracker live in :class:`~jaxmod.nn.Variable` boxes that the
scaler reports to :func:`jaxmod.jit` (``_jaxmod_cells_``), so a jitted step that holds the
scaler (argument, closure, ``self.scaler`` of a Trainer) updates them in place. Skipping a
step on inf/nan gradients is a ``jnp.where`` between the optimizer's state before and
after the step: no host round trip, eagerly or compiled.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._core import state
from jaxmod._core.cells import Variable, unwrap

__all__ = ["GradScaler", "OptState"]


class OptState:
    """torch's per-optimizer stage names (``torch.amp.grad_scaler.OptState``)."""

    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _leaves(grads: Any) -> list[Any]:
    return [unwrap(g) for g in jax.tree_util.tree_leaves(grads, is_leaf=_is_box)]


def _is_box(x: Any) -> bool:
    return isinstance(x, Variable)


def _unscaled(grads: Any, inv: Any) -> Any:
    """``grads * inv`` in each gradient's dtype; a Grads/dict/list is updated in place."""

    def one(g: Any) -> Any:
        g = jnp.asarray(unwrap(g))
        return (g * inv).astype(g.dtype)

    if isinstance(grads, (list, dict)) or hasattr(grads, "params"):
        keys = range(len(grads)) if isinstance(grads, list) else list(grads)
        for k in keys:
            if grads[k] is not None:
                grads[k] = jax.tree_util.tree_map(one, grads[k], is_leaf=_is_box)
        return grads
    return jax.tree_util.tree_map(one, grads, is_leaf=_is_box)


def _found_inf(grads: Any) -> Any:
    """A float32 scalar: 1.0 if any gradient has an inf or nan, else 0.0 (on device)."""
    leaves = [g for g in _leaves(grads) if jnp.issubdtype(jnp.result_type(g), jnp.inexact)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    bad = jnp.stack([~jnp.all(jnp.isfinite(g)) for g in leaves])
    return jnp.any(bad).astype(jnp.float32)


class GradScaler:
    """``torch.amp.GradScaler`` (also ``torch.cuda.amp.GradScaler``).

    Args:
        device: accepted for torch's signature (``"cuda"``, ``"cpu"``); jaxmod keeps the
            scale on the default device.
        init_scale: the initial scale factor.
        growth_factor: the factor the scale grows by after ``growth_interval`` steps in a
            row without inf/nan gradients.
        backoff_factor: the factor the scale shrinks by after a step with inf/nan gradients.
        growth_interval: how many consecutive finite steps make the scale grow.
        enabled: ``False`` makes every method a pass-through (``scale`` returns its input,
            ``step`` just steps).

    torch's eager loop runs as written (``scaler.scale(loss).backward();
    scaler.unscale_(opt); clip_grad_norm_(model.parameters(), 1.0); scaler.step(opt);
    scaler.update()``, on the ``.grad`` that ``backward()`` fills). In a compiled step
    the gradients are passed explicitly::

        loss, grads = jaxmod.value_and_grad(lambda m: scaler.scale(loss_fn(m)))(model)
        scaler.unscale_(opt, grads)          # optional: before clipping
        nn.utils.clip_grad_norm_(grads, 1.0)
        scaler.step(opt, grads)              # skipped (on device) if any grad is inf/nan
        scaler.update()

    Works eagerly and inside :func:`jaxmod.jit` (the scale and growth tracker are lifted
    state). ``get_scale()`` syncs to a Python float eagerly; inside a trace it returns
    the traced scale.
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0**16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:  # fmt: skip
        if not isinstance(device, str):  # torch.cuda.amp.GradScaler(init_scale, ...)
            device, init_scale, growth_factor, backoff_factor, growth_interval = (
                "cuda", device, init_scale, growth_factor, backoff_factor)  # fmt: skip
        self._device = device
        self._enabled = bool(enabled)
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._scale = Variable(jnp.asarray(self._init_scale, jnp.float32))
        self._growth_tracker = Variable(jnp.asarray(0, jnp.int32))
        # Per optimizer (by id), for the step in progress: stage and found_inf.
        self._per_optimizer: dict[int, dict[str, Any]] = {}

    # -- jaxmod.jit protocol -------------------------------------------------------------
    def _jaxmod_cells_(self) -> list:
        return [self._scale, self._growth_tracker]

    def _jaxmod_static_(self) -> Hashable:
        return (type(self), self._enabled, self._growth_factor, self._backoff_factor,
                self._growth_interval)  # fmt: skip

    # -- the loop ------------------------------------------------------------------------
    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a loss, or a list/tuple/dict of them) multiplied by the scale."""
        if not self._enabled:
            return outputs
        s = self._scale.value

        def one(x: Any) -> Any:
            return x * s

        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        if isinstance(outputs, dict):
            return {k: self.scale(v) for k, v in outputs.items()}
        return one(outputs)

    def _stage(self, optimizer: Any) -> dict[str, Any]:
        return self._per_optimizer.setdefault(
            id(optimizer), {"stage": OptState.READY, "found_inf": None, "opt": optimizer}
        )

    def unscale_(self, optimizer: Any, grads: Any = None) -> Any:
        """Divide ``grads`` by the scale (in place for Grads, dicts and lists; returned too)
        and record whether any is inf/nan, for ``step(optimizer, grads)``. Without
        ``grads`` (torch's loop, after ``scaler.scale(loss).backward()``), the ``.grad`` of
        the optimizer's parameters are divided in place.

        Call it at most once per optimizer between ``update()`` calls, before ``step``.
        """
        if not self._enabled:
            return grads
        if grads is None:
            params = optimizer._flat_params()
            held = self.unscale_(optimizer, [p.grad for p in params])
            for p, g in zip(params, held):
                if g is not None:
                    p.grad = g
            self._stage(optimizer)["grads"] = None
            return None
        st = self._stage(optimizer)
        if st["stage"] == OptState.UNSCALED:
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the last update()."
            )
        if st["stage"] == OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        if any(jnp.result_type(g) == jnp.float16 for g in _leaves(grads)):
            raise ValueError(
                "Attempting to unscale FP16 gradients: GradScaler expects float32 master "
                "parameters (keep the model in float32 and use jaxmod.autocast for float16 "
                "compute)."
            )
        inv = (1.0 / self._scale.value).astype(jnp.float32)
        found = _found_inf(grads)
        grads = _unscaled(grads, inv)
        st["found_inf"], st["stage"], st["grads"] = found, OptState.UNSCALED, grads
        return grads

    def step(self, optimizer: Any, grads: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Unscale ``grads`` (unless ``unscale_`` did) and take ``optimizer.step(grads)``,
        unless a gradient is inf/nan: then parameters and optimizer state keep their
        values (chosen on device with ``jnp.where``). Returns the optimizer step's value.
        Without ``grads``, the parameters' ``.grad`` (filled by ``loss.backward()``) are
        used, as in torch.
        """
        if not self._enabled:
            return optimizer.step(grads, *args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        st = self._stage(optimizer)
        if st["stage"] == OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if grads is None and all(p.grad is None for p in optimizer._flat_params()):
            raise AssertionError("No inf checks were recorded for this optimizer.")  # torch's
        if st["stage"] == OptState.READY:
            grads = self.unscale_(optimizer, grads)
        elif grads is not st["grads"]:
            grads = st["grads"]  # the unscaled ones (unscale_ returned a new tuple)
        found = st["found_inf"]
        out = _skippable_step(optimizer, found, grads, *args, **kwargs)
        st["stage"] = OptState.STEPPED
        return out

    def update(self, new_scale: Any = None) -> None:
        """Set the next scale: ``new_scale`` if given; otherwise back off if any optimizer
        stepped this iteration saw inf/nan gradients, or grow after ``growth_interval``
        finite steps in a row (torch's ``_amp_update_scale_``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            v = unwrap(new_scale)
            self._scale._value = jnp.asarray(v, jnp.float32).reshape(())
        else:
            founds = [s["found_inf"] for s in self._per_optimizer.values()
                      if s["found_inf"] is not None]  # fmt: skip
            if not founds:
                raise AssertionError("No inf checks were recorded prior to update.")
            found = sum(founds[1:], founds[0]) > 0
            scale, tracker = self._scale.value, self._growth_tracker.value
            grown = (scale * self._growth_factor).astype(jnp.float32)
            succ = tracker + 1
            at_interval = succ == self._growth_interval
            new_s = jnp.where(
                found,
                (scale * self._backoff_factor).astype(jnp.float32),
                jnp.where(at_interval & jnp.isfinite(grown), grown, scale),
            )
            new_t = jnp.where(found | at_interval, 0, succ).astype(tracker.dtype)
            self._scale._value, self._growth_tracker._value = new_s, new_t
        self._per_optimizer = {}

    # -- getters, setters, state ---------------------------------------------------------
    def get_scale(self) -> Any:
        """The current scale: a Python float eagerly (1.0 when disabled); inside a jaxmod.jit
        trace, the traced float32 scalar."""
        if not self._enabled:
            return 1.0
        s = self._scale.value
        return s if isinstance(s, jax.core.Tracer) else float(s)

    def get_growth_factor(self) -> float:
        """The factor the scale grows by."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Change the growth factor (a jitted step recompiles)."""
        self._growth_factor = float(new_factor)
        state.bump()

    def get_backoff_factor(self) -> float:
        """The factor the scale shrinks by."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Change the backoff factor (a jitted step recompiles)."""
        self._backoff_factor = float(new_factor)
        state.bump()

    def get_growth_interval(self) -> int:
        """How many finite steps in a row make the scale grow."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Change the growth interval (a jitted step recompiles)."""
        self._growth_interval = int(new_interval)
        state.bump()

    def _get_growth_tracker(self) -> int:
        return int(self._growth_tracker.value) if self._enabled else 0

    def is_enabled(self) -> bool:
        """Whether the scaler is enabled."""
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """torch's keys: ``scale``, ``growth_factor``, ``backoff_factor``,
        ``growth_interval``, ``_growth_tracker`` (empty when disabled)."""
        if not self._enabled:
            return {}
        return {
            "scale": self.get_scale(),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._get_growth_tracker(),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` (jaxmod's or torch's)."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved from a "
                "disabled instance of GradScaler."
            )
        missing = [k for k in ("scale", "growth_factor", "backoff_factor", "growth_interval",
                               "_growth_tracker") if k not in state_dict]  # fmt: skip
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing key(s) {missing}")
        self._init_scale = float(state_dict["scale"])
        self._scale._value = jnp.asarray(self._init_scale, jnp.float32)
        self._growth_tracker._value = jnp.asarray(int(state_dict["_growth_tracker"]), jnp.int32)
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        state.bump()

    def __getstate__(self) -> dict[str, Any]:
        if self._per_optimizer:
            raise RuntimeError(
                "A GradScaler instance may only be pickled at the beginning of an iteration, "
                "or at the end after scaler.update()."
            )
        return dict(self.__dict__)

    def __repr__(self) -> str:
        if not self._enabled:
            return "GradScaler(enabled=False)"
        return (
            f"GradScaler(scale={self._scale._value}, growth_factor={self._growth_factor}, "
            f"backoff_factor={self._backoff_factor}, growth_interval={self._growth_interval})"
        )


def _skippable_step(optimizer: Any, found: Any, grads: Any, *args: Any, **kwargs: Any) -> Any:
    """``optimizer.step(grads)``, then every box it changed keeps its old value where
    ``found`` (a float32 flag) is set: the skip is chosen on device."""
    cells = [c for c in optimizer._jaxmod_cells_() if isinstance(c, Variable)]
    before = [(c, c._value) for c in cells]
    out = optimizer.step(grads, *args, **kwargs)
    after = [c for c in optimizer._jaxmod_cells_() if isinstance(c, Variable)]
    if [id(c) for c in after] != [id(c) for c in cells]:
        # The step re-laid the optimizer's state (a first step with gradients for only
        # some parameters): the old values do not fit the new boxes.
        raise RuntimeError(
            f"GradScaler.step: {type(optimizer).__name__}.step(grads) re-laid its state (its "
            "first step with gradients for only some of a group's parameters), so the step "
            "could not be made skippable. Pass gradients for every parameter (zeros for "
            "unused ones), or put the parameters without gradients in their own group."
        )
    skip = found > 0
    for c, old in before:
        new = c._value
        if new is not old:
            c._value = jax.tree_util.tree_map(lambda o, n: jnp.where(skip, o, n), old, new)
    return out
