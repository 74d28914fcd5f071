"""Moving and casting a module's parameters and buffers: ``to``, ``cpu``, ``cuda``, ``half``...

torch's ``Module.to`` rules: a device, a dtype or an array to match; only floating point
arrays are cast; non-floating target dtypes are refused. Boxes are updated in place, each
shared box once; a device move bumps the structure version (compiled steps pin state
shardings). A mixin of :class:`~jaxmod.nn.Module` (Module is the only user).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Self

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import state
from jaxmod._core.cells import Variable, is_value
from jaxmod._core.devices import resolve_device

__all__ = ["ConversionMixin"]

_bump_version = state.bump
_is_array = is_value
_resolve_device = resolve_device


class ConversionMixin:
    """The dtype and device methods of :class:`~jaxmod.nn.Module` (a mixin; Module is the only
    user). They walk the tree with ``self.modules()`` (:class:`TraversalMixin`)."""

    def _apply_to_values(self, fn: Callable[[Any], Any]) -> Self:
        seen: set[int] = set()
        for m in self.modules():
            for box in itertools.chain(m._parameters.values(), m._buffers.values()):
                if box is not None and id(box) not in seen:
                    seen.add(id(box))
                    box._value = fn(box._value)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Self:
        """Move and/or cast parameters and buffers in place, like ``torch.nn.Module.to``.

        Accepts a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"gpu"``, a
        ``jax.Device``), a ``jax.sharding.Sharding``, a floating dtype (only floating
        point arrays are cast, as in torch), or an array whose device and dtype to match.
        ``memory_format=torch.channels_last`` is accepted and changes nothing: XLA picks
        the layout each compiled program computes in.
        """
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        # torch.channels_last & co.: XLA chooses the layouts itself, so there is nothing to do
        fmt = kwargs.pop("memory_format", None)
        if fmt is not None and not (isinstance(fmt, str) and fmt.startswith("torch.")):
            raise TypeError(f"to(): memory_format must be a torch.memory_format, not {fmt!r}")
        if kwargs:
            raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
        for a in args:
            if isinstance(a, bool):
                continue
            if _is_array(a) or isinstance(a, Variable):
                arr = a._value if isinstance(a, Variable) else a
                device, dtype = getattr(arr, "sharding", None), arr.dtype
            elif _is_dtype(a):
                dtype = a
            else:
                device = a
        target = _resolve_device(device) if device is not None else None
        if dtype is not None:
            dtype = jnp.dtype(dtype)
            if not jnp.issubdtype(dtype, jnp.floating) and not jnp.issubdtype(
                dtype, jnp.complexfloating
            ):
                raise TypeError(
                    "nn.Module.to only accepts floating point or complex dtypes, but got "
                    f"desired dtype={dtype}"
                )
            _check_x64(dtype)

        def move(v: Any) -> Any:
            if dtype is not None and jnp.issubdtype(v.dtype, jnp.floating):
                v = v.astype(dtype)
            if target is not None:
                v = jax.device_put(v, target)
            return v

        if target is not None:
            _bump_version()  # compiled steps pin state shardings: re-plan with the new ones
        return self._apply_to_values(move)

    def cpu(self) -> Self:
        """Move every parameter and buffer to the first CPU device."""
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Self:
        """Move every parameter and buffer to a GPU (the first one by default)."""
        return self.to(f"cuda:{device or 0}")

    def share_memory(self) -> Self:
        """``self`` (torch moves storages to shared memory for process workers; JAX arrays
        are immutable and passed to workers by value, so there is nothing to move)."""
        return self

    def to_empty(self, *, device: Any, recurse: bool = True) -> Self:
        """Move to ``device`` (torch leaves the values uninitialised; here they are kept,
        which is one valid choice of uninitialised values)."""
        return self.to(device)

    def float(self) -> Self:
        """Cast floating point parameters and buffers to float32."""
        return self.to(jnp.float32)

    def double(self) -> Self:
        """Cast floating point parameters and buffers to float64 (needs jax_enable_x64)."""
        return self.to(jnp.float64)

    def half(self) -> Self:
        """Cast floating point parameters and buffers to float16."""
        return self.to(jnp.float16)

    def bfloat16(self) -> Self:
        """Cast floating point parameters and buffers to bfloat16."""
        return self.to(jnp.bfloat16)

    def type(self, dst_type: Any) -> Self:
        """Cast all parameters and buffers to ``dst_type``."""
        return self._apply_to_values(lambda v: v.astype(dst_type))


def _is_dtype(x: Any) -> bool:
    if isinstance(x, str):
        try:
            np.dtype(x)
        except TypeError:
            return False
        return x not in ("cpu", "cuda", "gpu", "tpu")
    try:
        jnp.dtype(x)
        return isinstance(x, (type, np.dtype)) or hasattr(x, "dtype")
    except TypeError:
        return False


def _check_x64(dtype: Any) -> None:
    if jnp.dtype(dtype).itemsize == 8 and not jax.config.jax_enable_x64:
        raise TypeError(
            f"{jnp.dtype(dtype)} needs 64-bit mode in JAX: call "
            "jax.config.update('jax_enable_x64', True) before creating arrays."
        )
