"""``parameters_to_vector`` / ``vector_to_parameters`` with torch's semantics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor.base import new as new_tensor
from jaxmod._tensor.base import unwrap
from jaxmod.nn.parameter import Variable

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Any]) -> Any:
    """Flatten and concatenate the values of ``parameters`` into one vector, a
    :class:`jaxmod.Tensor` (torch code calls ``.numel()`` / ``.norm()`` on it)."""
    return new_tensor(jnp.concatenate(
        [jnp.ravel(p._value if isinstance(p, Variable) else unwrap(p)) for p in parameters]
    ))  # fmt: skip


def vector_to_parameters(vec: Any, parameters: Iterable[Variable]) -> None:
    """Copy consecutive slices of ``vec`` into ``parameters`` (writes each ``p._value``)."""
    vec = unwrap(vec)  # a jaxmod Tensor (parameters_to_vector's result, torch-style)
    if not isinstance(vec, (jax.Array, jax.core.Tracer, np.ndarray)):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    vec = jnp.asarray(vec)
    pointer = 0
    for p in parameters:
        n = p.numel()
        p._value = vec[pointer : pointer + n].reshape(p.shape).astype(p.dtype)
        pointer += n
