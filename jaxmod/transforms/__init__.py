"""Stateful transforms: ``jit``, ``grad``, ``value_and_grad``, ``vmap``, ``checkpoint``.

All of them rest on the kernel's two pieces (``jaxmod._core.lifting``): ``discover`` finds
the state a call reaches, ``lift`` runs the user's function unchanged as a pure function of
that state (swap in, run, read back, restore in ``finally``). JAX sees a pure function of
arrays; the user's code keeps its in-place, torch-style form.
"""

from __future__ import annotations

import functools
from typing import Any

from jaxmod._core.state import StaleStateError, TraceError, TracerLeakError
from jaxmod.nn.module import Module
from jaxmod.transforms.autodiff import Grads, grad, value_and_grad
from jaxmod.transforms.jit import Jit, OutOfMemoryError, StateLostError, jit
from jaxmod.transforms.maps import checkpoint, scan_layers, stack_modules, vmap

__all__ = [
    "jit", "Jit", "grad", "value_and_grad", "Grads", "vmap", "checkpoint", "scan_layers",
    "stack_modules", "compile", "TraceError", "StaleStateError", "TracerLeakError",
    "OutOfMemoryError", "StateLostError",
]  # fmt: skip


def _compile_module(module: Module, **jit_kwargs: Any) -> None:
    def run(m: Module, *args: Any, **kwargs: Any) -> Any:
        return m(*args, **kwargs)

    # no donation by default: the autograd tape keeps the state a recorded forward ran with
    # (loss.backward() after a compiled model's forward replays the plain module call)
    jit_kwargs.setdefault("donate", False)
    module.__dict__["_jaxmod_compiled"] = jit(run, **jit_kwargs)


def compile(model: Any = None, **kwargs: Any) -> Any:
    """``torch.compile`` for jaxmod: compile a Module in place (and return it), or jit a function.

    Extra torch.compile options (``mode=``, ``fullgraph=``, ``backend=``...) are accepted
    and ignored: XLA always compiles the whole graph.
    """
    jit_kwargs = {k: v for k, v in kwargs.items() if k in ("donate", "static_argnames")}
    if model is None:
        return functools.partial(compile, **kwargs)
    if isinstance(model, Module):
        _compile_module(model, **jit_kwargs)
        return model
    return jit(model, **jit_kwargs)
