"""``Module``: torch's ``nn.Module`` semantics over mutable JAX array boxes.

Registration, traversal (``_module_traversal.py``), modes, ``to()``
(``_module_convert.py``), hooks (``hooks.py``), ``state_dict`` (``_state_dict.py``) and
``repr`` follow ``torch/nn/modules/module.py`` (torch 2.13) behaviour for behaviour. What
differs is underneath: parameters and buffers are :class:`~jaxmod.nn.Variable` boxes around
immutable JAX arrays, and every Module is a JAX pytree (``jaxmod._core.graph``), so a whole
model can pass through ``jax.jit``, ``jax.grad`` or ``jax.tree_util``. A Module is a
stateful object of the kernel: its cells are its unique boxes and array attributes, its
static description its GraphDef.

Every change of structure (registering or replacing a submodule, parameter or buffer,
switching ``train``/``eval``, adding a hook, changing a plain attribute) bumps the
kernel's structure version; changing a box's *value* never does.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod import _autograd
from jaxmod._core import graph, state
from jaxmod._core.cells import is_value, to_array
from jaxmod._tensor import base as _tb
from jaxmod._tensor import tape as _tape
from jaxmod.nn import _pytree
from jaxmod.nn._module_convert import ConversionMixin
from jaxmod.nn._module_traversal import TraversalMixin
from jaxmod.nn._state_dict import StateDictMixin, _IncompatibleKeys
from jaxmod.nn.hooks import (
    HooksMixin,
    _global_backward_hooks,
    _global_backward_pre_hooks,
    _global_forward_hooks,
    _global_forward_pre_hooks,
    register_module_forward_hook,
    register_module_forward_pre_hook,
    register_module_full_backward_hook,
    register_module_full_backward_pre_hook,
)
from jaxmod.nn.parameter import Buffer, Parameter, Variable

__all__ = [
    "Module",
    "ShapeError",
    "register_module_forward_pre_hook",
    "register_module_forward_hook",
    "register_module_full_backward_pre_hook",
    "register_module_full_backward_hook",
]

_ctx = state.ctx
_bump_version = state.bump
structure_version = state.version
_grad_enabled = _autograd.is_grad_enabled
_IncompatibleKeys = _IncompatibleKeys


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
    if isinstance(obj, (jax.Array, jax.core.Tracer, Variable, _tb.TensorBase)):
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


_is_array = is_value


def _addindent(s: str, num_spaces: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    pad = " " * num_spaces
    return "\n".join([lines[0]] + [pad + line for line in lines[1:]])


class Module(HooksMixin, StateDictMixin, TraversalMixin, ConversionMixin):
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
    call_super_init: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _pytree.register(cls)

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

    def _records(self, args: tuple, kwargs: dict) -> bool:
        """Whether this outermost eager call records on the autograd tape: grad mode on,
        torch-style inputs, and a ``forward`` not decorated with ``@no_grad()``."""
        return _tape.module_wanted(args, kwargs) and _autograd.forward_grad_mode(type(self).forward)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        global _call_depth
        compiled = self.__dict__.get("_jaxmod_compiled")
        if compiled is not None and not _ctx.jit_depth and not _tape.is_replaying():
            if not _call_depth and self._records(args, kwargs):
                # the compiled forward runs; backward() replays the module's plain call
                return _tape.record_module(
                    self, args, kwargs, run=functools.partial(compiled, self)
                )
            return compiled(self, *args, **kwargs)
        if not _call_depth and self._records(args, kwargs):
            # backward hooks must see gradients with values: such a graph's backward is
            # differentiated eagerly, not compiled
            hooked = bool(_global_backward_hooks or _global_backward_pre_hooks) or any(
                m._backward_hooks or m._backward_pre_hooks for m in self.modules()
            )
            return _tape.record_module(self, args, kwargs, eager=hooked)
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
        return _typed(result, args, kwargs)

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
        if name == "_orig_mod" and "_jaxmod_compiled" in d:
            return self  # torch.compile(model)._orig_mod: the compiled module is the model
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
                old._value = value._value if isinstance(value, Variable) else to_array(value)
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

    # ------------------------------------------- lookup by path (walks: _module_traversal.py)
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

    # -------------------------------------------------------------------- modes
    # (dtype and device: ``to``, ``cpu``, ``half``... live in _module_convert.py)
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

    # --------------------------------------------------------------- the kernel
    def _jaxmod_cells_(self) -> list[Any]:
        return graph.graph_state(self)[0]

    def _jaxmod_static_(self) -> Any:
        return graph.graph_state(self)[1]


_ARRAY_TYPES = (type(jnp.zeros(())), jax.core.Tracer)


def _typed(result: Any, args: tuple, kwargs: dict) -> Any:
    """The type rule at every module boundary: Tensors out when a Tensor went in
    (``jaxmod.Tensor`` inputs, as torch programs give; a Parameter or Buffer passed to a
    module counts, as in torch a buffer is a tensor), plain arrays otherwise (jnp code
    and ``jax.grad`` see what they always saw), whatever the layers use inside."""
    tensors = _tb.torch_inputs(args, kwargs)
    t = type(result)
    if tensors:
        return result if t in _tb.TT else _tb.wrap(result)
    if isinstance(result, _ARRAY_TYPES) or result is None:
        return result
    if t in _tb.TT:
        return result._jx()
    return jax.tree_util.tree_map(_plain, result, is_leaf=_stops)


def _plain(x: Any) -> Any:
    return x._jx() if type(x) in _tb.TT else x


def _stops(x: Any) -> bool:
    """Leaves for the type rule's walk: Tensors, boxes and modules stay whole."""
    return type(x) in _tb.TT or isinstance(x, (Variable, Module))


_pytree.register(Module)
