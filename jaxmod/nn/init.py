"""Parameter initialisation with the names, formulas and errors of ``torch.nn.init``.

Every ``*_`` function takes a box (:class:`~jaxmod.nn.Parameter`, :class:`~jaxmod.nn.Buffer`
or :class:`~jaxmod.nn.Variable`), replaces the array inside it (the box keeps its shape
and dtype) and returns the box, so torch code such as
``nn.init.kaiming_normal_(m.weight, nonlinearity="relu")`` works unchanged.

Random draws come from ``generator`` (a :class:`jaxmod.Generator`), or from the global
generator seeded by :func:`jaxmod.manual_seed` when it is ``None``; a raw JAX PRNG key is
accepted too. Samples are drawn in float32 and then cast to the box's dtype. The numbers
differ from torch's (different generators); the distributions are the same.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod.nn.parameter import Variable
from jaxmod.random import Generator, _sample, next_key

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
]

_NonlinearityType = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]
_FanMode = Literal["fan_in", "fan_out"]
GeneratorLike = Generator | jax.Array | None


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _box(tensor: Any, fn: str) -> Variable:
    if not isinstance(tensor, Variable):
        raise TypeError(
            f"nn.init.{fn} fills a jaxmod Parameter, Buffer or Variable in place; got "
            f"{type(tensor).__name__}. JAX arrays are immutable: wrap the array in a "
            "Parameter (or use jax.random directly) instead."
        )
    return tensor


def _key(generator: GeneratorLike) -> jax.Array:
    """A fresh PRNG key from a Generator (default: the global one), or the key given."""
    if isinstance(generator, jax.Array):
        return generator
    return next_key(generator)


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(
        int(s) for s in np.shape(tensor._value if isinstance(tensor, Variable) else tensor)
    )


def _draw(sampler: Any, key: jax.Array, shape: tuple[int, ...], *args: Any) -> jax.Array:
    """``sampler(key, (n,), ...)`` reshaped to ``shape``: flat draws compile several times
    faster than n-D ones, and one compiled sampler then serves every shape of that size."""
    if sampler is jax.random.uniform:
        return _sample("uniform", key, shape)
    if sampler is jax.random.normal:
        return _sample("normal", key, shape)
    return sampler(key, (math.prod(shape),), *args).reshape(shape)


def _uniform(tensor: Variable, a: float, b: float, generator: GeneratorLike) -> Variable:
    if a > b:
        raise ValueError(
            f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}"
        )
    u = _draw(jax.random.uniform, _key(generator), _shape(tensor), jnp.float32)
    return tensor._assign(jnp.clip(a + (b - a) * u, a, b))


def _normal(tensor: Variable, mean: float, std: float, generator: GeneratorLike) -> Variable:
    sample = _draw(jax.random.normal, _key(generator), _shape(tensor), jnp.float32)
    return tensor._assign(sample * std + mean)


# --------------------------------------------------------------------------------------
# gains and fans
# --------------------------------------------------------------------------------------
def calculate_gain(nonlinearity: _NonlinearityType, param: int | float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (torch's table).

    ======================= =================================
    linear, conv*, sigmoid  1
    tanh                    5/3
    relu                    sqrt(2)
    leaky_relu              sqrt(2 / (1 + negative_slope^2))
    selu                    3/4
    ======================= =================================

    Args:
        nonlinearity: the ``nn.functional`` name of the nonlinearity.
        param: the negative slope of ``'leaky_relu'`` (default 0.01).
    """
    linear_fns = [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    ]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Any) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a (out, in, *kernel) weight, as torch computes them."""
    shape = _shape(tensor)
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive_field_size = 1
    for s in shape[2:]:
        receptive_field_size *= s
    return shape[1] * receptive_field_size, shape[0] * receptive_field_size


def _calculate_correct_fan(tensor: Any, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# --------------------------------------------------------------------------------------
# simple fills and distributions
# --------------------------------------------------------------------------------------
def uniform_(
    tensor: Variable, a: float = 0.0, b: float = 1.0, generator: GeneratorLike = None
) -> Variable:
    """Fill ``tensor`` with samples from U(a, b)."""
    return _uniform(_box(tensor, "uniform_"), a, b, generator)


def normal_(
    tensor: Variable, mean: float = 0.0, std: float = 1.0, generator: GeneratorLike = None
) -> Variable:
    """Fill ``tensor`` with samples from N(mean, std^2)."""
    return _normal(_box(tensor, "normal_"), mean, std, generator)


def trunc_normal_(
    tensor: Variable,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: GeneratorLike = None,
) -> Variable:
    """Fill ``tensor`` with N(mean, std^2) samples truncated to ``[a, b]``.

    ``a`` and ``b`` are absolute bounds, as in torch (not multiples of ``std``).
    """
    _box(tensor, "trunc_normal_")
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=2,
        )
    lower, upper = (a - mean) / std, (b - mean) / std
    z = _draw(_truncated_normal, _key(generator), _shape(tensor), lower, upper)
    return tensor._assign(jnp.clip(z * std + mean, a, b))


def _truncated_normal(key: jax.Array, shape: tuple[int, ...], lower: float, upper: float):
    return jax.random.truncated_normal(key, lower, upper, shape, jnp.float32)


def constant_(tensor: Variable, val: float) -> Variable:
    """Fill ``tensor`` with ``val``."""
    return _box(tensor, "constant_")._assign(val)


def ones_(tensor: Variable) -> Variable:
    """Fill ``tensor`` with ones."""
    return _box(tensor, "ones_")._assign(1.0)


def zeros_(tensor: Variable) -> Variable:
    """Fill ``tensor`` with zeros."""
    return _box(tensor, "zeros_")._assign(0.0)


def eye_(tensor: Variable) -> Variable:
    """Fill the 2-D ``tensor`` with the identity matrix (rectangular allowed)."""
    shape = _shape(_box(tensor, "eye_"))
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return tensor._assign(jnp.eye(*shape))


def dirac_(tensor: Variable, groups: int = 1) -> Variable:
    """Fill a 3-, 4- or 5-D conv weight with the Dirac delta (identity convolution).

    With ``groups > 1`` each group of output channels preserves identity.
    """
    shape = _shape(_box(tensor, "dirac_"))
    dimensions = len(shape)
    if dimensions not in [3, 4, 5]:
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_chans_per_grp = shape[0] // groups
    min_dim = min(out_chans_per_grp, shape[1])
    value = np.zeros(shape, np.float32)
    centre = tuple(s // 2 for s in shape[2:])
    for g in range(groups):
        for d in range(min_dim):
            value[(g * out_chans_per_grp + d, d, *centre)] = 1
    return tensor._assign(value)


# --------------------------------------------------------------------------------------
# scaled initialisations
# --------------------------------------------------------------------------------------
def xavier_uniform_(
    tensor: Variable, gain: float = 1.0, generator: GeneratorLike = None
) -> Variable:
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_box(tensor, "xavier_uniform_"))
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return _uniform(tensor, -a, a, generator)


def xavier_normal_(
    tensor: Variable, gain: float = 1.0, generator: GeneratorLike = None
) -> Variable:
    """Glorot normal: N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_box(tensor, "xavier_normal_"))
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _normal(tensor, 0.0, std, generator)


def kaiming_uniform_(
    tensor: Variable,
    a: float = 0,
    mode: _FanMode = "fan_in",
    nonlinearity: _NonlinearityType = "leaky_relu",
    generator: GeneratorLike = None,
) -> Variable:
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan_mode)``.

    Args:
        tensor: the box to fill.
        a: negative slope of the rectifier after this layer (``'leaky_relu'`` only).
        mode: ``'fan_in'`` (forward variance) or ``'fan_out'`` (backward variance).
        nonlinearity: the ``nn.functional`` name of the nonlinearity.
        generator: the source of randomness.
    """
    if 0 in _shape(_box(tensor, "kaiming_uniform_")):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return _uniform(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Variable,
    a: float = 0,
    mode: _FanMode = "fan_in",
    nonlinearity: _NonlinearityType = "leaky_relu",
    generator: GeneratorLike = None,
) -> Variable:
    """He normal: N(0, std^2) with ``std = gain / sqrt(fan_mode)`` (arguments as
    :func:`kaiming_uniform_`)."""
    if 0 in _shape(_box(tensor, "kaiming_normal_")):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    return _normal(tensor, 0.0, gain / math.sqrt(fan), generator)


def orthogonal_(tensor: Variable, gain: float = 1, generator: GeneratorLike = None) -> Variable:
    """Fill ``tensor`` (>= 2-D, trailing dimensions flattened) with a (semi-)orthogonal
    matrix times ``gain``: the Q of a Gaussian matrix's QR, signs fixed by ``diag(R)``."""
    shape = _shape(_box(tensor, "orthogonal_"))
    if len(shape) < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if 0 in shape:
        return tensor
    rows = shape[0]
    cols = math.prod(shape) // rows
    flat = jax.random.normal(_key(generator), (rows, cols), jnp.float32)
    if rows < cols:
        flat = flat.T
    q, r = jnp.linalg.qr(flat)
    q = q * jnp.sign(jnp.diagonal(r))
    if rows < cols:
        q = q.T
    return tensor._assign(q.reshape(shape) * gain)


def sparse_(
    tensor: Variable, sparsity: float, std: float = 0.01, generator: GeneratorLike = None
) -> Variable:
    """Fill the 2-D ``tensor`` with N(0, std^2) samples, then zero
    ``ceil(sparsity * rows)`` randomly chosen entries in every column."""
    shape = _shape(_box(tensor, "sparse_"))
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, _ = shape
    num_zeros = math.ceil(sparsity * rows)
    k_val, k_perm = jax.random.split(_key(generator))
    values = _draw(jax.random.normal, k_val, shape, jnp.float32) * std
    # The rank of each entry within its column under a random order: the first
    # ``num_zeros`` ranks are zeroed, as torch zeroes ``randperm(rows)[:num_zeros]``.
    ranks = jnp.argsort(jnp.argsort(_draw(jax.random.uniform, k_perm, shape), axis=0), axis=0)
    return tensor._assign(jnp.where(ranks < num_zeros, 0.0, values))
