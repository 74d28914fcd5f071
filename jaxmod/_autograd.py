"""Gradient mode (``no_grad``) and backward hooks on module calls.

JAX computes gradients functionally, so there is no tape to switch off. ``no_grad``
keeps torch code working: inside it, module outputs are wrapped in
``jax.lax.stop_gradient``, and in-place initialisation (``p.fill_``, ``nn.init``) works
as it always does.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]

F = TypeVar("F", bound=Callable[..., Any])

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether module outputs carry gradients (False inside ``no_grad``)."""
    return getattr(_state, "enabled", True)


class set_grad_enabled:
    """Context manager and decorator that sets the gradient mode, like torch's."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _state.enabled = self.mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        _state.enabled = self.prev

    def __call__(self, fn: F) -> F:
        _state.enabled = self.prev
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = is_grad_enabled()
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper  # type: ignore[return-value]


class _GradMode:
    mode: bool

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _state.enabled = self.mode

    def __exit__(self, *exc: Any) -> None:
        _state.enabled = self.prev

    def __call__(self, fn: F) -> F:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = is_grad_enabled()
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Disable gradients: ``with jaxmod.no_grad():`` or ``@jaxmod.no_grad()``.

    Module outputs computed inside are cut from autodiff with ``stop_gradient``.
    """

    mode = False


class enable_grad(_GradMode):
    """Re-enable gradients inside a ``no_grad`` block."""

    mode = True


def _perturbed(x: Any) -> bool:
    """Whether ``x`` is being differentiated (a JVP/linearize tracer of jax.grad)."""
    from jax._src.interpreters import ad

    kinds = tuple(k for k in (getattr(ad, "JVPTracer", None), getattr(ad, "LinearizeTracer", None))
                  if k is not None)  # fmt: skip
    return isinstance(x, kinds)


def call_with_backward_hooks(module: Any, args: tuple, kwargs: dict) -> Any:
    """Run ``module.forward`` so its full backward (pre-)hooks see torch's gradients.

    The array arguments and the outputs pass through identity functions with a
    ``jax.custom_vjp``: the outputs' backward rule receives ``grad_output`` and runs the
    backward pre-hooks (which may replace it); the inputs' backward rule receives
    ``grad_input`` and runs the backward hooks (which may replace it). Under jit the
    hooks run while the backward pass is traced; use ``jax.debug.callback`` inside a
    hook to see runtime values. Gradients with respect to parameters are not routed
    through the hooks, as in torch's full backward hooks.
    """
    import jax
    import jax.numpy as jnp

    from jaxmod.nn import module as _m
    from jaxmod.nn.parameter import _unwrap

    pre_hooks = [*_m._global_backward_pre_hooks.values(), *module._backward_pre_hooks.values()]
    hooks = [*_m._global_backward_hooks.values(), *module._backward_hooks.values()]
    args = tuple(_unwrap(a) for a in args)
    idx = [
        i for i, a in enumerate(args)
        if isinstance(a, (jax.Array, jax.core.Tracer)) and jnp.issubdtype(a.dtype, jnp.inexact)
    ]  # fmt: skip
    inputs_tracked = any(_perturbed(args[i]) for i in idx)
    n_in = len(args)
    state: dict[str, Any] = {}

    def fire_full(grad_input: tuple) -> tuple:
        grad_output = state.get("grad_output", ())
        for hook in hooks:
            res = hook(module, grad_input, grad_output)
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grad_input):
                    raise RuntimeError(
                        "Backward hook returned an invalid number of grad_input, got "
                        f"{len(res)}, but expected {len(grad_input)}"
                    )
                grad_input = res
        return grad_input

    @jax.custom_vjp
    def through_inputs(xs: tuple) -> tuple:
        return xs

    def in_fwd(xs: tuple) -> tuple:
        return xs, tuple(jnp.zeros_like(x) for x in xs)

    def in_bwd(zeros: tuple, g: tuple) -> tuple:
        full = [None] * n_in
        for k, i in enumerate(idx):
            full[i] = g[k]
        new = fire_full(tuple(full))
        return (tuple(z if new[i] is None else new[i] for z, i in zip(zeros, idx)),)

    through_inputs.defvjp(in_fwd, in_bwd)

    @jax.custom_vjp
    def through_outputs(ys: Any) -> Any:
        return ys

    def out_fwd(ys: Any) -> Any:
        return ys, jax.tree_util.tree_map(jnp.zeros_like, ys)

    def out_bwd(zeros: Any, g: Any) -> Any:
        leaves, tdef = jax.tree_util.tree_flatten(g)
        grad_output = tuple(leaves)
        for hook in pre_hooks:
            res = hook(module, grad_output)
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grad_output):
                    raise RuntimeError(
                        "Backward pre hook returned an invalid number of grad_output, got "
                        f"{len(res)}, but expected {len(grad_output)}"
                    )
                grad_output = res
        state["grad_output"] = grad_output
        if hooks and not inputs_tracked:
            fire_full((None,) * n_in)
        zl = jax.tree_util.tree_leaves(zeros)
        out = [z if v is None else v for z, v in zip(zl, grad_output)]
        return (jax.tree_util.tree_unflatten(tdef, out),)

    through_outputs.defvjp(out_fwd, out_bwd)

    if idx and inputs_tracked:
        xs = through_inputs(tuple(args[i] for i in idx))
        args = list(args)
        for k, i in enumerate(idx):
            args[i] = xs[k]
        args = tuple(args)
    result = module.forward(*args, **kwargs)
    return through_outputs(result)
