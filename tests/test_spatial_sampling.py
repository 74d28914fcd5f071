"""``jaxmod.nn.functional.affine_grid`` / ``grid_sample`` equal torch's.

Table-driven over 2-D (4-D input) and 3-D (5-D input) sampling, modes ``bilinear`` /
``nearest`` / ``bicubic`` (2-D only, as in torch), padding ``zeros`` / ``border`` /
``reflection`` and ``align_corners`` True / False. Each grid holds random points in
``[-1.6, 1.6]`` (outside the image on every side), a lattice of exactly representable
points that land on pixel centres, half-pixel ties, the image edges and several
reflections away, and points 1e3 .. 1e10 image widths away. Compared: the output, and
the gradients of a weighted sum of it with respect to the input and to the grid
(``jaxmod.grad`` against torch autograd; torch's grid gradient is 0 under ``nearest``),
under ``jaxmod.jit`` for every case and eagerly on jaxmod Tensors for a few.

Nearest rounding: torch rounds half to even (``nearbyint``); the random points are checked
to be away from ties and the lattice has exact ties (-0.5, 0.5, 1.5, 2.5, 3.5 pixels), so
the tie rule itself is compared. Bad arguments raise torch's error type and message.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn.functional as F

TF = torch.nn.functional
torch.set_num_threads(1)

TOL = 2e-5  # float32; bicubic sums 16 taps of a cubic

MODES = {2: ("bilinear", "nearest", "bicubic"), 3: ("bilinear", "nearest")}
PADDINGS = ("zeros", "border", "reflection")
# input (N, C, *spatial); odd and even sizes so both align_corners formulas have ties
SPATIAL = {2: (3, 4), 3: (2, 3, 4)}
# exactly representable grid values: pixel centres, half pixels, edges (+-1), and points
# one or more image widths outside (several reflections)
LATTICE = np.array([-3.0, -2.5, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0,
                    1.25, 2.5, 3.0], np.float32)  # fmt: skip


def _unnormalize(coord: np.ndarray, size: int, align: bool) -> np.ndarray:
    c = coord.astype(np.float64)
    return (c + 1) / 2 * (size - 1) if align else ((c + 1) * size - 1) / 2


# far outside: 1e3 .. 1e10 image widths away. Past ~1e6 float32 resolves no pixel and a
# reflected pixel is rounding noise (torch's 2-D and 3-D CPU kernels pick different ones),
# so reflection gets only the nearer ones. Zeros reads 0 there, border the edge pixels
# (bicubic border gave -22 from pixels in [1, 12] before the coordinates were bounded).
FAR = np.array([1e3, -1e3, 3e5, -7e5], np.float32)
HUGE = np.array([1e10, -1e10, 3e9, -4e9], np.float32)


def make_grid(nd: int, mode: str, pad: str, align: bool, seed: int = 0) -> np.ndarray:
    """``(1, 3, L, nd)`` (2-D) or ``(1, 3, 1, L, nd)`` (3-D): a row of random points, a row
    of lattice points and a row of far-away points (one axis far, the others inside)."""
    rng = np.random.default_rng(seed)
    n = len(LATTICE) * 2
    lattice = np.stack(
        [np.roll(np.tile(LATTICE, 2), 3 * k) for k in range(nd)], axis=-1
    )  # every value on every axis, in different combinations
    while True:
        rand = rng.uniform(-1.6, 1.6, (n, nd)).astype(np.float32)
        if mode != "nearest":
            break
        sizes = SPATIAL[nd][::-1]  # grid axis k runs over spatial dim nd - 1 - k
        frac = np.stack([_unnormalize(rand[:, k], sizes[k], align) % 1 for k in range(nd)])
        if np.all(np.abs(frac - 0.5) > 1e-3):  # no tie among the random points
            break
    far_values = np.resize(FAR if pad == "reflection" else np.concatenate([FAR, HUGE]), n)
    far = rng.uniform(-0.9, 0.9, (n, nd)).astype(np.float32)
    far[np.arange(n), np.arange(n) % nd] = far_values
    grid = np.stack([rand, lattice, far])[None]
    return grid if nd == 2 else grid[:, :, None]


def inputs(nd: int, mode: str, pad: str, align: bool) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, *SPATIAL[nd])).astype(np.float32)
    g = make_grid(nd, mode, pad, align)
    w = rng.standard_normal((1, 2, *g.shape[1:-1])).astype(np.float32)
    return x, g, w


def torch_result(x, g, w, **kw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(g, requires_grad=True)
    out = TF.grid_sample(xt, gt, **kw)
    (out * torch.from_numpy(w)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy()


def close(actual: Any, expected: np.ndarray, what: str) -> None:
    a = np.asarray(actual._value if isinstance(actual, jaxmod.Tensor) else actual)
    assert a.shape == expected.shape, f"{what}: shape {a.shape} != torch's {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0)), 1.0)
    err = float(np.abs(a.astype(np.float64) - expected).max(initial=0))
    assert err <= TOL * scale, f"{what}: max abs error {err:.3g} (torch's max {scale:.3g})"


def _loss(w: Any, **kw: Any) -> Any:
    return lambda x, g: (F.grid_sample(x, g, **kw) * w).sum()


def _check(out: Any, dx: Any, dg: Any, expected: tuple, mode: str, what: str) -> None:
    t_out, t_dx, t_dg = expected
    assert isinstance(out, jaxmod.Tensor) and str(out.dtype).endswith("float32")
    close(out, t_out, f"{what}: output")
    close(dx, t_dx, f"{what}: d input")
    close(dg, t_dg, f"{what}: d grid")
    if mode == "nearest":  # no gradient flows to the grid through the rounding
        assert not np.any(t_dg) and not np.any(np.asarray(dg._value))


@pytest.mark.parametrize("nd, mode", [(nd, m) for nd in (2, 3) for m in MODES[nd]],
                         ids=[f"{nd}d-{m}" for nd in (2, 3) for m in MODES[nd]])  # fmt: skip
def test_grid_sample_values_and_gradients_match_torch_under_jit(nd: int, mode: str) -> None:
    """Every padding mode and alignment of one mode in one ``jaxmod.jit`` program (one
    compilation per mode keeps the file fast)."""
    combos = list(itertools.product(PADDINGS, (True, False)))
    data = {c: inputs(nd, mode, *c) for c in combos}
    expected = {c: torch_result(*data[c], mode=mode, padding_mode=c[0], align_corners=c[1])
                for c in combos}  # fmt: skip
    args = {c: tuple(jaxmod.from_numpy(v) for v in data[c]) for c in combos}

    @jaxmod.jit
    def step(args: dict) -> Any:
        out = {}
        for (pad, align), (x, g, w) in args.items():
            kw = {"mode": mode, "padding_mode": pad, "align_corners": align}
            out[pad, align] = (F.grid_sample(x, g, **kw),
                               *jaxmod.grad(_loss(w, **kw), argnums=(0, 1))(x, g))  # fmt: skip
        return out

    results = step(args)
    for c in combos:
        _check(*results[c], expected[c], mode, f"{c[0]}, align_corners={c[1]}")


# eagerly (op by op on Tensors, the gradient through jaxmod.grad without jit: one
# differentiated kernel call, the same machinery for every mode; bicubic runs eagerly in
# test_bicubic_values_match_torch_eagerly)
EAGER_CASES = [
    pytest.param(2, "bilinear", "reflection", False, id="2d-bilinear-reflection-noalign"),
    pytest.param(3, "nearest", "zeros", False, id="3d-nearest-zeros-noalign"),
]


@pytest.mark.parametrize("nd, mode, pad, align", EAGER_CASES)
def test_grid_sample_values_and_gradients_match_torch_eagerly(nd, mode, pad, align) -> None:
    kw = {"mode": mode, "padding_mode": pad, "align_corners": align}
    x, g, w = inputs(nd, mode, pad, align)
    expected = torch_result(x, g, w, **kw)
    xj, gj, wj = (jaxmod.from_numpy(v) for v in (x, g, w))
    out = F.grid_sample(xj, gj, **kw)
    dx, dg = jaxmod.grad(_loss(wj, **kw), argnums=(0, 1))(xj, gj)
    _check(out, dx, dg, expected, mode, "eager")


def test_nearest_rounds_half_to_even_as_torch() -> None:
    """Grid points exactly on half pixels: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, and -0.5 -> -0
    (inside the image) under zeros padding."""
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 1, 5)
    for align, xs in ((True, [-0.75, -0.25, 0.25, 0.75]), (False, [-1.0, -0.6, -0.2, 0.2, 1.0])):
        g = np.array([[[[v, 0.0] for v in xs]]], np.float32)
        kw = {"mode": "nearest", "align_corners": align}
        expected = TF.grid_sample(torch.from_numpy(x), torch.from_numpy(g), **kw).numpy()
        got = F.grid_sample(jaxmod.from_numpy(x), jaxmod.from_numpy(g), **kw)
        np.testing.assert_array_equal(np.asarray(got._value), expected)
        if align:  # pixels 0.5, 1.5, 2.5, 3.5 -> 0, 2, 2, 4: ties to even, not away from 0
            assert expected.ravel().tolist() == [1.0, 3.0, 3.0, 5.0]


def _forward_all(x: np.ndarray, grids: dict) -> tuple[dict, dict]:
    """torch's and jaxmod's outputs for ``{(mode, padding, align): grid}``, jaxmod's in
    one ``jaxmod.jit`` program."""
    expected = {
        (m, p, a): TF.grid_sample(torch.from_numpy(x), torch.from_numpy(g), mode=m,
                                  padding_mode=p, align_corners=a).numpy()
        for (m, p, a), g in grids.items()
    }  # fmt: skip

    @jaxmod.jit
    def run(x: Any, grids: dict) -> dict:
        return {(m, p, a): F.grid_sample(x, g, mode=m, padding_mode=p, align_corners=a)
                for (m, p, a), g in grids.items()}  # fmt: skip

    got = run(jaxmod.from_numpy(x), {k: jaxmod.from_numpy(g) for k, g in grids.items()})
    return got, expected


def test_bicubic_values_match_torch_eagerly() -> None:
    """Bicubic forward eagerly (its gradients are compared under jit above)."""
    for pad, align in (("border", True),):
        kw = {"mode": "bicubic", "padding_mode": pad, "align_corners": align}
        x, g, _ = inputs(2, "bicubic", pad, align)
        expected = TF.grid_sample(torch.from_numpy(x), torch.from_numpy(g), **kw).numpy()
        got = F.grid_sample(jaxmod.from_numpy(x), jaxmod.from_numpy(g), **kw)
        assert isinstance(got, jaxmod.Tensor)
        close(got, expected, str(kw))


def test_non_finite_grid_clips_to_zero_as_torch_2d() -> None:
    """NaN / +-inf grid points under border / reflection padding read a pixel: NaN and a
    reflected inf clip to index 0, as torch's 2-D CPU (and CUDA) kernels do (it read 0)."""
    x = np.arange(1, 13, dtype=np.float32).reshape(1, 1, 3, 4)
    nan, inf = np.nan, np.inf
    g = np.array([[[[nan, 0.0], [inf, 0.0], [-inf, 0.3], [0.0, nan], [0.5, inf]]]], np.float32)
    grids = {
        (m, p, a): g
        for m, p, a in itertools.product(
            ("bilinear", "nearest"), ("border", "reflection"), (True, False)
        )
    }
    got, expected = _forward_all(x, grids)  # fmt: skip
    for k in grids:
        np.testing.assert_array_equal(np.asarray(got[k]._value), expected[k], err_msg=str(k))


def test_empty_batch_and_empty_grid_give_torchs_shapes() -> None:
    for mode in ("bilinear", "nearest", "bicubic"):
        for xs, gs in (((0, 1, 2, 2), (0, 3, 2, 2)), ((1, 1, 2, 2), (1, 0, 2, 2))):
            kw = {"mode": mode, "align_corners": False}
            expected = TF.grid_sample(torch.zeros(xs), torch.zeros(gs), **kw).shape
            got = F.grid_sample(jaxmod.zeros(*xs), jaxmod.zeros(*gs), **kw).shape
            assert tuple(got) == tuple(expected)


# ---------------------------------------------------------------------------- affine_grid
AFFINE = [
    pytest.param(size, align, id=f"{len(size)}d-{'x'.join(map(str, size))}-{align}")
    for size, aligns in (((2, 1, 3, 4), (True, False)), ((2, 1, 1, 5), (True,)),
                         ((2, 1, 2, 3, 4), (True, False)), ((1, 1, 3, 1, 2), (False,)))
    for align in aligns
]  # fmt: skip


@pytest.mark.parametrize("size, align", AFFINE)
def test_affine_grid_and_theta_gradient_match_torch(size: tuple, align: bool) -> None:
    rng = np.random.default_rng(2)
    nd = len(size) - 2
    theta = rng.standard_normal((size[0], nd, nd + 1)).astype(np.float32)
    w = rng.standard_normal((*size[:1], *size[2:], nd)).astype(np.float32)
    tt = torch.tensor(theta, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit-size grids with align_corners=True warn
        t_grid = TF.affine_grid(tt, size, align_corners=align)
        (t_grid * torch.from_numpy(w)).sum().backward()
        th, wj = jaxmod.from_numpy(theta), jaxmod.from_numpy(w)
        grid = F.affine_grid(th, size, align_corners=align)
        d_theta = jaxmod.grad(lambda t: (F.affine_grid(t, size, align_corners=align) * wj).sum())(
            th
        )
    close(grid, t_grid.detach().numpy(), "grid")
    close(d_theta, tt.grad.numpy(), "d theta")


def test_spatial_transformer_chain_gradients_match_torch_under_jit() -> None:
    """affine_grid -> grid_sample (bilinear, zeros), the spatial transformer's resampling,
    under jaxmod.jit: the gradient reaches theta through the grid."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    theta = (np.eye(2, 3)[None] + 0.3 * rng.standard_normal((2, 2, 3))).astype(np.float32)
    w = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    xt, tt = (torch.tensor(v, requires_grad=True) for v in (x, theta))
    out = TF.grid_sample(xt, TF.affine_grid(tt, xt.size(), align_corners=False),
                         align_corners=False)  # fmt: skip
    (out * torch.from_numpy(w)).sum().backward()
    wj = jaxmod.from_numpy(w)

    def loss(x: Any, t: Any) -> Any:
        grid = F.affine_grid(t, x.size(), align_corners=False)
        return (F.grid_sample(x, grid, align_corners=False) * wj).sum()

    grad = jaxmod.grad(loss, argnums=(0, 1))
    dx, dt = jaxmod.jit(grad)(jaxmod.from_numpy(x), jaxmod.from_numpy(theta))
    close(dx, xt.grad.numpy(), "d input")
    close(dt, tt.grad.numpy(), "d theta")


# ---------------------------------------------------------------------------- errors
def z(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return np.zeros(shape, dtype)


# (name, function, first argument, second argument, keyword arguments)
ERRORS = [
    ("3d input", "grid_sample", z(2, 3, 4), z(2, 3, 4, 2), {}),
    ("grid rank differs", "grid_sample", z(2, 1, 3, 4), z(2, 3, 4, 1, 2), {}),
    ("6d input", "grid_sample", z(2, 1, 3, 4, 2, 2), z(2, 3, 4, 1, 2, 4), {}),
    ("batch mismatch", "grid_sample", z(2, 1, 3, 4), z(3, 3, 4, 2), {}),
    ("grid last dim 4d", "grid_sample", z(2, 1, 3, 4), z(2, 3, 4, 3), {}),
    ("grid last dim 5d", "grid_sample", z(2, 1, 2, 3, 4), z(2, 1, 3, 4, 2), {}),
    ("1d grid", "grid_sample", z(2, 1, 3, 4), z(2), {}),
    ("bicubic 5d", "grid_sample", z(2, 1, 2, 3, 4), z(2, 1, 3, 4, 3), {"mode": "bicubic"}),
    ("unknown mode", "grid_sample", z(2, 1, 3, 4), z(2, 3, 4, 2), {"mode": "linear"}),
    ("unknown padding", "grid_sample", z(2, 1, 3, 4), z(2, 3, 4, 2),
     {"padding_mode": "circular"}),
    ("dtype mismatch", "grid_sample", z(2, 1, 3, 4), z(2, 3, 4, 2, dtype=np.float16), {}),
    ("empty spatial dim", "grid_sample", z(2, 1, 0, 4), z(2, 3, 4, 2), {}),
    ("theta 3x4 for 4d size", "affine_grid", z(2, 3, 4), (2, 1, 3, 4), {}),
    ("theta 2x3 for 5d size", "affine_grid", z(2, 2, 3), (2, 1, 2, 3, 4), {}),
    ("theta 2d", "affine_grid", z(2, 3), (2, 1, 3, 4), {}),
    ("3d size", "affine_grid", z(2, 2, 3), (2, 1, 4), {}),
    ("size batch mismatch", "affine_grid", z(2, 2, 3), (3, 1, 3, 4), {}),
    ("integer theta", "affine_grid", z(2, 2, 3, dtype=np.int32), (2, 1, 3, 4), {}),
    ("zero size", "affine_grid", z(2, 2, 3), (2, 1, 0, 4), {}),
]  # fmt: skip


def _call(lib: Any, name: str, a: np.ndarray, b: Any, kw: dict) -> Any:
    fn = getattr(lib.nn.functional, name)
    arg = lib.from_numpy(b) if isinstance(b, np.ndarray) else b
    return fn(lib.from_numpy(a), arg, **{"align_corners": False, **kw})


@pytest.mark.parametrize("name, fn, a, b, kw", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_arguments_raise_torchs_error(name: str, fn: str, a: Any, b: Any, kw: dict) -> None:
    with pytest.raises(Exception) as t_info:  # noqa: PT011 - torch's type is the expectation
        _call(torch, fn, a, b, kw)
    with pytest.raises(type(t_info.value)) as j_info:
        _call(jaxmod, fn, a, b, kw)
    assert type(j_info.value) is type(t_info.value)
    assert str(j_info.value) == str(t_info.value)


def test_default_align_corners_warns_as_torch() -> None:
    x, g, theta = z(1, 1, 3, 4), z(1, 3, 4, 2), np.eye(2, 3, dtype=np.float32)[None]
    for lib in (torch, jaxmod):
        with pytest.warns(UserWarning) as record:
            lib.nn.functional.grid_sample(lib.from_numpy(x), lib.from_numpy(g))
            lib.nn.functional.affine_grid(lib.from_numpy(theta), (1, 1, 3, 4))
        messages = [str(r.message) for r in record]
        if lib is torch:
            expected = messages
    assert messages == expected and len(messages) == 2
