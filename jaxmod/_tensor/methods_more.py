"""Less common torch tensor methods that real model files still call: in-place forms of
products and shape ops, ``fill_diagonal_``, ``new(...)``, ``data_ptr``, device/layout
predicates, ``igamma``, ``cholesky``, ``hardshrink`` / ``prelu``, ...

They are built on the other method families (each returns what torch's does, and in-place
forms store through ``_inplace`` as every other in-place method).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import jax.scipy.special as jss

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt

__all__ = ["MoreMethods"]

# in-place forms of out-of-place methods: ``x.addmm_(a, b)`` is ``x`` set to ``x.addmm(a, b)``
_INPLACE_OF = ("addmm", "addmv", "addbmm", "baddbmm", "addr", "cumprod", "renorm",
               "index_reduce", "gcd", "lcm", "mvlgamma", "float_power", "igamma", "igammac",
               "polygamma", "hardshrink", "put")  # fmt: skip
# shape-changing in-place forms: the tensor's shape changes, so only a tensor that owns its
# values (not a view of another) can do it here
_RESHAPE_OF = ("squeeze", "unsqueeze", "t", "transpose", "swapaxes", "swapdims")
_FALSE_PROPERTIES = ("is_mps", "is_xpu", "is_ipu", "is_mtia", "is_maia", "is_vulkan",
                     "is_xla", "is_mkldnn", "is_nested", "is_sparse_csr", "is_quantized",
                     "volatile", "retains_grad")  # fmt: skip


def _inplace_of(name: str) -> Any:
    def m(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._inplace(_b.unwrap(getattr(self, name)(*args, **kwargs)))

    m.__name__ = m.__qualname__ = name + "_"
    m.__doc__ = f"In-place ``{name}``: stores the result in this tensor."
    return m


def _reshape_of(name: str) -> Any:
    def m(self: Any, *args: Any, **kwargs: Any) -> Any:
        new = _b.unwrap(getattr(self, name)(*args, **kwargs))
        if getattr(self, "_base", None) is not None:
            raise RuntimeError(
                f"{name}_() changes the shape of a view in place, which jaxmod's views do not "
                f"support; rebind instead: x = x.{name}(...)"
            )
        self._rebind(jnp.asarray(new))
        return self

    m.__name__ = m.__qualname__ = name + "_"
    m.__doc__ = f"In-place ``{name}`` (the tensor's shape changes; not on a view)."
    return m


def _float(a: Any) -> Any:
    return a if jnp.issubdtype(a.dtype, jnp.inexact) else a.astype(_dt.default_np())


class MoreMethods(_b.TensorBase):
    """Mixin of the methods above (see the module docstring)."""

    __slots__ = ()

    for _n in _INPLACE_OF:
        locals()[_n + "_"] = _inplace_of(_n)
    for _n in _RESHAPE_OF:
        locals()[_n + "_"] = _reshape_of(_n)
    for _n in _FALSE_PROPERTIES:
        locals()[_n] = property(lambda self: False, doc="Always False on jaxmod.")
    del _n

    def igamma(self, other: Any) -> Any:
        """The regularised lower incomplete gamma function ``P(self, other)``."""
        return _b.new(jss.gammainc(_float(self._jx()), _float(jnp.asarray(_b.unwrap(other)))))

    def igammac(self, other: Any) -> Any:
        """The regularised upper incomplete gamma function ``Q(self, other)``."""
        return _b.new(jss.gammaincc(_float(self._jx()), _float(jnp.asarray(_b.unwrap(other)))))

    def hardshrink(self, lambd: float = 0.5) -> Any:
        """``x`` where ``|x| > lambd``, else 0."""
        x = self._jx()
        return _b.new(jnp.where(jnp.abs(x) > lambd, x, jnp.zeros((), x.dtype)))

    def prelu(self, weight: Any) -> Any:
        """``max(0, x) + weight * min(0, x)``, ``weight`` per channel (dim 1)."""
        x, w = self._jx(), jnp.asarray(_b.unwrap(weight))
        if w.size > 1 and x.ndim > 1:
            w = w.reshape((-1,) + (1,) * (x.ndim - 2))
        return _b.new(jnp.where(x >= 0, x, w * x))

    def fill_diagonal_(self, fill_value: Any, wrap: bool = False) -> Any:
        """Fill the main diagonal (every index equal) with ``fill_value``; a tall matrix
        with ``wrap`` restarts the diagonal every ``cols + 1`` rows, as torch does."""
        x = self._jx()
        shape = x.shape
        if x.ndim < 2:
            raise RuntimeError("dimensions must larger than 1")
        if x.ndim > 2 and len(set(shape)) != 1:
            raise RuntimeError("all dimensions of input must be of equal length")
        step = sum(math.prod(shape[i + 1 :]) for i in range(x.ndim))
        if wrap and x.ndim == 2 and shape[0] > shape[1]:
            flat = list(range(0, x.size, step))  # past the square, it restarts a row lower
        else:
            flat = [k * step for k in range(min(shape))]
        out = x.reshape(-1).at[jnp.asarray(flat, jnp.int32)].set(fill_value).reshape(shape)
        return self._inplace(out)

    def is_nonzero(self) -> bool:
        """``bool`` of a one-element tensor (torch's errors for others)."""
        if self._jx().size == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        return bool(self)

    def is_pinned(self, device: Any = None) -> bool:
        """Always False (no page-locked host memory here)."""
        return False

    def is_shared(self) -> bool:
        """Always False (no shared-memory storage here)."""
        return False

    def is_inference(self) -> bool:
        """Always False (there are no inference tensors)."""
        return False

    def data_ptr(self) -> int:
        """A number naming this tensor's first element in its storage: equal for two
        tensors exactly when torch's would be (views of one base at one offset)."""
        root = self
        while getattr(root, "_base", None) is not None:
            root = root._base
        return id(root) * 16 + self.storage_offset() * self._jx().dtype.itemsize

    def new_empty_strided(self, size: Any, stride: Any, **kwargs: Any) -> Any:
        """``new_empty(size)`` (strides are torch's layout detail)."""
        return self.new_empty(size, **kwargs)

    def narrow_copy(self, dim: int, start: int, length: int) -> Any:
        """A copy of ``narrow(dim, start, length)``."""
        return self.narrow(dim, start, length).clone()

    def unsafe_chunk(self, chunks: int, dim: int = 0) -> Any:
        """``chunk`` (torch's unsafe variant differs only in autograd checks)."""
        return self.chunk(chunks, dim)

    def unsafe_split(self, split_size: Any, dim: int = 0) -> Any:
        """``split`` (torch's unsafe variant differs only in autograd checks)."""
        return self.split(split_size, dim)

    def sum_to_size(self, *size: Any) -> Any:
        """Sum over the dimensions broadcast from ``size`` so the result has ``size``."""
        target = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        x = self._jx()
        try:
            ok = jnp.broadcast_shapes(tuple(target), x.shape) == x.shape
        except ValueError:
            ok = False
        if not ok or len(target) > x.ndim:
            raise RuntimeError(f"size {{{', '.join(map(str, target))}}} is not expandable to "
                               f"size {{{', '.join(map(str, x.shape))}}}.")  # fmt: skip
        lead = x.ndim - len(target)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(target) if d == 1 and x.shape[lead + i] != 1
        )
        out = jnp.sum(x, axis=axes, keepdims=True) if axes else x
        return _b.new(out.reshape(target))

    def cholesky(self, upper: bool = False) -> Any:
        """The Cholesky factor (lower, or upper with ``upper=True``)."""
        low = jnp.linalg.cholesky(self._jx())
        return _b.new(jnp.swapaxes(low, -1, -2).conj() if upper else low)
