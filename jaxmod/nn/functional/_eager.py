"""Eager kernels: one compiled program per functional call signature, outside traces.

JAX runs eager code op by op, compiling one small XLA program the first time it meets
each (primitive, shapes, parameters). A layer's forward is tens of primitives and its
gradient as many again, so the first eager forward of a model compiles hundreds of
programs (DenseNet-121: minutes). :func:`eager_kernel` runs a functional kernel
(``conv2d``, ``batch_norm``, ``relu``, ...) through ``jax.jit`` instead when no staging
trace is active: its arrays are the compiled program's arguments, everything else
(stride, padding, eps, the autocast policy) is part of its cache key, so one call
signature compiles once, layers of one configuration share it, and an eager gradient
(``jaxmod.grad`` without jit: ``jax.vjp`` over eager calls) differentiates one ``pjit``
per kernel instead of each primitive.

Under a staging trace (``jaxmod.jit``, ``jax.jit``, ``jax.grad`` inside ``jax.jit``,
``vmap``, ...) the plain body runs unchanged, so traced programs are exactly as before.
A kernel whose body needs concrete values of its arrays (a value-dependent check) is
found out on its first call (JAX raises a concretization error while tracing it) and
from then on always runs op by op; a call with an argument that is neither an array nor
a hashable constant (a callable, a Generator) runs op by op too. A call whose trace raises
(bad input) runs the plain body, which raises the same error as before, without JAX's
frames and notes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxmod._core import state
from jaxmod._core.cells import Variable
from jaxmod.amp._state import S as _amp

__all__ = ["eager_kernel", "is_eager"]

_Tracer = jax.core.Tracer
_ARRAY = (jax.Array, np.ndarray, _Tracer)
_CONST = (int, float, bool, str, complex, type(None), np.generic, np.dtype, type)
_CONCRETE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)


def _trace_probe() -> Callable[[], bool] | None:
    """Whether every active JAX trace evaluates eagerly (autodiff over eager values),
    from jax's private trace stack (``jax._src.core``; jax has no public way to ask). Where
    it has moved, eager kernels are off: every call runs op by op, as before them."""
    try:
        from jax._src import core as jcore
        from jax._src.interpreters import ad

        trace_ctx, eval_trace, top_axis_env = jcore.trace_ctx, jcore.eval_trace, jcore.top_axis_env
        autodiff = (ad.JVPTrace, ad.LinearizeTrace)
        trace_ctx.trace  # noqa: B018 - fails here, not at the first call, where it moved
    except Exception:  # pragma: no cover - depends on the installed jax
        return None

    def eager() -> bool:
        t = trace_ctx.trace
        if t is eval_trace:
            return trace_ctx.axis_env is top_axis_env
        while isinstance(t, autodiff):
            t = t.parent_trace
        return t is eval_trace and trace_ctx.axis_env is top_axis_env

    return eager


_probe = _trace_probe()


def is_eager() -> bool:
    """Whether a kernel called now runs eagerly (no jaxmod.jit and no staging JAX trace)."""
    return _probe is not None and not state.ctx.jit_depth and _probe()


def _static(v: Any) -> Any:
    """A constant's cache-key entry: its type with its value (``1``, ``1.0`` and ``True``
    compile apart); floats by ``repr`` (``-0.0`` is not ``0.0``, a NaN equals itself)."""
    return (type(v), repr(v) if isinstance(v, float) else v)


class _Spec:
    """The static part of a call: the argument tree, its constants and the autocast policy."""

    __slots__ = ("tree", "consts", "key", "_hash")

    def __init__(self, tree: Any, consts: tuple, key: tuple) -> None:
        self.tree, self.consts, self.key = tree, consts, key
        self._hash = hash(key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Spec) and self.key == other.key


def eager_kernel(fn: Callable) -> Callable:
    """Run ``fn`` through one compiled program per call signature when called eagerly
    (see the module docstring); under any staging trace, call ``fn`` itself."""

    def body(dyn: list, spec: _Spec) -> Any:
        it = iter(dyn)
        leaves = [next(it) if c is _DYN else c for c in spec.consts]
        args, kwargs = jax.tree_util.tree_unflatten(spec.tree, leaves)
        return fn(*args, **kwargs)

    compiled = jax.jit(body, static_argnums=1)
    plain = [False]  # set once fn turned out to need concrete values

    @functools.wraps(fn)
    def kernel(*args: Any, **kwargs: Any) -> Any:
        if plain[0] or not is_eager():
            return fn(*args, **kwargs)
        leaves, tree = jax.tree_util.tree_flatten((args, kwargs), is_leaf=_is_box)
        dyn, consts, key = [], [], [tree, _amp.policy]
        for leaf in leaves:
            if isinstance(leaf, Variable):
                leaf = leaf._value
            if isinstance(leaf, _ARRAY):
                dyn.append(leaf)
                consts.append(_DYN)
                key.append(_DYN_KEY)
            elif isinstance(leaf, _CONST):
                consts.append(leaf)
                key.append(_static(leaf))
            else:
                return fn(*args, **kwargs)
        try:
            spec = _Spec(tree, tuple(consts), tuple(key))
        except TypeError:  # an unhashable constant (a numpy scalar of an odd kind)
            return fn(*args, **kwargs)
        try:
            return compiled(dyn, spec)
        except _CONCRETE_ERRORS:
            plain[0] = True
        except Exception:
            pass  # bad input: the plain body raises it as op by op did (no jax frames/notes)
        return fn(*args, **kwargs)

    kernel.__eager_body__ = fn  # type: ignore[attr-defined]
    return kernel


class _Dyn:
    def __repr__(self) -> str:
        return "<array>"


_DYN = _Dyn()
_DYN_KEY = ("array",)


def _is_box(x: Any) -> bool:
    return isinstance(x, Variable)
