"""``torch.testing``: :func:`assert_close` with torch's default tolerances and messages.

Inputs may be Tensors, boxes, JAX or numpy arrays, Python numbers, and sequences or
mappings of them (compared item by item; a failure names the item).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor.base import unwrap

__all__ = ["assert_close"]

# dtype name -> (rtol, atol), torch's defaults
_TOLERANCES = {
    "float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7), "complex64": (1.3e-6, 1e-5), "complex128": (1e-7, 1e-7),
}  # fmt: skip


def _is_array(x: Any) -> bool:
    return hasattr(unwrap(x), "dtype") and hasattr(unwrap(x), "shape")


def assert_close(
    actual: Any,
    expected: Any,
    *,
    allow_subclasses: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_device: bool = True,
    check_dtype: bool = True,
    check_layout: bool = True,
    check_stride: bool = False,
    msg: str | None = None,
) -> None:
    """Raise ``AssertionError`` unless ``|actual - expected| <= atol + rtol * |expected|``
    elementwise, with matching shapes (and dtypes, with ``check_dtype``), as
    ``torch.testing.assert_close``. ``rtol``/``atol`` default to torch's per-dtype values
    and must be given together."""
    if (rtol is None) != (atol is None):
        missing = "atol" if atol is None else "rtol"
        raise ValueError(
            f"Both 'rtol' and 'atol' must be either specified or omitted, but got no {missing}."
        )
    _compare(actual, expected, rtol, atol, equal_nan, check_dtype, msg, [])


def _compare(a: Any, e: Any, rtol: Any, atol: Any, nan: bool, dtype: bool, msg: Any, at: list):
    if isinstance(e, Mapping) and isinstance(a, Mapping):
        if list(a.keys()) != list(e.keys()) and set(a) != set(e):
            _fail(f"The keys of the mappings do not match: {set(a)} != {set(e)}", msg, at)
        for k in e:
            _compare(a[k], e[k], rtol, atol, nan, dtype, msg, [*at, k])
        return
    seq = (Sequence,)
    if isinstance(e, seq) and isinstance(a, seq) and not isinstance(e, str):
        if len(a) != len(e):
            _fail(f"The length of the sequences mismatch: {len(a)} != {len(e)}", msg, at)
        for i, (x, y) in enumerate(zip(a, e, strict=True)):
            _compare(x, y, rtol, atol, nan, dtype, msg, [*at, i])
        return
    if not _is_array(a) and not _is_array(e):
        _scalars(a, e, rtol, atol, nan, msg, at)
        return
    x, y = np.asarray(unwrap(a)), np.asarray(unwrap(e))
    if x.shape != y.shape:
        _fail(
            f"The values for attribute 'shape' do not match: {_dt.Size(x.shape)} != "
            f"{_dt.Size(y.shape)}.",
            msg, at,
        )  # fmt: skip
    if dtype and x.dtype != y.dtype:
        _fail(
            f"The values for attribute 'dtype' do not match: {_dt.repr_name(x.dtype)} != "
            f"{_dt.repr_name(y.dtype)}.",
            msg, at,
        )  # fmt: skip
    if rtol is None:
        rtol, atol = _TOLERANCES.get(str(y.dtype), (0.0, 0.0))
    if x.dtype == np.bool_ or y.dtype == np.bool_:
        x, y = x.astype(np.int64), y.astype(np.int64)
    common = np.result_type(x.dtype, y.dtype)  # torch computes the differences in it
    wide = common if common.kind in "fc" else np.dtype(np.float64)
    xd, yd = x.astype(wide), y.astype(wide)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(xd == yd, 0, np.abs(xd - yd))  # equal infinities differ by 0
        ok = diff <= atol + rtol * np.abs(yd)
        if nan:
            ok |= np.isnan(xd) & np.isnan(yd)
        if ok.all():
            return
        bad = ~ok
        rel = np.where(diff == 0, 0, diff / np.abs(yd))
    ia = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1)), x.shape)
    ir = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(rel, nan=np.inf), -1)), x.shape)
    n, total = int(bad.sum()), x.size
    _fail(
        "Tensor-likes are not close!\n\n"
        f"Mismatched elements: {n} / {total} ({100 * n / total:.1f}%)\n"
        f"Greatest absolute difference: {float(diff[ia])} at index {tuple(map(int, ia))} "
        f"(up to {atol} allowed)\n"
        f"Greatest relative difference: {float(rel[ir])} at index {tuple(map(int, ir))} "
        f"(up to {rtol} allowed)",
        msg, at,
    )  # fmt: skip


def _scalars(a: Any, e: Any, rtol: Any, atol: Any, nan: bool, msg: Any, at: list) -> None:
    if type(a) is not type(e) and not (isinstance(a, (int, float)) and isinstance(e, float)):
        _fail(f"The values for attribute 'dtype' do not match: {type(a)} != {type(e)}.", msg, at)
    if rtol is None:
        rtol, atol = (1e-7, 1e-7) if isinstance(e, (float, complex)) else (0.0, 0.0)
    if a == e or (nan and a != a and e != e):
        return
    diff = abs(a - e)
    if diff <= atol + rtol * abs(e):
        return
    rel = diff / abs(e) if e else float("inf")
    _fail(
        f"Scalars are not close!\n\nExpected {e} but got {a}.\n"
        f"Absolute difference: {diff} (up to {atol} allowed)\n"
        f"Relative difference: {rel} (up to {rtol} allowed)",
        msg, at,
    )  # fmt: skip


def _fail(text: str, msg: Any, at: list) -> None:
    if msg is not None:
        raise AssertionError(msg(text) if callable(msg) else msg)
    if at:
        text += "\n\nThe failure occurred for item " + "".join(f"[{k!r}]" for k in at)
    raise AssertionError(text)
