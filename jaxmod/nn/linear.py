"""Linear layers (Identity, Linear, Bilinear, LazyLinear) and Flatten/Unflatten.

Weights use torch's layouts and default initialisation.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod.nn import _typerule, init
from jaxmod.nn import functional as F
from jaxmod.nn.lazy import LazyModuleMixin
from jaxmod.nn.module import Module, ShapeError
from jaxmod.nn.parameter import Parameter, UninitializedParameter, _materialize, _unwrap

__all__ = ["Identity", "Linear", "Bilinear", "LazyLinear", "Flatten", "Unflatten"]


class Identity(Module):
    """Returns its input unchanged; accepts and ignores any constructor arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last dimension of ``x``.

    Args:
        in_features: size of each input's last dimension.
        out_features: size of each output's last dimension.
        bias: whether to learn an additive bias.
        device: where to place the parameters (``"cpu"``, ``"cuda"``, a jax Device).
        dtype: parameter dtype (default float32).

    ``weight`` has shape ``(out_features, in_features)`` and, like ``bias``, is drawn
    from ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` (torch's kaiming-uniform with
    ``a=sqrt(5)``).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
        dtype: Any = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        dtype = dtype or jnp.float32
        self.weight = Parameter(init._filled((out_features, in_features), 0, dtype))
        if bias:
            self.bias = Parameter(init._filled(out_features, 0, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias with torch's default initialisation."""
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        init.uniform_(self.weight, -bound, bound)  # torch's kaiming_uniform_(a=sqrt(5))
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        if jnp.ndim(x) == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"{self!r} expects inputs whose last dimension is {self.in_features}, "
                f"got an input of shape {tuple(jnp.shape(x))}"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Bilinear(Module):
    """``y[..., o] = x1[..., i] weight[o, i, j] x2[..., j] + bias[o]``.

    Args:
        in1_features: size of ``x1``'s last dimension.
        in2_features: size of ``x2``'s last dimension.
        out_features: size of the output's last dimension.
        bias: whether to learn an additive bias.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    ``weight`` has shape ``(out_features, in1_features, in2_features)``; weight and bias
    are drawn from ``U(-1/sqrt(in1_features), 1/sqrt(in1_features))`` as in torch.
    """

    def __init__(
        self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
        device: Any = None, dtype: Any = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        dtype = dtype or jnp.float32
        self.weight = Parameter(init._filled((out_features, in1_features, in2_features), 0, dtype))
        if bias:
            self.bias = Parameter(init._filled(out_features, 0, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from ``U(-1/sqrt(in1_features), 1/sqrt(in1_features))``."""
        if self.in1_features <= 0:
            raise ValueError(
                f"in1_features must be > 0, but got (in1_features={self.in1_features})"
            )
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Any, input2: Any) -> jax.Array:
        x1, x2 = _unwrap(input1), _unwrap(input2)
        s1, s2 = tuple(jnp.shape(x1)), tuple(jnp.shape(x2))
        if (
            not s1
            or not s2
            or s1[-1] != self.in1_features
            or s2[-1] != self.in2_features
            or s1[:-1] != s2[:-1]
        ):
            raise ValueError(
                f"{self!r} expects inputs of shapes (*, {self.in1_features}) and "
                f"(*, {self.in2_features}) with the same leading dimensions, got inputs of "
                f"shapes {s1} and {s2}"
            )
        return F.bilinear(x1, x2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class LazyLinear(LazyModuleMixin, Linear):
    """A :class:`Linear` whose ``in_features`` is inferred from the first input.

    Args:
        out_features: size of each output's last dimension.
        bias: whether to learn an additive bias.
        device: where to place the parameters once they are created.
        dtype: parameter dtype (default float32).

    ``weight`` (and ``bias``) start as :class:`UninitializedParameter`; the first call
    (which must be eager, not inside ``jaxmod.jit``) gives them their shapes, draws
    them with Linear's initialisation and turns the module into a :class:`Linear`, as
    torch does. A successful ``load_state_dict`` materialises them with the loaded shapes
    (a failed one leaves them uninitialised).
    """

    cls_to_become = Linear

    def __init__(
        self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(0, 0, False)
        self._lazy_setup(device, dtype)
        self.weight = UninitializedParameter()
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter()

    def reset_parameters(self) -> None:
        """Linear's initialisation, once the parameters have shapes."""
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Any) -> None:
        """Give the parameters their shapes from ``input``'s last dimension."""
        x = _unwrap(input)
        if jnp.ndim(x) == 0:
            raise ValueError(f"{self!r} expects inputs with at least 1 dimension, got a scalar")
        if self.has_uninitialized_params():
            self.in_features = int(x.shape[-1])
            _materialize(self.weight, (self.out_features, self.in_features), self._lazy_dtype)
            if self.bias is not None:
                _materialize(self.bias, (self.out_features,), self._lazy_dtype)
            self.reset_parameters()
        if self.in_features == 0:
            if x.shape[-1] != self.weight.shape[-1]:
                raise ValueError(
                    f"The in_features inferred from input: {x.shape[-1]} is not equal to "
                    f"in_features from self.weight: {self.weight.shape[-1]}"
                )
            self.in_features = int(x.shape[-1])


class Flatten(Module):
    """Flatten dims ``start_dim`` to ``end_dim`` (inclusive) into one.

    Args:
        start_dim: first dim to flatten (default 1, keeping the batch dim).
        end_dim: last dim to flatten.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        shape = tuple(jnp.shape(x))
        nd = max(len(shape), 1)
        for d in (self.start_dim, self.end_dim):
            if not -nd <= d < nd:
                raise ValueError(
                    f"{self!r} got an input of shape {shape}: dimension {d} is out of "
                    f"range [{-nd}, {nd - 1}]"
                )
        if not shape:
            return jnp.reshape(x, (1,))
        s, e = self.start_dim % nd, self.end_dim % nd
        if s > e:
            raise ValueError(
                f"{self!r}: start_dim cannot come after end_dim (input of shape {shape})"
            )
        return jnp.reshape(x, shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (which may hold one ``-1``).

    Args:
        dim: the dimension to unflatten.
        unflattened_size: the new sizes (a tuple or list of ints).
    """

    def __init__(self, dim: int, unflattened_size: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(
                "unflattened_size must be a tuple of ints, but found type "
                f"{type(unflattened_size).__name__}"
            )
        for idx, elem in enumerate(unflattened_size):
            if not isinstance(elem, int):
                raise TypeError(
                    "unflattened_size must be tuple of ints, but found element of type "
                    f"{type(elem).__name__} at pos {idx}"
                )
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        shape = tuple(jnp.shape(x))
        nd = len(shape)
        if not -nd <= self.dim < nd:
            raise ValueError(
                f"{self!r} got an input of shape {shape}: dimension {self.dim} is out of "
                f"range [{-nd}, {nd - 1}]"
            )
        d = self.dim % nd
        sizes = list(self.unflattened_size)
        known = math.prod(s for s in sizes if s != -1)
        unknown = sizes.count(-1)
        if (
            unknown > 1
            or (unknown == 0 and known != shape[d])
            or (unknown == 1 and (known == 0 or shape[d] % known))
        ):
            raise ValueError(
                f"{self!r} cannot split dimension {self.dim} of size {shape[d]} into "
                f"{tuple(sizes)} (input of shape {shape})"
            )
        if -1 in sizes:
            sizes[sizes.index(-1)] = shape[d] // known
        return jnp.reshape(x, shape[:d] + tuple(sizes) + shape[d + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


_typerule.tensor_forwards(globals())
