"""Random tensors with torch's signatures, drawn from jaxmod's generators.

Every draw takes a fresh key from ``generator`` (default: the global generator seeded by
``jaxmod.manual_seed``) through :func:`jaxmod.random.next_key`, so draws work eagerly and
under :func:`jaxmod.jit` (which lifts the generator's key as state). The numbers differ
from torch's (a different generator); their distributions are the same.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod import random
from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor.factories import finish, float_dtype, size_of

_Tracer = jax.core.Tracer


def _random() -> Any:
    return random


def _key(generator: Any) -> Any:
    return _random().next_key(generator)


def _uniform(shape: tuple[int, ...], dtype: Any, generator: Any) -> Any:
    return _random().rand(*shape, generator=generator, dtype=jnp.float32).astype(dtype)


def _normal(shape: tuple[int, ...], dtype: Any, generator: Any) -> Any:
    return _random().randn(*shape, generator=generator, dtype=jnp.float32).astype(dtype)


def rand(*size: Any, generator: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
    """Uniform samples on ``[0, 1)`` of shape ``size`` (``torch.rand``)."""
    dt = float_dtype(dtype)
    return finish(_uniform(size_of(size, kwargs), dt, generator), **kwargs)


def randn(*size: Any, generator: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
    """Standard normal samples of shape ``size`` (``torch.randn``)."""
    dt = float_dtype(dtype)
    return finish(_normal(size_of(size, kwargs), dt, generator), **kwargs)


def randint(*args: Any, size: Any = None, generator: Any = None, dtype: Any = None,
            **kwargs: Any) -> Any:  # fmt: skip
    """Integers on ``[low, high)``: ``randint(high, size)`` or ``randint(low, high, size)``."""
    args = list(args)
    if size is None:
        if not args or not isinstance(args[-1], (tuple, list)):
            raise TypeError(
                "randint() missing required argument 'size' (a tuple, e.g. randint(10, (3,)))"
            )
        size = args.pop()
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        raise TypeError("randint() takes (high, size) or (low, high, size)")
    low, high = int(_b.unwrap(low)), int(_b.unwrap(high))
    if low >= high:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    dt = _dt.as_dtype(dtype) or _dt.wide("long")
    shape = tuple(int(s) for s in size)
    draw_dt = dt if dt.kind in "iu" else _dt.wide("long")
    out = jax.random.randint(_key(generator), shape, low, high, dtype=draw_dt)
    return finish(out.astype(dt), **kwargs)


def randperm(n: int, *, generator: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
    """A random permutation of ``0 .. n-1``."""
    dt = _dt.as_dtype(dtype) or _dt.wide("long")
    return finish(jax.random.permutation(_key(generator), int(n)).astype(dt), **kwargs)


def rand_like(input: Any, *, dtype: Any = None, generator: Any = None, **kwargs: Any) -> Any:
    """``rand`` with ``input``'s shape and dtype."""
    a = _b.unwrap(input)
    return finish(_uniform(a.shape, _dt.as_dtype(dtype) or a.dtype, generator), **kwargs)


def randn_like(input: Any, *, dtype: Any = None, generator: Any = None, **kwargs: Any) -> Any:
    """``randn`` with ``input``'s shape and dtype."""
    a = _b.unwrap(input)
    return finish(_normal(a.shape, _dt.as_dtype(dtype) or a.dtype, generator), **kwargs)


def randint_like(input: Any, low: int = 0, high: Any = None, *, dtype: Any = None,
                 generator: Any = None, **kwargs: Any) -> Any:  # fmt: skip
    """``randint`` with ``input``'s shape and dtype."""
    a = _b.unwrap(input)
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(a.shape), generator=generator,
                   dtype=dtype or a.dtype, **kwargs)  # fmt: skip


def _check_probs(p: Any, name: str) -> None:
    if isinstance(p, _Tracer):
        return
    a = np.asarray(p)
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if np.any(a.sum(-1) <= 0):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")


def multinomial(input: Any, num_samples: int, replacement: bool = False, *,
                generator: Any = None, **kwargs: Any) -> Any:  # fmt: skip
    """Category indices drawn with probabilities proportional to the rows of ``input``
    (1-D or 2-D); without ``replacement`` each row's samples are distinct."""
    p = _b.unwrap(input)
    if p.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    n = p.shape[-1]
    _check_probs(p, "multinomial")
    if not replacement and num_samples > n:
        raise RuntimeError(
            "cannot sample n_sample > prob_dist.size(-1) samples without replacement"
        )
    if not replacement and not isinstance(p, _Tracer):
        if np.any(np.count_nonzero(np.asarray(p), axis=-1) < num_samples):
            raise RuntimeError(
                "invalid multinomial distribution (with replacement=False, not enough "
                "non-negative category to sample)"
            )
    logits = jnp.log(p.astype(jnp.float32))
    key = _key(generator)
    if replacement:
        shape = (num_samples,) + p.shape[:-1]
        out = jax.random.categorical(key, logits, axis=-1, shape=shape)
        out = jnp.moveaxis(out, 0, -1)
    else:
        g = jax.random.gumbel(key, p.shape, jnp.float32)
        out = jax.lax.top_k(logits + g, num_samples)[1]
    return _b.wrap_like(out.astype(_dt.wide("long")), input)


def bernoulli(input: Any, p: Any = None, *, generator: Any = None, **kwargs: Any) -> Any:
    """0/1 samples with probability ``input`` (or ``p``), in ``input``'s dtype."""
    a = _b.unwrap(input)
    prob = a if p is None else jnp.broadcast_to(jnp.asarray(_b.unwrap(p)), a.shape)
    out = jax.random.bernoulli(_key(generator), prob.astype(jnp.float32), a.shape)
    return _b.wrap_like(out.astype(a.dtype), input, p)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, *, generator: Any = None,
           dtype: Any = None, **kwargs: Any) -> Any:  # fmt: skip
    """Normal samples: tensors ``mean``/``std`` (broadcast), or floats and a ``size``."""
    m, s = _b.unwrap(mean), _b.unwrap(std)
    if size is not None:
        shape = tuple(int(x) for x in size)
        dt = float_dtype(dtype)
    else:
        shape = tuple(jnp.broadcast_shapes(np.shape(m), np.shape(s)))
        dts = [x.dtype for x in (m, s) if hasattr(x, "dtype")]
        dt = _dt.as_dtype(dtype) or (jnp.result_type(*dts) if dts else float_dtype(None))
    out = (_normal(shape, dt, generator) * s + m).astype(dt)
    if size is None and not _b._has_tensor((mean, std)) and (np.ndim(m) or np.ndim(s)):
        return out
    return finish(out, **kwargs)


def poisson(input: Any, generator: Any = None) -> Any:
    """Poisson samples with rates ``input``."""
    a = _b.unwrap(input)
    return _b.wrap_like(jax.random.poisson(_key(generator), a, a.shape).astype(a.dtype), input)


class RandomMethods(_b.TensorBase):
    """In-place random fills (``normal_``, ``uniform_``, ``bernoulli_``, ...)."""

    __slots__ = ()

    def _fill(self, sample: Any) -> Any:
        return self._rebind(jnp.asarray(sample).astype(self._jx().dtype))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Any:
        """Fill with normal samples."""
        v = self._jx()
        return self._fill(_normal(v.shape, jnp.float32, generator) * std + mean)

    def uniform_(self, from_: float = 0.0, to: float = 1.0, *, generator: Any = None,
                 **kwargs: Any) -> Any:  # fmt: skip
        """Fill with uniform samples on ``[from_, to)``."""
        lo = kwargs.pop("from", from_)
        v = self._jx()
        return self._fill(_uniform(v.shape, jnp.float32, generator) * (to - lo) + lo)

    def bernoulli_(self, p: Any = 0.5, *, generator: Any = None) -> Any:
        """Fill with 0/1 samples that are 1 with probability ``p`` (a float or a tensor)."""
        v = self._jx()
        prob = jnp.broadcast_to(jnp.asarray(_b.unwrap(p), jnp.float32), v.shape)
        return self._fill(jax.random.bernoulli(_key(generator), prob, v.shape))

    def bernoulli(self, p: Any = None, *, generator: Any = None) -> Any:
        """0/1 samples with probability ``self`` (or ``p``)."""
        return bernoulli(self, p, generator=generator)

    def random_(self, from_: int = 0, to: int | None = None, *, generator: Any = None,
                **kwargs: Any) -> Any:  # fmt: skip
        """Fill with integers on ``[from_, to)`` (``random_(to)``: on ``[0, to)``)."""
        lo = kwargs.pop("from", from_)
        v = self._jx()
        if to is None:
            lo, to = (0, lo) if lo else (0, 2**24 if v.dtype.kind == "f" else 2**31 - 1)
        out = jax.random.randint(_key(generator), v.shape, lo, to, dtype=_dt.wide("long"))
        return self._fill(out)

    def exponential_(self, lambd: float = 1.0, *, generator: Any = None) -> Any:
        """Fill with exponential samples of rate ``lambd``."""
        v = self._jx()
        return self._fill(jax.random.exponential(_key(generator), v.shape) / lambd)

    def log_normal_(self, mean: float = 1.0, std: float = 2.0, *, generator: Any = None) -> Any:
        """Fill with ``exp`` of normal samples."""
        v = self._jx()
        return self._fill(jnp.exp(_normal(v.shape, jnp.float32, generator) * std + mean))

    def cauchy_(self, median: float = 0.0, sigma: float = 1.0, *, generator: Any = None) -> Any:
        """Fill with Cauchy samples."""
        v = self._jx()
        return self._fill(median + sigma * jax.random.cauchy(_key(generator), v.shape))

    def geometric_(self, p: float, *, generator: Any = None) -> Any:
        """Fill with geometric samples (trials until the first success)."""
        v = self._jx()
        u = _uniform(v.shape, jnp.float32, generator)
        return self._fill(jnp.ceil(jnp.log1p(-u) / math.log1p(-p)))

    def multinomial(self, num_samples: int, replacement: bool = False, *,
                    generator: Any = None) -> Any:  # fmt: skip
        """Category indices drawn with probabilities proportional to the rows."""
        return multinomial(self, num_samples, replacement, generator=generator)


RANDOM: dict[str, Any] = {
    f.__name__: f
    for f in (rand, randn, randint, randperm, rand_like, randn_like, randint_like,
              multinomial, bernoulli, normal, poisson)
}  # fmt: skip
