"""``torch.distributions.utils``: the helpers user code imports (``broadcast_all``,
``probs_to_logits``, ``logits_to_probs``, ``clamp_probs``, ``lazy_property``,
``euler_constant``); results follow jaxmod's type rule (Tensors unless given arrays)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor import base as _b
from jaxmod.distributions import discrete as _discrete
from jaxmod.distributions import distribution as _dist
from jaxmod.distributions.gumbel import euler_constant

__all__ = ["broadcast_all", "clamp_probs", "euler_constant", "lazy_property",
           "logits_to_probs", "probs_to_logits"]  # fmt: skip


def _out(x: Any, *given: Any) -> Any:
    return _b.new(x) if _dist.wants_tensor(*given) else x


def broadcast_all(*values: Any) -> tuple[Any, ...]:
    """The values broadcast to one shape (numbers take the first tensor's dtype)."""
    return tuple(_out(a, *values) for a in _dist.broadcast_all(*values))


def clamp_probs(probs: Any) -> Any:
    """``probs`` clamped into ``[eps, 1 - eps]``."""
    return _out(_discrete._clamp_probs(jnp.asarray(_b.unwrap(probs))), probs)


def probs_to_logits(probs: Any, is_binary: bool = False) -> Any:
    """Log-probabilities (log-odds when ``is_binary``) of clamped ``probs``."""
    return _out(_discrete.probs_to_logits(jnp.asarray(_b.unwrap(probs)), is_binary), probs)


def logits_to_probs(logits: Any, is_binary: bool = False) -> Any:
    """``sigmoid(logits)`` when ``is_binary``, else ``softmax`` over the last dimension."""
    a = jnp.asarray(_b.unwrap(logits))
    return _out(jax.nn.sigmoid(a) if is_binary else jax.nn.softmax(a, -1), logits)


class lazy_property:  # noqa: N801 - torch's name
    """A property computed once per instance, then stored on it (torch's decorator)."""

    def __init__(self, wrapped: Callable[[Any], Any]) -> None:
        self.wrapped = wrapped
        functools.update_wrapper(self, wrapped)  # type: ignore[arg-type]

    def __get__(self, instance: Any, obj_type: Any = None) -> Any:
        if instance is None:
            return self
        value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value
