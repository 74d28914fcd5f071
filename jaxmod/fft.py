"""``torch.fft`` on JAX (``jnp.fft`` with torch's ``dim=`` / ``s=`` signatures and the type
rule: Tensor inputs give Tensors, ``jax.Array`` inputs give arrays)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxmod._tensor.base import tensor_op
from jaxmod._tensor.factories import finish, float_dtype

__all__ = [
    "fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2",
    "fftn", "ifftn", "rfftn", "irfftn", "fftshift", "ifftshift", "fftfreq", "rfftfreq",
]  # fmt: skip


def _one(name: str) -> Any:
    fn = getattr(jnp.fft, name)

    def op(input: Any, n: int | None = None, dim: int = -1, norm: str | None = None) -> Any:
        return fn(input, n=n, axis=dim, norm=norm)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.fft.{name}`` along ``dim``."
    return tensor_op(op)


def _many(name: str, default_dim: Any) -> Any:
    fn = getattr(jnp.fft, name)

    def op(input: Any, s: Any = None, dim: Any = default_dim, norm: str | None = None) -> Any:
        axes = tuple(dim) if dim is not None else None
        return fn(input, s=s, axes=axes, norm=norm)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.fft.{name}`` over ``dim``."
    return tensor_op(op)


fft, ifft, rfft, irfft = _one("fft"), _one("ifft"), _one("rfft"), _one("irfft")
hfft, ihfft = _one("hfft"), _one("ihfft")
fft2, ifft2 = _many("fft2", (-2, -1)), _many("ifft2", (-2, -1))
rfft2, irfft2 = _many("rfft2", (-2, -1)), _many("irfft2", (-2, -1))
fftn, ifftn, rfftn, irfftn = (_many(n, None) for n in ("fftn", "ifftn", "rfftn", "irfftn"))


@tensor_op
def fftshift(input: Any, dim: Any = None) -> Any:
    """Zero frequency moved to the center."""
    return jnp.fft.fftshift(input, axes=dim)


@tensor_op
def ifftshift(input: Any, dim: Any = None) -> Any:
    """The inverse of :func:`fftshift`."""
    return jnp.fft.ifftshift(input, axes=dim)


def fftfreq(n: int, d: float = 1.0, *, dtype: Any = None, **kwargs: Any) -> Any:
    """Sample frequencies of an ``n``-point FFT (a Tensor)."""
    return finish(jnp.fft.fftfreq(n, d).astype(float_dtype(dtype)), **kwargs)


def rfftfreq(n: int, d: float = 1.0, *, dtype: Any = None, **kwargs: Any) -> Any:
    """Sample frequencies of an ``n``-point real FFT (a Tensor)."""
    return finish(jnp.fft.rfftfreq(n, d).astype(float_dtype(dtype)), **kwargs)
