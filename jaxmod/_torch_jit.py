"""``torch.jit``'s helpers, as no-ops, on :func:`jaxmod.jit` (``import jaxmod as torch``).

Model files written for TorchScript decorate methods (``@torch.jit.unused``,
``@torch.jit.ignore``, ``@torch.jit.export``, ``@torch.jit._overload_method``) and branch
on ``torch.jit.is_scripting()`` / ``torch.jit.is_tracing()``. jaxmod has no TorchScript:
``jaxmod.jit`` compiles with XLA and traces the Python code as written, so every
decorator here returns what it was given and both predicates are ``False`` (as in torch's
eager mode and under ``torch.compile``, the closest analogue of ``jaxmod.jit``). Keeping
the decorated code eager-Python is what makes it run unchanged.

``torch.jit.trace``, ``save`` and ``load`` produce or read TorchScript programs, which
jaxmod cannot; they raise :class:`NotImplementedError` naming the jaxmod tool to use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

__all__ = [
    "Final",
    "ScriptFunction",
    "ScriptModule",
    "annotate",
    "export",
    "ignore",
    "interface",
    "is_scripting",
    "is_tracing",
    "load",
    "save",
    "script",
    "script_if_tracing",
    "trace",
    "unused",
    "_overload",
    "_overload_method",
]

T = TypeVar("T")


def is_scripting() -> bool:
    """``False``: jaxmod never runs code as TorchScript."""
    return False


def is_tracing() -> bool:
    """``False``, as in torch outside ``torch.jit.trace`` (also under ``torch.compile``).

    ``jaxmod.jit`` traces with abstract values, but the code it traces is the eager
    Python code, so the eager branch of ``if torch.jit.is_tracing():`` is the right one.
    """
    return False


def script(obj: T, optimize: Any = None, _frames_up: int = 0, _rcb: Any = None,
           example_inputs: Any = None) -> T:  # fmt: skip
    """Return ``obj`` unchanged (a Module, function or class keeps running as Python).

    Compile it with ``jaxmod.jit`` / ``Module.compile()`` instead.
    """
    return obj


def unused(fn: T) -> T:
    """Return ``fn`` unchanged (TorchScript would replace its body with a raise)."""
    return fn


def ignore(drop: Any = False, **kwargs: Any) -> Any:
    """``@torch.jit.ignore`` or ``@torch.jit.ignore(drop=True)``: leave the function as is."""
    if callable(drop):
        return drop
    return lambda fn: fn


def export(fn: T) -> T:
    """Return ``fn`` unchanged (TorchScript would compile it as an extra entry point)."""
    return fn


def interface(obj: T) -> T:
    """Return the class unchanged (a TorchScript interface declaration)."""
    return obj


def script_if_tracing(fn: T) -> T:
    """Return ``fn`` unchanged."""
    return fn


def _overload(func: T) -> T:
    """Return the overload stub unchanged; the later full definition replaces it."""
    return func


def _overload_method(func: T) -> T:
    """Return the method overload stub unchanged; the later full definition replaces it."""
    return func


def annotate(the_type: Any, the_value: T) -> T:
    """Return ``the_value`` (TorchScript reads ``the_type`` as a type hint)."""
    return the_value


class ScriptModule:
    """Stands for ``torch.jit.ScriptModule`` in ``isinstance`` checks: nothing is one."""


class ScriptFunction:
    """Stands for ``torch.jit.ScriptFunction`` in ``isinstance`` checks: nothing is one."""


def _no_torchscript(name: str, fix: str) -> Callable[..., Any]:
    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"torch.jit.{name} makes or reads a TorchScript program, which jaxmod does not "
            f"have. {fix}"
        )

    raiser.__name__ = raiser.__qualname__ = name
    raiser.__doc__ = f"Raises NotImplementedError: {fix}"
    return raiser


trace = _no_torchscript(
    "trace", "Compile the function or Module with jaxmod.jit (or Module.compile()); "
    "to export a compiled program, use jax.export on the jitted function."
)  # fmt: skip
save = _no_torchscript(
    "save", "Save the weights with jaxmod.save(model.state_dict(), path) instead."
)
load = _no_torchscript(
    "load", "Build the Module in Python and load its weights with jaxmod.load instead."
)


def attach(jit: Callable) -> None:
    """Give the ``jaxmod.jit`` function the ``torch.jit`` attributes (it stays callable)."""
    for name in __all__:
        setattr(jit, name, globals()[name])
