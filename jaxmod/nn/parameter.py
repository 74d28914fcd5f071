"""Mutable boxes around JAX arrays: :class:`Variable`, :class:`Parameter`, :class:`Buffer`.

A box is the unit of state in jaxmod. Module attributes return the box itself, so
torch idioms that mutate a tensor in place (``nn.init.kaiming_normal_(m.weight)``,
``p.data = x``, ``m.bias.zero_()``) work by replacing the array inside the box.

Boxes behave as arrays in math (operators, indexing, ``jnp`` functions): every box
class is registered as a pytree with a single leaf, which is what makes ``jnp.dot``,
``jax.nn.relu`` and ``jax.jit`` accept it (``__jax_array__`` alone is not enough on
jax >= 0.10). Box identity is what ties weights: two modules holding the same box
share one value everywhere, in ``state_dict``, in pytree flattening and under jit.
"""

from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Variable", "Parameter", "Buffer", "UninitializedParameter"]

# Depth of jaxmod.jit traces in progress. While it is non-zero, reading a box that still
# holds a concrete array means the box was not lifted as state: that read would bake a
# stale constant into compiled code, so it raises instead (see ``_unlifted_read``).
_jit_depth = 0
# Depth of jaxmod transforms (jit, grad, vmap, ...) that have swapped state into boxes:
# inside them a generator's key is lifted state even when it is a concrete array.
_lift_depth = 0
# Called as ``_describe(box) -> str`` to name an unlifted box; set by jaxmod.transforms.
_describe_unlifted = None


class NeedsLift(BaseException):
    """Raised while tracing under jaxmod.jit when a stateful object turns out to be needed.

    A BaseException, so that `except Exception` in user code does not swallow it.

    jaxmod.jit catches it, adds ``obj`` (if not None) to the lifted state, calls ``then``
    (if given; with concrete values back in every box) and traces again.
    """

    def __init__(self, obj: Any, then: Any = None) -> None:
        super().__init__(f"{obj!r} must be lifted as state" if obj is not None else "retrace")
        self.obj = obj
        self.then = then


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _trace_is_top_level() -> bool:
    """True when no JAX transformation (jit, grad, vmap, ...) is being traced."""
    try:
        from jax._src import core as _core

        return _core.trace_ctx.is_top_level()
    except Exception:  # pragma: no cover - private API moved
        return True


def _to_array(x: Any) -> Any:
    """Convert ``x`` (array, box, numpy, torch tensor, Python scalar) to a JAX array."""
    if isinstance(x, Variable):
        return x._value
    if isinstance(x, (jax.Array, jax.core.Tracer)):
        return x
    if type(x).__module__.startswith("torch"):
        x = _torch_to_numpy(x)
    if isinstance(x, (np.ndarray, np.generic, int, float, bool, complex)):
        return jnp.asarray(x)
    try:
        return jnp.asarray(x)  # nested lists of numbers, like torch.tensor
    except (TypeError, ValueError):
        return jax.tree_util.tree_map(_to_array, x)  # a pytree of arrays (optimizer state)


def _torch_to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as a numpy array, bfloat16 included, without copying through float."""
    import torch  # only reached when the caller already holds a torch tensor

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _read(box: Variable) -> Any:
    v = box._value
    if _jit_depth and not isinstance(v, jax.core.Tracer):
        _unlifted_read(box)
    return v


def _unlifted_read(box: Variable) -> None:
    where = _describe_unlifted(box) if _describe_unlifted is not None else None
    what = where or f"a {type(box).__name__} of shape {tuple(np.shape(box._value))}"
    raise RuntimeError(
        f"{what} was read inside jaxmod.jit but is not part of the compiled function's "
        "state, so its current value would be baked in as a constant and go stale. Pass the "
        "module (or optimizer) that owns it as an argument of the jitted function, or reach "
        "it through the function's closure or globals, so jaxmod.jit lifts it."
    )


def _unwrap(x: Any) -> Any:
    """The array inside a box (checked for lifting under jit), or ``x`` unchanged."""
    return _read(x) if isinstance(x, Variable) else x


_BOX_AUX: dict[type, tuple[str, ...]] = {}
_BOX_AUX_GET: dict[type, Any] = {}


def _box_aux(box: Variable) -> tuple[Any, ...]:
    """The static attributes of a box (e.g. ``requires_grad``), for pytree aux data."""
    return _BOX_AUX_GET[type(box)](box)


def _box_class(cls: type) -> type:
    """The class a flattened box of class ``cls`` is rebuilt as (a ``p.data`` view becomes
    a plain Variable holding the value)."""
    return Variable if cls is _DataView else cls


def _box_new(cls: type, aux: tuple[Any, ...], value: Any) -> Variable:
    """A new box of class ``cls`` holding ``value`` (any leaf, tracers included)."""
    new = object.__new__(_box_class(cls))
    new._value = value
    for n, v in zip(_BOX_AUX[cls], aux):
        object.__setattr__(new, n, v)
    return new


def _register_box(cls: type) -> None:
    """Register a box class as a pytree with one leaf (its value)."""
    skip = ("_value", "__weakref__", "_base", "_grad")
    names = tuple(
        n for c in reversed(cls.__mro__) for n in getattr(c, "__slots__", ()) if n not in skip
    )
    _BOX_AUX[cls] = names
    if not names:
        _BOX_AUX_GET[cls] = lambda box: ()
    elif len(names) == 1:
        get = operator.attrgetter(names[0])
        _BOX_AUX_GET[cls] = lambda box: (get(box),)
    else:
        _BOX_AUX_GET[cls] = operator.attrgetter(*names)

    def flatten(box: Variable) -> tuple[tuple[Any], tuple[Any, ...]]:
        return (box._value,), _box_aux(box)

    jax.tree_util.register_pytree_node(
        cls, flatten, lambda aux, children: _box_new(cls, aux, children[0])
    )


class Variable:
    """A mutable box holding one JAX array (or any pytree of arrays).

    ``Variable`` is the base of :class:`Parameter` and :class:`Buffer`; jaxmod also uses
    it for optimizer moments and generator keys, so that :func:`jaxmod.jit` finds every
    piece of state the same way.

    Args:
        value: the initial array; numpy arrays, Python scalars and torch tensors are
            converted.
    """

    __slots__ = ("_value", "__weakref__")

    def __init__(self, value: Any = None) -> None:
        self._value = None if value is None else _to_array(value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register_box(cls)

    # -- value access ---------------------------------------------------------------
    @property
    def value(self) -> Any:
        """The array held by this box."""
        return _read(self)

    @value.setter
    def value(self, new: Any) -> None:
        self._value = _to_array(new)

    @property
    def data(self) -> Variable:
        """A view that shares this box's storage, as ``tensor.data`` does in torch.

        ``p.data.fill_(1.0)`` changes ``p``; ``p.data = x`` replaces ``p``'s array.
        """
        return _DataView(self)

    @data.setter
    def data(self, new: Any) -> None:
        self._value = _to_array(new)

    def __jax_array__(self) -> jax.Array:
        return _read(self)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = np.asarray(_read(self))
        return a.astype(dtype) if dtype is not None else a

    # -- array-like attributes --------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the held array."""
        return tuple(np.shape(self._value))

    @property
    def dtype(self) -> Any:
        """dtype of the held array."""
        return self._value.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def T(self) -> jax.Array:
        """Transposed array (``p.T``)."""
        return _read(self).T

    @property
    def mT(self) -> jax.Array:
        """Matrix transpose of the last two dimensions."""
        return jnp.swapaxes(_read(self), -1, -2)

    @property
    def device(self) -> Any:
        """The device holding the array (the first one when it is sharded)."""
        v = self._value
        devs = v.devices() if hasattr(v, "devices") else set()
        return next(iter(devs)) if len(devs) == 1 else getattr(v, "device", None)

    @property
    def sharding(self) -> Any:
        """The ``jax.sharding.Sharding`` of the held array."""
        return self._value.sharding

    @property
    def is_cuda(self) -> bool:
        """Whether the array lives on a GPU."""
        d = self.device
        return getattr(d, "platform", "cpu") in ("gpu", "cuda", "rocm")

    def size(self, dim: int | None = None) -> Any:
        """torch's ``size()``: the shape, or one dimension of it."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        """Number of dimensions (torch's ``dim()``)."""
        return self.ndim

    def numel(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self):
        return iter(_read(self))

    def __getitem__(self, idx: Any) -> jax.Array:
        return _read(self)[_unwrap(idx)]

    def __getattr__(self, name: str) -> Any:
        # Array methods (reshape, sum, astype, ...) come from the held array.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(_read(self), name)

    def __bool__(self) -> bool:
        return bool(_read(self))

    def __float__(self) -> float:
        return float(_read(self))

    def __int__(self) -> int:
        return int(_read(self))

    def __index__(self) -> int:
        return int(_read(self))

    def item(self) -> Any:
        """The single value as a Python scalar."""
        return _read(self).item()

    def tolist(self) -> Any:
        """The array as nested Python lists."""
        return _read(self).tolist()

    def numpy(self) -> np.ndarray:
        """A numpy copy of the array."""
        return np.asarray(_read(self))

    def detach(self) -> jax.Array:
        """The held array, cut from autodiff (``jax.lax.stop_gradient``)."""
        return jax.lax.stop_gradient(_read(self))

    def clone(self) -> jax.Array:
        """A copy of the held array (JAX arrays are immutable, so this is the array)."""
        return jnp.array(_read(self), copy=True)

    # -- in-place idioms used by torch init code --------------------------------------
    def _assign(self, new: Any) -> Variable:
        old = self._value
        self._value = jnp.broadcast_to(jnp.asarray(new, dtype=old.dtype), jnp.shape(old))
        return self

    def fill_(self, value: Any) -> Variable:
        """Fill with a scalar, in place."""
        return self._assign(_unwrap(value))

    def zero_(self) -> Variable:
        """Fill with zeros, in place."""
        return self._assign(0)

    def copy_(self, src: Any) -> Variable:
        """Copy ``src`` (broadcast and cast to this box's dtype) in place."""
        return self._assign(_to_array(src))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Variable:
        """Fill with normal samples drawn from ``generator`` (default: the global one)."""
        from jaxmod.random import _sample, next_key

        sample = _sample("normal", next_key(generator), self.shape)
        return self._assign(sample * std + mean)

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Variable:
        """Fill with uniform samples on ``[a, b)`` drawn from ``generator``."""
        from jaxmod.random import _sample, next_key

        sample = _sample("uniform", next_key(generator), self.shape) * (b - a) + a
        return self._assign(sample)

    def add_(self, other: Any, *, alpha: float = 1) -> Variable:
        """``self += alpha * other`` in place."""
        return self._assign(_read(self) + alpha * _unwrap(other))

    def sub_(self, other: Any, *, alpha: float = 1) -> Variable:
        """``self -= alpha * other`` in place."""
        return self._assign(_read(self) - alpha * _unwrap(other))

    def mul_(self, other: Any) -> Variable:
        """``self *= other`` in place."""
        return self._assign(_read(self) * _unwrap(other))

    def div_(self, other: Any) -> Variable:
        """``self /= other`` in place."""
        return self._assign(_read(self) / _unwrap(other))

    def clamp_(self, min: Any = None, max: Any = None) -> Variable:
        """Clip to ``[min, max]`` in place."""
        return self._assign(jnp.clip(_read(self), min, max))

    def requires_grad_(self, requires_grad: bool = True) -> Variable:
        """Buffers and plain variables never require gradients."""
        if requires_grad:
            raise RuntimeError(
                f"only Parameters can require gradients; this is a {type(self).__name__}"
            )
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._value!r})"


def _binary(name: str, op: Any, reflected: bool = False) -> Any:
    if reflected:

        def method(self: Variable, other: Any) -> Any:
            return op(_unwrap(other), _read(self))
    else:

        def method(self: Variable, other: Any) -> Any:
            return op(_read(self), _unwrap(other))

    method.__name__ = name
    return method


def _unary(op: Any) -> Any:
    def method(self: Variable) -> Any:
        return op(_read(self))

    return method


def _install_operators() -> None:
    import operator as o

    binary = {
        "add": o.add, "sub": o.sub, "mul": o.mul, "truediv": o.truediv,
        "floordiv": o.floordiv, "mod": o.mod, "pow": o.pow, "matmul": o.matmul,
        "and": o.and_, "or": o.or_, "xor": o.xor, "lshift": o.lshift, "rshift": o.rshift,
    }  # fmt: skip
    for n, op in binary.items():
        setattr(Variable, f"__{n}__", _binary(f"__{n}__", op))
        setattr(Variable, f"__r{n}__", _binary(f"__r{n}__", op, reflected=True))
    for n, op in {"lt": o.lt, "le": o.le, "gt": o.gt, "ge": o.ge}.items():
        setattr(Variable, f"__{n}__", _binary(f"__{n}__", op))
    for n, op in {"neg": o.neg, "pos": o.pos, "abs": o.abs, "invert": o.invert}.items():
        setattr(Variable, f"__{n}__", _unary(op))


_install_operators()


class _DataView(Variable):
    """``p.data``: reads and writes go to the box it was taken from."""

    __slots__ = ("_base",)

    def __init__(self, base: Variable) -> None:
        object.__setattr__(self, "_base", base)

    @property  # type: ignore[override]
    def _value(self) -> Any:
        return self._base._value

    @_value.setter
    def _value(self, new: Any) -> None:
        self._base._value = new

    def __repr__(self) -> str:
        return repr(self._base._value)


class Parameter(Variable):
    """A trainable array of a Module, like ``torch.nn.Parameter``.

    Assigning a Parameter to a Module attribute registers it in ``_parameters``;
    :func:`jaxmod.grad` differentiates with respect to every Parameter whose
    ``requires_grad`` is true.

    Args:
        data: the initial array (default: an empty float32 array).
        requires_grad: whether gradients are taken with respect to it.
    """

    __slots__ = ("_requires_grad", "_grad")

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        super().__init__(jnp.zeros((0,), jnp.float32) if data is None else data)
        self._requires_grad = bool(requires_grad)

    @property
    def requires_grad(self) -> bool:
        """Whether :func:`jaxmod.grad` differentiates with respect to this parameter."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        from jaxmod.nn import module as _module

        self._requires_grad = bool(value)
        _module._bump_version()  # what is differentiated is part of compiled structure

    @property
    def grad(self) -> Any:
        """A gradient stored by the user (jaxmod returns gradients rather than storing)."""
        return getattr(self, "_grad", None)

    @grad.setter
    def grad(self, value: Any) -> None:
        self._grad = value

    def requires_grad_(self, requires_grad: bool = True) -> Parameter:
        """Set ``requires_grad`` in place and return the parameter."""
        self.requires_grad = requires_grad
        return self

    def __repr__(self) -> str:
        return f"Parameter containing:\n{self._value!r}"


class Buffer(Variable):
    """A non-trainable array of a Module, like ``torch.nn.Buffer`` (running statistics).

    Args:
        data: the array.
        persistent: whether it is saved in ``state_dict``.
    """

    __slots__ = ("persistent",)

    def __init__(self, data: Any = None, *, persistent: bool = True) -> None:
        super().__init__(data)
        self.persistent = bool(persistent)

    def __repr__(self) -> str:
        return f"Buffer containing:\n{self._value!r}"


class UninitializedParameter(Parameter):
    """A Parameter whose shape is not yet known (used by ``LazyLinear``)."""

    __slots__ = ()

    def __init__(self, requires_grad: bool = True) -> None:
        super().__init__(None, requires_grad)

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


_register_box(Variable)
