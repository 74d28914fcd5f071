"""``weight_norm`` / ``remove_weight_norm``: torch's hook-based weight normalisation.

``weight = g * v / ||v||`` with the norm taken over every dimension but ``dim`` (over the
whole tensor for ``dim=None`` or ``-1``, as in torch). The module's ``weight`` Parameter
is replaced by two Parameters ``weight_g`` (the magnitudes) and ``weight_v`` (the
direction), and a forward pre-hook recomputes ``weight`` before every call.

The recomputed ``weight`` is a plain Tensor attribute of the module, created when the
hook is registered. Because it exists before any compiled call, ``jaxmod.jit`` lifts it
like any array attribute: a value computed inside a trace is written back as a concrete
array, never a tracer, and every forward (eager or compiled) recomputes it from the
current ``weight_g``/``weight_v``, so it cannot go stale across an optimizer step.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp

from jaxmod._core import state
from jaxmod._core.cells import to_array
from jaxmod._tensor import base as _tb
from jaxmod.nn.parameter import Parameter

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm", "norm_except_dim"]


def _drop_pre_hook(module: Any, key: int) -> None:
    """Remove forward pre-hook ``key`` of ``module`` (a structure change)."""
    del module._forward_pre_hooks[key]
    module.__dict__.get("_forward_pre_hooks_with_kwargs", {}).pop(key, None)
    state.bump()


def norm_except_dim(v: Any, pow: float = 2, dim: int = 0) -> Any:
    """The ``pow``-norm of ``v`` over every dimension but ``dim``, kept as size-1 dims.

    ``dim=-1`` (torch's spelling of "no dimension") gives the norm of the whole tensor,
    a 0-d array.
    """
    v = to_array(v)
    if dim == -1:
        return jnp.linalg.norm(v.reshape(-1), ord=pow)
    dim = dim % v.ndim
    axes = tuple(i for i in range(v.ndim) if i != dim)
    return jnp.sum(jnp.abs(v) ** pow, axis=axes, keepdims=True) ** (1.0 / pow)


class WeightNorm:
    """The forward pre-hook that recomputes ``name`` from ``name_g`` and ``name_v``."""

    name: str
    dim: int

    def __init__(self, name: str, dim: int) -> None:
        if dim is None:
            dim = -1
        self.name = name
        self.dim = dim

    def compute_weight(self, module: Any) -> Any:
        g = to_array(getattr(module, self.name + "_g"))
        v = to_array(getattr(module, self.name + "_v"))
        return _tb.wrap(v * (g / norm_except_dim(v, 2, self.dim)))

    @staticmethod
    def apply(module: Any, name: str, dim: int | None) -> WeightNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(
                    f"Cannot register two weight_norm hooks on the same parameter {name}"
                )
        if dim is None:
            dim = -1
        fn = WeightNorm(name, dim)
        weight = module._parameters.get(name) if name in module._parameters else None
        if weight is None:
            raise ValueError(
                f"Module {type(module).__name__} has no parameter '{name}' to normalise"
            )
        if type(weight).__name__ == "UninitializedParameter":
            raise ValueError(
                "The module passed to `WeightNorm` can't have uninitialized parameters. "
                "Make sure to run the dummy forward before applying weight normalization"
            )
        w = to_array(weight)
        del module._parameters[name]
        grad = weight.requires_grad
        module.register_parameter(name + "_g", Parameter(norm_except_dim(w, 2, dim), grad))
        module.register_parameter(name + "_v", Parameter(w, grad))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Any) -> None:
        weight = to_array(self.compute_weight(module))
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight))

    def __call__(self, module: Any, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Any, name: str = "weight", dim: int | None = 0) -> Any:
    """Reparametrise ``module.<name>`` as ``g * v / ||v||`` (``torch.nn.utils.weight_norm``).

    Args:
        module: the layer to change in place.
        name: the parameter to reparametrise.
        dim: the dimension kept by the norm (``None`` or ``-1``: the whole tensor).

    Returns:
        ``module``, with Parameters ``<name>_g`` and ``<name>_v`` instead of ``<name>``.
    """
    warnings.warn(
        "`torch.nn.utils.weight_norm` is deprecated in favor of "
        "`torch.nn.utils.parametrizations.weight_norm`.",
        FutureWarning,
        stacklevel=1,  # attributed here, as torch's: shown once per process, not per call site
    )
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Any, name: str = "weight") -> Any:
    """Undo :func:`weight_norm`: ``<name>`` is a plain Parameter with the current value."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            _drop_pre_hook(module, k)
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
