"""``repr`` of a tensor in torch's style: ``tensor([1.5000, 2.0000])``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxmod._tensor import dtypes as _dt

_PRECISION = 4
_LINEWIDTH = 80
_THRESHOLD = 1000
_EDGE = 3


class _Formatter:
    """Formats every element of one tensor to a common width, choosing fixed-point,
    integer-valued (``1.``) or scientific notation from the values, like torch."""

    def __init__(self, a: np.ndarray) -> None:
        self.kind = a.dtype.kind
        self.sci = False
        self.int_mode = False
        flat = a.ravel()
        if self.kind in "iub":
            self.width = max((len(self._fmt_plain(v)) for v in flat), default=1)
            return
        if self.kind == "c":  # torch formats the real and imaginary parts apart
            self.re, self.im = _Formatter(flat.real), _Formatter(flat.imag)
            self.width = self.re.width + self.im.width + 1
            return
        vals = flat.astype(np.float64)
        finite = vals[np.isfinite(vals)]
        nonzero = np.abs(finite[finite != 0])
        self.int_mode = bool(finite.size == 0 or np.all(finite == np.ceil(finite)))
        if nonzero.size:
            hi, lo = float(nonzero.max()), float(nonzero.min())
            if self.int_mode:
                self.sci = hi / lo > 1000.0 or hi > 1.0e8
            else:
                self.sci = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        # torch sizes the columns by the nonzero finite values only: nan, inf and zeros
        # (of either sign) are right-aligned to that width, or overflow it
        signed = finite[finite != 0]
        self.width = max((len(self._fmt_float(v)) for v in signed), default=1)

    def _fmt_plain(self, v: Any) -> str:
        return str(bool(v)) if self.kind == "b" else str(int(v))

    def _fmt_float(self, v: float) -> str:
        if not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        if self.sci:
            return f"{v:.{_PRECISION}e}"
        if self.int_mode:
            return f"{v:.0f}."
        return f"{v:.{_PRECISION}f}"

    def __call__(self, v: Any) -> str:
        if self.kind in "iub":
            return self._fmt_plain(v).rjust(self.width)
        if self.kind == "c":
            re, im = self.re(v.real), (self.im(v.imag) + "j").lstrip()
            return re + im if im[0] in "+-" else f"{re}+{im}"
        return self._fmt_float(float(v)).rjust(self.width)


def _summarised(a: np.ndarray) -> np.ndarray:
    """The edge items torch shows of a large tensor (for choosing the format)."""
    if a.ndim == 0:
        return a
    if a.shape[0] > 2 * _EDGE:
        a = np.concatenate([a[:_EDGE], a[-_EDGE:]])
    return np.stack([_summarised(r) for r in a]) if a.ndim > 1 else a


def _str(a: np.ndarray, fmt: _Formatter, indent: int, summarise: bool) -> str:
    if a.ndim == 0:
        return fmt(a.item() if fmt.kind != "c" else a)
    n = a.shape[0]
    rows = list(range(n))
    cut = summarise and n > 2 * _EDGE
    if cut:
        rows = list(range(_EDGE)) + [None] + list(range(n - _EDGE, n))  # type: ignore[list-item]
    if a.ndim == 1:
        items = [" ..." if i is None else fmt(a[i]) for i in rows]
        per_line = max(1, math.floor((_LINEWIDTH - indent) / (fmt.width + 2)))
        lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"
    sep = "," + "\n" * (a.ndim - 1) + " " * (indent + 1)
    parts = ["..." if i is None else _str(a[i], fmt, indent + 1, summarise) for i in rows]
    return "[" + sep.join(parts) + "]"


def shows_dtype(dtype: Any) -> bool:
    """Whether torch's repr names ``dtype`` (every dtype but the default float, ``long``,
    ``bool`` and the default complex)."""
    default_complex = np.result_type(_dt.default_np(), np.complex64)
    return dtype not in (_dt.default_np(), _dt.wide("long"), np.dtype("bool"), default_complex)


def tensor_repr(value: Any, requires_grad: bool | str = False, device: str | None = None) -> str:
    """torch's ``repr`` of a tensor holding ``value``."""
    import jax

    if isinstance(value, jax.core.Tracer):
        shape = ", ".join(str(s) for s in value.shape)
        return f"tensor(<traced {value.dtype.name}[{shape}]>)"
    a = np.asarray(value)
    dtype = a.dtype
    prefix = "tensor("
    suffix = []
    if a.size == 0 and a.shape != (0,):
        suffix.append(f"size={tuple(a.shape)}")
    if shows_dtype(dtype) or (a.size == 0 and dtype != _dt.default_np()):
        suffix.append(f"dtype={_dt.repr_name(dtype)}")
    if device is not None:
        suffix.insert(0, f"device='{device}'")
    if requires_grad:  # True, or torch's "grad_fn=<...>" of a computed tensor
        suffix.append(requires_grad if isinstance(requires_grad, str) else "requires_grad=True")
    if a.size == 0:
        body = "[]"
    else:
        if dtype == _dt.bfloat16 or dtype == np.float16:
            a = a.astype(np.float32)
        summarise = a.size > _THRESHOLD
        fmt = _Formatter(_summarised(a) if summarise else a)
        body = _str(a, fmt, len(prefix), summarise)
    tail = "".join(", " + s for s in suffix)
    return f"{prefix}{body}{tail})"
