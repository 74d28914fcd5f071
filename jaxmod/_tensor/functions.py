"""The torch function namespace (``torch.cat``, ``torch.sum``, ``torch.transpose``, ...),
following the type rule: Tensors in, Tensors out; ``jax.Array`` in, ``jax.Array`` out."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import ops_combine as _oc
from jaxmod._tensor import ops_extra as _ox
from jaxmod._tensor import ops_index as _oi
from jaxmod._tensor import ops_linalg as _ol
from jaxmod._tensor import ops_math as _om
from jaxmod._tensor import ops_reduce as _or
from jaxmod._tensor import ops_signal as _os
from jaxmod._tensor import tape as _tape
from jaxmod._tensor.dtypes import is_complex as _is_complex
from jaxmod._tensor.dtypes import is_floating_point as _is_fp
from jaxmod._tensor.methods_base import _can_cast
from jaxmod._tensor.tensor import Tensor


def _store(out: Any, res: Any) -> Any:
    if isinstance(res, tuple):
        for o, r in zip(out, res):
            _store(o, r)
        return out
    out.data = _b.unwrap(res)
    return out


def _first(a: Any) -> Any:
    a = _b.unwrap(a)
    return jnp.asarray(a) if isinstance(a, (np.ndarray, list, np.generic)) else a


def function(raw: Any, name: str, array_first: bool = True) -> Any:
    """``torch.<name>(input, ...)`` from ``raw(array, ...)``, with the type rule and ``out=``."""

    def f(*args: Any, **kwargs: Any) -> Any:
        out = kwargs.pop("out", None)
        if kwargs:
            kwargs = _b.aliases(kwargs)
        if "input" in kwargs:
            args = (kwargs.pop("input"),) + args
        call = (_first(args[0]),) + args[1:] if array_first and args else args
        res = raw(*call, **kwargs)
        if out is not None:
            return _store(out, res)
        if _b.torch_inputs(args, kwargs):
            return _b.wrap(res)
        return res

    f.__name__ = f.__qualname__ = name
    f.__doc__ = raw.__doc__ or f"Elementwise ``{name}`` (``torch.{name}``)."
    return _recorded(f)


def _recorded(f: Any) -> Any:
    """``f`` recorded on the autograd tape when an input requires grad."""

    def g(*args: Any, **kwargs: Any) -> Any:
        if _tape.marked(args, kwargs) and _tape.recording():
            return _tape.record(f, f.__name__, args, kwargs)
        return f(*args, **kwargs)

    g.__name__ = g.__qualname__ = f.__name__
    g.__doc__ = f.__doc__
    g.__wrapped__ = f  # type: ignore[attr-defined]
    return g


def via_method(name: str) -> Any:
    """``torch.<name>(input, ...)`` as ``input.<name>(...)`` (so views stay views)."""
    doc = getattr(Tensor, name).__doc__

    def f(input: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(input, _b.TensorBase):  # a Tensor, or a Parameter / Buffer box
            return getattr(input, name)(*args, **kwargs)
        out = getattr(_b.new(jnp.asarray(_b.unwrap(input))), name)(*args, **kwargs)
        if _b._has_tensor(args) or (kwargs and _b._has_tensor(kwargs.values())):
            return out
        return _b.unwrap_tree(out) if not isinstance(out, (int, bool)) else out

    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    return f


def inplace_function(name: str) -> Any:
    """``torch.<name>(input, ...)``: the in-place method (a Tensor is required)."""

    def f(input: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(input, _b.TensorBase):
            raise TypeError(
                f"torch.{name} changes its input in place, which needs a jaxmod Tensor; "
                f"got {type(input).__name__} (JAX arrays are immutable: use "
                f"torch.{name[:-1]} and rebind)"
            )
        return getattr(input, name)(*args, **kwargs)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"In-place ``{name[:-1]}`` of a Tensor (``torch.{name}``)."
    return f


_METHOD_FUNCTIONS = (
    "reshape", "flatten", "unflatten", "permute", "transpose", "swapaxes", "swapdims", "t",
    "adjoint", "unsqueeze", "squeeze", "movedim", "moveaxis", "narrow", "select", "split",
    "chunk", "tensor_split", "unbind", "diagonal", "broadcast_to", "tile", "ravel", "detach",
    "clone", "numel", "is_floating_point", "is_complex", "is_signed", "unfold",
)  # fmt: skip


def _is_nonzero(input: Any) -> bool:
    """Whether a one-element tensor is non-zero."""
    a = _b.unwrap(input)
    if np.size(a) != 1:
        raise RuntimeError(
            "Boolean value of Tensor with more than one value is ambiguous"
            if np.size(a)
            else "Boolean value of Tensor with no values is ambiguous"
        )
    return bool(a)


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a jaxmod Tensor (``torch.is_tensor``)."""
    return isinstance(obj, Tensor)


def is_storage(obj: Any) -> bool:
    """Always False: jaxmod has no storages."""
    return False


def numel(input: Any) -> int:
    """The number of elements."""
    return int(np.size(_b.unwrap(input)))


def result_type(tensor1: Any, tensor2: Any) -> _dt.dtype:
    """The dtype of an arithmetic op on the two (torch's promotion, 0-d rule included)."""
    a, b = _om.operands(tensor1, tensor2)
    return _dt.of(jnp.result_type(a, b))


def promote_types(type1: Any, type2: Any) -> np.dtype:
    """The promoted dtype of two dtypes."""
    return jnp.promote_types(_dt.as_dtype(type1), _dt.as_dtype(type2))


def can_cast(from_: Any, to: Any) -> bool:
    """Whether torch allows casting ``from_`` to ``to`` in an in-place op."""
    return _can_cast(_dt.as_dtype(from_), _dt.as_dtype(to))


def typename(obj: Any) -> str:
    """torch's type name of a tensor (``"torch.FloatTensor"``)."""
    return obj.type() if is_tensor(obj) else type(obj).__name__


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``input`` where ``condition`` holds, else ``other``; one argument: ``nonzero``."""
    res = _om.where(condition, input, other)
    return _b.wrap_like(res, condition, input, other)


def view_as_complex(input: Any) -> Any:
    """``(..., 2)`` real and imaginary parts as a complex tensor (``torch.view_as_complex``;
    a copy, see ``view_as_real``). A Tensor's strides are checked as torch checks them."""
    if _b.is_tensor(input):
        _ox.check_view_as_complex(input._jx(), _b.geometry(input))
    return _b.wrap_like(_ox.view_as_complex(_first(input)), input)


def build() -> dict[str, Any]:
    """Every namespace function, by name."""
    ns: dict[str, Any] = {}
    for table in (_om.UNARY, _om.OTHER, _or.REDUCE, _oi.INDEX, _ox.EXTRA, _ol.LINALG, _os.SIGNAL):
        for name, raw in table.items():
            ns[name] = function(raw, name)
    for name, raw in _om.BINARY.items():
        ns[name] = function(raw, name, array_first=False)
    for name in ("add", "sub", "subtract", "rsub", "div", "divide", "pow", "clamp", "clip"):
        ns[name] = function(_om.OTHER[name], name, array_first=False)
    for name, raw in _oc.COMBINE.items():
        ns[name] = function(raw, name, array_first=False)
    ns["broadcast_shapes"] = _oc.broadcast_shapes
    for name in _METHOD_FUNCTIONS:
        ns[name] = via_method(name)
    ns.update(_ox.WINDOWS)
    for name in dir(Tensor):
        if name.endswith("_") and not name.startswith("_") and name not in ns:
            ns[name] = inplace_function(name)
    ns["numel"] = numel
    ns["where"] = _recorded(where)
    ns["view_as_complex"] = _recorded(view_as_complex)
    for f in (is_tensor, is_storage, result_type, promote_types, can_cast, typename):
        ns[f.__name__] = f
    ns["is_nonzero"] = _is_nonzero
    ns["is_floating_point"] = _is_fp
    ns["is_complex"] = _is_complex
    return ns
