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
from jaxmod._core.cells import Variable, torch_to_numpy, wrapper_of
from jaxmod._core.devices import resolve_device
from jaxmod.nn.parameter import _is_lazy
from jaxmod.nn.utils.hooks import RemovableHandle

__all__ = ["StateDictMixin"]

_bump_version = state.bump
_EMPTY: Mapping[Any, Any] = MappingProxyType({})


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
                destination[prefix + name] = param if keep_vars else _detached(param)
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else _detached(buf)
        if type(self).get_extra_state is not StateDictMixin.get_extra_state:
            destination[prefix + "_extra_state"] = self.get_extra_state()

    def state_dict(
        self, *args: Any, destination: dict | None = None, prefix: str = "",
        keep_vars: bool = False,
    ) -> OrderedDict[str, Any]:  # fmt: skip
        """Return an ``OrderedDict`` of every parameter and persistent buffer, by name.

        Values are detached tensors that share the boxes' values, as torch's do
        (``p.detach()``: ``.size()``, ``.shape``, ``.clone()`` work; an in-place op on one
        writes into the parameter, and after a training step it reads the new values --
        take ``copy.deepcopy(model.state_dict())`` for a snapshot), or the boxes with
        ``keep_vars=True``.
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
        """Check this module's own keys and record the writes to make in the current load.

        Nothing is written here: every value is checked and converted to the array it will
        become (dtype, placement, a buffer of its own), and :meth:`load_state_dict` writes
        them only once every key of every module has passed, so a failing load leaves the
        model unchanged.
        """
        for hook in self._load_state_dict_pre_hooks.values():
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                 error_msgs)  # fmt: skip
        load = _loads[-1] if _loads else None
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
            if value is box:  # torch: copy_ from the tensor itself, a no-op
                continue
            error, new = _prepare(self, key, box, value, assign, load)
            if error is not None:
                error_msgs.append(error)
            elif load is not None:
                load.writes.append((box, new))
        extra_key = prefix + "_extra_state"
        if type(self).set_extra_state is not StateDictMixin.set_extra_state:
            if extra_key in state_dict:
                if load is not None:
                    load.extras.append((self, extra_key, state_dict[extra_key]))
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
        tensors of booleans or numbers. Keys, checks and error text follow torch; unlike
        torch, a load that raises changes nothing: every value of every key is checked and
        converted (a string, object or datetime array, an array a jitted step has donated,
        a wrong shape is an error naming the key) before the first one is written. Copies
        keep each parameter's dtype and placement; with ``assign=True`` the checkpoint's
        arrays (and dtypes) are taken as they are. Box identity is kept either way, so
        optimizers and tied weights stay connected.

        Returns:
            ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []
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

        pending = _Load()
        _loads.append(pending)
        try:
            load(self, state_dict)
        finally:
            _loads.pop()
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
            if pending.deleted:
                errors.append(_DONATED_HINT.format(n=len(pending.deleted)))
            raise RuntimeError(
                "Error(s) in loading state_dict for {}:\n\t{}".format(
                    type(self).__name__, "\n\t".join(errors)
                )
            )
        pending.apply()
        for message in pending.warnings:
            warnings.warn(message, UserWarning, stacklevel=2)
        return _IncompatibleKeys(missing, unexpected)


_DONATED_HINT = (
    "The arrays of {n} key(s) were deleted before this load: a jitted step donated them "
    "(jaxmod.jit hands the state buffers it replaces to XLA, so the arrays of a "
    "model.state_dict() taken before a step are deleted by the step). Keep an independent "
    "copy instead: best = copy.deepcopy(model.state_dict()), or "
    "{{k: jnp.copy(v) for k, v in model.state_dict().items()}}."
)


def _detached(box: Any) -> Any:
    """A state_dict value: ``box.detach()`` (a detached view of the box), or the array of a
    box without tensor methods."""
    detach = getattr(box, "detach", None)
    return box._value if detach is None else detach()


class _Load:
    """The writes one ``load_state_dict`` call has checked, applied once all keys passed.

    ``writes`` holds ``(box, array)`` pairs whose arrays are final (converted, placed, in
    buffers of their own), so applying them cannot fail; ``extras`` the
    ``set_extra_state`` calls, made first (user code that may raise: then no array has
    been written yet).
    """

    __slots__ = ("writes", "extras", "deleted", "warnings")

    def __init__(self) -> None:
        self.writes: list[tuple[Any, Any]] = []
        self.extras: list[tuple[Any, str, Any]] = []
        self.deleted: list[str] = []
        self.warnings: list[str] = []

    def apply(self) -> None:
        for module, key, value in self.extras:
            try:
                module.set_extra_state(value)
            except Exception as e:
                e.add_note(
                    f"jaxmod: raised by set_extra_state for {key!r}; no parameter or buffer "
                    "was changed by this load_state_dict"
                )
                raise
        for box, new in self.writes:
            if _is_lazy(box):
                box.__class__ = box.cls_to_become  # materialised in place, as torch's materialize()
            box._value = new


_loads: list[_Load] = []
_NUMERIC_KINDS = "biufc"


def _torch_size(shape: Any) -> str:
    """A shape as torch prints it in load errors: ``torch.Size([4, 3])``."""
    return f"torch.Size([{', '.join(str(int(d)) for d in shape)}])"


def _source_array(value: Any) -> Any:
    """A checkpoint value as a JAX or numpy array (numpy stays numpy until placed)."""
    if isinstance(value, Variable):
        return value._value
    if wrapper_of(value) is not None:  # a jaxmod.Tensor
        return value._jaxmod_array_()
    if type(value).__module__.startswith("torch"):
        return torch_to_numpy(value)
    if isinstance(value, (jax.Array, np.ndarray, jax.core.Tracer)):
        return value
    return np.asarray(value)


def _is_numeric(dtype: Any) -> bool:
    """Booleans and numbers (bfloat16 and float8 included), not strings, objects, dates."""
    dtype = np.dtype(dtype)
    return dtype.kind in _NUMERIC_KINDS or (
        dtype.kind == "V" and dtype.fields is None and jnp.issubdtype(dtype, jnp.number)
    )


def _prepare(
    module: Any, key: str, box: Any, value: Any, assign: bool, load: _Load | None
) -> tuple[str | None, Any]:
    """``(error message, None)``, or ``(None, the array box will hold)`` for one key."""
    where = f'While copying the parameter named "{key}", '
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return (
            where + "expected torch.Tensor or Tensor-like object from checkpoint but "
            f"received {type(value)}",
            None,
        )
    try:
        src = _source_array(value)
    except Exception as ex:
        return f"{where}an exception occurred : {ex.args}.", None
    if src is None:
        return where + "the checkpoint's box holds no array.", None
    if isinstance(src, jax.Array) and not isinstance(src, jax.core.Tracer) and src.is_deleted():
        if load is not None:
            load.deleted.append(key)
        return (
            where + "the checkpoint's array has been deleted (donated to a jitted step).",
            None,
        )
    if not _is_numeric(src.dtype):
        if src.dtype == object and not isinstance(value, np.ndarray):
            return (
                where + "expected torch.Tensor or Tensor-like object from checkpoint but "
                f"received {type(value)}",
                None,
            )
        return (
            f"{where}expected an array of booleans or numbers from checkpoint but received "
            f"one of dtype {src.dtype}{_KIND_NOTE.get(src.dtype.kind, '')}; such values "
            "cannot be loaded into a parameter or buffer.",
            None,
        )
    lazy = _is_lazy(box)
    shape = tuple(src.shape)
    if not lazy and len(box.shape) == 0 and shape == (1,):
        src, shape = src.reshape(()), ()
    if not lazy and shape != tuple(box.shape):
        return (
            f"size mismatch for {key}: copying a param with shape {_torch_size(shape)} from "
            f"checkpoint, the shape in current model is {_torch_size(box.shape)}.",
            None,
        )
    try:
        return None, _converted(module, key, box, src, assign, lazy, load)
    except Exception as ex:
        return (
            f"{where}whose dimensions in the model are {_torch_size(box.shape)} and whose "
            f"dimensions in the checkpoint are {_torch_size(shape)}, an exception occurred "
            f": {ex.args}.",
            None,
        )


_KIND_NOTE = {
    "O": " (Python objects)",
    "U": " (strings)",
    "S": " (bytes)",
    "V": " (raw bytes)",
    "M": " (dates)",
    "m": " (time deltas)",
}


def _converted(
    module: Any, key: str, box: Any, src: Any, assign: bool, lazy: bool, load: _Load | None
) -> Any:
    """The array ``box`` will hold: in the box's dtype and placement (the checkpoint's with
    ``assign``; a lazy parameter's from its module), in a buffer of its own."""
    if assign:
        arr = jnp.asarray(src)
    else:
        if lazy:
            dtype = getattr(module, "_lazy_dtype", None) or box.dtype
            device = getattr(module, "_lazy_device", None)
            target = None if device is None else resolve_device(device)
        else:
            old = box._value
            dtype = old.dtype
            committed = getattr(old, "committed", False) and not isinstance(old, jax.core.Tracer)
            target = old.sharding if committed else None
        if jnp.iscomplexobj(src) and not jnp.issubdtype(dtype, jnp.complexfloating):
            if load is not None:  # torch's copy_ warns; warned once the load succeeds
                load.warnings.append(
                    f'While copying the parameter named "{key}": casting complex values '
                    "to real discards the imaginary part"
                )
            src = src.real
        arr = jnp.asarray(src, dtype=dtype)
        if target is not None:
            arr = jax.device_put(arr, target)
    # A model must not share buffers with another model or a state_dict (jaxmod.jit
    # donates state buffers, which would delete the other side's arrays too); a numpy
    # array (e.g. a torch tensor's .numpy() view) may be aliased by jnp.asarray on CPU.
    if arr is src or (isinstance(src, np.ndarray) and np.dtype(arr.dtype) == src.dtype):
        arr = jnp.copy(arr)
    return arr
