"""``torch.nn.utils.parametrizations``: weight_norm and spectral_norm as parametrizations.

Built on :mod:`jaxmod.nn.utils.parametrize`: ``weight_norm`` keeps
``parametrizations.weight.original0`` (the magnitudes ``g``) and ``original1`` (the
direction ``v``); ``spectral_norm`` keeps ``parametrizations.weight.original`` and the
power iteration's Buffers ``parametrizations.weight.0._u`` / ``_v``, which a training-mode
read updates (and ``jaxmod.jit`` writes back) and an eval-mode read leaves alone.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmod import random as _random
from jaxmod._core.cells import Variable, is_value, to_array
from jaxmod._tensor import base as _tb
from jaxmod.nn.module import Module
from jaxmod.nn.utils import parametrize
from jaxmod.nn.utils.spectral_norm import _as_matrix, _default_dim, _normalize
from jaxmod.nn.utils.weight_norm import norm_except_dim

__all__ = ["weight_norm", "spectral_norm"]


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        if dim is None:
            dim = -1
        self.dim = dim

    def forward(self, weight_g: Any, weight_v: Any) -> Any:
        g, v = to_array(weight_g), to_array(weight_v)
        return _tb.wrap(v * (g / norm_except_dim(v, 2, self.dim)))

    def right_inverse(self, weight: Any) -> tuple[Any, Any]:
        w = to_array(weight)
        return _tb.wrap(norm_except_dim(w, 2, self.dim)), _tb.wrap(w)


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """``module.<name> = g * v / ||v||`` as a parametrization (``original0`` = g,
    ``original1`` = v); a checkpoint of the old ``weight_norm`` (``<name>_g``,
    ``<name>_v``) loads into it."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def compat(state_dict, prefix, local_metadata, strict, missing, unexpected, errors):  # noqa: ANN001, ANN202
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module._register_load_state_dict_pre_hook(compat)
    return module


class _SpectralNorm(Module):
    def __init__(
        self, weight: Any, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        super().__init__()
        w = to_array(weight)
        ndim = w.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] "
                f"but got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but "
                f"got n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            mat = _as_matrix(w, self.dim)
            h, wd = mat.shape
            self.register_buffer("_u", _normalize(_random.randn(h, dtype=w.dtype), eps))
            self.register_buffer("_v", _normalize(_random.randn(wd, dtype=w.dtype), eps))
            self._power_method(mat, 15)

    def _power_method(self, mat: Any, n: int) -> None:
        mat = jax.lax.stop_gradient(mat)
        u, v = self._u._jx(), self._v._jx()
        for _ in range(n):
            u = _normalize(mat @ v, self.eps)
            v = _normalize(jnp.conj(mat).T @ u, self.eps)
        self._u = u
        self._v = v

    def forward(self, weight: Any) -> Any:
        w = to_array(weight)
        if w.ndim == 1:
            return _tb.wrap(_normalize(w, self.eps))
        mat = _as_matrix(w, self.dim)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        u, v = self._u._jx(), self._v._jx()
        sigma = jnp.vdot(u, mat @ v)
        return _tb.wrap(w / sigma)

    def right_inverse(self, value: Any) -> Any:
        return value


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    """Divide ``module.<name>`` by its spectral norm, as a parametrization.

    ``dim`` defaults to 0 (1 for ``ConvTranspose*d``). The first ``u``/``v`` come from
    jaxmod's generator, followed by 15 power-iteration steps, as torch does with its own.
    """
    weight = getattr(module, name, None)
    if not (isinstance(weight, Variable) or is_value(weight)):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = _default_dim(module)
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps)
    )
    return module
