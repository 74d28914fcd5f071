"""Eager dispatch: an op on concrete arrays calls a cached ``jax.jit`` of itself.

``jnp.add(a, b)`` spends most of its eager time in Python (argument promotion and checks)
before it reaches XLA; a ``jax.jit``-compiled function called with concrete arrays takes
JAX's C++ fast path instead. :func:`eager_jit` gives an op both: on concrete arrays (and
Python scalars) it calls ``jax.jit(fn)`` -- one compile per shape, dtype and static
arguments, as ``jnp`` itself does -- and on anything else (tracers inside ``jax.jit``,
``jax.grad``, the autograd tape's replay) it calls ``fn`` unchanged, so traced programs are
the same equations as before. Results are identical: the jitted function *is* ``fn``.
A call whose compiled trace raises (bad input) calls ``fn`` itself, which raises the same
error as before, without JAX's frames.

This is the per-op fast path for tensor methods (positional arguments, no pytree walk:
well under a microsecond of Python); whole functional kernels (``conv2d``, ``batch_norm``)
use :mod:`jaxmod.nn.functional._eager`, which keys any argument tree and the autocast
policy, to cut first-call compiles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["eager_jit", "is_concrete"]

_Tracer = jax.core.Tracer
_SCALARS = {int, float, bool, complex, type(None)}
# concrete array classes: jax's ArrayImpl (found without creating an array), and any other
# concrete jax.Array class once seen by is_concrete
_CONCRETE: set[type] = {c for c in jax.Array.__subclasses__() if c.__name__ == "ArrayImpl"}


def is_concrete(a: Any) -> bool:
    """Whether ``a`` is a concrete (non-traced) ``jax.Array``."""
    t = type(a)
    if t in _CONCRETE:
        return True
    if isinstance(a, jax.Array) and not isinstance(a, _Tracer):
        _CONCRETE.add(t)
        return True
    return False


def eager_jit(fn: Callable, n_arrays: int = 1, static_argnums: tuple[int, ...] = ()) -> Callable:
    """``fn`` dispatched through ``jax.jit`` when its first ``n_arrays`` positional arguments
    are concrete arrays or Python scalars (at least one an array) and ``fn`` itself otherwise.

    Arguments at ``static_argnums`` (axes, flags, dtypes) must be hashable; call the
    result positionally.
    """
    jitted = jax.jit(fn, static_argnums=static_argnums, inline=True)

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        any_array = False
        for a in args[:n_arrays]:
            t = type(a)
            if t in _CONCRETE or is_concrete(a):
                any_array = True
            elif t not in _SCALARS:
                return fn(*args)
        if any_array:
            try:
                return jitted(*args)
            except Exception:
                pass  # bad input: the plain call raises it as before (no jax frames/notes)
        return fn(*args)

    return call
