"""Random number generation: torch-style generators whose key is state.

A :class:`Generator` holds a JAX PRNG key in a mutable :class:`~jaxmod.nn.Variable`.
Each draw splits the key, so eager code gets fresh numbers every time, and under
:func:`jaxmod.jit` the key is lifted as state like any parameter: every compiled call
gets fresh masks and the sequence is the same as eager code seeded the same way.

Under plain ``jax.jit`` a generator's key would freeze into a compiled constant (the
bug Objax and torch.compile shipped); drawing from a generator there raises instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxmod.nn import parameter as _parameter
from jaxmod.nn.parameter import Variable, _is_tracer, _trace_is_top_level

__all__ = [
    "Generator",
    "default_generator",
    "manual_seed",
    "initial_seed",
    "seed",
    "rand",
    "randn",
    "randint",
    "zeros",
    "ones",
    "full",
    "empty",
    "next_key",
]


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

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with."""
        return self._seed

    def next_key(self) -> jax.Array:
        """Split off a fresh key and advance the generator's state."""
        key = self._key._value
        if _parameter._jit_depth and not _is_tracer(key):
            # Inside jaxmod.jit but not lifted: ask jit to retrace with this generator's
            # key as state (generators are lifted only when a function draws from them).
            raise _parameter.NeedsLift(self)
        if not _is_tracer(key) and not _parameter._lift_depth and not _trace_is_top_level():
            raise RuntimeError(
                "A jaxmod Generator was used inside a plain jax.jit/vmap/grad trace, where its "
                "key would be frozen into the compiled function as a constant and every call "
                "would repeat the same random numbers. Use jaxmod.jit (which lifts the "
                "generator's key as state), or pass an explicit key/Generator that is an "
                "argument of the traced function."
            )
        new, sub = jax.random.split(key)
        self._key._value = new
        return sub

    def get_state(self) -> jax.Array:
        """The current key (a typed JAX PRNG key array)."""
        return self._key.value

    def set_state(self, key: jax.Array) -> None:
        """Replace the current key (a typed key, or its raw ``uint32`` key data as saved by
        ``jaxmod.save(jax.random.key_data(g.get_state()), ...)``)."""
        key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        self._key.value = key

    def _jaxmod_vars_(self) -> list[Variable]:
        return [self._key]

    def __repr__(self) -> str:
        return f"jaxmod.Generator(seed={self._seed})"


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Seed the global generator that layer initialisation and dropout draw from."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator non-deterministically and return the seed."""
    import secrets

    s = secrets.randbits(63)
    default_generator.manual_seed(s)
    return s


def initial_seed() -> int:
    """The seed of the global generator."""
    return default_generator.initial_seed()


def next_key(generator: Generator | None = None) -> jax.Array:
    """A fresh key from ``generator`` (default: the global generator)."""
    return (generator or default_generator).next_key()


@functools.partial(jax.jit, static_argnums=(0, 2))
def _bucket_sample(kind: str, key: jax.Array, n: int) -> jax.Array:
    if kind == "uniform":
        return jax.random.uniform(key, (n,), jnp.float32)
    return jax.random.normal(key, (n,), jnp.float32)


def _sample(kind: str, key: jax.Array, shape: Sequence[int]) -> jax.Array:
    """float32 ``uniform`` [0, 1) or standard ``normal`` samples of ``shape``.

    Compiling a sampler costs far more than running it, and a model has many parameter
    shapes: samples are drawn flat, in power-of-two sizes (at least 256), and sliced, so
    a handful of compiled samplers serve every shape (building AlexNet compiles about 6
    instead of 16).
    """
    size = math.prod(shape)
    n = max(256, 1 << max(0, size - 1).bit_length())
    return _bucket_sample(kind, key, n)[:size].reshape(tuple(shape))


def _shape(size: Sequence) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(int(s) for s in size[0])
    return tuple(int(s) for s in size)


def rand(*size: int, generator: Generator | None = None, dtype=jnp.float32) -> jax.Array:
    """Uniform samples on ``[0, 1)`` with shape ``size`` (``torch.rand``)."""
    return _sample("uniform", next_key(generator), _shape(size)).astype(dtype)


def randn(*size: int, generator: Generator | None = None, dtype=jnp.float32) -> jax.Array:
    """Standard normal samples with shape ``size`` (``torch.randn``)."""
    return _sample("normal", next_key(generator), _shape(size)).astype(dtype)


def randint(
    low: int,
    high: int | None = None,
    size: Sequence[int] = (),
    *,
    generator: Generator | None = None,
    dtype=jnp.int32,
) -> jax.Array:
    """Integers in ``[low, high)`` (``torch.randint``; ``randint(high, size)`` also works)."""
    if high is None:
        low, high = 0, low
    return jax.random.randint(next_key(generator), tuple(size), low, high, dtype=dtype)


def zeros(*size: int, dtype=jnp.float32) -> jax.Array:
    """An array of zeros (``torch.zeros``)."""
    return jnp.zeros(_shape(size), dtype=dtype)


def ones(*size: int, dtype=jnp.float32) -> jax.Array:
    """An array of ones (``torch.ones``)."""
    return jnp.ones(_shape(size), dtype=dtype)


def full(size: Sequence[int], fill_value, *, dtype=None) -> jax.Array:
    """An array filled with ``fill_value`` (``torch.full``)."""
    return jnp.full(tuple(size), fill_value, dtype=dtype)


def empty(*size: int, dtype=jnp.float32) -> jax.Array:
    """Uninitialised memory does not exist in JAX: an array of zeros (``torch.empty``)."""
    return zeros(*size, dtype=dtype)
