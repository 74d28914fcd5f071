"""``torch.autograd.Function`` on ``jax.custom_vjp``: a custom forward and backward.

A subclass defines ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` as static
methods and is called through ``MyFunction.apply(*args)``. Under :func:`jaxmod.grad` /
:func:`jaxmod.value_and_grad` (or any JAX transform) ``backward`` supplies the
vector-Jacobian product of ``forward``. ``ctx`` keeps what ``forward`` leaves for
``backward``: ``ctx.save_for_backward(*tensors)`` / ``ctx.saved_tensors`` and any other
attribute (``ctx.alpha = alpha``); arrays among them travel as JAX residuals, everything
else is kept as it is.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._core.cells import Variable as _Box
from jaxmod._tensor import base as _b
from jaxmod._tensor import tape_record as _tape_record

__all__ = ["Function", "FunctionCtx", "once_differentiable"]

_Tracer = jax.core.Tracer


def _is_tensor_like(x: Any) -> bool:
    return _b.is_tensor(x) or isinstance(x, (jax.Array, _Tracer, _Box, _b.TensorBase))


def _wants_tensor(x: Any) -> bool:
    return _b.is_tensor(x) or isinstance(x, (_Box, _b.TensorBase))


class FunctionCtx:
    """The ``ctx`` a :class:`Function`'s ``forward`` and ``backward`` share."""

    needs_input_grad: tuple[bool, ...]

    def save_for_backward(self, *tensors: Any) -> None:
        """Keep ``tensors`` (or ``None``s) for ``backward``'s ``ctx.saved_tensors``."""
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """The tensors given to ``save_for_backward``."""
        return tuple(getattr(self, "_saved", ()))

    saved_variables = saved_tensors

    def mark_non_differentiable(self, *args: Any) -> None:
        """Accepted for torch compatibility; the gradients of those outputs are ignored."""

    def mark_dirty(self, *args: Any) -> None:
        """Accepted for torch compatibility (jaxmod's in-place ops rebind, never alias)."""

    def set_materialize_grads(self, value: bool) -> None:
        """Accepted for torch compatibility: ``backward`` always gets zero-filled arrays."""


def _split(ctx: FunctionCtx) -> tuple[list[Any], Any]:
    """``ctx``'s attributes as (array leaves, everything needed to rebuild the rest)."""
    state = {k: v for k, v in vars(ctx).items()}
    leaves, tree = jax.tree_util.tree_flatten(state, is_leaf=_is_tensor_like)
    arrays, static = [], []
    for leaf in leaves:
        if _is_tensor_like(leaf):
            static.append(("tensor" if _wants_tensor(leaf) else "array", len(arrays)))
            arrays.append(_b.unwrap(leaf))
        else:
            static.append(("static", leaf))
    return arrays, (tree, static)


def _rebuild(spec: Any, arrays: list[Any]) -> FunctionCtx:
    tree, static = spec
    leaves = []
    for kind, v in static:
        if kind == "static":
            leaves.append(v)
        else:
            leaves.append(_b.new(arrays[v]) if kind == "tensor" else arrays[v])
    ctx = FunctionCtx()
    vars(ctx).update(jax.tree_util.tree_unflatten(tree, leaves))
    return ctx


def _sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """``g`` summed down to ``shape`` where ``shape`` broadcasts to ``g``'s shape (torch
    accepts such gradients), else ``None``."""
    try:
        if jnp.broadcast_shapes(shape, g.shape) != g.shape:
            return None
    except ValueError:
        return None
    lead = g.ndim - len(shape)
    g = g.sum(tuple(range(lead))) if lead else g
    axes = tuple(i for i, (s, n) in enumerate(zip(shape, g.shape)) if s == 1 and n != 1)
    return g.sum(axes, keepdims=True) if axes else g


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


class _FunctionMeta(type):
    def __init__(cls, name: str, bases: tuple, attrs: dict) -> None:
        super().__init__(name, bases, attrs)
        cls._backward_name = f"{name}Backward"


class Function(metaclass=_FunctionMeta):
    """Base class for custom differentiable operations (``torch.autograd.Function``).

    Example:
        >>> class GradReverse(jaxmod.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x, alpha):
        ...         ctx.alpha = alpha
        ...         return x.view_as(x)
        ...     @staticmethod
        ...     def backward(ctx, grad_output):
        ...         return grad_output.neg() * ctx.alpha, None
        >>> y = GradReverse.apply(x, 0.5)

    ``backward`` returns one gradient per ``forward`` argument (``None`` for non-tensor
    arguments, or for a tensor whose gradient is zero). ``ctx.needs_input_grad`` is
    true for each floating-point tensor argument: JAX decides later which inputs are
    differentiated, so jaxmod cannot know which ones torch would mark.
    """

    generate_vmap_rule = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn(
            f"{self.__class__} should not be instantiated. Methods on autograd functions "
            "are all static, so you should invoke them on the class itself. "
            "Instantiating an autograd function will raise an "
            "error in a future version of PyTorch.",
            DeprecationWarning,
            stacklevel=2,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. "
            "Please use new-style autograd function with static forward method. "
            "(Example: https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)"
        )

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        """The operation: override with ``forward(ctx, *args)`` (or ``forward(*args)``
        together with ``setup_context``)."""
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function."
        )

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> Any:
        """Optional: fill ``ctx`` from the inputs and output of a ``forward(*args)``."""
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        """The vector-Jacobian product: one gradient per ``forward`` argument."""
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD."
        )

    vjp = backward

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` on ``args``; under a JAX transform, ``backward`` gives its
        gradients (through ``jax.custom_vjp``). Eagerly, with inputs that require grad,
        the call is recorded on the autograd tape as one operation, so ``loss.backward()``
        runs this class's ``backward`` (``grad_fn.name()`` is ``"<Class>Backward"``)."""
        if _tape_record.recording() and _tape_record.marked(args, kwargs):
            return _tape_record.record(
                functools.partial(_apply, cls),
                cls.__name__,
                args,
                kwargs,
                name=f"{cls.__name__}Backward",
            )
        return _apply(cls, *args, **kwargs)


def _apply(cls: type, *args: Any, **kwargs: Any) -> Any:
    """``cls.apply`` itself: ``forward`` now, ``backward`` as the ``jax.custom_vjp`` rule."""
    separate = cls.setup_context is not Function.setup_context
    if separate:
        bound = inspect.signature(cls.forward).bind(*args, **kwargs)
        bound.apply_defaults()
        args, kwargs = bound.args, bound.kwargs
    idx = [i for i, a in enumerate(args) if _is_tensor_like(a)]
    wrap_in = [_wants_tensor(args[i]) for i in idx]
    wrap_out = any(wrap_in)
    arrays = [jnp.asarray(_b.unwrap(args[i])) for i in idx]
    needs = tuple(
        i in idx and jnp.issubdtype(jnp.asarray(_b.unwrap(a)).dtype, jnp.inexact)
        for i, a in enumerate(args)
    )
    spec: dict[str, Any] = {}

    def run(arrs: tuple[Any, ...]) -> tuple[FunctionCtx, Any]:
        call = list(args)
        for i, w, a in zip(idx, wrap_in, arrs):
            call[i] = _b.new(a) if w else a
        ctx = FunctionCtx()
        ctx.needs_input_grad = needs
        if separate:
            out = cls.forward(*call, **kwargs)
            cls.setup_context(ctx, tuple(call), out)
        else:
            out = cls.forward(ctx, *call, **kwargs)
        return ctx, out

    @jax.custom_vjp
    def f(*arrs: Any) -> Any:
        return _b.unwrap_tree(run(arrs)[1])

    def fwd(*arrs: Any) -> Any:
        ctx, out = run(arrs)
        res, spec["ctx"] = _split(ctx)
        spec["tuple_out"] = isinstance(out, tuple)
        return _b.unwrap_tree(out), res

    def bwd(res: Any, ct: Any) -> Any:
        ctx = _rebuild(spec["ctx"], res)
        cts = ct if spec["tuple_out"] else (ct,)
        cts = [_b.new(c) if wrap_out else c for c in cts]
        grads = cls.backward(ctx, *cts)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) != len(args):
            raise RuntimeError(
                f"function {cls._backward_name} returned an incorrect number of gradients "
                f"(expected {len(args)}, got {len(grads)})"
            )
        out = []
        for k, i in enumerate(idx):
            g = grads[i]
            primal = arrays[k]
            if g is None:
                out.append(None)
                continue
            g = jnp.asarray(_b.unwrap(g))
            if g.shape != primal.shape:
                g = _sum_to(g, primal.shape)
                if g is None:
                    raise RuntimeError(
                        f"Function {cls._backward_name} returned an invalid gradient at "
                        f"index {i} - got {_shape_text(grads[i].shape)} but expected "
                        f"shape compatible with {_shape_text(primal.shape)}"
                    )
            if not jnp.issubdtype(primal.dtype, jnp.inexact):
                out.append(None)
            else:
                out.append(g.astype(primal.dtype))
        return tuple(out)

    f.defvjp(fwd, bwd)
    return _b.wrap(f(*arrays)) if wrap_out else f(*arrays)


def once_differentiable(fn: Callable) -> Callable:
    """torch's decorator for a ``backward`` that is not itself differentiable; in jaxmod
    ``backward`` runs as JAX code, so this returns ``fn`` unchanged."""
    return fn
