"""``torch.autocast``: regions where ops run in the precision torch's policy picks."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxmod._core import state
from jaxmod.amp import _state
from jaxmod.amp._state import Policy, S

__all__ = [
    "autocast", "is_autocast_enabled", "get_autocast_dtype", "is_autocast_available",
    "custom_fwd", "custom_bwd",
]  # fmt: skip

_DEVICE_TYPES = ("cpu", "cuda")
_DEFAULT_DTYPE = {"cpu": "bfloat16", "cuda": "float16"}
_SUPPORTED = {"cpu": ("bfloat16", "float16"), "cuda": ("bfloat16", "float16", "float32")}


def _dtype_name(dtype: Any) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


class autocast:
    """``torch.autocast`` / ``torch.amp.autocast``: a context manager and decorator in which
    ops run in torch's mixed precision.

    Args:
        device_type: ``"cpu"`` or ``"cuda"``: picks torch's op lists for that device type
            (and the default dtype). jaxmod applies the policy wherever the arrays live;
            ``"cuda"`` on a machine without a GPU still autocasts (torch disables it).
        dtype: the lower precision: ``jnp.bfloat16`` (default on ``"cpu"``) or
            ``jnp.float16`` (default on ``"cuda"``).
        enabled: ``False`` turns autocast off inside the region (also inside an enabled one).
        cache_enabled: accepted for torch compatibility. Under ``jaxmod.jit`` XLA computes
            each weight's cast once per program anyway; eagerly every op casts.

    Inside the region matmul, ``linear``, convolutions, ``bmm``/``baddbmm``/``addmm``,
    ``einsum``, ``prelu``, ``scaled_dot_product_attention``, ``MultiheadAttention`` and RNN
    layers compute in ``dtype`` (their float32 parameters are cast per op: the parameters
    themselves stay float32); the device type's float32 ops (losses on CPU; also softmax,
    the norms and reductions on CUDA) compute in float32. Other ops run in their inputs'
    dtype. Inside :func:`jaxmod.jit`, the state when the function is traced decides the
    program, and each state gets its own compiled program.
    """

    def __init__(self, device_type: str = "cuda", dtype: Any = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:  # fmt: skip
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if device_type not in _DEVICE_TYPES:
            raise RuntimeError(
                f"jaxmod.autocast: unsupported device_type {device_type!r}; use 'cpu' or "
                "'cuda' (their op policies; jaxmod computes wherever the arrays are)"
            )
        self.device = self.device_type = device_type
        name = _DEFAULT_DTYPE[device_type] if dtype is None else _dtype_name(dtype)
        self.fast_dtype = np.dtype(name) if name in ("bfloat16", "float16", "float32",
                                                      "float64") else dtype  # fmt: skip
        self._enabled = bool(enabled)
        if self._enabled and name not in _SUPPORTED[device_type]:
            warnings.warn(
                f"In {device_type.upper()} autocast, but the target dtype is not supported. "
                "Disabling autocast.\n"
                f"{device_type.upper()} Autocast only supports dtypes of "
                + ", ".join(f"jaxmod.{d}" for d in _SUPPORTED[device_type])
                + " currently.",
                stacklevel=2,
            )
            self._enabled = False
        self._cache_enabled = cache_enabled
        self._saved: list[tuple[Any, tuple, tuple]] = []

    def __enter__(self) -> autocast:
        self._saved.append((S.policy, S.enabled, S.dtypes))
        dev = self.device_type
        S.dtypes = (*S.dtypes, (dev, self.fast_dtype))
        if self._enabled and self.fast_dtype != np.dtype("float32"):
            S.policy = Policy(dev, self.fast_dtype)
            S.enabled = (*(d for d in S.enabled if d != dev), dev)
            if not _state.used[0]:
                _state.used[0] = True
                state.bump()  # jaxmod.jit plans made so far carry no autocast guard
        else:
            S.policy = None
            S.enabled = tuple(d for d in S.enabled if d != dev)
        return self

    def __exit__(self, *exc: Any) -> None:
        S.policy, S.enabled, S.dtypes = self._saved.pop()

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        dt = getattr(self.fast_dtype, "name", self.fast_dtype)
        return f"autocast(device_type={self.device_type!r}, dtype={dt}, enabled={self._enabled})"


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether autocast is enabled for ``device_type`` (``"cuda"`` when omitted, as torch)."""
    return (device_type or "cuda") in S.enabled


def get_autocast_dtype(device_type: str) -> Any:
    """The dtype autocast uses for ``device_type``: the innermost region's, else the default."""
    for dev, dt in reversed(S.dtypes):
        if dev == device_type:
            return dt
    return np.dtype(_DEFAULT_DTYPE.get(device_type, "float16"))


def is_autocast_available(device_type: str) -> bool:
    """Whether jaxmod's autocast supports ``device_type`` (``"cpu"`` and ``"cuda"``)."""
    return device_type in _DEVICE_TYPES


def custom_fwd(fwd: Callable | None = None, *, device_type: str = "cuda",
               cast_inputs: Any = None) -> Any:  # fmt: skip
    """``torch.amp.custom_fwd``: with ``cast_inputs``, run ``fwd`` with autocast off and its
    floating array arguments cast to ``cast_inputs`` when called inside an enabled region;
    without it, ``fwd`` runs under the caller's autocast state (the backward is JAX's, so
    there is nothing to restore there)."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if cast_inputs is None or S.policy is None:
            return fwd(*args, **kwargs)
        dt = np.dtype(cast_inputs)
        args = tuple(_state.cast(a, dt) for a in args)
        kwargs = {k: _state.cast(v, dt) for k, v in kwargs.items()}
        with autocast(device_type, enabled=False):
            return fwd(*args, **kwargs)

    return wrapper


def custom_bwd(bwd: Callable | None = None, *, device_type: str = "cuda") -> Any:
    """``torch.amp.custom_bwd``: returns ``bwd`` unchanged (JAX derives the backward)."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd
