"""torch's random façade (``manual_seed``, ``rand``, ``randn``, ...) over the kernel's generator.

The generator itself is the kernel's (``jaxmod._core.rng``): a JAX PRNG key held in a box,
split per draw, lifted as state by jaxmod.jit, refusing to be frozen into a plain
``jax.jit`` trace.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxmod._core.rng import Generator, default_generator, next_key

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
    "get_rng_state",
    "set_rng_state",
]


def manual_seed(seed: int) -> Generator:
    """Seed the global generator that layer initialisation and dropout draw from."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator non-deterministically and return the seed."""
    return default_generator.seed()


def get_rng_state() -> jax.Array:
    """The global generator's state (a typed PRNG key; ``set_rng_state`` restores it and
    ``jaxmod.save`` stores it), like ``torch.get_rng_state``."""
    return default_generator.get_state()


def set_rng_state(new_state: jax.Array) -> None:
    """Restore the global generator's state from :func:`get_rng_state` (or key data)."""
    default_generator.set_state(new_state)


def initial_seed() -> int:
    """The seed of the global generator."""
    return default_generator.initial_seed()


@functools.partial(jax.jit, static_argnums=(0, 2))
def _bucket(kind: str, key: jax.Array, n: int) -> jax.Array:
    if kind == "uniform":
        return jax.random.uniform(key, (n,), jnp.float32)
    return jax.random.normal(key, (n,), jnp.float32)


def _sample(kind: str, key: jax.Array, shape: Sequence[int]) -> jax.Array:
    """float32 ``"uniform"`` [0, 1) or standard ``"normal"`` samples of ``shape``.

    Compiling a sampler costs far more than running it, and a model has many parameter
    shapes: samples are drawn flat, in power-of-two sizes (at least 256), and sliced, so a
    handful of compiled samplers serve every shape.
    """
    size = math.prod(shape)
    n = max(256, 1 << max(0, size - 1).bit_length())
    return _bucket(kind, key, n)[:size].reshape(tuple(shape))


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
