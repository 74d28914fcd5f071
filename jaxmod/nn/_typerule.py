"""torch's type rule for the built-in layers: ``jaxmod.Tensor`` in, ``jaxmod.Tensor`` out.

A layer's ``forward`` computes on ``jax.Array``s. :func:`tensor_forwards` wraps the
``forward`` of every layer class of a module with :func:`jaxmod._tensor.tensor_op`: when
any argument is a Tensor, the Tensors are unwrapped, ``forward`` runs on arrays, and the
arrays it returns come back as Tensors; with array arguments nothing changes. So torch
code after a layer (``self.conv(x).size()``, ``out.view(B, -1)``) has torch's methods,
and jnp code keeps getting plain arrays.

A layer constructed with ``inplace=True`` (``nn.ReLU(inplace=True)``, ``nn.Dropout(p,
inplace=True)``, ...) and called with a Tensor writes its result into that Tensor and
returns it, as torch does: code that reads the input again after the layer (a branch taken
from the same activation) sees the new values. A ``jax.Array`` cannot change, so with array
input the result is a new array.

Containers (``Sequential``, ``ModuleList``, ``ModuleDict``) are not wrapped: they pass
Tensors on to their children, which may be user modules written for Tensors.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from jaxmod._tensor import tensor_op
from jaxmod._tensor.base import inplace_result, is_tensor
from jaxmod.nn.module import Module

_SKIP = {"Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}


def tensor_forwards(namespace: dict[str, Any]) -> None:
    """Give every Module class defined in ``namespace`` (a layer file's ``globals()``) whose
    own ``forward`` is not yet wrapped the type rule."""
    for obj in list(namespace.values()):
        if not (isinstance(obj, type) and issubclass(obj, Module)):
            continue
        if obj.__module__ != namespace["__name__"] or obj.__name__ in _SKIP:
            continue
        forward = obj.__dict__.get("forward")
        if forward is None or hasattr(forward, "__wrapped_array_fn__"):
            continue  # a forward already wrapped stays as it is
        typed = tensor_op(forward)
        if "inplace" in inspect.signature(obj.__init__).parameters:
            typed = _inplace_forward(typed)
        obj.forward = typed


def _inplace_forward(forward: Any) -> Any:
    """``forward`` that, on a layer built with ``inplace=True`` and a Tensor input, stores
    its result in that input (see the module docstring)."""

    @functools.wraps(forward)
    def inplace_forward(self: Module, input: Any, *args: Any, **kwargs: Any) -> Any:
        out = forward(self, input, *args, **kwargs)
        if self.inplace and is_tensor(input):
            return inplace_result(input, out)
        return out

    inplace_forward.__wrapped_array_fn__ = forward.__wrapped_array_fn__  # type: ignore[attr-defined]
    return inplace_forward
