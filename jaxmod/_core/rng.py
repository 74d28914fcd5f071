"""Random number generation: torch-style generators whose key is state.

A :class:`Generator` holds a JAX PRNG key in a :class:`~jaxmod._core.cells.Variable` and
splits it per draw. Under jaxmod.jit the key is lifted as state like any parameter: every
compiled call gets fresh masks, the sequence eager code seeded the same way draws. Under
plain ``jax.jit`` the key would freeze into a constant (the bug Objax and torch.compile
shipped): drawing there raises instead.
"""

from __future__ import annotations

import secrets
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._core import state
from jaxmod._core.cells import Variable
from jaxmod._core.state import NeedsLift, Tracer

__all__ = ["Generator", "default_generator", "next_key"]

_ctx = state.ctx


class Generator:
    """A stateful source of PRNG keys, like ``torch.Generator``.

    Args:
        seed: the initial seed; ``manual_seed`` re-seeds it later.

    Example:
        >>> g = Generator(0)
        >>> k1, k2 = g.next_key(), g.next_key()   # two different keys
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = int(seed)
        self._key = Variable(jax.random.key(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        """Re-seed this generator and return it (as torch does)."""
        self._seed = int(seed)
        self._key.value = jax.random.key(self._seed)
        return self

    def seed(self) -> int:
        """Re-seed non-deterministically and return the new seed (``torch.Generator.seed``)."""
        return self.manual_seed(secrets.randbits(63)).initial_seed()

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with."""
        return self._seed

    def next_key(self) -> jax.Array:
        """Split off a fresh key and advance the generator's state."""
        key = self._key._value
        if not isinstance(key, Tracer):
            if _ctx.jit_depth:
                # Inside jaxmod.jit but not lifted: jit retraces with this key as state
                # (generators are lifted only once a function draws from them).
                raise NeedsLift(self)
            if not _ctx.lift_depth and not state.trace_is_top_level():
                raise RuntimeError(
                    "A jaxmod Generator was used inside a plain jax.jit/vmap/grad trace, "
                    "where its key would be frozen into the compiled function as a constant "
                    "and every call would repeat the same random numbers. Use jaxmod.jit "
                    "(which lifts the generator's key as state), or pass an explicit "
                    "key/Generator that is an argument of the traced function."
                )
        new, sub = jax.random.split(key)
        self._key._value = new
        return sub

    def get_state(self) -> jax.Array:
        """The current key (a typed JAX PRNG key array); ``set_state`` restores it."""
        return self._key.value

    def set_state(self, key: Any) -> Generator:
        """Replace the current key with a typed key or its raw ``uint32`` key data."""
        key = jnp.asarray(key)
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        self._key.value = key
        return self

    def _jaxmod_cells_(self) -> list[Variable]:
        return [self._key]

    def _jaxmod_static_(self) -> Any:
        return Generator

    def __repr__(self) -> str:
        return f"jaxmod.Generator(seed={self._seed})"


default_generator = Generator(0)


def next_key(generator: Generator | None = None) -> jax.Array:
    """A fresh key from ``generator`` (default: the global generator)."""
    return (generator or default_generator).next_key()
