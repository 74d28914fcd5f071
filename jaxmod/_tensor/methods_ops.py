"""Tensor methods generated from the op tables: math, comparisons, reductions, indexing,
products, their in-place ``*_`` forms, and Python's operators."""

from __future__ import annotations

import operator
from typing import Any

from jaxmod._tensor import base as _b
from jaxmod._tensor import ops_combine as _oc
from jaxmod._tensor import ops_extra as _ox
from jaxmod._tensor import ops_index as _oi
from jaxmod._tensor import ops_linalg as _ol
from jaxmod._tensor import ops_math as _om
from jaxmod._tensor import ops_reduce as _or
from jaxmod._tensor import ops_signal as _os


def _doc(raw: Any) -> str:
    return raw.__doc__ or f"torch's ``Tensor.{getattr(raw, '__name__', 'op')}``."


def method(raw: Any, name: str) -> Any:
    """A method returning ``raw(self_array, *args, **kwargs)`` as Tensors."""

    def m(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs and ("axis" in kwargs or "keepdims" in kwargs or "out" in kwargs):
            kwargs = _b.aliases(kwargs)
            out = kwargs.pop("out", None)
            if out is not None:  # numpy calls x.sum(axis=..., dtype=..., out=...)
                out.data = _b.unwrap(raw(self._jx(), *args, **kwargs))
                return out
        return _b.wrap(raw(self._jx(), *args, **kwargs))

    m.__name__ = m.__qualname__ = name
    m.__doc__ = _doc(raw)
    return m


def unary(fn: Any, name: str) -> Any:
    """A method of no arguments returning one Tensor."""

    def m(self: Any) -> Any:
        return _b.new(fn(self._jx()))

    m.__name__ = m.__qualname__ = name
    m.__doc__ = f"Elementwise ``{name}``."
    return m


def inplace(raw: Any, name: str, check: bool = True) -> Any:
    """The in-place form: the result is stored into ``self`` (torch's dtype rule when
    ``check``) and ``self`` is returned."""

    def m(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._inplace(raw(self._jx(), *args, **kwargs), check)

    m.__name__ = m.__qualname__ = name
    m.__doc__ = f"In-place ``{name[:-1]}``: stores the result in this tensor."
    return m


_COMPARE = {"eq", "ne", "lt", "le", "gt", "ge", "not_equal", "less", "less_equal", "greater",
            "greater_equal", "logical_and", "logical_or", "logical_xor", "logical_not"}  # fmt: skip
_NO_INPLACE = {"isnan", "isinf", "isfinite", "isposinf", "isneginf", "isreal", "signbit",
               "angle", "conj", "conj_physical", "positive", "isclose", "allclose", "equal",
               "softmax", "log_softmax", "float_power"}  # fmt: skip
_INDEX_INPLACE = {"scatter", "scatter_add", "scatter_reduce", "index_add", "index_copy",
                  "index_fill", "index_put", "masked_scatter", "tril", "triu"}  # fmt: skip
_COMBINE_METHODS = (
    "matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger", "cross", "kron",
    "tensordot", "addmm", "addmv", "baddbmm", "addbmm",
)  # fmt: skip
_INDEX_METHOD_SKIP = {"flip"}


def _flip(self: Any, *args: Any, dims: Any = None) -> Any:
    """Reversed along ``dims`` (positional, a list, or ``dims=``)."""
    return _b.new(_oi.flip(self._jx(), *args, dims=dims))


def _where(self: Any, condition: Any, y: Any) -> Any:
    """``self`` where ``condition`` holds, else ``y``."""
    return _b.new(_om.where(condition, self._jx(), y))


def _binop(fn: Any, name: str, reflected: bool = False) -> Any:
    if reflected:

        def m(self: Any, other: Any) -> Any:
            return _b.new(fn(other, self._jx()))
    else:

        def m(self: Any, other: Any) -> Any:
            return _b.new(fn(self._jx(), other))

    m.__name__ = m.__qualname__ = name
    return m


def _iop(fn: Any, name: str) -> Any:
    def m(self: Any, other: Any) -> Any:
        return self._inplace(fn(self._jx(), other))

    m.__name__ = m.__qualname__ = name
    return m


def _cmp(fn: Any, name: str, when_none: bool) -> Any:
    def m(self: Any, other: Any) -> Any:
        if other is None or isinstance(other, str):
            return when_none
        return _b.new(fn(self._jx(), other))

    m.__name__ = m.__qualname__ = name
    return m


def _matmul_r(self: Any, other: Any) -> Any:
    return _b.new(_oc.matmul(other, self._jx()))


def _build() -> dict[str, Any]:
    ns: dict[str, Any] = {"__slots__": (), "__doc__": "Math, reductions, indexing, products."}
    for name, fn in _om.UNARY.items():
        ns[name] = unary(fn, name)
        if name not in _NO_INPLACE:
            ns[name + "_"] = inplace(fn, name + "_", name not in _COMPARE)
    for table in (_om.BINARY, _om.OTHER, _or.REDUCE):
        for name, fn in table.items():
            ns[name] = method(fn, name)
            if table is not _or.REDUCE and name not in _NO_INPLACE:
                ns[name + "_"] = inplace(fn, name + "_", name not in _COMPARE)
    for name, fn in _oi.INDEX.items():
        if name not in _INDEX_METHOD_SKIP:
            ns[name] = method(fn, name)
        if name in _INDEX_INPLACE:
            ns[name + "_"] = inplace(fn, name + "_", False)
    for name in _COMBINE_METHODS:
        ns[name] = method(_oc.COMBINE[name], name)
    for name in _ox.METHODS:
        ns[name] = method(_ox.EXTRA[name], name)
    for name in _ol.METHODS:
        ns[name] = method(_ol.LINALG[name], name)
    for name in _os.METHODS:
        ns[name] = method(_os.SIGNAL[name], name)
    ns["cumsum_"] = inplace(_or.cumsum, "cumsum_", False)
    ns["real"] = property(unary(_ox.real, "real"), doc="The real part (a copy).")
    ns["imag"] = property(unary(_ox.imag, "imag"), doc="The imaginary part (a copy).")
    ns["polygamma"] = lambda self, n: _b.new(_ox.polygamma(n, self._jx()))
    ns["flip"] = _flip
    ns["where"] = _where

    ops = {
        "add": _om._add, "sub": _om.sub, "mul": _om.BINARY["mul"], "truediv": _om._truediv,
        "floordiv": _om._floordiv, "mod": _om.BINARY["remainder"], "pow": _om.pow,
        "and": _om.BINARY["bitwise_and"], "or": _om.BINARY["bitwise_or"],
        "xor": _om.BINARY["bitwise_xor"], "lshift": _om.BINARY["bitwise_left_shift"],
        "rshift": _om.BINARY["bitwise_right_shift"],
    }  # fmt: skip
    for n, fn in ops.items():
        ns[f"__{n}__"] = _binop(fn, f"__{n}__")
        ns[f"__r{n}__"] = _binop(fn, f"__r{n}__", reflected=True)
        ns[f"__i{n}__"] = _iop(fn, f"__i{n}__")
    ns["__matmul__"] = _binop(_oc.matmul, "__matmul__")
    ns["__rmatmul__"] = _matmul_r
    ns["__imatmul__"] = _iop(_oc.matmul, "__imatmul__")
    for n in ("lt", "le", "gt", "ge"):
        ns[f"__{n}__"] = _binop(_om.BINARY[n], f"__{n}__")
    ns["__eq__"] = _cmp(_om.BINARY["eq"], "__eq__", False)
    ns["__ne__"] = _cmp(_om.BINARY["ne"], "__ne__", True)
    ns["__neg__"] = unary(_om.UNARY["neg"], "__neg__")
    ns["__pos__"] = unary(operator.pos, "__pos__")
    ns["__abs__"] = unary(_om.UNARY["abs"], "__abs__")
    ns["__invert__"] = unary(_om.UNARY["bitwise_not"], "__invert__")
    ns["__hash__"] = object.__hash__
    return ns


OpMethods = type("OpMethods", (_b.TensorBase,), _build())
