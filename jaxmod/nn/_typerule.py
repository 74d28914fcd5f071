"""torch's type rule for the built-in layers: ``jaxmod.Tensor`` in, ``jaxmod.Tensor`` out.

A layer's ``forward`` computes on ``jax.Array``s. :func:`tensor_forwards` wraps the
``forward`` of every layer class of a module with :func:`jaxmod._tensor.tensor_op`: when
any argument is a Tensor, the Tensors are unwrapped, ``forward`` runs on arrays, and the
arrays it returns come back as Tensors; with array arguments nothing changes. So torch
code after a layer (``self.conv(x).size()``, ``out.view(B, -1)``) has torch's methods,
and jnp code keeps getting plain arrays.

Containers (``Sequential``, ``ModuleList``, ``ModuleDict``) are not wrapped: they pass
Tensors on to their children, which may be user modules written for Tensors.
"""

from __future__ import annotations

from typing import Any

from jaxmod._tensor import tensor_op
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
        if forward is not None:
            obj.forward = tensor_op(forward)  # a forward already wrapped stays as it is
