"""Forward and backward hooks: the global registries, a module's hook methods, the hooked call.

torch's ``register_module_forward_hook`` and friends (global, shared by every module) and
``Module.register_forward_hook`` and friends (per module) with torch's ordering, ids,
``with_kwargs``/``always_call``/``prepend`` rules. Full backward hooks run through
``jax.custom_vjp`` identities around a module's inputs and outputs, so they see torch's
``grad_input``/``grad_output``.
"""

from __future__ import annotations

import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._core import state
from jaxmod._core.cells import to_array, unwrap
from jaxmod._tensor import base as _b
from jaxmod._tensor import tape_record as _tape_record
from jaxmod.nn.utils.hooks import RemovableHandle

__all__ = [
    "register_module_forward_pre_hook",
    "register_module_forward_hook",
    "register_module_full_backward_pre_hook",
    "register_module_full_backward_hook",
    "HooksMixin",
    "call_with_backward_hooks",
]

_bump_version = state.bump
_EMPTY: Mapping[Any, Any] = MappingProxyType({})

# Global hooks, shared by every module (torch.nn.modules.module.register_module_*).
_global_forward_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
_global_forward_hooks: OrderedDict[int, Callable] = OrderedDict()
_global_forward_hooks_always_called: OrderedDict[int, bool] = OrderedDict()
_global_forward_hooks_with_kwargs: OrderedDict[int, bool] = OrderedDict()
_global_backward_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
_global_backward_hooks: OrderedDict[int, Callable] = OrderedDict()


def register_module_forward_pre_hook(hook: Callable) -> RemovableHandle:
    """Register a forward pre-hook run before every module's ``forward``.

    ``hook(module, args)`` may return new args (a tuple, or a single value).
    """
    handle = RemovableHandle(_global_forward_pre_hooks)
    _global_forward_pre_hooks[handle.id] = hook
    _bump_version()
    return handle


def register_module_forward_hook(
    hook: Callable, *, with_kwargs: bool = False, always_call: bool = False
) -> RemovableHandle:
    """Register a forward hook run after every module's ``forward``.

    ``hook(module, args, output)`` (or ``hook(module, args, kwargs, output)`` with
    ``with_kwargs=True``) may return a replacement output.
    """
    handle = RemovableHandle(
        _global_forward_hooks,
        extra_dict=[_global_forward_hooks_always_called, _global_forward_hooks_with_kwargs],
    )
    _global_forward_hooks[handle.id] = hook
    if with_kwargs:
        _global_forward_hooks_with_kwargs[handle.id] = True
    if always_call:
        _global_forward_hooks_always_called[handle.id] = True
    _bump_version()
    return handle


def register_module_full_backward_pre_hook(hook: Callable) -> RemovableHandle:
    """Register a backward pre-hook for every module: ``hook(module, grad_output)``."""
    handle = RemovableHandle(_global_backward_pre_hooks)
    _global_backward_pre_hooks[handle.id] = hook
    _bump_version()
    return handle


def register_module_full_backward_hook(hook: Callable) -> RemovableHandle:
    """Register a backward hook for every module: ``hook(module, grad_input, grad_output)``."""
    handle = RemovableHandle(_global_backward_hooks)
    _global_backward_hooks[handle.id] = hook
    _bump_version()
    return handle


# The pending-copy lists of the load_state_dict calls in progress (innermost last): each
# module's _load_from_state_dict appends the copies it checked to the innermost one. Kept


# Forward (pre-)hooks that only observe: on their last eager call they returned None and
# left the call's tensors and the module's attributes as they were (they store what they
# see elsewhere: ``features[name] = out.detach()``). backward()'s replay of the forward
# does not call them again, as torch runs a forward hook once per forward; hooks that
# return or change something run in the replay too, so the gradients see their effect.
_OBSERVERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _replaying() -> bool:
    return _tape_record._S.replaying > 0


def _seen(module: Any, *parts: Any) -> tuple:
    """What a hook could change: the identities of the call's tensor values and of the
    module's attribute values."""
    leaves = jax.tree_util.tree_leaves(parts, is_leaf=lambda x: isinstance(x, _b.TensorBase))
    return (tuple(id(_b.unwrap(x)) for x in leaves), tuple(map(id, module.__dict__.values())))


def _note_observer(module: Any, hook_id: int, observer: bool) -> None:
    ids = _OBSERVERS.get(module)
    if observer:
        if ids is None:
            ids = _OBSERVERS[module] = set()
        ids.add(hook_id)
    elif ids is not None:
        ids.discard(hook_id)


class HooksMixin:
    """The hook methods of :class:`~jaxmod.nn.Module` (a mixin; Module is the only user)."""

    # Hook dicts are created on a module's first registration (``_hook_dict``); until
    # then these shared, read-only empties stand in, which keeps a module's ``__dict__``
    # small and its flattening and unflattening fast.
    _backward_pre_hooks: Mapping[int, Callable] = _EMPTY
    _backward_hooks: Mapping[int, Callable] = _EMPTY
    _is_full_backward_hook: bool | None = None
    _forward_hooks: Mapping[int, Callable] = _EMPTY
    _forward_hooks_with_kwargs: Mapping[int, bool] = _EMPTY
    _forward_hooks_always_called: Mapping[int, bool] = _EMPTY
    _forward_pre_hooks: Mapping[int, Callable] = _EMPTY
    _forward_pre_hooks_with_kwargs: Mapping[int, bool] = _EMPTY

    def _hook_dict(self, name: str) -> OrderedDict:
        """This module's own ordered dict ``name`` for hooks, created on first use."""
        d = self.__dict__.get(name)
        if d is None:
            d = self.__dict__[name] = OrderedDict()
        return d

    def _call_impl(self, args: tuple, kwargs: dict) -> Any:
        result = None
        called_always: set[int] = set()
        replaying = _replaying()
        observers = _OBSERVERS.get(self, ()) if replaying else None
        try:
            for hook_id, hook in (
                *_global_forward_pre_hooks.items(),
                *self._forward_pre_hooks.items(),
            ):
                if observers is not None and hook_id in observers:
                    continue  # an observer: it ran in the forward, not again in the replay
                seen = None if replaying else _seen(self, args, kwargs)
                if hook_id in self._forward_pre_hooks_with_kwargs:
                    out = hook(self, args, kwargs)
                    if out is not None:
                        if isinstance(out, tuple) and len(out) == 2:
                            args, kwargs = out
                        else:
                            raise RuntimeError(
                                "forward pre-hook must return None or a tuple of "
                                f"(new_args, new_kwargs), but got {out}."
                            )
                else:
                    out = hook(self, args)
                    if out is not None:
                        args = out if isinstance(out, tuple) else (out,)
                if seen is not None:
                    _note_observer(self, hook_id, out is None and seen == _seen(self, args, kwargs))
            if (
                self._backward_hooks
                or self._backward_pre_hooks
                or _global_backward_hooks
                or _global_backward_pre_hooks
            ):
                result = call_with_backward_hooks(self, args, kwargs)
            else:
                result = self.forward(*args, **kwargs)
            for hook_id, hook in (*_global_forward_hooks.items(), *self._forward_hooks.items()):
                if (
                    hook_id in self._forward_hooks_always_called
                    or hook_id in _global_forward_hooks_always_called
                ):
                    called_always.add(hook_id)
                if observers is not None and hook_id in observers:
                    continue
                seen = None if replaying else _seen(self, args, kwargs, result)
                if (
                    hook_id in self._forward_hooks_with_kwargs
                    or hook_id in _global_forward_hooks_with_kwargs
                ):
                    out = hook(self, args, kwargs, result)
                else:
                    out = hook(self, args, result)
                if out is not None:
                    result = out
                if seen is not None:
                    _note_observer(
                        self, hook_id, out is None and seen == _seen(self, args, kwargs, result)
                    )
            return result
        except Exception:
            for hook_id, hook in _global_forward_hooks.items():
                if hook_id in _global_forward_hooks_always_called and hook_id not in called_always:
                    try:
                        out = hook(self, args, result)
                        if out is not None:
                            result = out
                    except Exception as e:
                        warnings.warn(
                            "global module forward hook with ``always_call=True`` raised an "
                            "exception that was silenced as another error was raised in "
                            f"forward: {e}",
                            stacklevel=2,
                        )
            for hook_id, hook in self._forward_hooks.items():
                if hook_id in self._forward_hooks_always_called and hook_id not in called_always:
                    try:
                        if hook_id in self._forward_hooks_with_kwargs:
                            out = hook(self, args, kwargs, result)
                        else:
                            out = hook(self, args, result)
                        if out is not None:
                            result = out
                    except Exception as e:
                        warnings.warn(
                            "module forward hook with ``always_call=True`` raised an exception "
                            f"that was silenced as another error was raised in forward: {e}",
                            stacklevel=2,
                        )
            raise

    def register_forward_pre_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Run ``hook(module, args)`` (or ``hook(module, args, kwargs)``) before forward.

        It may return replacement args (or ``(args, kwargs)`` with ``with_kwargs``).
        """
        handle = RemovableHandle(
            self._hook_dict("_forward_pre_hooks"),
            extra_dict=self._hook_dict("_forward_pre_hooks_with_kwargs"),
        )
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        _bump_version()
        return handle

    def register_forward_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False,
        always_call: bool = False,
    ) -> RemovableHandle:  # fmt: skip
        """Run ``hook(module, args, output)`` after forward; it may replace the output.

        With ``always_call=True`` the hook runs even when forward raises.
        """
        handle = RemovableHandle(
            self._hook_dict("_forward_hooks"),
            extra_dict=[
                self._hook_dict("_forward_hooks_with_kwargs"),
                self._hook_dict("_forward_hooks_always_called"),
            ],
        )
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        _bump_version()
        return handle

    def register_full_backward_pre_hook(
        self, hook: Callable, prepend: bool = False
    ) -> RemovableHandle:
        """Run ``hook(module, grad_output)`` before the module's gradients are computed.

        It may return a replacement ``grad_output`` tuple of the same length.
        """
        handle = RemovableHandle(self._hook_dict("_backward_pre_hooks"))
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        _bump_version()
        return handle

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """Run ``hook(module, grad_input, grad_output)`` once input gradients are known.

        It may return a replacement ``grad_input`` tuple of the same length.
        """
        if self._is_full_backward_hook is False:
            raise RuntimeError(
                "Cannot use both regular backward hooks and full backward hooks on a single "
                "Module. Please use only one of them."
            )
        self.__dict__["_is_full_backward_hook"] = True
        handle = RemovableHandle(self._hook_dict("_backward_hooks"))
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        _bump_version()
        return handle


def _ad_tracer_kinds() -> tuple[type, ...]:
    """jax's JVP/linearize tracer classes (private: jax has no public way to ask whether a
    value is being differentiated). Where they have moved, importing jaxmod fails loudly
    rather than backward hooks silently never seeing input gradients."""
    try:
        from jax._src.interpreters import ad
    except ImportError as e:  # pragma: no cover - depends on the installed jax
        raise ImportError(f"jaxmod needs jax._src.interpreters.ad (jax {jax.__version__})") from e
    kinds = tuple(k for k in (getattr(ad, "JVPTracer", None), getattr(ad, "LinearizeTracer", None))
                  if k is not None)  # fmt: skip
    if not kinds:  # pragma: no cover
        raise ImportError(f"jax {jax.__version__} has no JVPTracer: jaxmod does not support it")
    return kinds


_AD_TRACERS = _ad_tracer_kinds()


def _perturbed(x: Any) -> bool:
    """Whether ``x`` is being differentiated (a JVP/linearize tracer of jax.grad)."""
    return isinstance(x, _AD_TRACERS)


def _tensors(grads: tuple) -> tuple:
    """Gradients as hooks receive them: Tensors (torch's), ``None`` kept."""
    return tuple(None if g is None else _b.new(g) for g in grads)


def _arrays(res: Any) -> tuple:
    """A hook's replacement gradients as a tuple of arrays (``None`` kept)."""
    res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
    return tuple(None if g is None else to_array(g) for g in res)


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
    pre_hooks = [*_global_backward_pre_hooks.values(), *module._backward_pre_hooks.values()]
    hooks = [*_global_backward_hooks.values(), *module._backward_hooks.values()]
    was_tensor = [_b.is_tensor(a) for a in args]  # Tensor inputs stay Tensors for forward
    args = tuple(_b.unwrap(a) if t else unwrap(a) for a, t in zip(args, was_tensor))
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
            res = hook(module, _tensors(grad_input), _tensors(grad_output))
            if res is not None:
                res = _arrays(res)
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
            res = hook(module, _tensors(grad_output))
            if res is not None:
                res = _arrays(res)
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
    args = tuple(_b.new(a) if t else a for a, t in zip(args, was_tensor))
    result = module.forward(*args, **kwargs)
    return through_outputs(result)
