"""The :class:`Tensor` class: a torch-style tensor that is a thin wrapper of a JAX array."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor.methods_base import BaseMethods, _to_array
from jaxmod._tensor.methods_more import MoreMethods
from jaxmod._tensor.methods_ops import OpMethods
from jaxmod._tensor.methods_shape import ShapeMethods, _same
from jaxmod._tensor.random_ops import RandomMethods

__all__ = ["TensorMethods", "Tensor"]


class TensorMethods(ShapeMethods, OpMethods, MoreMethods, RandomMethods, BaseMethods):
    """torch's tensor methods, for any class providing ``_jx()`` and ``_rebind(new)``.

    :class:`Tensor` uses it; so can a box class (``Parameter``, ``Buffer``). Methods that
    compute new values return :class:`Tensor`; in-place methods (``add_``, ``x[i] = v``)
    store through ``_rebind`` and return ``self``.
    """

    __slots__ = ()

    def new(self, *args: Any, device: Any = None) -> Any:
        """torch's legacy ``x.new(*sizes)`` (zeros) / ``x.new(data)``, in this dtype."""
        return _b.new(_legacy_value(args, self._jx().dtype))


class _TensorMeta(type):
    """``isinstance(x, Tensor)`` is true for everything with the tensor methods (so a
    ``Parameter`` is a ``Tensor``, as in torch)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if cls is Tensor:
            return isinstance(obj, TensorMethods)
        return type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub: type) -> bool:
        if cls is Tensor:
            return issubclass(sub, TensorMethods)
        return type.__subclasscheck__(cls, sub)


def _is_size(a: Any) -> bool:
    return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))


def _legacy_value(args: tuple, dt: Any) -> Any:
    """torch's legacy constructor: ``(*sizes)`` (or one ``Size``; none is ``(0,)``) gives
    zeros of that shape, one sequence / array its values; a number is not data."""
    if len(args) == 1 and isinstance(args[0], _dt.Size):
        args = tuple(args[0])
    if all(_is_size(a) for a in args):
        shape = tuple(int(a) for a in args) or (0,)
        negative = [d for d in shape if d < 0]
        if negative:
            raise RuntimeError(
                f"Trying to create tensor with negative dimension {negative[0]}: {list(shape)}"
            )
        return jnp.zeros(shape, dt)
    if len(args) > 1:
        raise TypeError(f"new(): expected sizes (ints) or one data argument, got {args!r}")
    data = args[0]
    if isinstance(data, str):
        raise TypeError("new(): invalid data type 'str'")
    if isinstance(data, range):
        data = list(data)
    sequence = isinstance(data, (list, tuple, np.ndarray)) or hasattr(data, "__array__")
    if isinstance(data, np.generic) or not sequence:
        kind = type(data)
        module = "" if kind.__module__ == "builtins" else kind.__module__ + "."
        raise TypeError(f"new(): data must be a sequence (got {module}{kind.__name__})")
    return jnp.asarray(_to_array(data), dt)


class Tensor(TensorMethods, metaclass=_TensorMeta):
    """A torch-style tensor holding one ``jax.Array`` (or a tracer, inside a transform).

    It is a pytree with one leaf, and converts with ``__jax_array__``, so it passes
    through ``jax.jit``, ``jax.vmap``, ``jaxmod.jit`` and every ``jnp`` function. In-place
    methods replace the held array (``x.add_(1)`` rebinds ``x``'s value).

    ``Tensor(jax_array)`` wraps an array (keeping its dtype); like torch's legacy
    constructor, ``Tensor(2, 3)`` is a float tensor of shape ``(2, 3)`` (zeros: JAX has
    no uninitialised memory) and ``Tensor([1, 2])`` a float tensor of those values.
    """

    __slots__ = ("_value", "_ag", "_gd")  # value; tape node (computed tensors); .grad
    _rg = False

    def __init__(self, *args: Any, device: Any = None, dtype: Any = None) -> None:
        if len(args) == 1 and isinstance(args[0], (jax.Array, _b.TensorBase)):
            self._value = _b.unwrap(args[0])
            return
        self._value = _legacy_value(args, _dt.as_dtype(dtype) or _dt.default_np())

    def _jx(self) -> Any:
        return self._value

    def _rebind(self, new: Any) -> Tensor:
        self._value = new
        return self

    @property
    def requires_grad(self) -> bool:
        """A flag kept for torch code; gradients come from :func:`jaxmod.grad`."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.__class__ = _GradTensor if value else Tensor

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set :attr:`requires_grad` and return ``self``."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad(self) -> Any:
        """The gradient ``backward()`` accumulated here (for a tensor with
        ``requires_grad``), or None."""
        return getattr(self, "_gd", None)

    @grad.setter
    def grad(self, value: Any) -> None:
        self._gd = None if value is None else _b.as_tensor(value)

    @property
    def grad_fn(self) -> None:
        """None: this tensor was not computed by a recorded operation (a leaf)."""
        return None

    @property
    def is_leaf(self) -> bool:
        """True: this tensor was not computed by a recorded operation."""
        return True

    @property
    def data(self) -> Tensor:
        """A detached view sharing this tensor's values (``x.data.fill_(0)`` changes ``x``)."""
        return self.detach()

    @data.setter
    def data(self, new: Any) -> None:
        v = _b.unwrap(new)
        self._value = v if isinstance(v, jax.Array) else jnp.asarray(v)

    def __class_getitem__(cls, item: Any) -> type:
        return cls

    def __getattr__(self, name: str) -> Any:
        # jax.Array attributes torch has no name for (``astype``, ``at``, ``sharding``,
        # ``block_until_ready``, ...) come from the held array, so jnp-style code on a
        # Tensor keeps working; array results come back as Tensors.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            attr = getattr(self._jx(), name)
        except AttributeError:
            raise AttributeError(f"'Tensor' object has no attribute '{name}'") from None
        if callable(attr) and not isinstance(attr, type):

            def forwarded(*a: Any, **k: Any) -> Any:
                return _b.wrap(attr(*a, **k))

            # not functools.wraps: jaxlib's bound methods (nanobind) have no __qualname__
            forwarded.__name__ = forwarded.__qualname__ = name
            forwarded.__doc__ = getattr(attr, "__doc__", None)
            return forwarded
        return attr


class _GradTensor(Tensor):
    """A Tensor whose ``requires_grad`` flag is set (same layout; class swapped)."""

    __slots__ = ()
    _rg = True


class _View(Tensor):
    """A view of another tensor (see :func:`jaxmod._tensor.base.view`)."""

    __slots__ = ("_base", "_seen", "_geom", "_pend", "_detached", "_own_rg")

    def _jx(self) -> Any:
        return _b.view_jx(self)

    def _rebind(self, new: Any) -> _View:
        return _b.view_rebind(self, new)

    @property
    def requires_grad(self) -> bool:  # type: ignore[override]
        """The flag of the tensor this is a view of (False for a detached view), unless
        set on the view itself."""
        own = getattr(self, "_own_rg", None)
        if own is not None:
            return own
        return self._inherits_grad()

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        # torch: a view of a tensor that requires grad is not a leaf, and its flag cannot
        # be turned off; a detached view, or a view of a tensor without it, is a leaf
        if self._inherits_grad() and not value:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to "
                "use a computed variable in a subgraph that doesn't require differentiation "
                "use var_no_grad = var.detach()."
            )
        self._own_rg = bool(value)
        # a leaf view that requires grad is a source of the autograd tape, like
        # ``_GradTensor`` (torch's PINN idiom: ``linspace(...).unsqueeze(1).requires_grad_()``)
        if type(self) in (_View, _GradView):
            self.__class__ = _GradView if value else _View

    def _inherits_grad(self) -> bool:
        return not self._detached and bool(getattr(self._base, "requires_grad", False))

    @property
    def data(self) -> Tensor:  # type: ignore[override]
        """A detached view of the same values."""
        return self.detach()

    @data.setter
    def data(self, new: Any) -> None:
        self._rebind(jnp.asarray(_b.unwrap(new)).astype(self._jx().dtype))

    @property
    def _base_tensor(self) -> Any:
        return self._base


class _GradView(_View):
    """A leaf view whose ``requires_grad`` flag is set (same layout; class swapped)."""

    __slots__ = ()


def _flatten(t: Tensor) -> tuple[tuple[Any], None]:
    return (t._value,), None


def _flatten_view(t: _View) -> tuple[tuple[Any], None]:
    return (t._jx(),), None


def _unflatten(aux: None, children: Any) -> Tensor:
    t = object.__new__(Tensor)
    t._value = children[0]
    return t


def _unflatten_view(aux: None, children: Any) -> _View:
    # A tree rebuilt from a view's leaf (jax.tree_util.tree_map, a jit's outputs) holds a
    # view of a tensor of its own: the same node type as the input, so tree structures
    # compare equal (orbax and jax match a tree of state_dict views against its tree_map).
    base = object.__new__(Tensor)
    base._value = children[0]
    v = object.__new__(_View)
    v._value = v._seen = children[0]
    v._base, v._detached = base, False
    v._geom, v._pend = None, (_same, base, ())
    return v


def _unflatten_grad_view(aux: None, children: Any) -> _GradView:
    v = _unflatten_view(aux, children)
    v.__class__ = _GradView
    v._own_rg = True
    return v


def _unflatten_grad(aux: None, children: Any) -> Tensor:
    t = object.__new__(_GradTensor)
    t._value = children[0]
    return t


jax.tree_util.register_pytree_node(Tensor, _flatten, _unflatten)
jax.tree_util.register_pytree_node(_GradTensor, _flatten, _unflatten_grad)
jax.tree_util.register_pytree_node(_View, _flatten_view, _unflatten_view)
jax.tree_util.register_pytree_node(_GradView, _flatten_view, _unflatten_grad_view)

_b.TENSOR = Tensor
_b.VIEW = _View
_b.TT = frozenset({Tensor, _GradTensor, _View, _GradView})


# torch's legacy typed constructors: ``torch.FloatTensor(3, 4)`` (sizes; zeros here, JAX
# has no uninitialised memory), ``torch.LongTensor(range(5))`` / ``torch.LongTensor([1, 2])``
# (data), and ``isinstance(x, torch.FloatTensor)`` (a CPU tensor of that dtype in torch: a
# tensor of that dtype here). 64-bit names follow the x64 mapping of ``jaxmod.long``.
LEGACY_TENSORS = {
    "FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16",
    "BFloat16Tensor": "bfloat16", "LongTensor": "int64", "IntTensor": "int32",
    "ShortTensor": "int16", "CharTensor": "int8", "ByteTensor": "uint8", "BoolTensor": "bool",
}  # fmt: skip


class _LegacyTensorMeta(type):
    _dtype_name: str

    @property
    def dtype(cls) -> _dt.dtype:
        return _dt.named(cls._dtype_name)

    def __call__(cls, *args: Any, device: Any = None) -> Tensor:  # type: ignore[override]
        if len(args) == 1 and isinstance(args[0], (jax.Array, _b.TensorBase)):
            a = _b.unwrap(args[0])
            if a.dtype != cls.dtype:
                raise TypeError(
                    f"{cls.__name__}(tensor): expected a tensor of dtype {cls._dtype_name}, "
                    f"got {_dt.repr_name(a.dtype)} (use tensor.to({cls._dtype_name}))"
                )
            return _b.new(a)
        return Tensor(*args, device=device, dtype=cls.dtype)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __repr__(cls) -> str:
        return f"<class 'jaxmod.{cls.__name__}'>"


def _legacy(name: str, dtype: str) -> type:
    doc = (
        f"``torch.{name}``: ``{name}(*sizes)`` is a zero tensor of that shape, "
        f"``{name}(data)`` a tensor of ``data``, both of dtype ``{dtype}``; "
        f"``isinstance(x, {name})`` tests the dtype."
    )
    return _LegacyTensorMeta(name, (), {"_dtype_name": dtype, "__doc__": doc})


LEGACY = {n: _legacy(n, d) for n, d in LEGACY_TENSORS.items()}
