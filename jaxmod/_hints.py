"""Errors that teach: a torch tensor method called on a plain ``jax.Array`` names the fix.

jaxmod's factories and layers give :class:`jaxmod.Tensor`s, which have torch's methods. A
``jax.Array`` made by ``jax.numpy`` does not, and Python's own message (``'ArrayImpl'
object has no attribute 'to'``) does not say what to do. Importing jaxmod gives JAX's
concrete array class, and its tracers, a property for each torch tensor name JAX arrays
lack; it raises ``AttributeError`` (so ``hasattr(x, "to")`` stays false and duck typing
is unchanged) with a message naming the fix. Names JAX arrays have are never touched, so
no existing attribute lookup costs anything more.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["TORCH_ONLY", "array_hint", "INSTALLED"]

_WRAP = (
    "this is a jax.Array, not a jaxmod.Tensor: torch's tensor methods are on jaxmod.Tensor. "
    "Wrap it without a copy, t = jaxmod.as_tensor(x), or make it with jaxmod's factories "
    "(jaxmod.tensor, jaxmod.zeros, jaxmod.randn), which return Tensors."
)
_BACKWARD = (
    "a plain jax.Array is not recorded by jaxmod's autograd tape, so it has no backward(): "
    "compute the loss from jaxmod Tensors (module outputs, jaxmod.tensor, jaxmod.from_numpy) "
    "and call loss.backward(), or take gradients functionally:\n"
    "    loss, grads = jaxmod.value_and_grad(loss_fn)(model, x, y)\n"
    "    opt.step(grads)"
)
_GRAD = (
    "JAX arrays carry no .grad: parameters (and requires_grad Tensors) receive it from "
    "loss.backward(), or `loss, grads = jaxmod.value_and_grad(loss_fn)(model)` returns "
    "them, and grads['fc.weight'] is that parameter's gradient."
)

# torch Tensor names that JAX arrays do not have -> the fix.
TORCH_ONLY: dict[str, str] = {
    name: _WRAP
    for name in (
        "to", "cuda", "cpu", "detach", "numpy", "dim", "float", "long", "half", "double",
        "int", "bool", "bfloat16", "unsqueeze", "masked_fill", "contiguous", "permute",
        "numel", "type_as", "new_zeros", "new_ones", "new_full", "new_tensor", "zero_",
        "fill_", "add_", "mul_", "sub_", "div_", "clamp_", "copy_", "normal_", "uniform_",
        "requires_grad", "requires_grad_", "is_cuda", "data_ptr",
    )
}  # fmt: skip
TORCH_ONLY["backward"] = _BACKWARD
TORCH_ONLY["grad"] = _GRAD


def array_hint(obj: Any, name: str) -> AttributeError:
    """The teaching ``AttributeError`` for torch tensor attribute ``name`` on a JAX array."""
    return AttributeError(
        f"'{type(obj).__name__}' object has no attribute '{name}': {TORCH_ONLY[name]}",
        name=name,
        obj=obj,
    )


def _property(name: str) -> property:
    def get(self: Any) -> Any:
        raise array_hint(self, name)

    return property(get, doc=f"Not a JAX array attribute: raises, naming the fix for .{name}.")


def _install() -> bool:
    """Give JAX's concrete array class and its tracers the teaching properties."""
    array_cls = type(jnp.zeros(()))
    try:
        for name in TORCH_ONLY:
            if not hasattr(array_cls, name):
                setattr(array_cls, name, _property(name))
    except (TypeError, AttributeError):  # a jax whose array type is immutable: no hints
        return False
    tracer = jax.core.Tracer
    original = tracer.__getattr__
    if getattr(original, "_jaxmod_hints", False):
        return True

    def __getattr__(self: Any, name: str) -> Any:  # only reached for missing attributes
        if name in TORCH_ONLY:
            raise array_hint(self, name)
        return original(self, name)

    __getattr__._jaxmod_hints = True  # type: ignore[attr-defined]
    tracer.__getattr__ = __getattr__
    return True


INSTALLED = _install()
