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

from jaxmod._core import state
from jaxmod._core.cells import Variable, read, to_array, torch_to_numpy, unwrap
from jaxmod._core.state import NeedsLift, is_tracer
from jaxmod._tensor.base import as_tensor as _tensor_as_tensor
from jaxmod._tensor.base import new as _tensor_new
from jaxmod._tensor.dtypes import Size, device
from jaxmod._tensor.dtypes import of as _dt_of
from jaxmod._tensor.tensor import Tensor, TensorMethods

__all__ = ["Variable", "Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"]

# Names other modules of the package import from here.
_read, _unwrap, _to_array, _torch_to_numpy = read, unwrap, to_array, torch_to_numpy
_is_tracer, NeedsLift = is_tracer, NeedsLift


class _TorchBox(TensorMethods):
    """torch's tensor methods on a box (``jaxmod._tensor``'s mixin): reads are the box's
    checked read, in-place results (``fill_``, ``add_``, ``x[i] = v``) are stored in the
    box. Shape, dtype and device describe the box without reading its value."""

    __slots__ = ()

    def _jx(self) -> Any:
        return read(self)

    def _rebind(self, new: Any) -> Any:
        self._value = new
        return self

    # A box copies, deep-copies and pickles as a box (its class and all its slots), not as
    # the Tensor that TensorMethods' torch-style copy would make: ``copy.deepcopy(model)``
    # (EMA, TransformerEncoder's layer clones) must keep Parameters Parameters.
    __copy__ = None
    __deepcopy__ = None
    __reduce_ex__ = object.__reduce_ex__

    shape = property(lambda self: Size(np.shape(self._value)), doc="The shape (torch.Size).")
    dtype = property(lambda self: _dt_of(self._value.dtype), doc="The dtype (``torch.float32``).")
    ndim = property(lambda self: len(np.shape(self._value)), doc="Number of dimensions.")

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
    def device(self) -> Any:
        """The device holding the array (under a trace: the default device)."""
        v = self._value
        if is_tracer(v) or v is None:
            return device._of(jax.devices()[0])
        devs = v.devices()
        return device._of(next(iter(devs)) if len(devs) == 1 else jax.devices()[0])

    def requires_grad_(self, requires_grad: bool = True) -> Variable:
        """Buffers never require gradients (Parameters override this)."""
        if requires_grad:
            raise RuntimeError(
                f"only Parameters can require gradients; this is a {type(self).__name__}"
            )
        return self

    @property
    def requires_grad(self) -> bool:
        """Buffers do not require gradients."""
        return False


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
        return self._text(self._value, False)  # torch: ``p.data`` is a tensor without grad

    __str__ = __repr__


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

    @property  # type: ignore[override]
    def requires_grad(self) -> bool:
        """Whether :func:`jaxmod.grad` differentiates with respect to this parameter."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._requires_grad = bool(value)
        state.bump()  # what is differentiated is part of compiled structure

    @property
    def grad(self) -> Any:
        """The gradient ``loss.backward()`` stored (or one assigned), a Tensor as in torch;
        None when there is none."""
        return getattr(self, "_grad", None)

    @grad.setter
    def grad(self, value: Any) -> None:
        if state.ctx.jit_depth and is_tracer(value):
            raise state.TracerLeakError(
                "p.grad was set to a traced value inside jaxmod.jit; it would outlive the "
                "trace. Pass the gradients to opt.step(grads) inside the jitted step instead "
                "(jaxmod returns gradients rather than storing them)."
            )
        if value is not None and not isinstance(value, Tensor):
            # an array (zero_grad(set_to_none=False), clip_grad_value_, p.grad = ...) is
            # stored as a Tensor, as torch's .grad is one: p.grad.detach(), .norm() work
            value = _tensor_as_tensor(value)
        self._grad = value

    def requires_grad_(self, requires_grad: bool = True) -> Parameter:
        """Set ``requires_grad`` in place and return the parameter."""
        self.requires_grad = requires_grad
        return self

    def __repr__(self) -> str:
        return f"Parameter containing:\n{self._text(self._value, self.requires_grad)}"

    __str__ = __repr__


class _TensorParameter(Parameter):
    """A plain leaf Tensor handed to an optimizer (``torch.optim.LBFGS([input_img])``):
    a Parameter whose value and ``.grad`` are the tensor's, so ``loss.backward()`` on the
    tensor feeds the optimizer and ``opt.step()`` writes the new values into the tensor."""

    __slots__ = ("_base",)
    _jaxmod_rebuild_as_ = Variable  # flattened and rebuilt: a plain box holding the value

    def __init__(self, base: Any) -> None:
        object.__setattr__(self, "_base", base)
        self._requires_grad = True

    @property  # type: ignore[override]
    def _value(self) -> Any:
        return self._base._jx()

    @_value.setter
    def _value(self, new: Any) -> None:
        self._base._rebind(new)

    @property
    def grad(self) -> Any:
        """The tensor's ``.grad``."""
        return self._base.grad

    @grad.setter
    def grad(self, value: Any) -> None:
        Parameter.grad.fset(self, value)  # torch's checks and the Tensor conversion
        self._base.grad = self._grad


def tensor_parameter(t: Any) -> Parameter:
    """The Parameter an optimizer holds for the plain leaf Tensor ``t`` (its values and
    ``.grad`` are ``t``'s); torch's ``ValueError`` for a tensor computed from others."""
    if not t.is_leaf:
        raise ValueError("can't optimize a non-leaf Tensor")
    return _TensorParameter(t)


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
        return self._text(self._value, False)  # torch: a buffer is a plain tensor

    __str__ = __repr__


def _materialize(box: Any, shape: tuple[int, ...], dtype: Any = None) -> None:
    """Give an uninitialised box a zero array of ``shape``, in place (the box keeps its
    identity and becomes its ``cls_to_become``, as torch's ``materialize`` does)."""
    dtype = dtype or box._value.dtype
    box.__class__ = box.cls_to_become
    box._value = jnp.zeros(tuple(int(d) for d in shape), dtype)


class UninitializedParameter(Parameter):
    """A Parameter whose shape is not yet known (the lazy modules' ``weight`` and ``bias``).

    It holds an empty array until the module's first call (or a ``load_state_dict``)
    materialises it, in place, into a :class:`Parameter`.
    """

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__(jnp.zeros((0,), dtype or jnp.float32), requires_grad)

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Become a :class:`Parameter` of ``shape`` (zeros), as torch's ``materialize``."""
        _materialize(self, tuple(shape), dtype)

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class UninitializedBuffer(Buffer):
    """A Buffer whose shape is not yet known (the lazy norms' running statistics).

    Materialised, in place, into a :class:`Buffer` by the module's first call or a
    ``load_state_dict``.
    """

    __slots__ = ()
    cls_to_become = Buffer

    def __init__(
        self, requires_grad: bool = False, device: Any = None, dtype: Any = None,
        persistent: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(jnp.zeros((0,), dtype or jnp.float32), persistent=persistent)

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Become a :class:`Buffer` of ``shape`` (zeros), as torch's ``materialize``."""
        _materialize(self, tuple(shape), dtype)

    def __repr__(self) -> str:
        return "<UninitializedBuffer>"

    __str__ = __repr__


def _is_lazy(box: Any) -> bool:
    """Whether ``box`` is an uninitialised parameter or buffer."""
    return isinstance(box, (UninitializedParameter, UninitializedBuffer))


# The kernel's protocol for value wrappers (``jaxmod._core.cells.wrapper_of``): a Tensor held
# as a module or plain-object attribute is a cell read and rebuilt around its array, and a
# Tensor captured by a jitted function is lifted as a read-only input, never baked in.
Tensor._jaxmod_array_ = Tensor._jx  # type: ignore[attr-defined]
Tensor._jaxmod_wrap_ = staticmethod(_tensor_new)  # type: ignore[attr-defined]
