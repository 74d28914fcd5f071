"""The plumbing every tensor method and function shares: the mixin root, wrapping and
unwrapping (the type rule), and views.

The **type rule**: jaxmod ops return a :class:`~jaxmod.Tensor` when any input is a
Tensor, and a plain ``jax.Array`` otherwise. :func:`tensor_op` applies it to any
function of arrays. Parameter and Buffer boxes are not Tensor *inputs* for this kernel-level
rule (``F.linear(array, self.weight)`` returns a ``jax.Array``), but their tensor methods
return Tensors, and the ``torch.*`` functions and module calls count them as Tensors
(``jaxmod._tensor.functions``, ``Module.__call__``), as torch does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._core.cells import Variable as _Variable
from jaxmod._tensor import geometry as _geo
from jaxmod._tensor.eager import _CONCRETE

__all__ = [
    "TensorBase",
    "unwrap",
    "as_tensor",
    "unwrap_tree",
    "wrap",
    "wrap_like",
    "tensor_op",
    "inplace_result",
    "is_tensor",
]

_Array = jax.Array
_alloc = object.__new__

# Set by jaxmod._tensor.tensor once the classes exist.
TENSOR: type = None  # type: ignore[assignment]  # the plain Tensor class
VIEW: type = None  # type: ignore[assignment]  # the view class
TT: frozenset = frozenset()  # every concrete Tensor class (Tensor, views, requires_grad)


# Set by jaxmod._tensor.tape: the autograd tape's hooks (recording eager ops, backward).
def _never(*args: Any) -> bool:
    return False


tape_marked: Callable[[tuple, dict], bool] = _never
tape_recording: Callable[[], bool] = _never
tape_record: Callable[..., Any] = None  # type: ignore[assignment]
tape_backward: Callable[..., None] = None  # type: ignore[assignment]
tape_register_hook: Callable[..., Any] = None  # type: ignore[assignment]
# Set by jaxmod._tensor.sparse_coo: a sparse COO tensor of its parts, ``x.to_sparse()``.
sparse_make: Callable[..., Any] = None  # type: ignore[assignment]
to_sparse: Callable[..., Any] = None  # type: ignore[assignment]


class TensorBase:
    """The root of the tensor-method mixin. A class using the mixin provides two hooks:
    ``_jx()`` returns the current ``jax.Array`` (or tracer) and ``_rebind(new)`` stores an
    in-place result (same shape and dtype) and returns ``self``."""

    __slots__ = ()

    def _jx(self) -> Any:  # pragma: no cover - provided by the concrete class
        raise NotImplementedError

    def _rebind(self, new: Any) -> Any:  # pragma: no cover - provided by the concrete class
        raise NotImplementedError


def new(value: Any) -> Any:
    """A Tensor holding ``value`` (an array or tracer)."""
    t = _alloc(TENSOR)
    t._value = value
    return t


def as_tensor(x: Any) -> Any:
    """``x`` if it is a Tensor, else a Tensor holding ``jnp.asarray(x)`` (a ``.grad`` value)."""
    return x if type(x) in TT else new(jnp.asarray(unwrap(x)))


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a Tensor for the type rule (boxes are not)."""
    return type(x) in TT


def unwrap(x: Any) -> Any:
    """The array inside a Tensor or box; anything else unchanged."""
    t = type(x)
    if t is TENSOR:
        return x._value
    if t in _CONCRETE:
        return x
    if isinstance(x, TensorBase):
        return x._jx()
    if isinstance(x, _boxes()):
        return x.value  # a box without the tensor methods: its checked read
    return x


def _boxes() -> type:
    return _Variable


def _is_boxlike(x: Any) -> bool:
    return isinstance(x, (TensorBase, _boxes()))


def unwrap_tree(tree: Any) -> Any:
    """``tree`` with every Tensor (and box) replaced by its array."""
    return jax.tree_util.tree_map(unwrap, tree, is_leaf=_is_boxlike)


def _wrap_leaf(x: Any) -> Any:
    return new(x) if isinstance(x, _Array) else x


def wrap(out: Any) -> Any:
    """``out`` with every array (in tuples, lists, named tuples, dicts) wrapped as a Tensor."""
    if type(out) in _CONCRETE or isinstance(out, _Array):
        return new(out)
    t = type(out)
    if t is tuple or t is list:
        return t([wrap(o) for o in out])
    if isinstance(out, tuple) and hasattr(out, "_fields"):
        return t(*[wrap(o) for o in out])
    if out is None or t in (int, float, bool, complex, str) or t in TT:
        return out
    return jax.tree_util.tree_map(_wrap_leaf, out, is_leaf=is_tensor)


def _has_tensor(args: Any) -> bool:
    for a in args:
        t = type(a)
        if t in TT:
            return True
        if (t is list or t is tuple) and any(type(b) in TT for b in a):
            return True
        # a named tuple of Tensors (nn.utils.rnn.PackedSequence) is a Tensor input too
        if isinstance(a, tuple) and hasattr(t, "_fields") and any(type(b) in TT for b in a):
            return True
    return False


def torch_inputs(args: tuple, kwargs: dict) -> bool:
    """The type rule at torch level (``torch.*`` functions, module calls): a Tensor
    input, or a Parameter / Buffer box among ``args`` (in torch a parameter is a tensor)."""
    if _has_tensor(args) or (kwargs and _has_tensor(kwargs.values())):
        return True
    return any(isinstance(a, TensorBase) for a in args)


def _unwrap_arg(a: Any) -> Any:
    t = type(a)
    if t is list or t is tuple:
        return t([unwrap(b) for b in a])
    return unwrap(a)


def wrap_like(out: Any, *inputs: Any) -> Any:
    """``out`` wrapped as Tensors iff any of ``inputs`` is a Tensor (the type rule)."""
    return wrap(out) if _has_tensor(inputs) else out


def inplace_result(input: Any, out: Any) -> Any:
    """torch's ``inplace=True`` for an op's result ``out``: when ``input`` is a Tensor, ``out``
    replaces its values (a view writes through to its base, as torch's in-place ops do) and
    ``input`` itself is returned; with any other input (a ``jax.Array`` cannot change) ``out``
    is returned as it is."""
    if type(input) in TT and out is not input:
        return input._inplace(unwrap(out))
    return out


def tensor_op(fn: Callable) -> Callable:
    """Make a function of arrays follow the type rule.

    When an argument (or an element of a list/tuple argument, or a keyword argument) is a
    Tensor, the Tensors are replaced by their arrays, ``fn`` runs, and the arrays it
    returns (in any pytree) come back as Tensors. Without Tensor arguments ``fn`` is
    called unchanged, so ``jax.Array`` code pays one scan of the arguments. A function
    that already follows the rule is returned as it is (never wrapped twice).
    """
    if hasattr(fn, "__wrapped_array_fn__"):
        return fn

    def typed(*args: Any, **kwargs: Any) -> Any:
        args = tuple([_unwrap_arg(a) for a in args])
        if kwargs:
            kwargs = {k: _unwrap_arg(v) for k, v in kwargs.items()}
        return wrap(fn(*args, **kwargs))

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        if not (_has_tensor(args) or (kwargs and _has_tensor(kwargs.values()))):
            return fn(*args, **kwargs)
        if tape_marked(args, kwargs) and tape_recording():
            return tape_record(typed, getattr(fn, "__name__", "op"), args, kwargs)
        return typed(*args, **kwargs)

    op.__wrapped_array_fn__ = fn  # type: ignore[attr-defined]
    return op


def aliases(kwargs: dict) -> dict:
    """numpy's keyword names torch also accepts: ``axis`` for ``dim``, ``keepdims`` for
    ``keepdim``."""
    if "axis" in kwargs:
        kwargs["dim"] = kwargs.pop("axis")
    if "keepdims" in kwargs:
        kwargs["keepdim"] = kwargs.pop("keepdims")
    return kwargs


def with_aliases(fn: Callable) -> Callable:
    """``fn`` accepting ``axis=`` / ``keepdims=`` for ``dim=`` / ``keepdim=``."""

    @functools.wraps(fn)
    def f(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **aliases(kwargs)) if kwargs else fn(*args)

    return f


# ----------------------------------------------------------------------------- views
def geometry(t: Any) -> _geo.Geometry:
    """Where ``t``'s elements sit in its root's contiguous layout."""
    if type(t) is VIEW:
        g = t._geom
        if g is None:  # computed on first need from ``_pend``: (fn, parent, args)
            fn, parent, args = t._pend
            g = t._geom = fn(geometry(parent), *args)
            t._pend = None
        return g
    return _geo.root(tuple(t._jx().shape))


def view(parent: Any, value: Any, fn: Callable, *args: Any) -> Any:
    """A view of ``parent`` holding ``value``; ``fn(parent_geometry, *args)`` is its geometry.

    In-place ops on the view write through to the root tensor, and reading the view after
    the root changed in place recomputes it, as torch's shared storage behaves.
    """
    v = _alloc(VIEW)
    v._value = value
    if type(parent) is VIEW:
        v._base = b = parent._base
        v._detached = parent._detached
    else:
        v._base = b = parent
        v._detached = False
    v._seen = b._value if type(b) is TENSOR else b._jx()
    v._geom = None  # not computed until a write or a stride query needs it
    v._pend = (fn, parent, args)
    return v


def view_jx(v: Any) -> Any:
    """The current value of view ``v`` (recomputed if its root changed in place)."""
    b = v._base
    r = b._value if type(b) is TENSOR else b._jx()
    if r is not v._seen:
        g = geometry(v)
        if tuple(r.shape) != g[3] or r.dtype != v._value.dtype:
            # The root was given new storage (``x.data = ...``): keep the old values.
            v._base = new(v._value)
            v._geom = _geo.root(tuple(v._value.shape))
            v._pend = None
            v._seen = v._value
            return v._value
        if g == _geo.root(g[3]):
            val = r  # the whole root in its own layout (a detached tensor, a state_dict value)
        else:
            val = jnp.ravel(r)[_geo.flat_index(g)]
        v._value = jax.lax.stop_gradient(val) if v._detached else val
        v._seen = r
    return v._value


_OVERLAP = (
    "unsupported operation: more than one element of the written-to tensor refers to a "
    "single memory location. Please clone() the tensor before performing the operation."
)


def view_rebind(v: Any, new_value: Any) -> Any:
    """Store an in-place result in view ``v`` and write it through to its root."""
    g = geometry(v)
    if _geo.overlaps(g):
        raise RuntimeError(_OVERLAP)
    b = v._base
    r = b._jx()
    shape, strides, off, rs = g
    if off == 0 and _geo.is_contiguous(shape, strides) and _numel(shape) == _numel(rs):
        b._rebind(jnp.reshape(new_value, r.shape))
    else:
        idx = _geo.flat_index(g).ravel()
        flat = jnp.ravel(r).at[idx].set(jnp.ravel(new_value).astype(r.dtype))
        b._rebind(flat.reshape(r.shape))
    v._value = new_value
    v._seen = b._value if type(b) is TENSOR else b._jx()
    return v


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
