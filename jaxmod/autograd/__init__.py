"""``torch.autograd`` on jaxmod: :class:`Function` (custom backward, on
``jax.custom_vjp``), :class:`Variable` (torch's deprecated identity wrapper) and the
gradient-mode context managers.

jaxmod has no autograd tape: ``torch.autograd.grad`` and ``torch.autograd.backward``
raise an error that shows the :func:`jaxmod.grad` / :func:`jaxmod.value_and_grad` form.
"""

from __future__ import annotations

import contextlib
from typing import Any

import jax.numpy as jnp

from jaxmod._autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from jaxmod._tensor import base as _b
from jaxmod._tensor.errors import BACKWARD
from jaxmod._tensor.factories import as_tensor
from jaxmod.autograd import function
from jaxmod.autograd.function import Function, FunctionCtx, once_differentiable

__all__ = [
    "Function", "FunctionCtx", "Variable", "backward", "detect_anomaly", "enable_grad",
    "function", "grad", "is_grad_enabled", "no_grad", "once_differentiable",
    "set_detect_anomaly", "set_grad_enabled",
]  # fmt: skip

GRAD = """\
torch.autograd.grad(outputs, inputs) needs torch's autograd tape, which jaxmod does not \
have: JAX computes gradients by transforming a function. Write the outputs as a function \
of the inputs and differentiate it:

    def f(x):
        return (x ** 2).sum()
    dx = jaxmod.grad(f)(x)                  # torch.autograd.grad(f(x), x)[0]
    loss, grads = jaxmod.value_and_grad(loss_fn)(model)   # for a model's parameters

(pass argnums=(0, 1) for several inputs; see docs/porting.md, "The training loop")."""


def grad(outputs: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
    """Not available (no tape): raises ``RuntimeError`` showing :func:`jaxmod.grad`."""
    raise RuntimeError(GRAD)


def backward(tensors: Any, *args: Any, **kwargs: Any) -> None:
    """Not available (no tape): raises the ``loss.backward()`` error, showing
    :func:`jaxmod.value_and_grad`."""
    raise RuntimeError(BACKWARD)


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
