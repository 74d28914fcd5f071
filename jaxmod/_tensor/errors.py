"""Errors with torch's types and messages, and the errors for what JAX cannot do."""

from __future__ import annotations

from typing import Any

from jaxmod._core.state import TraceError

__all__ = ["ShapeError", "dim", "dims", "BACKWARD", "traced", "check_broadcast"]


class ShapeError(RuntimeError, ValueError):
    """Mismatched shapes: a ``RuntimeError`` as in torch, and a ``ValueError`` as in JAX."""


def dim(d: Any, ndim: int) -> int:
    """``d`` as a non-negative dimension of an ``ndim``-dimensional tensor, or torch's
    ``IndexError`` (a 0-d tensor accepts ``-1`` and ``0``)."""
    try:
        d = d.__index__()
    except AttributeError:
        raise TypeError(f"dim must be an int, got {type(d).__name__}") from None
    n = ndim if ndim > 0 else 1
    if d < -n or d >= n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})"
        )
    return d + n if d < 0 else d


def dims(ds: Any, ndim: int) -> tuple[int, ...]:
    """A dim or a sequence of dims, normalised; repeated dims raise as in torch."""
    if isinstance(ds, (tuple, list)):
        out = tuple(dim(d, ndim) for d in ds)
        if len(set(out)) != len(out):
            raise RuntimeError(f"dim {out[0]} appears multiple times in the list of dims")
        return out
    return (dim(ds, ndim),)


def check_broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    """Raise torch's message when shapes ``a`` and ``b`` do not broadcast."""
    for i in range(1, min(len(a), len(b)) + 1):
        x, y = a[-i], b[-i]
        if x != y and x != 1 and y != 1:
            raise ShapeError(
                f"The size of tensor a ({x}) must match the size of tensor b ({y}) at "
                f"non-singleton dimension {max(len(a), len(b)) - i}"
            )


def expand_error(shape: tuple[int, ...], target: tuple[int, ...]) -> ShapeError:
    """torch's error for broadcasting ``shape`` to ``target`` where it does not fit."""
    lead = len(target) - len(shape)
    d = next(
        (lead + i for i, n in enumerate(shape) if n != 1 and lead + i >= 0
         and target[lead + i] not in (n, -1)),
        0,
    )  # fmt: skip
    return ShapeError(
        f"The expanded size of the tensor ({target[d]}) must match the existing size "
        f"({shape[d - lead]}) at non-singleton dimension {d}.  Target sizes: {list(target)}.  "
        f"Tensor sizes: {list(shape)}"
    )


BACKWARD = """\
loss.backward() inside jaxmod.jit (or another JAX transform: grad, vmap, jax.jit): the \
autograd tape records eager operations only, and a compiled step takes its gradients as \
a function of the model. Inside the compiled step, replace

    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()

with

    def loss_fn(model):
        return F.cross_entropy(model(x), y)
    loss, grads = jaxmod.value_and_grad(loss_fn)(model)
    opt.step(grads)

or run the torch loop as written, without jaxmod.jit (see docs/porting.md, "The training \
loop")."""


def traced(what: str, fix: str) -> Exception:
    """The error (``jaxmod.TraceError``) for reading a traced value as a concrete one."""
    return TraceError(
        f"{what} needs a concrete value, but this tensor is traced (inside jaxmod.jit, "
        f"jax.jit, vmap or grad) and has no value yet. {fix}"
    )


DATA_DEPENDENT = (
    "Its result's shape depends on the tensor's values, which a compiled (traced) program "
    "cannot have. Keep the shape fixed: use jaxmod.where(mask, x, other) / "
    "x.masked_fill(~mask, 0) instead of selecting, or pass size= (jnp.nonzero(x, size=k, "
    "fill_value=-1)) to bound the result; or run this part eagerly, outside the jit."
)
