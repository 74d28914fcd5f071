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

__all__ = ["weight_norm", "spectral_norm", "orthogonal"]


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


# ---------------------------------------------------------------------------- orthogonal
_MAPS = ("matrix_exp", "cayley", "householder")


def _mT(x: Any) -> Any:
    return jnp.swapaxes(x, -1, -2)


def _mH(x: Any) -> Any:
    return jnp.conj(_mT(x))


def _geqrf2(a: Any) -> tuple[Any, Any]:
    """LAPACK's ``geqrf`` of one matrix: Householder vectors below the diagonal, R on and
    above it, and the reflections' ``tau`` (a reflection with nothing to zero has tau 0)."""
    m, n = a.shape
    taus = []
    for j in range(min(m, n)):
        alpha, tail = a[j, j], a[j + 1 :, j]
        xnorm = jnp.linalg.norm(tail)
        flat = xnorm == 0
        beta = -jnp.copysign(jnp.hypot(alpha, xnorm), alpha)
        tau = jnp.where(flat, 0.0, (beta - alpha) / jnp.where(flat, 1.0, beta))
        tail = tail / jnp.where(flat, 1.0, alpha - beta)
        v = jnp.concatenate([jnp.ones((1,), a.dtype), tail])
        rest = a[j:, j + 1 :]
        a = a.at[j:, j + 1 :].set(rest - tau * jnp.outer(v, v @ rest))
        a = a.at[j, j].set(jnp.where(flat, alpha, beta)).at[j + 1 :, j].set(tail)
        taus.append(tau)
    return a, jnp.stack(taus) if taus else jnp.zeros((0,), a.dtype)


def _householder2(a: Any, tau: Any) -> Any:
    """The first ``a.shape[-1]`` columns of ``H_1 ... H_k``, ``H_i = I - tau_i v_i v_i^T``
    with ``v_i`` column ``i`` of ``a`` below the diagonal and 1 on it."""
    m, n = a.shape
    q = jnp.eye(m, n, dtype=a.dtype)
    for i in reversed(range(tau.shape[0])):
        v = jnp.concatenate([jnp.zeros((i,), a.dtype), jnp.ones((1,), a.dtype), a[i + 1 :, i]])
        q = q - tau[i] * jnp.outer(v, v @ q)
    return q


_geqrf = jnp.vectorize(_geqrf2, signature="(m,n)->(m,n),(k)")
_householder_product = jnp.vectorize(_householder2, signature="(m,n),(k)->(m,n)")


def _make_orthogonal(a: Any) -> Any:
    """The Q of ``a = QR`` with ``diag(R) >= 0``."""
    x, tau = _geqrf(a)
    q = _householder_product(x, tau)
    return q * jnp.sign(jnp.diagonal(x, axis1=-2, axis2=-1))[..., None, :]


def _is_orthogonal(q: Any) -> bool:
    n, k = q.shape[-2:]
    eps = 10.0 * n * float(jnp.finfo(q.dtype).eps)
    return bool(jnp.allclose(_mH(q) @ q, jnp.eye(k, dtype=q.dtype), atol=eps, rtol=1e-5))


class _Orthogonal(Module):
    def __init__(self, weight: Any, orthogonal_map: str, *, use_trivialization: bool = True):
        super().__init__()
        w = to_array(weight)
        if jnp.iscomplexobj(w) and orthogonal_map == "householder":
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = tuple(w.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def _has_base(self) -> bool:
        return "base" in self._buffers

    def forward(self, X: Any) -> Any:
        x = to_array(X)
        n, k = x.shape[-2:]
        transposed = n < k
        if transposed:
            x, (n, k) = _mT(x), (k, n)
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            x = jnp.tril(x)
            if n != k:  # embed the tall matrix in a square one
                x = jnp.concatenate([x, jnp.zeros((*x.shape[:-1], n - k), x.dtype)], axis=-1)
            a = x - _mH(x)  # skew-symmetric (skew-Hermitian)
            if self.orthogonal_map == "matrix_exp":
                q = jax.scipy.linalg.expm(a)
            else:
                eye = jnp.eye(n, dtype=a.dtype)
                q = jnp.linalg.solve(eye - 0.5 * a, eye + 0.5 * a)
            q = q[..., :k]
        else:
            a = jnp.tril(x, -1)
            tau = 2.0 / (1.0 + jnp.sum(a * a, axis=-2))
            q = _householder_product(a, tau)
            # X's diagonal holds the signs (+-1), as integers: no gradient flows to it
            signs = jax.lax.stop_gradient(jnp.trunc(jnp.diagonal(x, axis1=-2, axis2=-1)))
            q = q * signs[..., None, :]
        base = self._buffers.get("base")
        if base is not None:
            q = base._jx() @ q
        if transposed:
            q = _mT(q)
        return _tb.wrap(q)

    def right_inverse(self, Q: Any) -> Any:
        q = jax.lax.stop_gradient(to_array(Q))
        if tuple(q.shape) != self.shape:
            raise ValueError(
                f"Expected a matrix or batch of matrices of shape {self.shape}. "
                f"Got a tensor of shape {tuple(q.shape)}."
            )
        shape = q.shape
        n, k = q.shape[-2:]
        transposed = n < k
        if transposed:
            q, (n, k) = _mT(q), (k, n)
        if not self._has_base():
            if self.orthogonal_map != "householder":
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential or the Cayley "
                    "parametrizations when use_trivialization=False."
                )
            a, tau = _geqrf(q)
            # X = QR with diag(R) > 0: the diagonal keeps the signs (a reflection left
            # out, tau == 0, flips its sign)
            d = jnp.sign(jnp.diagonal(a, axis1=-2, axis2=-1))
            d = jnp.where(tau == 0, -d, d)
            idx = jnp.arange(k)
            a = a.at[..., idx, idx].set(d)
            return _tb.wrap(_mT(a) if transposed else a)
        if n == k:
            q = q if _is_orthogonal(q) else _make_orthogonal(q)
        else:  # complete Q to a square orthogonal matrix
            extra = _random.randn(*q.shape[:-2], n, n - k, dtype=q.dtype)
            q = _make_orthogonal(jnp.concatenate([q, extra], axis=-1))
        self.base = q
        neg_id = jnp.zeros(shape, q.dtype)
        idx = jnp.arange(min(shape[-2:]))
        return _tb.wrap(neg_id.at[..., idx, idx].set(-1.0))


def orthogonal(
    module: Module,
    name: str = "weight",
    orthogonal_map: str | None = None,
    *,
    use_trivialization: bool = True,
) -> Module:
    """Make ``module.<name>`` an orthogonal matrix (or batch), as a parametrization.

    ``orthogonal_map``: ``"matrix_exp"`` (default for square or complex weights),
    ``"cayley"`` or ``"householder"`` (default otherwise). With ``use_trivialization``
    a Buffer ``base`` holds the orthogonal matrix the map starts from (an assignment
    ``module.<name> = Q`` sets it); completing a non-square ``Q`` draws from jaxmod's
    generator.
    """
    weight = getattr(module, name, None)
    if not (isinstance(weight, Variable) or is_value(weight)):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(
            f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions."
        )
    n, k = weight.shape[-2:]
    if orthogonal_map is None:
        square = n == k or jnp.iscomplexobj(to_array(weight))
        orthogonal_map = "matrix_exp" if square else "householder"
    if orthogonal_map not in _MAPS:
        raise ValueError(
            'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
            f"Got: {orthogonal_map}"
        )
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
