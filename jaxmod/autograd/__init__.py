"""``torch.autograd`` on jaxmod: :class:`Function` (custom backward, on
``jax.custom_vjp``), :class:`Variable` (torch's deprecated identity wrapper), the
gradient-mode context managers and :mod:`~jaxmod.autograd.functional` (Jacobians, Hessians
and vector products of a function).

``torch.autograd.grad`` and ``torch.autograd.backward`` run on jaxmod's eager autograd
tape (``jaxmod._tensor.tape``): operations on parameters and ``requires_grad`` tensors
outside ``no_grad`` and jaxmod transforms are recorded, and replayed under ``jax.vjp``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import jax.numpy as jnp

from jaxmod._autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from jaxmod._tensor import base as _b
from jaxmod._tensor import tape as _tape
from jaxmod._tensor.factories import as_tensor
from jaxmod.autograd import function, functional
from jaxmod.autograd.function import Function, FunctionCtx, once_differentiable

is_replaying = _tape.is_replaying

__all__ = [
    "Function", "FunctionCtx", "Variable", "backward", "detect_anomaly", "enable_grad",
    "function", "functional", "grad", "is_grad_enabled", "is_replaying", "no_grad",
    "once_differentiable", "set_detect_anomaly", "set_grad_enabled",
]  # fmt: skip


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: Any = None,
         create_graph: bool = False, allow_unused: Any = None, **kwargs: Any) -> tuple:  # fmt: skip
    """``torch.autograd.grad``: the gradients of eagerly computed ``outputs`` with respect
    to ``inputs`` (parameters, ``requires_grad`` tensors or computed tensors), returned."""
    return _tape.grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                      allow_unused, **kwargs)  # fmt: skip


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: Any = None,
             create_graph: bool = False, inputs: Any = None, **kwargs: Any) -> None:  # fmt: skip
    """``torch.autograd.backward``: add the gradients of ``tensors`` into the ``.grad`` of
    the leaves they were computed from (``tensor.backward()`` for several tensors)."""
    _tape.backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


class _VariableMeta(type):
    def __instancecheck__(cls, other: Any) -> bool:
        return _b.is_tensor(other)


class Variable(metaclass=_VariableMeta):
    """torch's deprecated ``Variable(data, requires_grad=False)``: returns a Tensor
    holding ``data`` (``isinstance(t, Variable)`` holds for every Tensor, as in torch)."""

    def __new__(  # type: ignore[misc]
        cls, data: Any = None, requires_grad: bool = False, volatile: bool = False
    ) -> Any:
        value = jnp.zeros((0,), jnp.float32) if data is None else _b.unwrap(as_tensor(data))
        t = _b.new(value)
        return t.requires_grad_(True) if requires_grad else t


class detect_anomaly(contextlib.ContextDecorator):
    """Accepted for torch compatibility; it changes nothing (there is no backward pass to
    watch; set ``jax.config.update("jax_debug_nans", True)`` to stop at the first NaN)."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


class set_detect_anomaly(detect_anomaly):
    """Accepted for torch compatibility; it changes nothing (see :class:`detect_anomaly`)."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.mode, self.check_nan = mode, check_nan
