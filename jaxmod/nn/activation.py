"""Activation layers."""

from __future__ import annotations

from typing import Any

import jax

from jaxmod.nn.module import Module
from jaxmod.nn.parameter import _unwrap

__all__ = ["ReLU"]


class ReLU(Module):
    """``max(x, 0)`` elementwise.

    Args:
        inplace: accepted for torch compatibility and shown in ``repr``; JAX arrays are
            immutable, so the result is always a new array.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return jax.nn.relu(_unwrap(input))

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""
