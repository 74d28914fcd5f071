"""torch's tensor boxes: :class:`Parameter`, :class:`Buffer`, and ``p.data`` views.

The box itself -- a mutable cell holding one JAX array, a one-leaf pytree whose reads are
checked under jaxmod.jit -- is the kernel's :class:`~jaxmod._core.cells.Variable`. This
module adds what torch code calls on a parameter or buffer (``p.data``, ``fill_``,
``normal_``, ``size()``, ``requires_grad``...), so ``nn.init.kaiming_normal_(m.weight)``,
``p.data = x`` and ``m.bias.zero_()`` work by replacing the array inside the box.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import rng, state
from jaxmod._core.cells import Variable, read, to_array, torch_to_numpy, unwrap
from jaxmod._core.state import NeedsLift, is_tracer
from jaxmod.random import _sample

__all__ = ["Variable", "Parameter", "Buffer", "UninitializedParameter"]

# Names other modules of the package import from here.
_read, _unwrap, _to_array, _torch_to_numpy = read, unwrap, to_array, torch_to_numpy
_is_tracer, NeedsLift = is_tracer, NeedsLift


class _TorchBox:
    """torch's tensor methods on a box: in-place writes go through ``Variable._assign``."""

    __slots__ = ()

    @property
    def data(self) -> Variable:
        """A view that shares this box's storage, as ``tensor.data`` does in torch.

        ``p.data.fill_(1.0)`` changes ``p``; ``p.data = x`` replaces ``p``'s array.
        """
        return _DataView(self)

    @data.setter
    def data(self, new: Any) -> None:
        self._value = to_array(new)

    @property
    def T(self) -> jax.Array:
        """Transposed array (``p.T``)."""
        return read(self).T

    @property
    def mT(self) -> jax.Array:
        """Matrix transpose of the last two dimensions."""
        return jnp.swapaxes(read(self), -1, -2)

    @property
    def device(self) -> Any:
        """The device holding the array (the first one when it is sharded)."""
        v = self._value
        devs = v.devices() if hasattr(v, "devices") else set()
        return next(iter(devs)) if len(devs) == 1 else getattr(v, "device", None)

    @property
    def is_cuda(self) -> bool:
        """Whether the array lives on a GPU."""
        return getattr(self.device, "platform", "cpu") in ("gpu", "cuda", "rocm")

    def size(self, dim: int | None = None) -> Any:
        """torch's ``size()``: the shape, or one dimension of it."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        """Number of dimensions (torch's ``dim()``)."""
        return self.ndim

    def numel(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    def item(self) -> Any:
        """The single value as a Python scalar."""
        return read(self).item()

    def tolist(self) -> Any:
        """The array as nested Python lists."""
        return read(self).tolist()

    def numpy(self) -> np.ndarray:
        """A numpy copy of the array."""
        return np.asarray(read(self))

    def detach(self) -> jax.Array:
        """The held array, cut from autodiff (``jax.lax.stop_gradient``)."""
        return jax.lax.stop_gradient(read(self))

    def clone(self) -> jax.Array:
        """A copy of the held array."""
        return jnp.array(read(self), copy=True)

    def fill_(self, value: Any) -> Variable:
        """Fill with a scalar, in place."""
        return self._assign(unwrap(value))

    def zero_(self) -> Variable:
        """Fill with zeros, in place."""
        return self._assign(0)

    def copy_(self, src: Any) -> Variable:
        """Copy ``src`` (broadcast and cast to this box's dtype) in place."""
        return self._assign(to_array(src))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Variable:
        """Fill with normal samples drawn from ``generator`` (default: the global one)."""
        return self._assign(_sample("normal", rng.next_key(generator), self.shape) * std + mean)

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Variable:
        """Fill with uniform samples on ``[a, b)`` drawn from ``generator``."""
        u = _sample("uniform", rng.next_key(generator), self.shape)
        return self._assign(u * (b - a) + a)

    def add_(self, other: Any, *, alpha: float = 1) -> Variable:
        """``self += alpha * other`` in place."""
        return self._assign(read(self) + alpha * unwrap(other))

    def sub_(self, other: Any, *, alpha: float = 1) -> Variable:
        """``self -= alpha * other`` in place."""
        return self._assign(read(self) - alpha * unwrap(other))

    def mul_(self, other: Any) -> Variable:
        """``self *= other`` in place."""
        return self._assign(read(self) * unwrap(other))

    def div_(self, other: Any) -> Variable:
        """``self /= other`` in place."""
        return self._assign(read(self) / unwrap(other))

    def clamp_(self, min: Any = None, max: Any = None) -> Variable:
        """Clip to ``[min, max]`` in place."""
        return self._assign(jnp.clip(read(self), min, max))

    def requires_grad_(self, requires_grad: bool = True) -> Variable:
        """Buffers never require gradients (Parameters override this)."""
        if requires_grad:
            raise RuntimeError(
                f"only Parameters can require gradients; this is a {type(self).__name__}"
            )
        return self


class _DataView(_TorchBox, Variable):
    """``p.data``: reads and writes go to the box it was taken from."""

    __slots__ = ("_base",)
    _jaxmod_rebuild_as_ = Variable  # flattened and rebuilt: a plain box holding the value

    def __init__(self, base: Variable) -> None:
        object.__setattr__(self, "_base", base)

    @property  # type: ignore[override]
    def _value(self) -> Any:
        return self._base._value

    @_value.setter
    def _value(self, new: Any) -> None:
        self._base._value = new

    def __repr__(self) -> str:
        return repr(self._base._value)


class Parameter(_TorchBox, Variable):
    """A trainable array of a Module, like ``torch.nn.Parameter``.

    Assigning a Parameter to a Module attribute registers it in ``_parameters``;
    :func:`jaxmod.grad` differentiates with respect to every Parameter whose
    ``requires_grad`` is true.

    Args:
        data: the initial array (default: an empty float32 array).
        requires_grad: whether gradients are taken with respect to it.
    """

    __slots__ = ("_requires_grad", "_grad")

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        super().__init__(jnp.zeros((0,), jnp.float32) if data is None else data)
        self._requires_grad = bool(requires_grad)

    @property
    def requires_grad(self) -> bool:
        """Whether :func:`jaxmod.grad` differentiates with respect to this parameter."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._requires_grad = bool(value)
        state.bump()  # what is differentiated is part of compiled structure

    @property
    def grad(self) -> Any:
        """A gradient stored by the user (jaxmod returns gradients rather than storing)."""
        return getattr(self, "_grad", None)

    @grad.setter
    def grad(self, value: Any) -> None:
        if state.ctx.jit_depth and is_tracer(value):
            raise state.TracerLeakError(
                "p.grad was set to a traced value inside jaxmod.jit; it would outlive the "
                "trace. Pass the gradients to opt.step(grads) inside the jitted step instead "
                "(jaxmod returns gradients rather than storing them)."
            )
        self._grad = value

    def requires_grad_(self, requires_grad: bool = True) -> Parameter:
        """Set ``requires_grad`` in place and return the parameter."""
        self.requires_grad = requires_grad
        return self

    def __repr__(self) -> str:
        return f"Parameter containing:\n{self._value!r}"


class Buffer(_TorchBox, Variable):
    """A non-trainable array of a Module, like ``torch.nn.Buffer`` (running statistics).

    Args:
        data: the array.
        persistent: whether it is saved in ``state_dict``.
    """

    __slots__ = ("persistent",)

    def __init__(self, data: Any = None, *, persistent: bool = True) -> None:
        super().__init__(data)
        self.persistent = bool(persistent)

    def __repr__(self) -> str:
        return f"Buffer containing:\n{self._value!r}"


class UninitializedParameter(Parameter):
    """A Parameter whose shape is not yet known (used by ``LazyLinear``)."""

    __slots__ = ()

    def __init__(self, requires_grad: bool = True) -> None:
        super().__init__(None, requires_grad)

    def __repr__(self) -> str:
        return "<UninitializedParameter>"
