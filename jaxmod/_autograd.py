"""Gradient mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``is_grad_enabled``.

Inside ``no_grad`` the eager autograd tape (``loss.backward()``) records nothing, module
outputs are wrapped in ``jax.lax.stop_gradient`` (so functional gradients stop there too),
and in-place changes of parameters (``p.fill_``, ``nn.init``) are allowed, as in torch.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]

F = TypeVar("F", bound=Callable[..., Any])

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether module outputs carry gradients (False inside ``no_grad``)."""
    return getattr(_state, "enabled", True)


class _GradMode:
    mode: bool

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # torch's ``@torch.no_grad`` without parentheses: the function is the argument
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]) and not kwargs:
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _state.enabled = self.mode

    def __exit__(self, *exc: Any) -> None:
        _state.enabled = self.prev

    def __call__(self, fn: F) -> F:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = is_grad_enabled()
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        # read by Module.__call__: a ``forward`` decorated with ``@no_grad()`` records
        # nothing on the autograd tape (its outputs do not require grad, as in torch)
        wrapper._jaxmod_grad_mode = mode  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]


def forward_grad_mode(fn: Any) -> bool:
    """False when ``fn`` (a module's ``forward``) is decorated with ``@no_grad()`` /
    ``@inference_mode()``; True otherwise."""
    return getattr(fn, "_jaxmod_grad_mode", True)


class set_grad_enabled(_GradMode):
    """Context manager and decorator that sets the gradient mode, like torch's.

    As in torch, the mode takes effect when the object is created (so it works as a plain
    call too); leaving the block restores the previous mode.
    """

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _state.enabled = self.mode

    def __enter__(self) -> None:
        return None

    def __call__(self, fn: F) -> F:
        _state.enabled = self.prev
        return super().__call__(fn)


class no_grad(_GradMode):
    """Disable gradients: ``with jaxmod.no_grad():`` or ``@jaxmod.no_grad()``.

    Module outputs computed inside are cut from autodiff with ``stop_gradient``.
    """

    mode = False


class enable_grad(_GradMode):
    """Re-enable gradients inside a ``no_grad`` block."""

    mode = True
