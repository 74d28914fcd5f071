"""The trace context: structure version, per-thread trace depths, the call lock, named errors.

- **Structure version.** One global counter, bumped by every structural change (a
  submodule or parameter registered, ``train()``/``eval()``, a hook added, a plain module
  attribute changed, an optimizer option that shapes its step); compiled plans and cached
  graph walks compare it. Changing a box's *value* never bumps it.
- **Trace depths** (thread-local): ``jit_depth`` counts jaxmod.jit traces in progress,
  ``lift_depth`` every jaxmod transform that has swapped state into cells.
- **The call lock.** One re-entrant lock serialises jaxmod.jit calls across threads (they
  swap values into shared Python objects; docs/transforms.md, "Threads").
"""

from __future__ import annotations

import threading
from typing import Any

import jax
import numpy as np

__all__ = [
    "StaleStateError", "TracerLeakError", "TraceError", "NeedsLift", "bump", "version", "ctx",
    "call_lock", "is_tracer", "is_array", "trace_is_top_level",
]  # fmt: skip

_version = 0


def bump() -> None:
    """Record a structural change somewhere (compiled plans and graph walks re-check)."""
    global _version
    _version += 1


def version() -> int:
    """The global structure version."""
    return _version


class _Context(threading.local):
    """Per-thread trace state; the class attributes are each thread's starting values."""

    jit_depth = 0  # jaxmod.jit traces in progress in this thread
    lift_depth = 0  # jaxmod transforms that swapped state into cells, jit included
    describe: Any = None  # names an unlifted cell (set by the innermost jaxmod.jit trace)


ctx = _Context()
call_lock = threading.RLock()


class StaleStateError(RuntimeError):
    """A state cell was read inside a compiled function that did not lift it.

    Its value would be baked in as a constant and go stale. A RuntimeError (as before)."""


class TracerLeakError(RuntimeError):
    """A traced value would outlive the trace (stored where jaxmod.jit does not restore)."""


class TraceError(RuntimeError):
    """Python code needed a concrete value where jaxmod.jit only has a traced one."""


class NeedsLift(BaseException):
    """Raised while tracing under jaxmod.jit when a stateful object turns out to be needed
    (a BaseException: ``except Exception`` in user code does not swallow it). jaxmod.jit adds
    ``obj`` (if not None) to the lifted state, calls ``then`` (if given) and traces again."""

    def __init__(self, obj: Any, then: Any = None) -> None:
        super().__init__(f"{obj!r} must be lifted as state" if obj is not None else "retrace")
        self.obj = obj
        self.then = then


Tracer = jax.core.Tracer


def is_tracer(x: Any) -> bool:
    """Whether ``x`` is a JAX tracer (a value being traced, not a concrete array)."""
    return isinstance(x, Tracer)


def is_array(x: Any) -> bool:
    """Whether ``x`` is an array value (JAX, numpy or traced) rather than a box or object."""
    return isinstance(x, (jax.Array, np.ndarray, Tracer))


# Whether no JAX transformation is being traced: private (jax has no public way to ask),
# tested on jax 0.10 and 0.11. Where it has moved, importing jaxmod fails loudly instead of
# silently disabling the guard that stops a generator's key freezing into a jax.jit trace.
try:
    from jax._src.core import trace_ctx as _trace_ctx

    trace_is_top_level = _trace_ctx.is_top_level
    trace_is_top_level()
except Exception as e:  # pragma: no cover - depends on the installed jax
    raise ImportError(
        f"jaxmod needs jax._src.core.trace_ctx.is_top_level, which jax {jax.__version__} "
        "does not have; install a jax version jaxmod supports (see pyproject.toml)"
    ) from e
