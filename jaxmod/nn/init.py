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

from jaxmod._tensor.base import TensorBase
from jaxmod.nn.parameter import Variable, _is_tracer
from jaxmod.random import Generator, next_key

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
    if not isinstance(tensor, (Variable, TensorBase)):
        raise TypeError(
            f"nn.init.{fn} fills a jaxmod Tensor, Parameter, Buffer or Variable in place; got "
            f"{type(tensor).__name__}. JAX arrays are immutable: start from jaxmod.empty(...) "
            "or wrap the array in a Parameter (or use jax.random directly) instead."
        )
    return tensor


def _current(tensor: Any) -> Any:
    """The array a box or Tensor holds now."""
    return tensor._value if isinstance(tensor, Variable) else tensor._jx()


def _store(tensor: Any, value: Any) -> Any:
    """Write ``value`` into the box, or into the Tensor in place (through a view to its
    base, keeping dtype and shape, as torch's in-place fill)."""
    if isinstance(tensor, Variable):
        return tensor._assign(value)
    tensor._inplace(value)
    return tensor


def _key(generator: GeneratorLike) -> jax.Array:
    """A fresh PRNG key from a Generator (default: the global one), or the key given."""
    if isinstance(generator, jax.Array):
        return generator
    return next_key(generator)


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(
        int(s)
        for s in np.shape(
            _current(tensor) if isinstance(tensor, (Variable, TensorBase)) else tensor
        )
    )


_INF = float("inf")


def _sample(kind: str, key: jax.Array, n: int, p: Any) -> jax.Array:
    """``n`` values ``clip(s * p[2] + p[3], p[4], p[5])`` where ``s`` is standard uniform,
    normal, or normal truncated to ``[p[0], p[1]]`` (``kind``), drawn by JAX."""
    if kind == "uniform":
        s = jax.random.uniform(key, (n,), jnp.float32)
    elif kind == "normal":
        s = jax.random.normal(key, (n,), jnp.float32)
    else:
        s = jax.random.truncated_normal(key, p[0], p[1], (n,), jnp.float32)
    return jnp.clip(s * p[2] + p[3], p[4], p[5])


def _host_rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator seeded by the words of ``key`` (a fresh key per draw, split from
    jaxmod's generator: ``manual_seed`` repeats the draws, each parameter gets its own)."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    words = np.asarray(key).astype(np.uint32).ravel().tolist()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def _mass(lo: float, hi: float) -> float:
    """The standard normal's probability of ``[lo, hi]``."""
    return 0.5 * (math.erf(hi / math.sqrt(2.0)) - math.erf(lo / math.sqrt(2.0)))


def _host_standard(kind: str, rng: np.random.Generator, n: int, bounds: tuple) -> Any:
    """``n`` float32 standard uniform / normal / truncated normal samples on the host
    (``None`` where rejection would be slow: a truncation keeping under 5% of the mass)."""
    if kind == "uniform":
        return rng.random(n, dtype=np.float32)
    s = rng.standard_normal(n, dtype=np.float32)
    if kind == "normal":
        return s
    lo, hi = bounds
    if _mass(lo, hi) < 0.05:
        return None
    bad = (s < lo) | (s > hi)
    while bad.any():  # rejection: exactly the normal restricted to [lo, hi]
        s[bad] = rng.standard_normal(int(bad.sum()), dtype=np.float32)
        bad = (s < lo) | (s > hi)
    return s


def _draw(
    kind: str,
    key: jax.Array,
    shape: tuple[int, ...],
    scale: float = 1.0,
    shift: float = 0.0,
    clip: tuple[float, float] = (-_INF, _INF),
    bounds: tuple[float, float] = (-2.0, 2.0),
) -> Any:
    """float32 samples of ``shape``: ``clip(s * scale + shift, *clip)`` with ``s`` standard
    ``"uniform"``, ``"normal"`` or ``"truncated"`` normal (to ``bounds``).

    With a concrete key the samples are drawn on the host by numpy, from a generator seeded
    by the key's words, and come back as a numpy array: building a model compiles no
    sampler and runs none on the device (ResNet-18 at ~11M parameters: ~2.5 s of compiled
    chunked sampling before, a few tens of ms now). Under a trace (a traced key), and for a
    truncation to a far tail, the draw is one JAX program.
    """
    size = math.prod(shape)
    p = (*bounds, scale, shift, *clip)
    if not _is_tracer(key):
        s = _host_standard(kind, _host_rng(key), size, bounds)
        if s is not None:
            out = s * np.float32(scale) + np.float32(shift)
            if clip != (-_INF, _INF):
                np.clip(out, np.float32(clip[0]), np.float32(clip[1]), out=out)
            return out.reshape(shape)
    return _sample(kind, key, size, jnp.asarray(p, jnp.float32)).reshape(shape)


def _filled(shape: Any, value: Any, dtype: Any = None) -> jax.Array:
    """``jnp.full(shape, value, dtype)`` built in numpy and transferred: layer constructors
    use it so that each new parameter shape costs no compiled program."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dt = jnp.dtype(dtype) if dtype is not None else jnp.dtype(jnp.result_type(float))
    host = np.zeros(shape, dt) if value == 0 else np.full(shape, value, dt)
    return jax.device_put(host)  # jnp.asarray compiles one per shape


def _lib(x: Any) -> Any:
    """numpy for host samples, jax.numpy for traced ones."""
    return np if isinstance(x, np.ndarray) else jnp


def _put(tensor: Variable, value: Any) -> Variable:
    """Assign ``value`` to the box; a host array is cast and transferred without a compiled
    program (``jnp.asarray`` of a numpy array compiles one per shape in JAX 0.10)."""
    if isinstance(value, np.ndarray):
        value = jax.device_put(value.astype(np.dtype(_current(tensor).dtype), copy=False))
    return _store(tensor, value)


def _uniform(tensor: Variable, a: float, b: float, generator: GeneratorLike) -> Variable:
    if a > b:
        raise ValueError(
            f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}"
        )
    return _put(tensor, _draw("uniform", _key(generator), _shape(tensor), b - a, a, (a, b)))


def _normal(tensor: Variable, mean: float, std: float, generator: GeneratorLike) -> Variable:
    return _put(tensor, _draw("normal", _key(generator), _shape(tensor), std, mean))


def _fill(tensor: Variable, value: float) -> Variable:
    """``tensor`` filled with ``value``, built on the host (no program per shape)."""
    old = _current(tensor)
    if _is_tracer(old):
        return _store(tensor, value)
    return _put(tensor, np.full(np.shape(old), value, np.dtype(old.dtype)))


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
    key = _key(generator)
    return _put(tensor, _draw("truncated", key, _shape(tensor), std, mean, (a, b), (lower, upper)))


def constant_(tensor: Variable, val: float) -> Variable:
    """Fill ``tensor`` with ``val``."""
    return _fill(_box(tensor, "constant_"), val)


def ones_(tensor: Variable) -> Variable:
    """Fill ``tensor`` with ones."""
    return _fill(_box(tensor, "ones_"), 1.0)


def zeros_(tensor: Variable) -> Variable:
    """Fill ``tensor`` with zeros."""
    return _fill(_box(tensor, "zeros_"), 0.0)


def eye_(tensor: Variable) -> Variable:
    """Fill the 2-D ``tensor`` with the identity matrix (rectangular allowed)."""
    shape = _shape(_box(tensor, "eye_"))
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _put(tensor, np.eye(*shape, dtype=np.float32))


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
    return _put(tensor, value)


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
    flat = _draw("normal", _key(generator), (rows, cols))
    xp = _lib(flat)
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diagonal(r))
    if rows < cols:
        q = q.T
    return _put(tensor, q.reshape(shape) * xp.float32(gain))


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
    values = _draw("normal", k_val, shape) * std
    # The rank of each entry within its column under a random order: the first
    # ``num_zeros`` ranks are zeroed, as torch zeroes ``randperm(rows)[:num_zeros]``.
    xp = _lib(values)
    ranks = xp.argsort(xp.argsort(_draw("uniform", k_perm, shape), axis=0), axis=0)
    return _put(tensor, xp.where(ranks < num_zeros, xp.float32(0), values))
