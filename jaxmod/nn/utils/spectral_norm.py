"""``spectral_norm`` / ``remove_spectral_norm``: torch's hook-based spectral normalisation.

``weight = weight_orig / sigma`` where ``sigma`` estimates the largest singular value of
``weight_orig`` reshaped to a matrix (``dim`` first). The module keeps the Parameter
``weight_orig`` and two Buffers, ``weight_u`` and ``weight_v``, the power iteration's
vectors. A forward pre-hook recomputes ``weight`` before every call; in training mode it
first runs ``n_power_iterations`` steps of the power iteration (without gradient) and
writes the new ``u``/``v`` into the buffers, in eval mode it uses them as they are.

Like BatchNorm's running statistics, ``weight_u``/``weight_v`` are Buffers, so a step
compiled with ``jaxmod.jit`` writes them back; the recomputed ``weight`` is a plain Tensor
attribute that exists before any compiled call, so it is written back too and never holds
a tracer. The first ``u``/``v`` are drawn from jaxmod's generator (torch draws them from
its own, so copy torch's buffers over to compare the two).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmod import random as _random
from jaxmod._core.cells import to_array
from jaxmod._tensor import base as _tb
from jaxmod.nn.parameter import Parameter
from jaxmod.nn.utils.weight_norm import _drop_pre_hook

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]

_TRANSPOSED = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


def _normalize(x: Any, eps: float) -> Any:
    """``x / max(||x||, eps)`` (``F.normalize`` of a vector)."""
    return x / jnp.maximum(jnp.linalg.norm(x), eps)


def _default_dim(module: Any) -> int:
    return 1 if any(c.__name__ in _TRANSPOSED for c in type(module).__mro__) else 0


def _as_matrix(weight: Any, dim: int) -> Any:
    """``weight`` with dimension ``dim`` moved first, flattened to ``(size(dim), -1)``."""
    if dim != 0:
        weight = jnp.moveaxis(weight, dim, 0)
    return weight.reshape(weight.shape[0], -1)


def _power_iteration(mat: Any, u: Any, v: Any, n: int, eps: float) -> tuple[Any, Any]:
    """``n`` power-iteration steps from ``u`` (``v`` is recomputed first), no gradient."""
    mat = jax.lax.stop_gradient(mat)
    for _ in range(n):
        v = _normalize(mat.T @ u, eps)
        u = _normalize(mat @ v, eps)
    return u, v


class SpectralNorm:
    """The forward pre-hook that divides ``name_orig`` by its spectral norm."""

    _version: int = 1

    def __init__(
        self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but "
                f"got n_power_iterations={n_power_iterations}"
            )
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight: Any) -> Any:
        return _as_matrix(to_array(weight), self.dim)

    def compute_weight(self, module: Any, do_power_iteration: bool) -> Any:
        weight = to_array(getattr(module, self.name + "_orig"))
        u = to_array(getattr(module, self.name + "_u"))
        v = to_array(getattr(module, self.name + "_v"))
        mat = _as_matrix(weight, self.dim)
        if do_power_iteration:
            u, v = _power_iteration(mat, u, v, self.n_power_iterations, self.eps)
            setattr(module, self.name + "_u", u)
            setattr(module, self.name + "_v", v)
        sigma = jnp.dot(u, mat @ v)
        return _tb.wrap(weight / sigma)

    def remove(self, module: Any) -> None:
        weight = jax.lax.stop_gradient(to_array(self.compute_weight(module, False)))
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight))

    def __call__(self, module: Any, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(
        module: Any, name: str, n_power_iterations: int, dim: int, eps: float
    ) -> SpectralNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(
                    f"Cannot register two spectral_norm hooks on the same parameter {name}"
                )
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(
                f"Module {type(module).__name__} has no parameter '{name}' to normalise"
            )
        if type(weight).__name__ == "UninitializedParameter":
            raise ValueError(
                "The module passed to `SpectralNorm` can't have uninitialized parameters. "
                "Make sure to run the dummy forward before applying spectral normalization"
            )
        w = to_array(weight)
        h, wd = fn.reshape_weight_to_matrix(w).shape
        u = _normalize(_random.randn(h, dtype=w.dtype), eps)
        v = _normalize(_random.randn(wd, dtype=w.dtype), eps)
        delattr(module, name)
        module.register_parameter(name + "_orig", weight)
        setattr(module, name, _tb.wrap(w))
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(
    module: Any,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Any:
    """Divide ``module.<name>`` by its spectral norm (``torch.nn.utils.spectral_norm``).

    Args:
        module: the layer to change in place.
        name: the parameter to normalise.
        n_power_iterations: power-iteration steps per training-mode forward.
        eps: the floor of the norms in the power iteration.
        dim: the output dimension (default 0, 1 for ``ConvTranspose*d``).

    Returns:
        ``module``, with Parameter ``<name>_orig`` and Buffers ``<name>_u``, ``<name>_v``.
    """
    if dim is None:
        dim = _default_dim(module)
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Any, name: str = "weight") -> Any:
    """Undo :func:`spectral_norm`: ``<name>`` is a plain Parameter with the current value."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            _drop_pre_hook(module, k)
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")
