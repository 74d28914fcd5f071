"""``Module``: torch's ``nn.Module`` semantics over mutable JAX array boxes.

Registration, traversal, ``state_dict``, hooks and ``repr`` follow
``torch/nn/modules/module.py`` (torch 2.13) behaviour for behaviour. What differs is
underneath: parameters and buffers are :class:`~jaxmod.nn.Variable` boxes around
immutable JAX arrays, and every Module is a JAX pytree (see ``_graph.py``), so a whole
model can be passed through ``jax.jit``, ``jax.grad`` or ``jax.tree_util``.

Every change of structure (registering or replacing a submodule, parameter or buffer,
switching ``train``/``eval``, adding a hook, changing a plain attribute) bumps one global
version counter; compiled functions and cached flattenings compare it to know when the
structure they saw is still current. Changing a box's *value* never bumps it.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod import _autograd
from jaxmod.nn import parameter as _parameter
from jaxmod.nn.parameter import Buffer, Parameter, Variable, _to_array
from jaxmod.nn.utils.hooks import RemovableHandle

__all__ = [
    "Module",
    "register_module_forward_pre_hook",
    "register_module_forward_hook",
    "register_module_full_backward_pre_hook",
    "register_module_full_backward_hook",
]

_version = 0


def _bump_version() -> None:
    """Record a structural change somewhere in the module graph."""
    global _version
    _version += 1


def structure_version() -> int:
    """The global structure version (increases on every structural change)."""
    return _version


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
# out of local_metadata so that load hooks see exactly torch's metadata.
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


_call_depth = 0


class ShapeError(RuntimeError, ValueError):
    """An input of the wrong shape for a layer (catchable as torch's RuntimeError too)."""


def _note_module(e: BaseException, module: Module, outermost: bool) -> None:
    """Record the chain of module calls an exception passed through; name the path.

    The innermost module is kept as ``e._jaxmod_module`` (jaxmod.jit reports it); at the
    outermost call a note such as ``raised in module 'features.3' (Conv2d)`` is added.
    """
    try:
        trail = e.__dict__.setdefault("_jaxmod_trail", [])
    except (AttributeError, TypeError):
        return
    trail.append(module)
    if getattr(e, "_jaxmod_module", None) is None:
        e._jaxmod_module = trail[0]  # type: ignore[attr-defined]
    if not outermost or len(trail) < 2:
        return
    names = []
    for parent, child in zip(reversed(trail), reversed(trail[:-1])):
        name = next((n for n, m in parent.named_modules() if m is child and n), None)
        if name is None:
            return
        names.append(name)
    path = ".".join(names)
    e.add_note(f"jaxmod: raised in module '{path}' ({type(trail[0]).__name__})")


def _typename(obj: Any) -> str:
    """torch.typename-style name of an object's type, for error messages.

    torch names every tensor, Parameter and Buffer included, by its tensor type
    (``torch.FloatTensor``); jaxmod names arrays and boxes alike ``jax.Array``.
    """
    if isinstance(obj, (jax.Array, jax.core.Tracer, Variable)):
        return "jax.Array"
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, jax.core.Tracer))


def _addindent(s: str, num_spaces: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    pad = " " * num_spaces
    return "\n".join([lines[0]] + [pad + line for line in lines[1:]])


def _shape_str(shape: Any) -> str:
    return str(tuple(int(d) for d in shape))


_grad_enabled = _autograd.is_grad_enabled


_EMPTY: Mapping[Any, Any] = MappingProxyType({})


class Module:
    """Base class for every layer and model, with ``torch.nn.Module``'s semantics.

    Subclass it, create submodules, :class:`Parameter` s and :class:`Buffer` s in
    ``__init__`` after calling ``super().__init__()``, and write ``forward``::

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden = nn.Linear(20, 256)
                self.out = nn.Linear(256, 10)

            def forward(self, x):
                return self.out(jax.nn.relu(self.hidden(x)))

    Every subclass is registered as a JAX pytree automatically: its leaves are the
    arrays of its unique parameters, buffers and plain array attributes, its static
    part the classes, names, ``training`` flags and other attributes.
    """

    training: bool
    _version: int = 1
    call_super_init: bool = False
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
    _state_dict_hooks: Mapping[int, Callable] = _EMPTY
    _state_dict_pre_hooks: Mapping[int, Callable] = _EMPTY
    _load_state_dict_pre_hooks: Mapping[int, Callable] = _EMPTY
    _load_state_dict_post_hooks: Mapping[int, Callable] = _EMPTY

    def _hook_dict(self, name: str) -> OrderedDict:
        """This module's own ordered dict ``name`` for hooks, created on first use."""
        d = self.__dict__.get(name)
        if d is None:
            d = self.__dict__[name] = OrderedDict()
        return d

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from jaxmod.nn import _graph

        _graph.register(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            name = next(iter(kwargs), None)
            raise TypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument '{name}'"
                if name
                else f"{type(self).__name__}.__init__() takes 1 positional argument but "
                f"{len(args) + 1} were given"
            )
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = {}
        _bump_version()

    # ------------------------------------------------------------------ forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Define the computation; subclasses override this."""
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self.__dict__.get("_jaxmod_compiled")
        if compiled is not None and not _parameter._jit_depth:
            return compiled(self, *args, **kwargs)
        global _call_depth
        _call_depth += 1
        try:
            if (
                self._forward_pre_hooks
                or self._forward_hooks
                or self._backward_hooks
                or self._backward_pre_hooks
                or _global_forward_pre_hooks
                or _global_forward_hooks
                or _global_backward_hooks
                or _global_backward_pre_hooks
            ):
                result = self._call_impl(args, kwargs)
            else:
                result = self.forward(*args, **kwargs)
        except Exception as e:
            _note_module(e, self, _call_depth == 1)
            raise
        finally:
            _call_depth -= 1
        if not _grad_enabled():
            result = jax.tree_util.tree_map(jax.lax.stop_gradient, result)
        return result

    def _call_impl(self, args: tuple, kwargs: dict) -> Any:
        result = None
        called_always: set[int] = set()
        try:
            for hook_id, hook in (
                *_global_forward_pre_hooks.items(),
                *self._forward_pre_hooks.items(),
            ):
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
            if (
                self._backward_hooks
                or self._backward_pre_hooks
                or _global_backward_hooks
                or _global_backward_pre_hooks
            ):
                from jaxmod._autograd import call_with_backward_hooks

                result = call_with_backward_hooks(self, args, kwargs)
            else:
                result = self.forward(*args, **kwargs)
            for hook_id, hook in (*_global_forward_hooks.items(), *self._forward_hooks.items()):
                if (
                    hook_id in self._forward_hooks_always_called
                    or hook_id in _global_forward_hooks_always_called
                ):
                    called_always.add(hook_id)
                if (
                    hook_id in self._forward_hooks_with_kwargs
                    or hook_id in _global_forward_hooks_with_kwargs
                ):
                    out = hook(self, args, kwargs, result)
                else:
                    out = hook(self, args, result)
                if out is not None:
                    result = out
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

    # ------------------------------------------------------------- registration
    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add a buffer (state that is not trained, e.g. running statistics).

        Args:
            name: attribute name.
            tensor: an array (or ``None``); it is stored in a :class:`Buffer` box.
            persistent: whether it is part of ``state_dict``.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"buffer name should be a string. Got {_typename(name)}")
        if "." in name:
            raise KeyError('buffer name can\'t contain "."')
        if name == "":
            raise KeyError('buffer name can\'t be empty string ""')
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not (_is_array(tensor) or isinstance(tensor, Variable)):
            if not type(tensor).__module__.startswith("torch"):
                raise TypeError(
                    f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                    "(torch Tensor or None required)"
                )
        if tensor is None:
            box = None
        elif isinstance(tensor, Buffer):
            box = tensor
        elif isinstance(tensor, Variable):
            box = Buffer(tensor._value, persistent=persistent)
        else:
            box = Buffer(tensor, persistent=persistent)
        self._buffers[name] = box
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)
        _bump_version()

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter to the module (``None`` registers an absent parameter)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"parameter name should be a string. Got {_typename(name)}")
        if "." in name:
            raise KeyError('parameter name can\'t contain "."')
        if name == "":
            raise KeyError('parameter name can\'t be empty string ""')
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                "(torch.nn.Parameter or None required)"
            )
        self._parameters[name] = param
        _bump_version()

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as attribute ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {_typename(name)}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('module name can\'t be empty string ""')
        self._modules[name] = module
        _bump_version()

    def register_module(self, name: str, module: Module | None) -> None:
        """Alias for :meth:`add_module`."""
        self.add_module(name, module)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        if "_parameters" in d:
            if name in d["_parameters"]:
                return d["_parameters"][name]
            if name in d["_buffers"]:
                return d["_buffers"][name]
            if name in d["_modules"]:
                return d["_modules"][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")

        def remove_from(*dicts: Any) -> None:
            for c in dicts:
                if name in c:
                    if isinstance(c, dict):
                        del c[name]
                    else:
                        c.discard(name)

        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            remove_from(d, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as parameter '{name}' "
                    "(torch.nn.Parameter or None expected)"
                )
            self.register_parameter(name, value)
            return
        modules = d.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            remove_from(d, self._parameters, self._buffers, self._non_persistent_buffers_set)
            modules[name] = value
            _bump_version()
            return
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as child module '{name}' "
                    "(torch.nn.Module or None expected)"
                )
            modules[name] = value
            _bump_version()
            return
        buffers = d.get("_buffers")
        if isinstance(value, Buffer) or (buffers is not None and name in buffers):
            if value is not None and not (_is_array(value) or isinstance(value, Variable)):
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as buffer '{name}' "
                    "(torch.nn.Buffer, torch.Tensor or None expected)"
                )
            old = buffers.get(name)
            if isinstance(value, Buffer) or old is None or value is None:
                persistent = (
                    value.persistent
                    if isinstance(value, Buffer)
                    else name not in self._non_persistent_buffers_set
                )
                self.register_buffer(name, value, persistent)
            else:
                # Assigning an array to an existing buffer updates its box in place: the
                # structure is unchanged, so compiled functions need not retrace, and a
                # value assigned inside jaxmod.jit is written back like any state.
                old._value = value._value if isinstance(value, Variable) else _to_array(value)
            return
        if _is_array(value) and name in d and _is_array(d[name]):
            d[name] = value  # a plain array attribute changes value, not structure
            return
        object.__setattr__(self, name, value)
        _bump_version()

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)
        _bump_version()

    def __dir__(self) -> list[str]:
        keys = [
            *dir(self.__class__),
            *self.__dict__,
            *self._parameters,
            *self._modules,
            *self._buffers,
        ]
        return sorted({k for k in keys if not k[0].isdigit()})

    def __getstate__(self) -> dict:
        return self.__dict__.copy()

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _get_name(self) -> str:
        return type(self).__name__

    # ---------------------------------------------------------------- traversal
    def _named_members(
        self, get_members: Callable, prefix: str = "", recurse: bool = True,
        remove_duplicate: bool = True,
    ) -> Iterator[tuple[str, Any]]:  # fmt: skip
        memo: set[int] = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for k, v in get_members(module):
                if v is None or id(v) in memo:
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                yield (module_prefix + ("." if module_prefix else "") + k), v

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(qualified_name, parameter)``, each shared parameter once by default."""
        return self._named_members(
            lambda m: m._parameters.items(), prefix, recurse, remove_duplicate
        )

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Yield every unique parameter."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Buffer]]:
        """Yield ``(qualified_name, buffer)`` for every buffer (persistent or not)."""
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Buffer]:
        """Yield every unique buffer."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(name, child)`` for each unique direct child."""
        memo: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in memo:
                memo.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        """Yield each unique direct child."""
        for _, m in self.named_children():
            yield m

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Yield ``(qualified_name, module)`` for this module and all below, pre-order."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """Yield this module and every unique module below it."""
        for _, m in self.named_modules():
            yield m

    def get_submodule(self, target: str) -> Module:
        """Return the submodule at dotted path ``target`` (``""`` is ``self``)."""
        if target == "":
            return self
        mod: Module = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(mod._get_name() + " has no attribute `" + item + "`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return mod

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Replace (or, unless ``strict``, add) the submodule at dotted path ``target``."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        atoms = target.split(".")
        if not isinstance(module, Module):
            raise ValueError("`" + "module" + f"` is not an nn.Module, found {type(module)}")
        parent = self if len(atoms) == 1 else self.get_submodule(".".join(atoms[:-1]))
        if strict and not hasattr(parent, atoms[-1]):
            raise AttributeError(parent._get_name() + " has no attribute `" + atoms[-1] + "`")
        if hasattr(parent, atoms[-1]):
            if not isinstance(getattr(parent, atoms[-1]), Module):
                raise AttributeError("`" + atoms[-1] + "` is not an nn.Module")
        setattr(parent, atoms[-1], module)

    def get_parameter(self, target: str) -> Parameter:
        """Return the parameter at dotted path ``target``."""
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(mod._get_name() + " has no attribute `" + name + "`")
        param = getattr(mod, name)
        if not isinstance(param, Parameter):
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str) -> Buffer:
        """Return the buffer at dotted path ``target``."""
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(mod._get_name() + " has no attribute `" + name + "`")
        buf = getattr(mod, name)
        if name not in mod._buffers:
            raise AttributeError("`" + name + "` is not a buffer")
        return buf

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

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every child (recursively) and then on ``self``; return ``self``."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all below; return ``self``."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter; return ``self``."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget stored gradients (``p.grad``); jaxmod gradients are returned, not stored."""
        for p in self.parameters():
            p.grad = None

    # --------------------------------------------------------- dtype and device
    def _apply_to_values(self, fn: Callable[[Any], Any]) -> Module:
        seen: set[int] = set()
        for m in self.modules():
            for box in itertools.chain(m._parameters.values(), m._buffers.values()):
                if box is not None and id(box) not in seen:
                    seen.add(id(box))
                    box._value = fn(box._value)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move and/or cast parameters and buffers in place, like ``torch.nn.Module.to``.

        Accepts a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"gpu"``, a
        ``jax.Device``), a ``jax.sharding.Sharding``, a floating dtype (only floating
        point arrays are cast, as in torch), or an array whose device and dtype to match.
        """
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
        for a in args:
            if isinstance(a, bool):
                continue
            if _is_array(a) or isinstance(a, Variable):
                arr = a._value if isinstance(a, Variable) else a
                device, dtype = getattr(arr, "sharding", None), arr.dtype
            elif _is_dtype(a):
                dtype = a
            else:
                device = a
        target = _resolve_device(device) if device is not None else None
        if dtype is not None:
            dtype = jnp.dtype(dtype)
            if not jnp.issubdtype(dtype, jnp.floating) and not jnp.issubdtype(
                dtype, jnp.complexfloating
            ):
                raise TypeError(
                    "nn.Module.to only accepts floating point or complex dtypes, but got "
                    f"desired dtype={dtype}"
                )
            _check_x64(dtype)

        def move(v: Any) -> Any:
            if dtype is not None and jnp.issubdtype(v.dtype, jnp.floating):
                v = v.astype(dtype)
            if target is not None:
                v = jax.device_put(v, target)
            return v

        if target is not None:
            _bump_version()  # compiled steps pin state shardings: re-plan with the new ones
        return self._apply_to_values(move)

    def cpu(self) -> Module:
        """Move every parameter and buffer to the first CPU device."""
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Module:
        """Move every parameter and buffer to a GPU (the first one by default)."""
        return self.to(f"cuda:{device or 0}")

    def float(self) -> Module:
        """Cast floating point parameters and buffers to float32."""
        return self.to(jnp.float32)

    def double(self) -> Module:
        """Cast floating point parameters and buffers to float64 (needs jax_enable_x64)."""
        return self.to(jnp.float64)

    def half(self) -> Module:
        """Cast floating point parameters and buffers to float16."""
        return self.to(jnp.float16)

    def bfloat16(self) -> Module:
        """Cast floating point parameters and buffers to bfloat16."""
        return self.to(jnp.bfloat16)

    def type(self, dst_type: Any) -> Module:
        """Cast all parameters and buffers to ``dst_type``."""
        return self._apply_to_values(lambda v: v.astype(dst_type))

    # --------------------------------------------------------------- state_dict
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
        if type(self).get_extra_state is not Module.get_extra_state:
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
        if type(self).set_extra_state is not Module.set_extra_state:
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

        def load(module: Module, local: Mapping, prefix: str = "") -> None:
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

    # --------------------------------------------------------------------- hooks
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

    # ---------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """Extra text shown inside this module's ``repr`` (override in layers)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            "(" + key + "): " + _addindent(repr(module), 2) for key, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    # ------------------------------------------------------------------ compile
    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Make ``self(...)`` run through :func:`jaxmod.jit`, in place (torch 2.x style)."""
        from jaxmod.transforms import _compile_module

        _compile_module(self, *args, **kwargs)


def _is_dtype(x: Any) -> bool:
    if isinstance(x, str):
        try:
            np.dtype(x)
        except TypeError:
            return False
        return x not in ("cpu", "cuda", "gpu", "tpu")
    try:
        jnp.dtype(x)
        return isinstance(x, (type, np.dtype)) or hasattr(x, "dtype")
    except TypeError:
        return False


def _check_x64(dtype: Any) -> None:
    if jnp.dtype(dtype).itemsize == 8 and not jax.config.jax_enable_x64:
        raise TypeError(
            f"{jnp.dtype(dtype)} needs 64-bit mode in JAX: call "
            "jax.config.update('jax_enable_x64', True) before creating arrays."
        )


def _resolve_device(device: Any) -> Any:
    """Map torch-style device specs (``"cuda:1"``) to a JAX device or sharding."""
    if isinstance(device, (jax.Device, jax.sharding.Sharding)):
        return device
    spec = str(device)
    kind, _, index = spec.partition(":")
    platform = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "tpu": "tpu", "rocm": "gpu"}.get(kind)
    if platform is None:
        raise ValueError(f"Expected a device such as 'cpu', 'cuda' or 'cuda:0', got {spec!r}")
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    if not devices:
        raise RuntimeError(
            f"No {kind.upper() if kind != 'cpu' else 'CPU'} device is available to JAX "
            f"(jax.devices() = {jax.devices()}). Install a jax build for that accelerator, or "
            "keep the model on 'cpu'."
        )
    i = int(index or 0)
    if i >= len(devices):
        raise RuntimeError(
            f"Device {spec!r} does not exist: JAX sees {len(devices)} {kind} devices"
        )
    return devices[i]


def _checkpoint_array(value: Any) -> Any:
    """A checkpoint value as an array ready to load (numpy stays numpy until placed)."""
    if isinstance(value, Variable):
        return value._value
    if type(value).__module__.startswith("torch"):
        from jaxmod.nn.parameter import _torch_to_numpy

        return _torch_to_numpy(value)
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
            sharding = getattr(old, "sharding", None)
            if sharding is not None and not isinstance(old, jax.core.Tracer):
                arr = jax.device_put(arr, sharding)
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


from jaxmod.nn import _graph  # noqa: E402  (needs Module defined; registers it as a pytree)

_graph.register(Module)
