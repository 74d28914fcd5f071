"""Small shared helpers of the layer modules (argument tuples and input-shape checks)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax.numpy as jnp

__all__: list[str] = []


def _ntuple(x: Any, n: int) -> tuple[Any, ...]:
    """torch's ``_ntuple(n)(x)``: an iterable becomes a tuple as is, a scalar is repeated."""
    if isinstance(x, Iterable) and not isinstance(x, str):
        return tuple(x)
    return (x,) * n


def _reverse_repeat_tuple(t: tuple[int, ...], n: int) -> tuple[int, ...]:
    """``(a, b) -> (b, b, a, a)`` for ``n=2``: ``F.pad`` order from per-dimension pads."""
    return tuple(x for x in reversed(t) for _ in range(n))


def check_ndim(module: Any, x: Any, allowed: Iterable[int], what: str = "") -> None:
    """Raise a ValueError naming ``module`` unless ``x.ndim`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if jnp.ndim(x) not in allowed:
        dims = " or ".join(f"{d}D" for d in allowed)
        raise ValueError(
            f"{module!r} expects {dims} input{what}, got an input of shape {tuple(jnp.shape(x))}"
        )


def check_min_ndim(module: Any, x: Any, min_ndim: int, what: str = "") -> None:
    """Raise a ValueError naming ``module`` unless ``x`` has at least ``min_ndim`` dims."""
    if jnp.ndim(x) < min_ndim:
        raise ValueError(
            f"{module!r} expects an input with at least {min_ndim} dimensions{what}, got an "
            f"input of shape {tuple(jnp.shape(x))}"
        )
