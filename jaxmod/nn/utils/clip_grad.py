"""Gradient clipping with torch's semantics, for grads mappings or parameters' ``.grad``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor import base as _b
from jaxmod.nn.parameter import Variable

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _targets(grads_or_params: Any) -> tuple[list[Any], Any]:
    """The gradient arrays and a writer that stores new arrays back in place."""
    if isinstance(grads_or_params, Mapping):
        keys = [k for k, g in grads_or_params.items() if g is not None]

        def write(new: list[Any]) -> None:
            for k, g in zip(keys, new):
                grads_or_params[k] = g

        return [grads_or_params[k] for k in keys], write
    given = [grads_or_params] if isinstance(grads_or_params, Variable) else list(grads_or_params)
    params = [p for p in given if getattr(p, "grad", None) is not None]
    if not params and any(getattr(p, "requires_grad", False) for p in given):
        # torch would clip nothing and return 0; here that is most often a step after
        # jaxmod.value_and_grad (whose gradients are returned, not stored), which would go
        # unclipped
        raise RuntimeError(
            "gradient clipping got parameters, none of which has a .grad, so nothing would "
            "be clipped. Call loss.backward() first, or, with gradients returned by "
            "jaxmod.value_and_grad, clip the gradients themselves:\n"
            "    loss, grads = jaxmod.value_and_grad(loss_fn)(model)\n"
            "    nn.utils.clip_grad_norm_(grads, 1.0)\n"
            "    opt.step(grads)"
        )

    def write_params(new: list[Any]) -> None:
        for p, g in zip(params, new):
            p.grad = g

    return [p.grad for p in params], write_params


def _norm_type(norm_type: Any) -> float:
    return float(norm_type)


def get_total_norm(
    tensors: Iterable[Any] | Mapping[str, Any],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> jax.Array:
    """The norm of the norms of ``tensors`` (arrays, or a mapping's values), like torch's.

    ``error_if_nonfinite=True`` needs the norm's value, so it raises inside a trace
    (``jaxmod.jit``, ``jax.jit``, ``vmap``) rather than let a NaN through unchecked.
    """
    if isinstance(tensors, Mapping):
        tensors = [t for t in tensors.values() if t is not None]
    tensors = [t for t in tensors if t is not None]
    torchy = any(isinstance(t, Variable) or _b.is_tensor(t) for t in tensors)
    tensors = [t._value if isinstance(t, Variable) else _b.unwrap(t) for t in tensors]
    if len(tensors) == 0:
        return jnp.asarray(0.0)
    p = _norm_type(norm_type)
    norms = jnp.stack([jnp.linalg.norm(jnp.ravel(t).astype(jnp.float32), ord=p) for t in tensors])
    total = jnp.linalg.norm(norms, ord=p)
    if error_if_nonfinite and isinstance(total, jax.core.Tracer):
        raise RuntimeError(
            "error_if_nonfinite=True cannot be checked inside a compiled or traced function "
            "(jaxmod.jit, jax.jit, vmap): the norm has no value until the step runs, and by "
            "then a NaN would already be in the weights. Either compute and clip the "
            "gradients in one jitted function, check the returned norm eagerly and step only "
            "when it is finite:\n"
            "    grads, norm = grads_step(x, y)   # returns clip_grad_norm_(grads, 1.0)\n"
            "    if not jnp.isfinite(norm): raise RuntimeError('non-finite gradients')\n"
            "    apply_step(grads)                # opt.step(grads)\n"
            "or pass error_if_nonfinite=False inside the compiled step."
        )
    if error_if_nonfinite:
        if not bool(jnp.isfinite(total)):
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is "
                "non-finite, so it cannot be clipped. To disable this error and scale the "
                "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
            )
    return _b.new(total) if torchy else total


def clip_grads_with_norm_(
    grads_or_params: Any, max_norm: float, total_norm: Any, foreach: bool | None = None
) -> None:
    """Scale gradients by ``min(1, max_norm / (total_norm + 1e-6))`` in place (torch's rule)."""
    grads, write = _targets(grads_or_params)
    if not grads:
        return
    coef = jnp.minimum(max_norm / (total_norm + 1e-6), 1.0)
    write([(g * coef).astype(jnp.asarray(g).dtype) for g in grads])


def clip_grad_norm_(
    grads_or_params: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> jax.Array:
    """Clip gradients so their total norm is at most ``max_norm``; return the total norm.

    Args:
        grads_or_params: a grads mapping (e.g. from :func:`jaxmod.grad`), whose values are
            replaced in place, or parameters (an iterable of boxes or one box) whose
            ``.grad`` is replaced, as in torch.
        max_norm: the maximum norm.
        norm_type: the p of the p-norm (``float("inf")`` for the max norm).
        error_if_nonfinite: raise if the total norm is nan/inf (eagerly; inside a trace
            the flag itself raises, naming the checked two-step alternative).
        foreach: accepted for torch compatibility; ignored.

    Returns:
        The total norm of the gradients before clipping: a Tensor for parameters or
        Tensor gradients (torch's call), a jax scalar for a mapping of jax arrays.
    """
    if not isinstance(grads_or_params, (Mapping, Variable)):
        grads_or_params = list(grads_or_params)  # read twice: a generator would clip nothing
    grads, _ = _targets(grads_or_params)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(grads_or_params, max_norm, total)
    # the type rule: parameters' .grad (torch's call) or Tensor gradients give a Tensor
    torchy = not isinstance(grads_or_params, Mapping) or any(map(_b.is_tensor, grads))
    return _b.new(_b.unwrap(total)) if torchy else _b.unwrap(total)


def clip_grad_value_(grads_or_params: Any, clip_value: float, foreach: bool | None = None) -> Any:
    """Clamp every gradient to ``[-clip_value, clip_value]`` in place.

    Returns the mapping when given a grads mapping (modified in place), else ``None``.
    """
    grads, write = _targets(grads_or_params)
    write([jnp.clip(g, -clip_value, clip_value) for g in grads])
    return grads_or_params if isinstance(grads_or_params, Mapping) else None
