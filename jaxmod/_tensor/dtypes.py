"""torch's dtypes, ``Size`` and ``device``, answered by JAX.

dtypes are ``numpy.dtype`` objects, so ``x.dtype == jaxmod.float32`` holds for a float32
tensor and they can be passed to any ``jnp`` function. The 64-bit names (``int64``,
``long``, ``float64``, ``double``, ``complex128``) resolve when they are read: to the
64-bit dtype when ``jax_enable_x64`` is on, else to JAX's 32-bit default (so
``idx.dtype == jaxmod.long`` is true for the integer tensors jaxmod creates, and no
"requested dtype int64 is not available" warning is ever triggered).
"""

from __future__ import annotations

import builtins
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "float32", "float", "float16", "half", "bfloat16", "int32", "int", "int16", "short",
    "int8", "uint8", "bool", "complex64", "cfloat", "uint16", "uint32",
    "get_default_dtype", "set_default_dtype", "finfo", "iinfo", "Size", "device",
    "is_floating_point", "is_complex",
]  # fmt: skip

float32 = float = np.dtype("float32")
float16 = half = np.dtype("float16")
bfloat16 = jnp.dtype(jnp.bfloat16)
int32 = int = np.dtype("int32")
int16 = short = np.dtype("int16")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
uint16 = np.dtype("uint16")
uint32 = np.dtype("uint32")
bool = np.dtype("bool")
complex64 = cfloat = np.dtype("complex64")

# 64-bit names: (dtype with x64, dtype without).
_WIDE = {
    "int64": ("int64", "int32"),
    "long": ("int64", "int32"),
    "uint64": ("uint64", "uint32"),
    "float64": ("float64", "float32"),
    "double": ("float64", "float32"),
    "complex128": ("complex128", "complex64"),
    "cdouble": ("complex128", "complex64"),
}


def x64() -> builtins.bool:
    """Whether JAX's 64-bit mode is on."""
    return jax.dtypes.canonicalize_dtype(np.int64) == np.int64


def wide(name: str) -> np.dtype:
    """The dtype a 64-bit torch name means now (see the module docstring)."""
    pair = _WIDE[name]
    return np.dtype(pair[0] if x64() else pair[1])


def module_getattr(name: str) -> Any:
    """``__getattr__`` for the ``jaxmod`` namespace: the 64-bit dtype names."""
    if name in _WIDE:
        return wide(name)
    raise AttributeError(f"module 'jaxmod' has no attribute {name!r}")


_default = [float32]
_CACHE: dict[Any, np.dtype] = {}
_PY = {builtins.float: "float64", builtins.int: "int64", builtins.bool: "bool",
       builtins.complex: "complex128"}  # fmt: skip


def as_dtype(d: Any) -> np.dtype | None:
    """A dtype argument (jaxmod/numpy/jnp dtype, Python type, name) as the canonical
    ``numpy.dtype`` JAX will use; ``None`` stays ``None``."""
    if d is None:
        return None
    try:
        return _CACHE[d]
    except (KeyError, TypeError):
        pass
    name = _PY.get(d, d) if isinstance(d, type) else d
    if isinstance(name, str) and name.startswith("torch."):
        name = name[6:]
    if isinstance(name, str) and name in _WIDE:
        name = _WIDE[name][0]
    try:
        out = np.dtype(jax.dtypes.canonicalize_dtype(np.dtype(name)))
    except TypeError as e:
        raise TypeError(f"{d!r} is not a dtype (expected e.g. jaxmod.float32)") from e
    try:
        _CACHE[d] = out
    except TypeError:
        pass
    return out


def is_dtype(d: Any) -> builtins.bool:
    """Whether ``d`` names a dtype (``np.dtype``, a numpy/jnp scalar type, a Python type)."""
    if isinstance(d, np.dtype):
        return True
    if isinstance(d, type):
        return d in _PY or issubclass(d, np.generic) or hasattr(d, "dtype")
    return False


def get_default_dtype() -> np.dtype:
    """The dtype of floating-point factories (``torch.get_default_dtype``; float32)."""
    return _default[0]


def set_default_dtype(d: Any) -> None:
    """Set the dtype floating-point factories create (``torch.set_default_dtype``).

    Layers keep creating float32 parameters; this affects ``jaxmod.tensor``, ``zeros``,
    ``rand``, ``arange`` with float arguments and the other factories.
    """
    dt = as_dtype(d)
    if dt is None or not jnp.issubdtype(dt, jnp.floating):
        raise TypeError("only floating-point types are supported as the default type")
    _default[0] = dt


def is_floating_point(x: Any) -> builtins.bool:
    """Whether ``x`` has a floating-point dtype (``torch.is_floating_point``)."""
    return builtins.bool(jnp.issubdtype(x.dtype, jnp.floating))


def is_complex(x: Any) -> builtins.bool:
    """Whether ``x`` has a complex dtype (``torch.is_complex``)."""
    return builtins.bool(jnp.issubdtype(x.dtype, jnp.complexfloating))


def finfo(type: Any = None) -> Any:
    """Machine limits of a floating dtype (``torch.finfo``; default: the default dtype)."""
    return jnp.finfo(as_dtype(type) if type is not None else get_default_dtype())


def iinfo(type: Any) -> Any:
    """Machine limits of an integer dtype (``torch.iinfo``)."""
    return jnp.iinfo(as_dtype(type))


# torch's names for dtypes, for error messages ("result type Float can't be cast ...").
_TORCH_NAMES = {
    "float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
    "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
    "bool": "Bool", "complex64": "ComplexFloat", "complex128": "ComplexDouble",
}  # fmt: skip


def torch_name(d: Any) -> str:
    """torch's scalar-type name of a dtype (``Long`` for JAX's default integer)."""
    d = np.dtype(d)
    if d == wide("long"):
        return "Long"
    return _TORCH_NAMES.get(d.name, d.name)


def repr_name(d: Any) -> str:
    """How torch prints a dtype: ``torch.float32``; JAX's default integer is ``torch.int64``."""
    d = np.dtype(d)
    if d == wide("long"):
        return "torch.int64"
    return f"torch.{d.name}"


_CPP = {"float32": "float", "float64": "double", "float16": "c10::Half",
        "bfloat16": "c10::BFloat16", "int64": "long int", "int32": "int", "int16": "short int",
        "int8": "signed char", "uint8": "unsigned char", "bool": "bool",
        "complex64": "c10::complex<float>", "complex128": "c10::complex<double>"}  # fmt: skip


def cpp_name(d: Any) -> str:
    """The C++ scalar-type name torch's kernel errors print: ``float``, ``long int``."""
    name = repr_name(d)[len("torch.") :]
    return _CPP.get(name, name)


class Size(tuple):
    """The shape of a tensor, a tuple (``torch.Size``): ``x.size()``, ``x.shape``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"torch.Size({list(self)})"

    def numel(self) -> builtins.int:
        """The number of elements a tensor of this shape has."""
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, i: Any) -> Any:
        out = tuple.__getitem__(self, i)
        return Size(out) if isinstance(i, slice) else out

    def __add__(self, other: Any) -> Size:
        return Size(tuple.__add__(self, tuple(other)))

    def __radd__(self, other: Any) -> Size:
        return Size(tuple(other) + tuple(self))


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xla", "meta", "tpu", "gpu")
_PLATFORM_TYPE = {"gpu": "cuda", "cuda": "cuda", "rocm": "cuda", "cpu": "cpu", "tpu": "tpu"}


class device:
    """A device name like ``torch.device``: ``device("cuda:0")``, ``device("cpu")``.

    ``x.to(device)`` and factories' ``device=`` map it to a JAX device: ``cuda`` is
    ``jax.devices("gpu")[index]``, ``cpu`` the first CPU device.
    """

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: builtins.int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index
        elif isinstance(type, builtins.int) and not isinstance(type, builtins.bool):
            type, index = "cuda", type
        elif not isinstance(type, str):
            raise TypeError(f"device() expects a string like 'cuda:0' or 'cpu', got {type!r}")
        elif ":" in type:
            type, _, idx = type.partition(":")
            if index is not None:
                raise RuntimeError("type (string) must not include an index because index was "
                                   "passed explicitly: " + f"{type}:{idx}")  # fmt: skip
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{idx}'")
            index = builtins.int(idx)
        if type not in _DEVICE_TYPES:
            raise RuntimeError(
                f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start of device "
                f"string: {type}"
            )
        if type == "gpu":
            type = "cuda"
        self.type = type
        self.index = index

    @classmethod
    def _of(cls, d: Any) -> device:
        """The ``device`` naming a JAX device."""
        out = object.__new__(cls)
        out.type = _PLATFORM_TYPE.get(d.platform, d.platform)
        out.index = None if out.type == "cpu" else d.id - _first_id(d.platform)
        return out

    def _jax(self) -> Any:
        """The JAX device this names (raises when JAX has none of that kind)."""
        kind = {"cuda": "gpu"}.get(self.type, self.type)
        try:
            devs = jax.devices(kind)
        except RuntimeError:
            devs = []
        if not devs:
            raise RuntimeError(
                f"device {str(self)!r} was requested but JAX sees no {kind.upper()} "
                f"(jax.devices() is {jax.devices()}); use 'cpu', or choose the device with "
                "'cuda' if jaxmod.cuda.is_available() else 'cpu'"
            )
        i = self.index or 0
        if i >= len(devs):
            raise RuntimeError(f"device {str(self)!r}: JAX has only {len(devs)} {kind} devices")
        return devs[i]

    def __eq__(self, other: Any) -> builtins.bool:
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> builtins.int:
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def _first_id(platform: str) -> builtins.int:
    return min(d.id for d in jax.devices(platform))


_default_device: list[Any] = []


def default_jax_device() -> Any:
    """The device JAX puts new arrays on."""
    d = jax.config.jax_default_device
    if d is not None and not isinstance(d, str):
        return d
    if not _default_device:
        _default_device.append(jax.devices()[0])
    return _default_device[0]


def to_jax_device(d: Any) -> Any:
    """A device argument (``device``, ``"cuda:0"``, an int, a ``jax.Device``) as a JAX device."""
    if isinstance(d, jax.Device):
        return d
    return device(d)._jax()
