"""``state_dict`` and ``load_state_dict``: torch's keys, order, hooks and messages, atomically.

Keys and order are torch's (each module's parameters, then its persistent buffers, then its
children's; a tied parameter under every name). Loading checks every key first and writes
nothing until all checks pass, so a failed load leaves the model unchanged.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import state
from jaxmod._core.cells import Variable, torch_to_numpy
from jaxmod.nn.utils.hooks import RemovableHandle

__all__ = ["StateDictMixin"]

_bump_version = state.bump
_EMPTY: Mapping[Any, Any] = MappingProxyType({})

_load_pending: list[list[tuple[Any, Any, Any]]] = []


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, " + (
            f"unexpected_keys={self.unexpected_keys})"
        )

    __str__ = __repr__


def _shape_str(shape: Any) -> str:
    return str(tuple(int(d) for d in shape))


class StateDictMixin:
    """The state-dict methods of :class:`~jaxmod.nn.Module` (a mixin; Module is the only user)."""

    _version: int = 1
    _state_dict_hooks: Mapping[int, Callable] = _EMPTY
    _state_dict_pre_hooks: Mapping[int, Callable] = _EMPTY
    _load_state_dict_pre_hooks: Mapping[int, Callable] = _EMPTY
    _load_state_dict_post_hooks: Mapping[int, Callable] = _EMPTY

    def get_extra_state(self) -> Any:
        """Extra state saved in ``state_dict`` under ``_extra_state`` (override to use)."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called."
        )

    def set_extra_state(self, state: Any) -> None:
        """Restore what :meth:`get_extra_state` returned (override to use)."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called."
        )

    def register_state_dict_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, prefix, keep_vars)`` runs before ``state_dict`` collects."""
        handle = RemovableHandle(self._hook_dict("_state_dict_pre_hooks"))
        self._state_dict_pre_hooks[handle.id] = hook
        _bump_version()
        return handle

    def register_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata)`` runs after; must return None."""
        hook._from_public_api = True  # type: ignore[attr-defined]
        handle = RemovableHandle(self._hook_dict("_state_dict_hooks"))
        self._state_dict_hooks[handle.id] = hook
        _bump_version()
        return handle

    def _register_state_dict_hook(self, hook: Callable) -> RemovableHandle:
        """Private torch API: like the post hook, but may return a replacement dict."""
        if getattr(hook, "_from_public_api", False):
            raise RuntimeError(
                "Cannot register the same function as the state dict post hook that was "
                "previously registered via register_state_dict_post_hook"
            )
        handle = RemovableHandle(self._hook_dict("_state_dict_hooks"))
        self._state_dict_hooks[handle.id] = hook
        _bump_version()
        return handle

    def register_load_state_dict_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing, unexpected,
        error_msgs)`` runs before this module's keys are loaded."""
        handle = RemovableHandle(self._hook_dict("_load_state_dict_pre_hooks"))
        self._load_state_dict_pre_hooks[handle.id] = functools.partial(hook, self)
        _bump_version()
        return handle

    def _register_load_state_dict_pre_hook(
        self, hook: Callable, with_module: bool = False
    ) -> RemovableHandle:
        handle = RemovableHandle(self._hook_dict("_load_state_dict_pre_hooks"))
        self._load_state_dict_pre_hooks[handle.id] = (
            functools.partial(hook, self) if with_module else hook
        )
        _bump_version()
        return handle

    def register_load_state_dict_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, incompatible_keys)`` runs after loading; may edit the key lists."""
        handle = RemovableHandle(self._hook_dict("_load_state_dict_post_hooks"))
        self._load_state_dict_post_hooks[handle.id] = hook
        _bump_version()
        return handle

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param._value
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else buf._value
        if type(self).get_extra_state is not StateDictMixin.get_extra_state:
            destination[prefix + "_extra_state"] = self.get_extra_state()

    def state_dict(
        self, *args: Any, destination: dict | None = None, prefix: str = "",
        keep_vars: bool = False,
    ) -> OrderedDict[str, Any]:  # fmt: skip
        """Return an ``OrderedDict`` of every parameter and persistent buffer, by name.

        Values are the (immutable) JAX arrays, or the boxes with ``keep_vars=True``.
        Keys and order are torch's: each module's parameters, then its buffers, then its
        children's; a tied parameter appears under every name that holds it.
        """
        if args:
            warnings.warn(
                "Positional args are being deprecated, use kwargs instead. Refer to "
                "https://pytorch.org/docs/main/generated/torch.nn.Module.html"
                "#torch.nn.Module.state_dict for details.",
                FutureWarning,
                stacklevel=2,
            )
            if destination is None:
                destination = args[0]
            if len(args) > 1 and prefix == "":
                prefix = args[1]
            if len(args) > 2 and keep_vars is False:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()  # type: ignore[attr-defined]
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(
                    destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars
                )
        for hook in self._state_dict_hooks.values():
            result = hook(self, destination, prefix, local_metadata)
            if getattr(hook, "_from_public_api", False):
                if result is not None:
                    raise RuntimeError("state_dict post-hook must return None")
            elif result is not None:
                destination = result
        return destination

    def _load_from_state_dict(
        self, state_dict: Mapping, prefix: str, local_metadata: dict, strict: bool,
        missing_keys: list, unexpected_keys: list, error_msgs: list,
    ) -> None:  # fmt: skip
        """Check this module's own keys and record the copies to make in ``_pending``.

        Nothing is written here: :meth:`load_state_dict` applies the recorded copies only
        once every key has been checked, so a failing load leaves the model unchanged.
        """
        for hook in self._load_state_dict_pre_hooks.values():
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                 error_msgs)  # fmt: skip
        pending = _load_pending[-1] if _load_pending else None
        assign = local_metadata.get("assign_to_params_buffers", False)
        local_state = {
            k: v
            for k, v in itertools.chain(
                self._parameters.items(),
                (
                    (k, b)
                    for k, b in self._buffers.items()
                    if k not in self._non_persistent_buffers_set
                ),  # fmt: skip
            )
            if v is not None
        }
        for name, box in local_state.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value = state_dict[key]
            if not (hasattr(value, "shape") and hasattr(value, "dtype")):
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected torch.Tensor or '
                    f"Tensor-like object from checkpoint but received {type(value)}"
                )
                continue
            try:
                new = _checkpoint_array(value)
            except Exception as ex:  # pragma: no cover - exotic inputs
                error_msgs.append(
                    f'While copying the parameter named "{key}", an exception occurred : {ex.args}.'
                )
                continue
            lazy = box._value is None
            if not lazy and len(box.shape) == 0 and tuple(new.shape) == (1,):
                new = new[0]
            if not lazy and tuple(new.shape) != tuple(box.shape):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{_shape_str(new.shape)} from checkpoint, the shape in current model is "
                    f"{_shape_str(box.shape)}."
                )
                continue
            if pending is not None:
                pending.append((box, new, assign))
        extra_key = prefix + "_extra_state"
        if type(self).set_extra_state is not StateDictMixin.set_extra_state:
            if extra_key in state_dict:
                if pending is not None:
                    pending.append((self, state_dict[extra_key], "extra"))
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            for key in state_dict.keys():
                if key.startswith(prefix) and key != extra_key:
                    head = key[len(prefix) :].split(".", 1)
                    if len(head) > 1:
                        if head[0] not in self._modules:
                            unexpected_keys.append(key)
                    elif head[0] not in local_state:
                        unexpected_keys.append(key)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        """Copy parameters and buffers from ``state_dict`` into this module.

        Values may be JAX arrays, numpy arrays, boxes or (when torch is installed) torch
        tensors. Keys, checks and error text follow torch; unlike torch, a load that
        raises changes nothing. Copies keep each parameter's dtype and placement; with
        ``assign=True`` the checkpoint's arrays (and dtypes) are taken as they are. Box
        identity is kept either way, so optimizers and tied weights stay connected.

        Returns:
            ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []
        pending: list[tuple[Any, Any, Any]] = []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        if metadata is not None:
            state_dict._metadata = metadata  # type: ignore[attr-defined]

        def load(module: Any, local: Mapping, prefix: str = "") -> None:
            meta = dict({} if metadata is None else metadata.get(prefix[:-1], {}))
            if assign:
                meta["assign_to_params_buffers"] = assign
            module._load_from_state_dict(local, prefix, meta, True, missing, unexpected, errors)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    load(
                        child,
                        {k: v for k, v in local.items() if k.startswith(child_prefix)},
                        child_prefix,
                    )
            keys = _IncompatibleKeys(missing, unexpected)
            for hook in module._load_state_dict_post_hooks.values():
                out = hook(module, keys)
                if out is not None:
                    raise AssertionError(
                        "Hooks registered with ``register_load_state_dict_post_hook`` are not "
                        "expected to return new values, if incompatible_keys need to be "
                        "modified, it should be done inplace."
                    )

        _load_pending.append(pending)
        try:
            load(self, state_dict)
        finally:
            _load_pending.pop()
        if strict:
            if unexpected:
                errors.insert(
                    0,
                    "Unexpected key(s) in state_dict: {}. ".format(
                        ", ".join(f'"{k}"' for k in unexpected)
                    ),
                )
            if missing:
                errors.insert(
                    0,
                    "Missing key(s) in state_dict: {}. ".format(
                        ", ".join(f'"{k}"' for k in missing)
                    ),
                )
        if errors:
            raise RuntimeError(
                "Error(s) in loading state_dict for {}:\n\t{}".format(
                    type(self).__name__, "\n\t".join(errors)
                )
            )
        _apply_pending(pending)
        return _IncompatibleKeys(missing, unexpected)


def _checkpoint_array(value: Any) -> Any:
    """A checkpoint value as an array ready to load (numpy stays numpy until placed)."""
    if isinstance(value, Variable):
        return value._value
    if type(value).__module__.startswith("torch"):
        return torch_to_numpy(value)
    if isinstance(value, (jax.Array, np.ndarray)):
        return value
    return np.asarray(value)


def _apply_pending(pending: list[tuple[Any, Any, Any]]) -> None:
    """Write checked checkpoint values into their boxes (all checks already passed)."""
    for target, new, mode in pending:
        if mode == "extra":
            target.set_extra_state(new)
        elif mode:  # assign: take the checkpoint's array and dtype as they are
            target._value = _fresh(jnp.asarray(new), new)
        else:
            old = target._value
            arr = jnp.asarray(new, dtype=old.dtype) if old is not None else jnp.asarray(new)
            # Keep the old array's placement, and whether it was committed to a device at
            # all: a committed copy of uncommitted state would make the next jitted step
            # compile again (jax.jit's cache tells the two apart).
            if getattr(old, "committed", False) and not isinstance(old, jax.core.Tracer):
                arr = jax.device_put(arr, old.sharding)
            target._value = _fresh(arr, new)


def _fresh(arr: Any, source: Any) -> Any:
    """Copy ``arr`` unless it is already a buffer of its own, as torch's ``copy_`` does.

    A model must not share buffers with another model's state_dict: jaxmod.jit donates
    state buffers, which would delete the other model's arrays too.
    """
    if isinstance(source, (jax.Array, Variable, np.ndarray)) or not isinstance(arr, jax.Array):
        # numpy arrays (e.g. torch tensors' .numpy() views) can be aliased by jnp.asarray
        # on CPU: copy, so later writes on either side never reach the other.
        return jnp.copy(arr)
    return arr
