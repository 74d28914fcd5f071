"""Small torch namespace entries: constants, memory formats, printing and threading knobs."""

from __future__ import annotations

import math
import os
import types
from typing import Any

import jax

from jaxmod import random as _random
from jaxmod._autograd import is_grad_enabled, set_grad_enabled
from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import errors as _err
from jaxmod._tensor import printing as _printing
from jaxmod._tensor.ops_reduce import RETURN_TYPES
from jaxmod.amp import _autocast
from jaxmod.amp._autocast import autocast, is_autocast_enabled

__all__ = [
    "inf", "nan", "pi", "e", "dtype", "strided", "contiguous_format", "channels_last",
    "channels_last_3d", "preserve_format", "return_types", "inference_mode",
    "is_inference_mode_enabled", "set_printoptions", "set_float32_matmul_precision",
    "get_float32_matmul_precision", "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled", "set_num_threads", "get_num_threads",
    "set_num_interop_threads", "get_num_interop_threads", "get_rng_state", "set_rng_state",
    "_assert", "autocast", "is_autocast_enabled", "get_autocast_dtype",
    "set_default_device", "get_default_device",
]  # fmt: skip

inf = math.inf
nan = math.nan
pi = math.pi
e = math.e
dtype = _dt.dtype  # ``isinstance(x.dtype, torch.dtype)``
strided = "torch.strided"
contiguous_format = "torch.contiguous_format"
channels_last = "torch.channels_last"
channels_last_3d = "torch.channels_last_3d"
preserve_format = "torch.preserve_format"
return_types = types.SimpleNamespace(**RETURN_TYPES)


def get_autocast_dtype(device_type: str) -> _dt.dtype:
    """``torch.get_autocast_dtype``: the dtype autocast uses for ``device_type`` (the
    innermost region's, else the default), as a torch dtype (prints ``torch.bfloat16``)."""
    return _dt.of(_autocast.get_autocast_dtype(device_type))


class inference_mode:
    """``torch.inference_mode``: the same as ``jaxmod.no_grad`` (nothing is recorded); also
    a decorator, with or without parentheses."""

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):  # ``@torch.inference_mode`` without parentheses
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        self._ctx = set_grad_enabled(not self.mode)

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)

    def __call__(self, fn: Any) -> Any:
        return set_grad_enabled(not self.mode)(fn)


def is_inference_mode_enabled() -> bool:
    """Whether inside ``inference_mode`` / ``no_grad``."""
    return not is_grad_enabled()


def set_printoptions(precision: int | None = None, threshold: int | None = None,
                     edgeitems: int | None = None, linewidth: int | None = None,
                     profile: str | None = None, sci_mode: Any = None) -> None:  # fmt: skip
    """How tensors print (``torch.set_printoptions``; ``sci_mode`` is chosen per tensor)."""
    if profile == "default":
        precision, threshold, edgeitems, linewidth = 4, 1000, 3, 80
    elif profile == "short":
        precision, threshold, edgeitems, linewidth = 2, 1000, 2, 80
    elif profile == "full":
        precision, threshold, edgeitems, linewidth = 4, 2**63 - 1, 3, 80
    if precision is not None:
        _printing._PRECISION = precision
    if threshold is not None:
        _printing._THRESHOLD = threshold
    if edgeitems is not None:
        _printing._EDGE = edgeitems
    if linewidth is not None:
        _printing._LINEWIDTH = linewidth


_MATMUL = {"highest": "highest", "high": "tensorfloat32", "medium": "bfloat16"}
_matmul_precision = ["highest"]


def set_float32_matmul_precision(precision: str) -> None:
    """float32 matmul precision: ``"highest"`` (full float32), ``"high"`` (TF32),
    ``"medium"`` (bfloat16), set as JAX's ``jax_default_matmul_precision``."""
    if precision not in _MATMUL:
        raise RuntimeError(f"Invalid precision {precision!r}: use highest, high or medium")
    jax.config.update("jax_default_matmul_precision", _MATMUL[precision])
    _matmul_precision[0] = precision


def get_float32_matmul_precision() -> str:
    """The precision set by :func:`set_float32_matmul_precision` (``"highest"`` by default)."""
    return _matmul_precision[0]


_deterministic = [False]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded only: XLA on CPU and GPU runs the same program deterministically by default
    except for some scatter-adds on GPU."""
    _deterministic[0] = bool(mode)


def are_deterministic_algorithms_enabled() -> bool:
    """What :func:`use_deterministic_algorithms` last set."""
    return _deterministic[0]


_threads: dict[str, int] = {}


def _set_threads(name: str, n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise RuntimeError(f"{name} expects a positive integer")
    _threads[name] = n


def set_num_threads(n: int) -> None:
    """Recorded for :func:`get_num_threads`; XLA chose its thread pool when it started
    (set ``XLA_FLAGS`` / ``taskset`` before the process starts to limit it)."""
    _set_threads("set_num_threads", n)


def get_num_threads() -> int:
    """What :func:`set_num_threads` set, else the number of CPU cores."""
    return _threads.get("set_num_threads") or os.cpu_count() or 1


def set_num_interop_threads(n: int) -> None:
    """Recorded for :func:`get_num_interop_threads` (see :func:`set_num_threads`)."""
    _set_threads("set_num_interop_threads", n)


def get_num_interop_threads() -> int:
    """What :func:`set_num_interop_threads` set, else the number of CPU cores."""
    return _threads.get("set_num_interop_threads") or os.cpu_count() or 1


def get_rng_state() -> Any:
    """The global generator's key data (a ``uint32`` Tensor), for :func:`set_rng_state`."""
    return _b.new(jax.random.key_data(_random.default_generator.get_state()))


def set_rng_state(new_state: Any) -> None:
    """Restore the global generator from :func:`get_rng_state`'s result."""
    _random.default_generator.set_state(_b.unwrap(new_state))


def _assert(condition: Any, message: str) -> None:
    """``torch._assert``: raise ``AssertionError(message)`` when ``condition`` is false.

    A condition on a traced tensor (inside ``jaxmod.jit``) cannot be checked while
    tracing; it raises ``jaxmod.TraceError`` rather than passing unchecked.
    """
    c = _b.unwrap(condition)
    if isinstance(c, jax.core.Tracer):
        raise _err.traced(
            "torch._assert on a tensor condition",
            "Assert on shapes (Python "
            "ints) instead, or check the tensor outside the jitted function.",
        )
    if not bool(c):
        raise AssertionError(message)


def set_default_device(device: Any) -> None:
    """Where new tensors go (``torch.set_default_device``): JAX's default device
    (``jax_default_device``); ``None`` restores JAX's own choice. A device JAX does not
    have (``"cuda"`` on a CPU-only machine) raises ``RuntimeError`` naming the fix."""
    jax.config.update("jax_default_device", None if device is None else _dt.to_jax_device(device))


def get_default_device() -> Any:
    """The :class:`jaxmod.device` new tensors go to (``torch.get_default_device``)."""
    return _dt.device._of(_dt.default_jax_device())
