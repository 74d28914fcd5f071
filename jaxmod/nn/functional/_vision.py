"""Padding, interpolation and pixel rearrangement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.functional._pool import _adaptive_avg_pool
from jaxmod.nn.functional._util import Array, _a, _ntuple


@eager_kernel
def pad(input: Array, pad: Sequence[int], mode: str = "constant", value: float | None = None):
    """Pad with torch's convention: ``pad`` lists (left, right) pairs from the LAST dim back.

    Modes: ``'constant'`` (negative pads crop), ``'reflect'``, ``'replicate'``,
    ``'circular'``.
    """
    x = _a(input)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > x.ndim:
        raise ValueError(
            "Padding length should be less than or equal to two times the input dimension"
        )
    pairs = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pairs[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        fill = jnp.array(0 if value is None else value, x.dtype)
        return lax.pad(x, fill, [(lo, hi, 0) for lo, hi in pairs])
    if value not in (None, 0):
        raise ValueError(f"Padding mode {mode!r} doesn't take in value argument")
    jmode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}.get(mode)
    if jmode is None:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        # crop first, then pad what is left (torch allows negative circular padding)
        crop = tuple(
            slice(max(-lo, 0), x.shape[i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pairs)
        )
        x = x[crop]
        pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    if mode == "reflect":
        for (lo, hi), size in zip(pairs, x.shape):
            if lo >= size or hi >= size:
                raise ValueError(
                    "Padding size should be less than the corresponding input "
                    f"dimension, but got padding ({lo}, {hi}) for a dimension "
                    f"of size {size}"
                )
    return jnp.pad(x, pairs, mode=jmode)


def _interp_scale(in_size: int, out_size: int, align_corners: bool, scale: float | None):
    """torch's ``area_pixel_compute_scale`` in float32."""
    f32 = np.float32
    if align_corners:
        return f32(in_size - 1) / f32(out_size - 1) if out_size > 1 else f32(0)
    if scale is not None and scale > 0:
        return f32(1.0 / scale)
    return f32(in_size) / f32(out_size)


def _linear_taps(in_size, out_size, align_corners, scale):
    f32 = np.float32
    s = _interp_scale(in_size, out_size, align_corners, scale)
    dst = np.arange(out_size, dtype=f32)
    if align_corners:
        src = s * dst
    else:
        src = np.maximum(s * (dst + f32(0.5)) - f32(0.5), f32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lam = np.clip(src - i0.astype(f32), 0, 1).astype(f32)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return [i0, i1], [f32(1) - lam, lam]


def _cubic_taps(in_size, out_size, align_corners, scale):
    f32 = np.float32
    A = f32(-0.75)
    s = _interp_scale(in_size, out_size, align_corners, scale)
    dst = np.arange(out_size, dtype=f32)
    src = s * dst if align_corners else s * (dst + f32(0.5)) - f32(0.5)
    i = np.floor(src).astype(np.int64)
    t = (src - i.astype(f32)).astype(f32)

    def c1(x):  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def c2(x):  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    weights = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]
    idxs = [np.clip(i + j, 0, in_size - 1) for j in (-1, 0, 1, 2)]
    return idxs, weights


def _nearest_taps(in_size, out_size, scale, exact):
    if out_size == in_size:
        return np.arange(out_size)
    if not exact and out_size == 2 * in_size:
        return np.arange(out_size) >> 1
    if scale is not None and scale > 0:
        s = np.float32(1.0 / scale)
    else:
        s = np.float32(in_size) / np.float32(out_size)
    if exact:
        src = np.floor((np.arange(out_size, dtype=np.float64) + 0.5) * np.float64(s))
    else:
        src = np.floor(np.arange(out_size, dtype=np.float32) * s)
    return np.minimum(src.astype(np.int64), in_size - 1)


def _apply_taps(x: Array, axis: int, idxs: list, weights: list) -> Array:
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for i, w in zip(idxs, weights):
        term = jnp.take(x, jnp.asarray(i, jnp.int32), axis=axis) * jnp.asarray(w, x.dtype).reshape(
            shape
        )
        out = term if out is None else out + term
    return out


_MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


@eager_kernel
def interpolate(
    input: Array,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Array:
    """Resize ``(N, C, *spatial)`` with torch's index formulas.

    Modes: ``'nearest'`` (source ``floor(i * scale)``), ``'nearest-exact'``, ``'linear'``,
    ``'bilinear'``, ``'trilinear'``, ``'bicubic'`` (A = -0.75, clamped borders) and
    ``'area'`` (adaptive average pooling). ``antialias`` is not supported.
    """
    x = _a(input)
    n = x.ndim - 2
    if n < 1:
        raise ValueError(f"Input Error: expected at least 3D input, got {x.ndim}D")
    if mode in _MODE_DIMS and _MODE_DIMS[mode] != n:
        raise NotImplementedError(
            f"Got {x.ndim}D input, but {mode} mode needs {_MODE_DIMS[mode] + 2}D input"
        )
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    align_corners = bool(align_corners)
    spatial = x.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError("either size or scale_factor should be defined, not both")
    if size is not None:
        outs = _ntuple(size, n, "size")
        scales = [None] * n
    else:
        sf = (
            tuple(float(s) for s in scale_factor)
            if isinstance(scale_factor, (tuple, list))
            else (float(scale_factor),) * n
        )
        if len(sf) != n:
            raise ValueError(
                f"scale_factor shape must match input shape. Input is {n}D, "
                f"scale_factor size is {len(sf)}"
            )
        outs = tuple(math.floor(L * s) for L, s in zip(spatial, sf))
        scales = [None] * n if recompute_scale_factor else list(sf)
    if mode == "area":
        return _adaptive_avg_pool(n, x, outs)
    for j, (L, o, s) in enumerate(zip(spatial, outs, scales)):
        axis = 2 + j
        if mode in ("nearest", "nearest-exact"):
            idx = _nearest_taps(L, o, s, mode == "nearest-exact")
            x = jnp.take(x, jnp.asarray(idx, jnp.int32), axis=axis)
        elif mode in ("linear", "bilinear", "trilinear"):
            x = _apply_taps(x, axis, *_linear_taps(L, o, align_corners, s))
        elif mode == "bicubic":
            x = _apply_taps(x, axis, *_cubic_taps(L, o, align_corners, s))
        else:
            raise NotImplementedError(f"Input Error: unsupported interpolation mode {mode!r}")
    return x


def upsample(
    input: Array,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Array:
    """Deprecated alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


@eager_kernel
def pixel_shuffle(input: Array, upscale_factor: int) -> Array:
    """``(*, C*r*r, H, W) -> (*, C, H*r, W*r)``."""
    x = _a(input)
    r = int(upscale_factor)
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise RuntimeError(
            f"pixel_shuffle expects its input's 'channel' dimension to be "
            f"divisible by the square of upscale_factor, but input.size(-3)={c} "
            f"is not divisible by {r * r}"
        )
    nl = len(lead)
    x = x.reshape((*lead, c // (r * r), r, r, h, w))
    x = jnp.transpose(x, (*range(nl), nl, nl + 3, nl + 1, nl + 4, nl + 2))
    return x.reshape((*lead, c // (r * r), h * r, w * r))


@eager_kernel
def pixel_unshuffle(input: Array, downscale_factor: int) -> Array:
    """``(*, C, H*r, W*r) -> (*, C*r*r, H, W)``."""
    x = _a(input)
    r = int(downscale_factor)
    *lead, c, h, w = x.shape
    if h % r or w % r:
        raise RuntimeError(
            f"pixel_unshuffle expects height and width to be divisible by "
            f"downscale_factor, got {h}x{w} and {r}"
        )
    nl = len(lead)
    x = x.reshape((*lead, c, h // r, r, w // r, r))
    x = jnp.transpose(x, (*range(nl), nl, nl + 2, nl + 4, nl + 1, nl + 3))
    return x.reshape((*lead, c * r * r, h // r, w // r))


@eager_kernel
def channel_shuffle(input: Array, groups: int) -> Array:
    """Interleave channels of ``(N, C, *)``: ``(g, C/g)`` channel blocks are transposed."""
    x = _a(input)
    n, c = x.shape[0], x.shape[1]
    if c % groups:
        raise RuntimeError(
            f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups."
        )
    rest = x.shape[2:]
    x = x.reshape((n, groups, c // groups) + rest)
    return jnp.swapaxes(x, 1, 2).reshape((n, c) + rest)
