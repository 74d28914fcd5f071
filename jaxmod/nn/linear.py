"""Linear layers: ``Identity`` and ``Linear`` (torch's weight layout and initialisation)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod.nn.module import Module, ShapeError
from jaxmod.nn.parameter import Parameter, _unwrap

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """Returns its input unchanged; accepts and ignores any constructor arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


def _uniform(shape: tuple[int, ...], bound: float, dtype: Any) -> jax.Array:
    from jaxmod.random import next_key

    return jax.random.uniform(next_key(), shape, jnp.float32, -bound, bound).astype(dtype)


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last dimension of ``x``.

    Args:
        in_features: size of each input's last dimension.
        out_features: size of each output's last dimension.
        bias: whether to learn an additive bias.
        device: where to place the parameters (``"cpu"``, ``"cuda"``, a jax Device).
        dtype: parameter dtype (default float32).

    ``weight`` has shape ``(out_features, in_features)`` and, like ``bias``, is drawn
    from ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` (torch's kaiming-uniform with
    ``a=sqrt(5)``).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
        dtype: Any = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        dtype = dtype or jnp.float32
        self.weight = Parameter(jnp.zeros((out_features, in_features), dtype))
        if bias:
            self.bias = Parameter(jnp.zeros((out_features,), dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias with torch's default initialisation."""
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        self.weight._value = _uniform(self.weight.shape, bound, self.weight.dtype)
        if self.bias is not None:
            self.bias._value = _uniform(self.bias.shape, bound, self.bias.dtype)

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        if jnp.ndim(x) == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"{self!r} expects inputs whose last dimension is {self.in_features}, "
                f"got an input of shape {tuple(jnp.shape(x))}"
            )
        y = x @ _unwrap(self.weight).T
        if self.bias is not None:
            y = y + _unwrap(self.bias)
        return y

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
