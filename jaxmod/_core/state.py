"""The trace context: structure version, per-thread trace depths, the call lock, named errors.

Everything the rest of the kernel consults to know "are we inside a jaxmod transform, and
is the structure it compiled for still current" lives here, so that no layer above has to
import another to ask.

- **Structure version.** One global counter, bumped by every structural change (a
  submodule or parameter registered, ``train()``/``eval()``, a hook added, a plain
  attribute of a module changed, an optimizer option that shapes its step). Compiled
  plans and cached graph walks compare it to know they are still valid. Changing a
  box's *value* never bumps it.
- **Trace depths** (per thread): ``jit_depth`` counts jaxmod.jit traces in progress,
  ``lift_depth`` every jaxmod transform that has swapped state into cells. Thread-local,
  so that eager code in one thread is not mistaken for traced code of another.
- **The call lock.** jaxmod.jit swaps values into shared Python objects; one re-entrant
  lock serialises its calls across threads (see docs/transforms.md, "Threads").
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

    Its current value would be baked into the compiled code as a constant and go stale
    when the cell changes. A RuntimeError, as jaxmod raised before this class existed.
    """


class TracerLeakError(RuntimeError):
    """A traced value would outlive the trace (stored where jaxmod.jit does not restore)."""


class TraceError(RuntimeError):
    """Python code needed a concrete value where jaxmod.jit only has a traced one."""


class NeedsLift(BaseException):
    """Raised while tracing under jaxmod.jit when a stateful object turns out to be needed.

    A BaseException, so that ``except Exception`` in user code does not swallow it.
    jaxmod.jit catches it, adds ``obj`` (if not None) to the lifted state, calls ``then``
    (if given; with concrete values back in every cell) and traces again.
    """

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


def _top_level_probe() -> Any:
    """``jax._src.core.trace_ctx.is_top_level`` (private: jax has no public way to ask
    whether a transformation is being traced). Tested on jax 0.10 and 0.11; where it has
    moved, importing jaxmod fails loudly instead of silently disabling the guard that
    stops a generator's key from freezing into a plain ``jax.jit`` trace."""
    try:
        from jax._src import core as _jcore

        probe = _jcore.trace_ctx.is_top_level
        probe()
    except Exception as e:  # pragma: no cover - depends on the installed jax
        raise ImportError(
            f"jaxmod needs jax._src.core.trace_ctx.is_top_level, which jax {jax.__version__} "
            "does not have; install a jax version jaxmod supports (see pyproject.toml)"
        ) from e
    return probe


trace_is_top_level = _top_level_probe()
