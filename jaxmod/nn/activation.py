"""Activation layers with torch's names, arguments and ``repr``.

Layers that take ``inplace`` in torch accept it here too and show it in ``repr`` the way
torch does. With ``inplace=True`` and a :class:`jaxmod.Tensor` input the result is stored
in the input, which is returned (as in torch); a plain ``jax.Array`` is immutable, so it
gets a new array.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod.nn import _typerule
from jaxmod.nn import functional as F
from jaxmod.nn import init as _init
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Parameter, _unwrap

__all__ = [
    "Threshold",
    "ReLU",
    "RReLU",
    "Hardtanh",
    "ReLU6",
    "Sigmoid",
    "Hardsigmoid",
    "Tanh",
    "SiLU",
    "Mish",
    "Hardswish",
    "ELU",
    "CELU",
    "SELU",
    "GLU",
    "GELU",
    "Hardshrink",
    "LeakyReLU",
    "LogSigmoid",
    "Softplus",
    "Softshrink",
    "PReLU",
    "Softsign",
    "Tanhshrink",
    "Softmin",
    "Softmax",
    "Softmax2d",
    "LogSoftmax",
]


def _inplace_suffix(inplace: bool) -> str:
    return ", inplace=True" if inplace else ""


class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value``.

    Args:
        threshold: the threshold.
        value: the replacement below (or at) the threshold.
        inplace: store the result in a Tensor input (a ``jax.Array`` gets a new array).
    """

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.threshold(_unwrap(input), self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace_suffix(self.inplace)}"


class ReLU(Module):
    """``max(x, 0)`` elementwise.

    Args:
        inplace: store the result in a Tensor input and return it, as torch does; a
            ``jax.Array`` is immutable and gets a new array.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.relu(_unwrap(input))

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class RReLU(Module):
    """Randomised leaky ReLU.

    In training, each negative element is scaled by a slope drawn from
    ``U(lower, upper)`` (a key from the global generator, fresh per call); in eval mode
    the slope is ``(lower + upper) / 2``.

    Args:
        lower: lower bound of the slope distribution.
        upper: upper bound.
        inplace: store the result in a Tensor input (a ``jax.Array`` gets a new array).
    """

    def __init__(
        self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False
    ) -> None:
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.rrelu(_unwrap(input), self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}{_inplace_suffix(self.inplace)}"


class Hardtanh(Module):
    """Clip to ``[min_val, max_val]``.

    Args:
        min_val: lower bound.
        max_val: upper bound (must be greater than ``min_val``).
        inplace: store the result in a Tensor input (a ``jax.Array`` gets a new array).
        min_value: deprecated alias of ``min_val`` (FutureWarning, as in torch).
        max_value: deprecated alias of ``max_val``.
    """

    def __init__(
        self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
        min_value: float | None = None, max_value: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        if min_value is not None:
            warnings.warn(
                "keyword argument `min_value` is deprecated and renamed to `min_val`",
                FutureWarning,
                stacklevel=2,
            )
            min_val = min_value
        if max_value is not None:
            warnings.warn(
                "keyword argument `max_value` is deprecated and renamed to `max_val`",
                FutureWarning,
                stacklevel=2,
            )
            max_val = max_value
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace
        if self.max_val <= self.min_val:
            raise AssertionError(
                f"max_val ({self.max_val}) must be greater than min_val ({self.min_val})"
            )

    def forward(self, input: Any) -> jax.Array:
        return F.hardtanh(_unwrap(input), self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_suffix(self.inplace)}"


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)``; ``inplace`` accepted and shown in ``repr``."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """Logistic sigmoid ``1 / (1 + exp(-x))``."""

    def forward(self, input: Any) -> jax.Array:
        return F.sigmoid(_unwrap(input))


class Hardsigmoid(Module):
    """``relu6(x + 3) / 6``; ``inplace`` is accepted (torch does not show it in ``repr``)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.hardsigmoid(_unwrap(input), self.inplace)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, input: Any) -> jax.Array:
        return F.tanh(_unwrap(input))


class SiLU(Module):
    """``x * sigmoid(x)`` (swish); ``inplace`` accepted and shown in ``repr``."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.silu(_unwrap(input), self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Mish(Module):
    """``x * tanh(softplus(x))``; ``inplace`` accepted and shown in ``repr``."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.mish(_unwrap(input), self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Hardswish(Module):
    """``x * relu6(x + 3) / 6``; ``inplace`` is accepted (torch does not show it in ``repr``)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.hardswish(_unwrap(input), self.inplace)


class ELU(Module):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``; ``inplace`` accepted, shown in repr."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.elu(_unwrap(input), self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_suffix(self.inplace)}"


class CELU(Module):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``; ``inplace`` accepted."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.celu(_unwrap(input), self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_suffix(self.inplace)}"


class SELU(Module):
    """Scaled ELU with the self-normalising constants; ``inplace`` accepted."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.selu(_unwrap(input), self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class GLU(Module):
    """Gated linear unit ``a * sigmoid(b)`` over the two halves of ``dim``."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> jax.Array:
        return F.glu(_unwrap(input), self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    """Gaussian error linear unit, exact (``'none'``) or tanh-approximated (``'tanh'``)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Any) -> jax.Array:
        return F.gelu(_unwrap(input), approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Hardshrink(Module):
    """``x`` where ``|x| > lambd``, else 0."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Any) -> jax.Array:
        return F.hardshrink(_unwrap(input), self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class LeakyReLU(Module):
    """``x`` if ``x > 0`` else ``negative_slope * x``; ``inplace`` accepted, shown in repr."""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.leaky_relu(_unwrap(input), self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace_suffix(self.inplace)}"


class LogSigmoid(Module):
    """``log(sigmoid(x))``, computed stably."""

    def forward(self, input: Any) -> jax.Array:
        return F.logsigmoid(_unwrap(input))


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Any) -> jax.Array:
        return F.softplus(_unwrap(input), self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softshrink(Module):
    """Shrink towards zero by ``lambd`` (0 inside ``[-lambd, lambd]``)."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Any) -> jax.Array:
        return F.softshrink(_unwrap(input), self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class PReLU(Module):
    """Leaky ReLU with a learnt slope: ``max(0, x) + weight * min(0, x)``.

    Args:
        num_parameters: 1 (one slope shared by all channels) or the number of channels
            (dim 1 of the input, or dim 0 of a 1-D input).
        init: initial value of every slope (default 0.25).
        device: where to place the parameter.
        dtype: parameter dtype (default float32).
    """

    def __init__(
        self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(_init._filled(num_parameters, init, dtype))
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Fill the slopes with ``init``."""
        _init.constant_(self.weight, self.init)

    def forward(self, input: Any) -> jax.Array:
        return F.prelu(_unwrap(input), self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softsign(Module):
    """``x / (1 + |x|)``."""

    def forward(self, input: Any) -> jax.Array:
        return F.softsign(_unwrap(input))


class Tanhshrink(Module):
    """``x - tanh(x)``."""

    def forward(self, input: Any) -> jax.Array:
        return F.tanhshrink(_unwrap(input))


class Softmin(Module):
    """``softmax(-x)`` along ``dim`` (torch's legacy implicit dim, with a warning, if None)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> jax.Array:
        return F.softmin(_unwrap(input), self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(Module):
    """Softmax along ``dim`` (torch's legacy implicit dim, with a warning, if None)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> jax.Array:
        return F.softmax(_unwrap(input), self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of ``(N, C, H, W)`` or ``(C, H, W)`` inputs."""

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        if jnp.ndim(x) not in (3, 4):
            raise ValueError(
                f"Softmax2d: expected input to be 3D or 4D, got {jnp.ndim(x)}D instead"
            )
        return F.softmax(x, -3, _stacklevel=5)


class LogSoftmax(Module):
    """Log of the softmax along ``dim`` (legacy implicit dim, with a warning, if None)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> jax.Array:
        return F.log_softmax(_unwrap(input), self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


_typerule.tensor_forwards(globals())
