"""Strides of views, as torch computes them, so in-place writes through a view reach its base.

A view's *geometry* is ``(shape, strides, offset, root_shape)``: where its elements sit in
the row-major (contiguous) layout of the root tensor it was taken from. JAX arrays have
no strides; jaxmod computes values with ordinary ``jnp`` ops and keeps the geometry only
to write an in-place result back into the root (one scatter) and to answer
``is_contiguous()`` / ``stride()`` / ``view()``'s compatibility check like torch.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

Geometry = tuple[tuple[int, ...], tuple[int, ...], int, tuple[int, ...]]


@functools.lru_cache(maxsize=1024)
def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides of ``shape`` in elements."""
    out = []
    acc = 1
    for n in reversed(shape):
        out.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(out))


def root(shape: tuple[int, ...]) -> Geometry:
    """The geometry of a tensor that owns its values."""
    return (shape, contiguous_strides(shape), 0, shape)


def is_contiguous(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """torch's rule: strides are row-major, ignoring size-1 dimensions; empty is contiguous."""
    if 0 in shape:
        return True
    expected = 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 1:
            continue
        if s != expected:
            return False
        expected *= n
    return True


def view_strides(
    shape: tuple[int, ...], strides: tuple[int, ...], new: tuple[int, ...]
) -> tuple[int, ...] | None:
    """Strides for viewing ``(shape, strides)`` as ``new`` without a copy, or None when the
    memory layout does not allow it (torch then says "use .reshape(...) instead")."""
    if not shape:
        return tuple(1 for _ in new)
    if math.prod(shape) == 0:
        return contiguous_strides(new)
    out = [0] * len(new)
    vd = len(new) - 1
    base = strides[-1]
    t_numel = v_numel = 1
    for td in range(len(shape) - 1, -1, -1):
        t_numel *= shape[td]
        # A chunk of dimensions that are contiguous with each other ends at td.
        if td == 0 or (shape[td - 1] != 1 and strides[td - 1] != t_numel * base):
            while vd >= 0 and (v_numel < t_numel or new[vd] == 1):
                out[vd] = v_numel * base
                v_numel *= new[vd]
                vd -= 1
            if v_numel != t_numel:
                return None
            if td > 0:
                base = strides[td - 1]
                t_numel = v_numel = 1
    return tuple(out) if vd == -1 else None


def reshaped(g: Geometry, new: tuple[int, ...]) -> Geometry | None:
    """``g`` viewed as shape ``new`` (None when a copy is needed)."""
    st = view_strides(g[0], g[1], new)
    return None if st is None else (new, st, g[2], g[3])


def permuted(g: Geometry, perm: tuple[int, ...]) -> Geometry:
    """``g`` with its dimensions in the order ``perm``."""
    return (tuple(g[0][p] for p in perm), tuple(g[1][p] for p in perm), g[2], g[3])


def indexed(g: Geometry, idx: tuple[Any, ...]) -> Geometry:
    """``g`` after basic indexing with ``idx`` (ints, slices, None; no Ellipsis, in range)."""
    shape, strides, off, rs = g
    ns: list[int] = []
    nst: list[int] = []
    d = 0
    for i in idx:
        if i is None:
            ns.append(1)
            nst.append(strides[d] * shape[d] if d < len(shape) else 1)
        elif isinstance(i, slice):
            start, stop, step = i.indices(shape[d])
            n = len(range(start, stop, step))
            if n:
                off += start * strides[d]
            ns.append(n)
            nst.append(strides[d] * step)
            d += 1
        else:
            off += (i + shape[d] if i < 0 else i) * strides[d]
            d += 1
    return (tuple(ns) + shape[d:], tuple(nst) + strides[d:], off, rs)


def expanded(g: Geometry, new: tuple[int, ...]) -> Geometry:
    """``g`` broadcast to ``new`` (stride 0 on the repeated dimensions)."""
    shape, strides, off, rs = g
    lead = len(new) - len(shape)
    st = [0] * lead + [s if n == m else 0 for n, m, s in zip(shape, new[lead:], strides)]
    return (tuple(new), tuple(st), off, rs)


def squeezed(g: Geometry, ds: tuple[int, ...]) -> Geometry:
    """``g`` without the size-1 dimensions among ``ds``."""
    keep = [i for i in range(len(g[0])) if not (i in ds and g[0][i] == 1)]
    return (tuple(g[0][i] for i in keep), tuple(g[1][i] for i in keep), g[2], g[3])


def unsqueezed(g: Geometry, d: int) -> Geometry:
    """``g`` with a size-1 dimension inserted at ``d``."""
    shape, strides = g[0], g[1]
    s = shape[d] * strides[d] if d < len(shape) else 1
    return (shape[:d] + (1,) + shape[d:], strides[:d] + (s,) + strides[d:], g[2], g[3])


def narrowed(g: Geometry, d: int, start: int, length: int) -> Geometry:
    """``g`` restricted to ``[start, start + length)`` along ``d``."""
    shape = g[0][:d] + (length,) + g[0][d + 1 :]
    return (shape, g[1], g[2] + (start * g[1][d] if length else 0), g[3])


def selected(g: Geometry, d: int, i: int) -> Geometry:
    """``g`` at index ``i`` of dimension ``d`` (that dimension removed)."""
    return (g[0][:d] + g[0][d + 1 :], g[1][:d] + g[1][d + 1 :], g[2] + i * g[1][d], g[3])


def diagonal(g: Geometry, offset: int, d1: int, d2: int) -> Geometry:
    """The diagonal of dimensions ``d1``, ``d2`` as the last dimension."""
    shape, strides, off, rs = g
    if offset >= 0:
        n = max(0, min(shape[d1], shape[d2] - offset))
        off += offset * strides[d2] if n else 0
    else:
        n = max(0, min(shape[d1] + offset, shape[d2]))
        off += -offset * strides[d1] if n else 0
    keep = [i for i in range(len(shape)) if i not in (d1, d2)]
    return (
        tuple(shape[i] for i in keep) + (n,),
        tuple(strides[i] for i in keep) + (strides[d1] + strides[d2],),
        off,
        rs,
    )


def unfolded(g: Geometry, d: int, size: int, step: int) -> Geometry:
    """``Tensor.unfold``: windows of ``size`` every ``step`` along ``d``, as a new last dim."""
    shape, strides, off, rs = g
    n = (shape[d] - size) // step + 1 if shape else 1
    st = strides[d] if shape else 1
    if not shape:
        return ((size,), (1,), off, rs)
    return (
        shape[:d] + (n,) + shape[d + 1 :] + (size,),
        strides[:d] + (st * step,) + strides[d + 1 :] + (st,),
        off,
        rs,
    )


def flat_index(g: Geometry) -> np.ndarray:
    """The root-layout flat index of every element of ``g`` (an int array of its shape)."""
    shape, strides, off, _ = g
    idx = np.full(shape, off, dtype=np.int64)
    for d, (n, s) in enumerate(zip(shape, strides)):
        r = np.arange(n, dtype=np.int64) * s
        idx = idx + r.reshape((n,) + (1,) * (len(shape) - d - 1))
    return idx


def overlaps(g: Geometry) -> bool:
    """Whether two elements of ``g`` share memory (an ``expand``-ed view)."""
    return any(s == 0 and n > 1 for n, s in zip(g[0], g[1]))
