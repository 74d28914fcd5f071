"""``torch.compiler`` and ``torch._dynamo``: the calls model files make around
``torch.compile``, answered for jaxmod, where compiling is ``jaxmod.jit`` / ``compile``.

``disable`` / ``allow_in_graph`` / ``assume_constant_result`` return the function (jaxmod
traces Python, so nothing needs to be let in or kept out); ``is_compiling()`` says whether
a ``jaxmod.jit`` (or other JAX) trace is running; ``reset()`` clears JAX's compiled
caches; ``config`` takes the flags scripts set (``suppress_errors``, ``cache_size_limit``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import jax

from jaxmod._core import state as _state
from jaxmod.transforms import compile  # noqa: F401  (torch.compiler.compile)

__all__ = ["compile", "disable", "allow_in_graph", "assume_constant_result", "is_compiling",
           "is_dynamo_compiling", "is_exporting", "reset", "config", "list_backends",
           "mark_dynamic", "mark_static", "optimize"]  # fmt: skip

config = types.SimpleNamespace(
    suppress_errors=False, cache_size_limit=8, verbose=False, capture_scalar_outputs=False,
    automatic_dynamic_shapes=True, optimize_ddp=True,
)  # fmt: skip


def _passthrough(fn: Callable | None = None, *args: Any, **kwargs: Any) -> Any:
    if fn is None or not callable(fn):
        return lambda f: f
    return fn


disable = allow_in_graph = assume_constant_result = _passthrough


def is_compiling() -> bool:
    """Whether a compiled step (``jaxmod.jit``) is being traced now."""
    return _state.ctx.jit_depth > 0 or not _state.trace_is_top_level()


is_dynamo_compiling = is_compiling


def is_exporting() -> bool:
    """False: ``jaxmod.export`` traces like any compile (see :func:`is_compiling`)."""
    return False


def reset() -> None:
    """Forget compiled programs (``jax.clear_caches``); the next calls compile again."""
    jax.clear_caches()


def list_backends(exclude_tags: Any = None) -> list[str]:
    """The one backend: XLA."""
    return ["xla"]


def mark_dynamic(t: Any, index: Any, **kwargs: Any) -> None:
    """No-op: each input shape compiles its own program."""


mark_static = mark_dynamic


def optimize(backend: Any = "inductor", **kwargs: Any) -> Callable[[Callable], Any]:
    """``torch._dynamo.optimize(...)(fn)``: ``jaxmod.compile(fn)``."""
    return lambda fn: compile(fn)
