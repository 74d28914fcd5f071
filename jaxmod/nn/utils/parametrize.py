"""``torch.nn.utils.parametrize``: a tensor of a module computed by modules from originals.

``register_parametrization(module, "weight", P())`` moves ``module.weight`` into
``module.parametrizations.weight.original`` (or ``original0``, ``original1``... when
``P.right_inverse`` returns several tensors) and makes ``module.weight`` a property that
returns ``P()(original)`` on every read; assigning ``module.weight = X`` runs the
``right_inverse`` chain and writes the originals. As in torch the module's class becomes a
generated subclass ``Parametrized<Class>`` holding that property, so the ``repr`` and
``state_dict`` keys (``parametrizations.weight.original``) are torch's.

Under jaxmod: the parametrized value is never stored on the module (each read computes it
from the current originals, Parameters or Buffers that ``jaxmod.jit`` lifts), so it cannot
go stale or leak a tracer. Inside a parametrization the originals arrive as Tensors and
the property returns a Tensor. :func:`cached` caches values only outside jaxmod's
transforms: inside a ``jaxmod.jit`` trace or a ``jaxmod.grad`` the value is always
recomputed (a cached concrete value there would cut the gradient, a cached tracer would
leak out of the trace).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import jax

from jaxmod._core import state
from jaxmod._core.cells import Variable, is_value, to_array
from jaxmod._tensor import base as _tb
from jaxmod.nn.containers import ModuleDict, ModuleList
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Parameter

__all__ = [
    "ParametrizationList",
    "register_parametrization",
    "remove_parametrizations",
    "is_parametrized",
    "cached",
    "type_before_parametrizations",
]

_cache_enabled = 0
_cache: dict[tuple[int, str], Any] = {}


@contextmanager
def cached() -> Iterator[None]:
    """Within this context, each parametrized tensor is computed once (on first read).

    Only eager reads are cached: inside ``jaxmod.jit`` or ``jaxmod.grad`` every read
    recomputes (the value depends on the traced originals there).
    """
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


def _tensor(x: Any) -> Any:
    """``x`` (a box, array or Tensor) as a Tensor of its current value."""
    if isinstance(x, Variable):
        return _tb.wrap(x._jx())
    return x if type(x) in _tb.TT else _tb.wrap(to_array(x))


def _is_tensor(x: Any) -> bool:
    return isinstance(x, Variable) or is_value(x)


def _write(box: Variable, value: Any) -> None:
    """Store ``value`` in ``box`` in place, without gradient (torch's ``set_`` under no_grad)."""
    box._value = jax.lax.stop_gradient(to_array(value))


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, in order, and the original tensor(s).

    ``self()`` computes the parametrized tensor; :meth:`right_inverse` writes originals
    from a value of it.
    """

    def __init__(self, modules: Sequence[Module], original: Any, unsafe: bool = False) -> None:
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        shape, dtype = tuple(original.shape), original.dtype
        new = _tensor(original)
        for module in reversed(list(self)):
            if hasattr(module, "right_inverse"):
                try:
                    new = module.right_inverse(new)
                except NotImplementedError:
                    pass
        if _is_tensor(new):
            self.is_tensor = True
            self.ntensors = 1
            if not unsafe and new.dtype != dtype:
                raise ValueError(
                    "When `right_inverse` outputs one tensor, it may not change the dtype.\n"
                    f"original.dtype: {dtype}\nright_inverse(original).dtype: {new.dtype}"
                )
            _write(original, new)
            if isinstance(original, Parameter):
                self.register_parameter("original", original)
            else:
                self.register_buffer("original", original)
        else:
            if not isinstance(new, Sequence) or not all(_is_tensor(t) for t in new):
                raise ValueError(
                    "'right_inverse' must return a Tensor or a Sequence of tensors (list, "
                    f"tuple...). Got {type(new).__name__}"
                )
            self.is_tensor = False
            self.ntensors = len(new)
            for i, t in enumerate(new):
                arr = jax.lax.stop_gradient(to_array(t))
                if isinstance(original, Parameter):
                    self.register_parameter(f"original{i}", Parameter(arr, original.requires_grad))
                else:
                    self.register_buffer(f"original{i}", arr)
        if not unsafe:
            z = self()
            if not _is_tensor(z):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if z.dtype != dtype:
                raise ValueError(
                    "Registering a parametrization may not change the dtype of the tensor, "
                    "unless `unsafe` flag is enabled.\n"
                    f"unparametrized dtype: {dtype}\nparametrized dtype: {z.dtype}"
                )
            if tuple(z.shape) != shape:
                raise ValueError(
                    "Registering a parametrization may not change the shape of the tensor, "
                    "unless `unsafe` flag is enabled.\n"
                    f"unparametrized shape: {shape}\nparametrized shape: {tuple(z.shape)}"
                )

    def _originals(self) -> list[Variable]:
        if self.is_tensor:
            return [self.original]
        return [getattr(self, f"original{i}") for i in range(self.ntensors)]

    def right_inverse(self, value: Any) -> None:
        """Write the originals so that ``self()`` gives ``value`` (no gradient)."""
        value = _tensor(value)
        for module in reversed(list(self)):
            if not hasattr(module, "right_inverse"):
                raise RuntimeError(
                    f"parametrization {type(module).__name__} does not implement right_inverse."
                )
            value = module.right_inverse(value)
        if self.is_tensor:
            if not _is_tensor(value):
                raise ValueError(
                    f"`right_inverse` should return a tensor. Got {type(value).__name__}"
                )
            values = [value]
        else:
            if not isinstance(value, Sequence):
                raise ValueError(
                    "'right_inverse' must return a sequence of tensors. "
                    f"Got {type(value).__name__}."
                )
            if len(value) != self.ntensors:
                raise ValueError(
                    "'right_inverse' must return a sequence of tensors of length "
                    f"{self.ntensors}. Got a sequence of length {len(value)}."
                )
            values = list(value)
        for i, (box, t) in enumerate(zip(self._originals(), values)):
            name = "original" if self.is_tensor else f"original{i}"
            if not _is_tensor(t):
                raise ValueError(
                    f"`right_inverse` must return a sequence of tensors. Got element {i} "
                    f"of type {type(t).__name__}"
                )
            if t.dtype != box.dtype:
                raise ValueError(
                    f"The tensor returned by `right_inverse` has dtype {t.dtype} "
                    f"while `{name}` has dtype {box.dtype}"
                )
            if tuple(t.shape) != tuple(box.shape):
                raise ValueError(
                    f"The tensor returned by `right_inverse` has shape {tuple(t.shape)} "
                    f"while `{name}` has shape {tuple(box.shape)}"
                )
            _write(box, t)

    def forward(self) -> Any:
        modules = list(self)
        x = modules[0](*[_tensor(b) for b in self._originals()])
        for module in modules[1:]:
            x = module(_tensor(x))
        return _tensor(x)


def _read_parametrized(module: Module, name: str) -> Any:
    plist = module.parametrizations[name]
    ctx = state.ctx
    if _cache_enabled and not (ctx.lift_depth or ctx.jit_depth):
        key = (id(module), name)
        t = _cache.get(key)
        if t is None:
            t = _cache[key] = _tensor(plist())
        return t
    return _tensor(plist())


def _inject_property(module: Module, name: str) -> None:
    def get(self: Module) -> Any:
        return _read_parametrized(self, name)

    def put(self: Module, value: Any) -> None:
        self.parametrizations[name].right_inverse(value)

    setattr(type(module), name, property(get, put))


def _getstate(self: Module) -> Any:
    raise RuntimeError(
        "Serialization of parametrized modules is only supported through state_dict(). "
        "See: https://pytorch.org/tutorials/beginner/saving_loading_models.html"
        "#saving-loading-a-general-checkpoint-for-inference-and-or-resuming-training"
    )


def _deepcopy(self: Module, memo: dict) -> Module:
    """A copy with its own generated class (removing a parametrization from the copy
    must not remove the original's property)."""
    found = memo.get(id(self))
    if found is not None:
        return found
    cls = type(self)
    own = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
    replica = object.__new__(own)
    memo[id(self)] = replica
    replica.__dict__.update(copy.deepcopy(self.__dict__, memo))
    state.bump()
    return replica


def _inject_new_class(module: Module) -> None:
    base = type(module)

    def __setattr__(self: Module, name: str, value: Any) -> None:
        plists = self.__dict__["_modules"].get("parametrizations")
        if (
            plists is not None
            and name in plists._modules
            and not isinstance(value, (Parameter, Module))
        ):
            plists[name].right_inverse(value)  # a value change, not a structure change
            return
        base.__setattr__(self, name, value)

    cls = type(
        f"Parametrized{base.__name__}",
        (base,),
        {
            "__setattr__": __setattr__,
            "__getstate__": _getstate,
            "__deepcopy__": _deepcopy,
            "__module__": __name__,
        },
    )
    module.__class__ = cls


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has a parametrization (on ``tensor_name`` if given)."""
    plists = module.__dict__.get("_modules", {}).get("parametrizations")
    if plists is None or not isinstance(plists, ModuleDict):
        return False
    if tensor_name is None:
        return len(plists) > 0
    return tensor_name in plists


def type_before_parametrizations(module: Module) -> type:
    """The class of ``module`` before any parametrization was registered."""
    return type(module).__bases__[0] if is_parametrized(module) else type(module)


def _check_appended(module: Module, name: str, p: Module) -> None:
    y = getattr(module, name)
    x = p(y)
    if not _is_tensor(x):
        raise ValueError(f"A parametrization must return a tensor. Got {type(x).__name__}.")
    for what, a, b in (("dtype", y.dtype, x.dtype), ("shape", tuple(y.shape), tuple(x.shape))):
        if a != b:
            raise ValueError(
                f"Registering a parametrization may not change the {what} of the tensor, "
                "unless the `unsafe` flag is enabled.\n"
                f"module.{name}.{what}: {a}\nparametrization(module.{name}).{what}: {b}"
            )
    if hasattr(p, "right_inverse"):
        try:
            z = p.right_inverse(x)
        except NotImplementedError:
            return
        if not _is_tensor(z):
            raise ValueError(
                f"parametrization.right_inverse must return a tensor. Got: {type(z).__name__}"
            )
        for what, a, b in (("dtype", y.dtype, z.dtype), ("shape", tuple(y.shape), tuple(z.shape))):
            if a != b:
                raise ValueError(
                    f"The tensor returned by parametrization.right_inverse must have the same "
                    f"{what} as module.{name}, unless the `unsafe` flag is enabled.\n"
                    f"module.{name}.{what}: {a}\nreturned {what}: {b}"
                )


def register_parametrization(
    module: Module, tensor_name: str, parametrization: Module, *, unsafe: bool = False
) -> Module:
    """Make ``module.<tensor_name>`` the output of ``parametrization`` on its original.

    A second registration on the same tensor appends ``parametrization`` after the
    first ones (applied to their output). Returns ``module``.
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            _check_appended(module, tensor_name, parametrization)
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        if original is None:
            raise ValueError(f"Module '{module}' has '{tensor_name}' set to None")
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
    else:
        raise ValueError(
            f"Module '{module}' does not have a parameter, a buffer, or a parametrized "
            f"element with name '{tensor_name}'"
        )
    return module


def remove_parametrizations(
    module: Module, tensor_name: str, leave_parametrized: bool = True
) -> Module:
    """Undo the parametrizations of ``module.<tensor_name>``.

    With ``leave_parametrized`` the tensor keeps its current (parametrized) value,
    otherwise it gets its original back. When the original is one tensor, the same
    Parameter/Buffer object returns to the module (optimizers holding it keep working).
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            t = getattr(module, tensor_name)
            if t.dtype != original.dtype or tuple(t.shape) != tuple(original.shape):
                raise ValueError(
                    f"cannot leave '{tensor_name}' parametrized: its parametrized value has "
                    f"dtype {t.dtype} and shape {tuple(t.shape)}, its original dtype "
                    f"{original.dtype} and shape {tuple(original.shape)}"
                )
            _write(original, t)
    else:
        if not leave_parametrized:
            raise ValueError(
                "Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                "that is parametrized in terms of a sequence of tensors."
            )
        t = jax.lax.stop_gradient(to_array(getattr(module, tensor_name)))
        first = plist.original0
        trainable = isinstance(first, Parameter) and first.requires_grad
        original = Parameter(t) if trainable else t
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    if isinstance(original, Parameter):
        module.register_parameter(tensor_name, original)
    else:
        module.register_buffer(tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type(module).__bases__[0]
    state.bump()
    return module
