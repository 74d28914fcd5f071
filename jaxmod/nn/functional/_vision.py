"""Padding, interpolation and pixel rearrangement."""

from __future__ import annotations

import functools
import itertools
import math
import warnings
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


def upsample_nearest(input: Array, size: Any = None, scale_factor: Any = None) -> Array:
    """Deprecated: ``interpolate(input, size, scale_factor, mode="nearest")``."""
    warnings.warn(
        "`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Array, size: Any = None, scale_factor: Any = None) -> Array:
    """Deprecated: ``interpolate(..., mode="bilinear", align_corners=True)``."""
    warnings.warn(
        "`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


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


# --------------------------------------------------------------------------- sampling grids

_ALIGN_WARNING = (
    "Default grid_sample and affine_grid behavior has changed to align_corners=False since "
    "1.3.0. Please specify align_corners=True if the old behavior is desired. See the "
    "documentation of grid_sample for details."
)


def _default_align(align_corners: bool | None) -> bool:
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=4)
        return False
    return bool(align_corners)


def _base_coords(steps: int, align_corners: bool) -> np.ndarray:
    """torch's ``linspace(-1, 1, steps)`` (scaled by ``(steps - 1) / steps`` without
    ``align_corners``) in float32; one step is ``[0]``."""
    if steps <= 1:
        return np.zeros(max(steps, 0), np.float32)
    f32 = np.float32
    step = (f32(1) - f32(-1)) / f32(steps - 1)
    i = np.arange(steps)
    half = steps // 2
    # torch fills the first half from the start and the second half from the end
    r = np.where(i < half, f32(-1) + step * i.astype(f32), f32(1) - step * (steps - 1 - i))
    r = r.astype(f32)
    if not align_corners:
        r = (r * f32(steps - 1) / f32(steps)).astype(f32)
    return r


@eager_kernel
def _affine_grid(theta: Array, size: tuple[int, ...], align_corners: bool) -> Array:
    spatial = size[2:]
    coords = [_base_coords(s, align_corners) for s in spatial]  # (D,) H, W
    mesh = np.meshgrid(*coords, indexing="ij")
    # last axis (x, y[, z], 1): x runs over the last spatial dim
    base = np.stack([*reversed(mesh), np.ones_like(mesh[0])], axis=-1)
    base = jnp.asarray(base.reshape(-1, len(spatial) + 1), theta.dtype)
    grid = jnp.einsum("pk,njk->npj", base, theta, precision=lax.Precision.HIGHEST)
    return grid.reshape((theta.shape[0], *spatial, len(spatial)))


def affine_grid(theta: Array, size: Sequence[int], align_corners: bool | None = None) -> Array:
    """The sampling grid of a batch of affine matrices, for :func:`grid_sample`.

    ``theta`` is ``(N, 2, 3)`` for a 4-D ``size`` ``(N, C, H, W)`` (grid ``(N, H, W, 2)``)
    or ``(N, 3, 4)`` for a 5-D one (grid ``(N, D, H, W, 3)``); grid points are the pixel
    centres in ``[-1, 1]`` coordinates, mapped through ``theta``. ``align_corners=None``
    warns as torch does and means ``False``.
    """
    align = _default_align(align_corners)
    t = _a(theta)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        raise ValueError(f"Expected theta to have floating point type, but got torch.{t.dtype}")
    given, size = size, tuple(int(s) for s in size)
    shape = tuple(t.shape)
    if len(size) == 4:
        if t.ndim != 3 or shape[-2:] != (2, 3):
            raise ValueError(
                f"Expected a batch of 2D affine matrices of shape Nx2x3 for size "
                f"{given}. Got torch.Size({list(shape)})."
            )
    elif len(size) == 5:
        if t.ndim != 3 or shape[-2:] != (3, 4):
            raise ValueError(
                f"Expected a batch of 3D affine matrices of shape Nx3x4 for size "
                f"{given}. Got torch.Size({list(shape)})."
            )
    else:
        raise NotImplementedError(
            "affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
            f"respectively. Got size {given}."
        )
    spatial = size[2:]
    if align and min(spatial) == 1:
        warnings.warn(
            "Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
            "align_corners=True. This is not an intended use case of affine_grid. See the "
            "documentation of affine_grid for details.",
            stacklevel=3,
        )
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {given}")
    if shape[0] != size[0]:
        # torch's message, from the batched matrix product it builds the grid with
        raise RuntimeError(
            "Expected size for first two dimensions of batch2 tensor to be: "
            f"[{size[0]}, {shape[2]}] but got: [{shape[0]}, {shape[2]}]."
        )
    return _affine_grid(t, size, align)


_SCALAR_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half",
                 "bfloat16": "BFloat16"}  # fmt: skip


def _scalar_name(dtype: Any) -> str:
    """torch's C++ name of a floating dtype (``Float``), as its kernels' messages say it."""
    return _SCALAR_NAMES.get(str(dtype), str(dtype))


def _unnormalize(coord: Array, size: int, align_corners: bool) -> Array:
    """``[-1, 1]`` grid coordinates to pixel coordinates (torch's formula, in its order)."""
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _clip(coord: Array, size: int) -> Array:
    """``min(size - 1, max(coord, 0))`` with torch's gradient (0 where it clips, boundary
    included); NaN clips to 0."""
    hi = size - 1
    # NaN goes to 0, as in torch's CUDA and vectorised CPU kernels (fmax / clamp_min)
    return jnp.where(coord >= hi, hi, jnp.where(coord > 0, coord, 0)).astype(coord.dtype)


def _bound(coord: Array, lo: float, hi: float) -> Array:
    """Finite ``coord`` limited to ``[lo, hi]`` (gradient 0 outside); NaN and +-inf stay."""
    bounded = jnp.where(coord < lo, lo, jnp.where(coord > hi, hi, coord))
    return jnp.where(jnp.isinf(coord), coord, bounded).astype(coord.dtype)


def _reflect(coord: Array, twice_low: int, twice_high: int) -> Array:
    """torch's ``reflect_coordinates``, with the distance from the low end reduced modulo
    the period ``2 * span`` first (``fmod`` is exact), so that coordinates far outside stay
    exact and never reach the float -> int conversion; the flip is decided by comparison,
    not by ``floor(c / span)``, whose rounding can disagree with ``fmod``."""
    if twice_low == twice_high:
        return jnp.zeros_like(coord)
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = jnp.fmod(jnp.abs(coord - lo), 2 * span)
    flip = c >= span
    extra = jnp.where(flip, c - span, c)
    return jnp.where(flip, span - extra + lo, extra + lo).astype(coord.dtype)


def _source_coord(coord: Array, size: int, padding_mode: str, align_corners: bool) -> Array:
    """torch's ``compute_coordinates``: border clips, reflection reflects then clips; values
    that are not finite (or outside int range) become -100, a point no tap reaches."""
    if padding_mode == "border":
        coord = _clip(coord, size)
    elif padding_mode == "reflection":
        if align_corners:
            coord = _reflect(coord, 0, 2 * (size - 1))
        else:
            coord = _reflect(coord, -1, 2 * size - 1)
        coord = _clip(coord, size)
    ok = jnp.isfinite(coord) & (jnp.abs(coord) < 2.0**31)
    return jnp.where(ok, coord, -100.0).astype(coord.dtype)


def _gather(x: Array, idx: list[Array]) -> tuple[Array, Array]:
    """``x[n, :, i0, i1, ...]`` at integer tap positions ``idx`` (each ``(N, *out)``) with
    the in-bounds mask; out-of-bounds taps read 0."""
    n, c, *spatial = x.shape
    inside = functools.reduce(jnp.logical_and, [(i >= 0) & (i < s) for i, s in zip(idx, spatial)])
    flat = jnp.zeros_like(idx[0])
    for i, s in zip(idx, spatial):
        flat = flat * s + jnp.clip(i, 0, s - 1)
    out_shape = idx[0].shape[1:]
    vals = jnp.take_along_axis(
        x.reshape(n, c, math.prod(spatial)),
        flat.reshape(n, 1, math.prod(out_shape)).astype(jnp.int32),
        axis=2,
    ).reshape((n, c, *out_shape))
    mask = inside[:, None].astype(x.dtype)
    return vals * mask, mask


def _cubic_weights(t: Array) -> list[Array]:
    A = -0.75

    def near(x: Array) -> Array:  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def far(x: Array) -> Array:  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


@eager_kernel
def _grid_sample(
    input: Array, grid: Array, mode: str, padding_mode: str, align_corners: bool
) -> Array:
    x, g = input, grid
    spatial = x.shape[2:]
    nd = len(spatial)
    # grid's last axis is (x, y[, z]): reversed, it lines up with (D,) H, W
    raw = [_unnormalize(g[..., nd - 1 - k], spatial[k], align_corners) for k in range(nd)]
    # Beyond [-4, size + 3] every tap is outside (zeros) or on the edge (border): bounding
    # the coordinate there changes neither the output nor torch's gradient (0), and keeps
    # coordinates past the int32 range (|grid| ~ 1e10) away from XLA:CPU's float -> int
    # conversion, which gave garbage there (bicubic border: -22 from pixels in [1, 12]).
    # Reflection is periodic: past 2**23 pixels float32 holds no fraction and the reflected
    # pixel is rounding noise (torch's 2-D CPU and 3-D CPU kernels disagree there too), so
    # it is bounded at 2**23, where it still picks a pixel of the input. NaN, inf stay.
    if padding_mode == "reflection":
        raw = [_bound(r, -(2.0**23), 2.0**23) for r in raw]
    else:
        raw = [_bound(r, -4, s + 3) for r, s in zip(raw, spatial)]
    if mode == "bicubic":
        base = [jnp.floor(r) for r in raw]
        ts = [r - b for r, b in zip(raw, base)]
        wy, wx = _cubic_weights(ts[0]), _cubic_weights(ts[1])
        # torch bounds each tap's coordinates axis by axis (get_value_bounded): the four
        # taps of each axis are computed once
        taps = [
            [_source_coord(b - 1 + a, s, padding_mode, align_corners).astype(jnp.int32)
             for a in range(4)]
            for b, s in zip(base, spatial)
        ]  # fmt: skip
        # the 16 taps in one gather (one scatter in the gradient): (N, C, 16, *out)
        pairs = list(itertools.product(range(4), range(4)))
        iy = jnp.stack([taps[0][a] for a, _ in pairs], axis=1)
        ix = jnp.stack([taps[1][b] for _, b in pairs], axis=1)
        w = jnp.stack([wy[a] * wx[b] for a, b in pairs], axis=1)
        vals, _ = _gather(x, [iy, ix])
        return jnp.sum(vals * w[:, None], axis=2)
    coords = [_source_coord(r, s, padding_mode, align_corners) for r, s in zip(raw, spatial)]
    if mode == "nearest":
        vals, _ = _gather(x, [jnp.round(c).astype(jnp.int32) for c in coords])
        return vals
    lows = [jnp.floor(c) for c in coords]
    fracs = [c - lo for c, lo in zip(coords, lows)]
    corners = [[(c >> (nd - 1 - k)) & 1 for k in range(nd)] for c in range(2**nd)]
    # the 2**nd corners in one gather (one scatter in the gradient): (N, C, 2**nd, *out)
    w = jnp.stack(
        [functools.reduce(jnp.multiply, [f if b else (1 - f) for f, b in zip(fracs, bits)])
         for bits in corners],
        axis=1,
    )  # fmt: skip
    idx = [jnp.stack([(lows[k] + bits[k]).astype(jnp.int32) for bits in corners], axis=1)
           for k in range(nd)]  # fmt: skip
    vals, _ = _gather(x, idx)
    return jnp.sum(vals * w[:, None], axis=2)


def grid_sample(
    input: Array,
    grid: Array,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Array:
    """Sample ``input`` ``(N, C, H, W)`` (or ``(N, C, D, H, W)``) at the ``[-1, 1]``
    locations of ``grid`` ``(N, H_out, W_out, 2)`` (``(N, D_out, H_out, W_out, 3)``).

    Modes ``'bilinear'`` (trilinear on 5-D), ``'nearest'`` (round half to even) and
    ``'bicubic'`` (4-D, A = -0.75); ``padding_mode`` ``'zeros'``, ``'border'`` or
    ``'reflection'``; torch's coordinate formulas and gradients (for ``input`` and ``grid``;
    none for ``grid`` under ``'nearest'``). ``align_corners=None`` warns and means ``False``.
    """
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(
            "nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or "
            f"'bicubic', but got: '{mode}'"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(
            "nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', "
            f"or 'reflection', but got: '{padding_mode}'"
        )
    align = _default_align(align_corners)
    x, g = _a(input), _a(grid)
    if x.dtype != g.dtype:
        raise RuntimeError(
            f"expected scalar type {_scalar_name(x.dtype)} but found {_scalar_name(g.dtype)}"
        )
    if x.ndim and g.ndim and x.shape[0] != g.shape[0]:
        raise RuntimeError(
            "grid_sampler(): expected grid and input to have same batch size, but got input "
            f"with sizes {list(x.shape)} and grid with sizes {list(g.shape)}"
        )
    if g.ndim and g.shape[-1] != x.ndim - 2:
        raise RuntimeError(
            f"grid_sampler(): expected grid to have size {x.ndim - 2} in last dimension, but "
            f"got grid with sizes {list(g.shape)}"
        )
    for i in range(2, x.ndim):
        if x.shape[i] <= 0:
            raise RuntimeError(
                "grid_sampler(): expected input to have non-empty spatial dimensions, but "
                f"input has sizes {list(x.shape)} with dimension {i} being empty"
            )
    if x.ndim not in (4, 5) or g.ndim != x.ndim:
        raise RuntimeError(
            f"grid_sampler(): expected {4 if x.ndim == 4 else 5}D input and grid with same "
            f"number of dimensions, but got input with sizes {list(x.shape)} and grid with "
            f"sizes {list(g.shape)}"
        )
    if mode == "bicubic" and x.ndim != 4:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    return _grid_sample(x, g, mode, padding_mode, align)
