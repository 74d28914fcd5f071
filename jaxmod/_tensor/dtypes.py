"""torch's dtypes, ``Size`` and ``device``, answered by JAX.

A dtype is a :class:`dtype` (``torch.dtype``): ``repr`` ``torch.float32``, torch's
attributes (``is_floating_point``, ``is_complex``, ``is_signed``, ``itemsize``), equal to
and hashed like the ``numpy.dtype`` it names, and carrying that ``numpy.dtype`` as its
``dtype`` attribute, which is how numpy and every ``jnp`` function read a dtype argument
(``jnp.zeros(3, jaxmod.float32)`` works). ``x.dtype`` of a tensor or parameter is one.
The 64-bit names (``int64``, ``long``, ``float64``, ``double``, ``complex128``) resolve
when they are read: to the 64-bit dtype when ``jax_enable_x64`` is on, else to JAX's
32-bit default (so ``idx.dtype == jaxmod.long`` is true for the integer tensors jaxmod
creates, and no "requested dtype int64 is not available" warning is ever triggered).
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
    "is_floating_point", "is_complex", "dtype",
]  # fmt: skip


class dtype:
    """A torch dtype (``torch.float32``, ``x.dtype``): see the module docstring.

    Not built by hand: use the names on ``jaxmod`` (``jaxmod.float32``, ``jaxmod.long``).
    Attributes torch's dtype lacks (``kind``, ``name``, ``char``) are the ``numpy.dtype``'s.
    """

    __slots__ = ("_np", "_name")
    _np: np.dtype
    _name: str

    @property
    def dtype(self) -> np.dtype:
        """The ``numpy.dtype`` this names (what ``np.dtype(d)`` and ``jnp`` read)."""
        return self._np

    @property
    def is_floating_point(self) -> builtins.bool:
        """Whether this is a floating-point dtype (bfloat16 included)."""
        return jnp.issubdtype(self._np, jnp.floating)

    @property
    def is_complex(self) -> builtins.bool:
        """Whether this is a complex dtype."""
        return jnp.issubdtype(self._np, jnp.complexfloating)

    @property
    def is_signed(self) -> builtins.bool:
        """Whether values of this dtype can be negative (floats, complex, signed ints)."""
        return self._np.kind in "fci" or self._np == jnp.bfloat16

    @property
    def itemsize(self) -> builtins.int:
        """Bytes per element."""
        return self._np.itemsize

    def to_real(self) -> dtype:
        """The real dtype of a complex one (``complex64`` -> ``float32``); others: itself."""
        return of(np.finfo(self._np).dtype) if self.is_complex else self

    def to_complex(self) -> dtype:
        """The complex dtype of a float one (``float32`` -> ``complex64``)."""
        if self.is_complex:
            return self
        return of(jnp.result_type(self._np, jnp.complex64))

    def __repr__(self) -> str:
        return f"torch.{self._name}"

    def __eq__(self, other: Any) -> builtins.bool:
        if isinstance(other, dtype):
            return self._np == other._np
        if other is None:
            return False
        try:
            return self._np == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self) -> builtins.int:
        return hash(self._np)

    def __reduce__(self) -> tuple:
        return (named, (self._name,))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._np, name)


_NAMED: dict[tuple[str, np.dtype], dtype] = {}


def _make(name: str, npd: Any) -> dtype:
    npd = np.dtype(npd)
    key = (name, npd)
    out = _NAMED.get(key)
    if out is None:
        out = object.__new__(dtype)
        out._np, out._name = npd, name
        _NAMED[key] = out
    return out


float32 = float = _make("float32", "float32")
float16 = half = _make("float16", "float16")
bfloat16 = _make("bfloat16", jnp.bfloat16)
int32 = int = _make("int32", "int32")
int16 = short = _make("int16", "int16")
int8 = _make("int8", "int8")
uint8 = _make("uint8", "uint8")
uint16 = _make("uint16", "uint16")
uint32 = _make("uint32", "uint32")
bool = _make("bool", "bool")
complex64 = cfloat = _make("complex64", "complex64")

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
    """The ``numpy.dtype`` a 64-bit torch name means now (see the module docstring)."""
    pair = _WIDE[name]
    return np.dtype(pair[0] if x64() else pair[1])


_ALIAS = {"long": "int64", "double": "float64", "cdouble": "complex128", "float": "float32",
          "half": "float16", "int": "int32", "short": "int16", "cfloat": "complex64"}  # fmt: skip


def check_fits(a: Any, target: Any, what: str, also: str = "") -> None:
    """Raise ``OverflowError`` when the 64-bit integers of numpy array ``a`` do not fit the
    32-bit ``target`` JAX gives them with x64 off (``jnp.asarray`` would wrap them silently).
    ``what`` names the value in the message (``"tensor"``, ``"load: 'step'"``), ``also``
    adds another way out to it."""
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.dtype.itemsize != 8:
        return
    target = np.dtype(target)
    if target.kind not in "iu" or target.itemsize >= 8 or a.size == 0:
        return
    info = np.iinfo(target)
    lo, hi = a.min(), a.max()
    if lo >= info.min and hi <= info.max:
        return
    bad = hi if hi > info.max else lo
    raise OverflowError(
        f"{what}: the {a.dtype} value {builtins.int(bad)} does not fit {target}, the type "
        "64-bit integers get while JAX's 64-bit mode is off; turn it on first "
        f"(jax.config.update('jax_enable_x64', True)) to keep int64 values{also}"
    )


def named(name: str) -> dtype:
    """The torch dtype called ``name`` (``"int64"``, ``"long"``, ``"float32"``) now."""
    name = _ALIAS.get(name, name)
    return _make(name, wide(name) if name in _WIDE else name)


_OF: dict[np.dtype, dtype] = {}


def of(npd: Any) -> dtype:
    """The torch dtype of an array's ``numpy.dtype``: what ``x.dtype`` returns (JAX's
    default integer is ``torch.int64``, as :func:`repr_name` prints it)."""
    out = _OF.get(npd)
    if out is None:
        npd = np.dtype(npd)
        if npd == np.int32:  # torch.int64 or torch.int32, by the x64 mode
            return _make(repr_name(npd)[6:], npd)
        out = _OF[npd] = _make(repr_name(npd)[6:], npd)
    return out


def module_getattr(name: str) -> Any:
    """``__getattr__`` for the ``jaxmod`` namespace: the 64-bit dtype names."""
    if name in _WIDE:
        return named(name)
    raise AttributeError(f"module 'jaxmod' has no attribute {name!r}")


_default = [np.dtype("float32")]
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
    if isinstance(getattr(name, "dtype", None), dtype):  # a legacy class: FloatTensor
        name = name.dtype._np
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
    if isinstance(d, (np.dtype, dtype)):
        return True
    if isinstance(d, type):
        return d in _PY or issubclass(d, np.generic) or hasattr(d, "dtype")
    return False


def get_default_dtype() -> dtype:
    """The dtype of floating-point factories (``torch.get_default_dtype``; float32)."""
    return of(_default[0])


def default_np() -> np.dtype:
    """The default floating dtype as a ``numpy.dtype`` (for jaxmod's own factories)."""
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


class finfo:
    """Machine limits of a floating dtype (``torch.finfo``; default: the default dtype).

    The limits are Python numbers, as torch's are, so ``half_tensor * finfo(float32).eps``
    stays float16 (a numpy scalar would promote it).
    """

    __slots__ = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype")

    def __init__(self, type: Any = None) -> None:
        d = as_dtype(type) if type is not None else _default[0]
        if not jnp.issubdtype(d, jnp.floating):
            raise TypeError(
                "torch.finfo() requires a floating point input type. Use torch.iinfo to "
                "handle 'torch.finfo'"
            )
        f = jnp.finfo(d)
        self.bits = builtins.int(f.bits)
        for name in ("eps", "max", "min", "tiny", "smallest_normal"):
            setattr(self, name, builtins.float(getattr(f, name)))
        self.resolution = 10.0 ** -builtins.int(f.precision)
        self.dtype = d.name

    def __eq__(self, other: Any) -> builtins.bool:
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self) -> builtins.int:
        return hash(("finfo", self.dtype))

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
            f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
            f"tiny={self.tiny:g}, dtype={self.dtype})"
        )


class iinfo:
    """Machine limits of an integer dtype (``torch.iinfo``), as Python ints."""

    __slots__ = ("bits", "max", "min", "dtype")

    def __init__(self, type: Any) -> None:
        d = as_dtype(type)
        if not jnp.issubdtype(d, jnp.integer):
            raise TypeError(
                "torch.iinfo() requires an integer input type. Use torch.finfo to handle "
                "'torch.iinfo'"
            )
        i = jnp.iinfo(d)
        self.bits, self.max, self.min = (
            builtins.int(i.bits),
            builtins.int(i.max),
            builtins.int(i.min),
        )
        self.dtype = d.name

    def __eq__(self, other: Any) -> builtins.bool:
        return isinstance(other, iinfo) and self.dtype == other.dtype

    def __hash__(self) -> builtins.int:
        return hash(("iinfo", self.dtype))

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


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
