""":class:`MultivariateNormal`: a Gaussian over vectors, from ``loc`` and one of
``covariance_matrix``, ``precision_matrix`` or ``scale_tril`` (a lower Cholesky factor);
reparameterised samples, densities through ``jax.scipy.linalg`` triangular solves."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from jaxmod.distributions import constraints
from jaxmod.distributions.distribution import Distribution, as_array, wants_tensor

__all__ = ["MultivariateNormal"]

_MATRICES = ("covariance_matrix", "precision_matrix", "scale_tril")


def batch_mahalanobis(tril: Any, x: Any) -> Any:
    """``|tril^-1 x|^2`` over the last dimension, broadcasting the batch dimensions."""
    batch = jnp.broadcast_shapes(tril.shape[:-2], x.shape[:-1])
    tril = jnp.broadcast_to(tril, batch + tril.shape[-2:])
    x = jnp.broadcast_to(x, batch + x.shape[-1:])
    return (solve_triangular(tril, x[..., None], lower=True)[..., 0] ** 2).sum(-1)


def half_log_det(tril: Any) -> Any:
    """``log det(tril)`` of a Cholesky factor: half the log-determinant of the matrix."""
    return jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1)).sum(-1)


class MultivariateNormal(Distribution):
    """The multivariate normal distribution (event shape ``(n,)``)."""

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}  # fmt: skip
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Any, covariance_matrix: Any = None, precision_matrix: Any = None,
                 scale_tril: Any = None, validate_args: bool | None = None) -> None:  # fmt: skip
        loc_a = as_array(loc)
        if loc_a.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = {k: v for k, v in zip(_MATRICES, (covariance_matrix, precision_matrix,
                                                  scale_tril)) if v is not None}  # fmt: skip
        if len(given) != 1:
            raise ValueError(
                "Exactly one of covariance_matrix or precision_matrix or scale_tril may be "
                "specified."
            )
        ((name, m),) = given.items()
        m_a = as_array(m)
        if m_a.ndim < 2:
            kind = "scale_tril matrix" if name == "scale_tril" else name
            tail = "with optional leading batch dimensions"
            raise ValueError(f"{kind} must be at least two-dimensional, {tail}")
        batch = jnp.broadcast_shapes(m_a.shape[:-2], loc_a.shape[:-1])
        n = loc_a.shape[-1]
        self._wrap = wants_tensor(loc, m)
        self._params = {"loc": jnp.broadcast_to(loc_a, batch + (n,)),
                        name: jnp.broadcast_to(m_a, batch + m_a.shape[-2:])}  # fmt: skip
        self._matrix = name
        super().__init__(batch, (n,), validate_args=validate_args)

    def _tril(self) -> Any:
        m = self._params[self._matrix]
        if self._matrix == "scale_tril":
            return m
        if self._matrix == "covariance_matrix":
            return jnp.linalg.cholesky(m)
        return jnp.linalg.cholesky(jnp.linalg.inv(m))

    @property
    def loc(self) -> Any:
        """The mean vector."""
        return self._out(self._params["loc"])

    mean = loc
    mode = loc

    @property
    def scale_tril(self) -> Any:
        """The lower Cholesky factor of the covariance."""
        return self._out(self._tril())

    @property
    def covariance_matrix(self) -> Any:
        """``scale_tril @ scale_tril.T``."""
        if self._matrix == "covariance_matrix":
            return self._out(self._params["covariance_matrix"])
        tril = self._tril()
        return self._out(tril @ jnp.swapaxes(tril, -1, -2))

    @property
    def precision_matrix(self) -> Any:
        """The inverse covariance."""
        if self._matrix == "precision_matrix":
            return self._out(self._params["precision_matrix"])
        tril = self._tril()
        eye = jnp.broadcast_to(jnp.eye(tril.shape[-1], dtype=tril.dtype), tril.shape)
        return self._out(jax.scipy.linalg.cho_solve((tril, True), eye))

    @property
    def variance(self) -> Any:
        """The diagonal of the covariance."""
        return self._out((self._tril() ** 2).sum(-1))

    def _sample(self, shape: tuple[int, ...]) -> Any:
        loc = self._params["loc"]
        eps = jax.random.normal(self._key(), shape + loc.shape, loc.dtype)
        return loc + (self._tril() @ eps[..., None])[..., 0]

    def log_prob(self, value: Any) -> Any:
        """The log-density."""
        v = self._value(value)
        tril = self._tril()
        m = batch_mahalanobis(tril, v - self._params["loc"])
        n = self._event_shape[0]
        return self._out(-0.5 * (n * math.log(2 * math.pi) + m) - half_log_det(tril))

    def entropy(self) -> Any:
        """``0.5 n (1 + log(2 pi)) + 0.5 log det(covariance)``."""
        n = self._event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + half_log_det(self._tril())
        return self._out(jnp.broadcast_to(h, tuple(self._batch_shape)))
