"""An einops backend for :class:`jaxmod.Tensor`, so ``rearrange(x, "b (h d) -> b h d", h=8)``
in torch model code works on jaxmod Tensors and returns Tensors.

einops finds backends by subclassing its ``AbstractBackend``; this module is imported by
``jaxmod`` only when einops is installed. The operations are einops' own JAX backend run on
the Tensor's array, with the results wrapped back.
"""

from __future__ import annotations

from typing import Any

from einops import _backends

from jaxmod._tensor.base import is_tensor, unwrap_tree, wrap

__all__ = ["JaxmodBackend"]

_WRAPPED = ("reshape", "transpose", "reduce", "stack_on_zeroth_dimension", "add_axis",
            "tile", "concat", "einsum", "arange")  # fmt: skip


def _delegate(name: str) -> Any:
    base = getattr(_backends.JaxBackend, name)

    def op(self: Any, *args: Any) -> Any:
        return wrap(base(self, *unwrap_tree(args)))

    op.__name__ = op.__qualname__ = name
    return op


class JaxmodBackend(_backends.JaxBackend):
    """einops on jaxmod Tensors (the JAX backend, Tensors in and out)."""

    framework_name = "jaxmod"

    def is_appropriate_type(self, tensor: Any) -> bool:
        return is_tensor(tensor)

    def from_numpy(self, x: Any) -> Any:
        return wrap(self.np.asarray(x))

    def to_numpy(self, x: Any) -> Any:
        return self.onp.asarray(unwrap_tree(x))

    def shape(self, x: Any) -> Any:
        return tuple(unwrap_tree(x).shape)

    def is_float_type(self, x: Any) -> bool:
        return super().is_float_type(unwrap_tree(x))

    for _n in _WRAPPED:
        locals()[_n] = _delegate(_n)
    del _n
