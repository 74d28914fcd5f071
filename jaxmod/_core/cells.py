"""The unit of lifted state: :class:`Variable`, a mutable box holding one JAX array.

A *cell* is anything with a ``_value`` slot (a box; an array attribute seen through
:class:`AttrRef`): the one place a transform swaps a traced value into and reads the new
value back from. Module attributes return the box itself, so torch's in-place idioms
replace the array inside it, and box identity is what ties weights.

A box class is a one-leaf pytree (``__jax_array__`` alone is rejected by ``jnp.dot`` and
``jax.jit`` on jax >= 0.10). Every read -- operators, ``__jax_array__``, ``__array__``, the
pytree flatten that ``jnp.dot(x, box)`` goes through -- passes :func:`read`, which inside a
jaxmod.jit trace raises :class:`StaleStateError` for a box not lifted (its value would be
baked in as a constant and go stale).
"""

from __future__ import annotations

import operator
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import state
from jaxmod._core.state import StaleStateError, Tracer

__all__ = [
    "Variable", "AttrRef", "read", "unwrap", "to_array", "box_aux", "box_new", "is_value",
]  # fmt: skip

_ctx = state.ctx


def to_array(x: Any) -> Any:
    """Convert ``x`` (array, box, numpy, torch tensor, Python scalar) to a JAX array."""
    if isinstance(x, Variable):
        return x._value
    if isinstance(x, (jax.Array, Tracer)):
        return x
    if wrapper_of(x) is not None:  # a jaxmod.Tensor (defined above the kernel)
        return x._jaxmod_array_()
    if type(x).__module__.startswith("torch"):
        x = torch_to_numpy(x)
    try:
        return jnp.asarray(x)  # numpy, Python numbers, nested lists of them (torch.tensor)
    except (TypeError, ValueError):
        return jax.tree_util.tree_map(to_array, x)  # a pytree of arrays (optimizer state)


def is_torch_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (never imports torch: one can only exist if loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def torch_to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as a numpy array, bfloat16 included, without copying through float."""
    import torch  # only reached when the caller already holds a torch tensor

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(jnp.bfloat16)
    return t.numpy()


def read(box: Variable) -> Any:
    """The value of ``box``; inside a jaxmod.jit trace it must be lifted (a tracer)."""
    v = box._value
    if _ctx.jit_depth and not isinstance(v, Tracer) and v is not None:
        unlifted_read(box)
    return v


def unlifted_read(box: Any) -> None:
    """Raise :class:`StaleStateError` for a read of ``box`` that jaxmod.jit did not lift."""
    describe = _ctx.describe
    where = describe(box) if describe is not None else None
    what = where or f"a {type(box).__name__} of shape {tuple(np.shape(box._value))}"
    raise StaleStateError(
        f"{what} was read inside jaxmod.jit but is not part of the compiled function's "
        "state, so its current value would be baked in as a constant and go stale. Pass the "
        "module (or optimizer) that owns it as an argument of the jitted function, or reach "
        "it through the function's closure, globals or `self`, so jaxmod.jit lifts it."
    )


def unwrap(x: Any) -> Any:
    """The array inside a box (checked for lifting under jit), or ``x`` unchanged."""
    return read(x) if isinstance(x, Variable) else x


# Per box class: the names of its static slots (pytree aux data) and a getter for them.
_AUX: dict[type, tuple[str, ...]] = {}
_AUX_GET: dict[type, Any] = {}


def box_aux(box: Variable) -> tuple[Any, ...]:
    """The static attributes of a box (e.g. ``requires_grad``), for pytree aux data."""
    return _AUX_GET[type(box)](box)


def box_class(cls: type) -> type:
    """The class a flattened box of class ``cls`` is rebuilt as (``_jaxmod_rebuild_as_``)."""
    return cls.__dict__.get("_jaxmod_rebuild_as_") or cls


def box_new(cls: type, aux: tuple[Any, ...], value: Any) -> Variable:
    """A new box of class ``cls`` holding ``value`` (any leaf, tracers included)."""
    new = object.__new__(box_class(cls))
    new._value = value
    for n, v in zip(_AUX[cls], aux):
        object.__setattr__(new, n, v)
    return new


def _register(cls: type) -> None:
    """Register a box class as a pytree whose one leaf is its (read-checked) value."""
    skip = ("_value", "__weakref__", "_base", "_grad")
    names = tuple(
        n for c in reversed(cls.__mro__) for n in getattr(c, "__slots__", ()) if n not in skip
    )
    _AUX[cls] = names
    get = operator.attrgetter(*names) if names else None  # one name: not a tuple
    _AUX_GET[cls] = get if len(names) > 1 else lambda box: (get(box),) if get else ()
    jax.tree_util.register_pytree_node(
        cls, lambda box: ((read(box),), box_aux(box)), lambda aux, c: box_new(cls, aux, c[0])
    )


class Variable:
    """A mutable box holding one JAX array (or a pytree of arrays).

    The base of ``Parameter`` and ``Buffer``; optimizer moments and generator keys are
    Variables too, so jaxmod.jit finds every piece of state the same way.

    Args:
        value: the initial array (numpy arrays, Python scalars, torch tensors converted).
    """

    __slots__ = ("_value", "__weakref__")
    _jaxmod_cell_ = True

    def __init__(self, value: Any = None) -> None:
        self._value = None if value is None else to_array(value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    @property
    def value(self) -> Any:
        """The array held by this box."""
        return read(self)

    @value.setter
    def value(self, new: Any) -> None:
        self._value = to_array(new)

    def _assign(self, new: Any) -> Variable:
        """Write ``new`` in place, keeping this box's shape and dtype (torch's in-place rule)."""
        old = self._value
        self._value = jnp.broadcast_to(jnp.asarray(new, dtype=old.dtype), jnp.shape(old))
        return self

    def __jax_array__(self) -> jax.Array:
        return read(self)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = np.asarray(read(self))
        return a.astype(dtype) if dtype is not None else a

    shape = property(lambda self: tuple(np.shape(self._value)), doc="Shape of the array.")
    dtype = property(lambda self: self._value.dtype, doc="dtype of the array.")
    ndim = property(lambda self: len(self.shape), doc="Number of dimensions.")
    sharding = property(lambda self: self._value.sharding, doc="The array's Sharding.")
    __len__ = lambda self: self.shape[0]  # noqa: E731

    def __getitem__(self, idx: Any) -> jax.Array:
        return read(self)[unwrap(idx)]

    def __getattr__(self, name: str) -> Any:
        # Array methods (astype, sum, ...) come from the held array.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(read(self), name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._value!r})"


def _install_operators() -> None:
    o = operator
    binary = {
        "add": o.add, "sub": o.sub, "mul": o.mul, "truediv": o.truediv,
        "floordiv": o.floordiv, "mod": o.mod, "pow": o.pow, "matmul": o.matmul,
        "and": o.and_, "or": o.or_, "xor": o.xor, "lshift": o.lshift, "rshift": o.rshift,
    }  # fmt: skip
    for n, op in {**binary, "lt": o.lt, "le": o.le, "gt": o.gt, "ge": o.ge}.items():
        setattr(Variable, f"__{n}__", lambda self, other, op=op: op(read(self), unwrap(other)))
        if n in binary:  # and the reflected form
            setattr(Variable, f"__r{n}__", lambda self, other, op=op: op(unwrap(other), read(self)))
    unary = {"neg": o.neg, "pos": o.pos, "abs": o.abs, "invert": o.invert, "bool": bool,
             "float": float, "int": int, "index": int, "iter": iter}  # fmt: skip
    for n, op in unary.items():
        setattr(Variable, f"__{n}__", lambda self, op=op: op(read(self)))


_install_operators()
_register(Variable)


def wrapper_of(v: Any) -> Any:
    """For a value-wrapper object (a jaxmod Tensor) its class's ``_jaxmod_wrap_`` (which
    rebuilds one around an array), else None. Such objects expose ``_jaxmod_array_()``."""
    return getattr(type(v), "_jaxmod_wrap_", None)


def is_value(x: Any) -> bool:
    """Whether ``x`` is an array value: a JAX/numpy array, a tracer or a Tensor wrapper."""
    return state.is_array(x) or wrapper_of(x) is not None


class AttrRef:
    """A plain array attribute of an object, seen as a cell (``_value`` reads/writes it).

    A Tensor attribute reads as its array; a write stores a new Tensor around the new array,
    so Tensors a user holds never change behind their back (``self.h = h_new`` rebinds).
    """

    __slots__ = ("obj", "name")

    def __init__(self, obj: Any, name: str) -> None:
        self.obj = obj
        self.name = name

    @property
    def _value(self) -> Any:
        v = self.obj.__dict__[self.name]
        return v if wrapper_of(v) is None else v._jaxmod_array_()

    @_value.setter
    def _value(self, new: Any) -> None:
        d = self.obj.__dict__
        wrap = wrapper_of(d[self.name])
        d[self.name] = new if wrap is None else wrap(new)
