"""The triangular, Cholesky and LU solvers against torch: torch.cholesky_solve /
cholesky_inverse / triangular_solve / lu / lu_unpack / lu_solve / qr / cholesky,
torch.linalg.solve_triangular / lu_factor(_ex) / lu_solve / lu / cholesky_ex / inv_ex /
solve_ex and the Tensor methods: values, shapes, dtypes, named-tuple fields, batch
broadcasting, gradients through the eager tape, and the error infos."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import jaxmod

torch = pytest.importorskip("torch")

_R = np.random.default_rng(0)


def _f32(*shape):
    return _R.standard_normal(shape).astype(np.float32)


def _spd(*batch, n=4):
    a = _f32(*batch, n, n)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n, dtype=np.float32)


def _well(*batch, n=4):
    """Well-conditioned general matrices (diagonally dominated)."""
    return _f32(*batch, n, n) + 3 * np.eye(n, dtype=np.float32)


A = _well(2)
A1 = _well()
SPD = _spd(2)
SPD1 = _spd()
B = _f32(2, 4, 3)
B1 = _f32(4, 3)
BT = _f32(2, 3, 4)
RECT = _f32(2, 3, 5)
TALL = _f32(5, 3)
V = _f32(2, 4)
NOT_PD = np.array([[4.0, 2, 1], [2, 3, 1], [1, 1, -5]], np.float32)
SINGULAR = np.array([[1.0, 2, 3], [2, 4, 6], [1, 0, 1]], np.float32)


def _chol(lib, s, upper=False):
    return lib.linalg.cholesky(s, upper=upper)


# name: (callable(lib, *tensors), inputs, indices of inputs that get gradients)
CASES = {
    "cholesky_solve": (lambda l, s, b: l.cholesky_solve(b, _chol(l, s)), (SPD, B), (0, 1)),
    "cholesky_solve_upper": (lambda l, s, b: l.cholesky_solve(b, _chol(l, s, True),
                                                              upper=True), (SPD, B), (0, 1)),
    "cholesky_solve_broadcast": (lambda l, s, b: l.cholesky_solve(b, _chol(l, s)),
                                 (SPD1, B), (0, 1)),
    "cholesky_solve_method": (lambda l, s, b: b.cholesky_solve(_chol(l, s)), (SPD, B), (1,)),
    "cholesky_inverse": (lambda l, s: l.cholesky_inverse(_chol(l, s)), (SPD1,), (0,)),
    "cholesky_inverse_upper": (lambda l, s: l.cholesky_inverse(_chol(l, s, True), upper=True),
                               (SPD,), (0,)),
    "cholesky_inverse_method": (lambda l, s: _chol(l, s).cholesky_inverse(), (SPD,), ()),
    "cholesky_deprecated": (lambda l, s: l.cholesky(s), (SPD,), ()),
    "cholesky_deprecated_upper": (lambda l, s: l.cholesky(s, upper=True), (SPD,), ()),
    "triangular_solve": (lambda l, b, a: l.triangular_solve(b, a), (B, A), (0, 1)),
    "triangular_solve_lower": (lambda l, b, a: l.triangular_solve(b, a, upper=False),
                               (B, A), (0, 1)),
    "triangular_solve_transpose": (lambda l, b, a: l.triangular_solve(b, a, transpose=True),
                                   (B, A), (0, 1)),
    "triangular_solve_unit": (lambda l, b, a: l.triangular_solve(b, a, False, False, True),
                              (B, A), (0, 1)),
    "triangular_solve_broadcast": (lambda l, b, a: l.triangular_solve(b, a), (B1, A), (0, 1)),
    "triangular_solve_method": (lambda l, b, a: b.triangular_solve(a, upper=False), (B, A),
                                (0,)),
    "solve_triangular_upper": (lambda l, a, b: l.linalg.solve_triangular(a, b, upper=True),
                               (A, B), (0, 1)),
    "solve_triangular_lower": (lambda l, a, b: l.linalg.solve_triangular(a, b, upper=False),
                               (A, B), (0, 1)),
    "solve_triangular_right": (lambda l, a, b: l.linalg.solve_triangular(
        a, b, upper=False, left=False), (A, BT), (0, 1)),
    "solve_triangular_unit": (lambda l, a, b: l.linalg.solve_triangular(
        a, b, upper=True, unitriangular=True), (A, B), (0, 1)),
    "solve_triangular_broadcast": (lambda l, a, b: l.linalg.solve_triangular(
        a, b, upper=True), (A1, B), (0, 1)),
    "lu_factor": (lambda l, a: l.linalg.lu_factor(a), (A,), (0,)),
    "lu_factor_rect": (lambda l, a: l.linalg.lu_factor(a), (RECT,), ()),
    "lu_factor_tall": (lambda l, a: l.linalg.lu_factor(a), (TALL,), ()),
    "lu_factor_ex": (lambda l, a: l.linalg.lu_factor_ex(a), (A,), ()),
    "lu_deprecated": (lambda l, a: l.lu(a), (A,), ()),
    "lu_deprecated_infos": (lambda l, a: l.lu(a, get_infos=True), (A,), ()),
    "lu_method": (lambda l, a: a.lu(), (A1,), ()),
    "linalg_lu": (lambda l, a: l.linalg.lu(a), (A,), (0,)),
    "linalg_lu_rect": (lambda l, a: l.linalg.lu(a), (RECT,), ()),
    "linalg_lu_tall": (lambda l, a: l.linalg.lu(a), (TALL,), ()),
    "lu_unpack": (lambda l, a: l.lu_unpack(*l.linalg.lu_factor(a)), (A,), (0,)),
    "lu_unpack_rect": (lambda l, a: l.lu_unpack(*l.linalg.lu_factor(a)), (RECT,), ()),
    "lu_unpack_no_data": (lambda l, a: l.lu_unpack(*l.linalg.lu_factor(a),
                                                   unpack_data=False), (A,), ()),
    "lu_unpack_no_pivots": (lambda l, a: l.lu_unpack(*l.linalg.lu_factor(a),
                                                     unpack_pivots=False), (A,), ()),
    "lu_solve": (lambda l, a, b: l.linalg.lu_solve(*l.linalg.lu_factor(a), b), (A, B),
                 (0, 1)),
    "lu_solve_adjoint": (lambda l, a, b: l.linalg.lu_solve(*l.linalg.lu_factor(a), b,
                                                           adjoint=True), (A, B), (0, 1)),
    "lu_solve_right": (lambda l, a, b: l.linalg.lu_solve(*l.linalg.lu_factor(a), b,
                                                         left=False), (A, BT), (0, 1)),
    "lu_solve_right_adjoint": (lambda l, a, b: l.linalg.lu_solve(
        *l.linalg.lu_factor(a), b, left=False, adjoint=True), (A, BT), (0, 1)),
    "lu_solve_broadcast": (lambda l, a, b: l.linalg.lu_solve(*l.linalg.lu_factor(a), b),
                           (A1, B), (0, 1)),
    "lu_solve_deprecated": (lambda l, a, b: l.lu_solve(b, *l.linalg.lu_factor(a)), (A, B),
                            (1,)),
    "lu_solve_method": (lambda l, a, b: b.lu_solve(*l.linalg.lu_factor(a)), (A, B), ()),
    "cholesky_ex": (lambda l, s: l.linalg.cholesky_ex(s), (SPD,), (0,)),
    "cholesky_ex_upper": (lambda l, s: l.linalg.cholesky_ex(s, upper=True), (SPD1,), ()),
    "inv_ex": (lambda l, a: l.linalg.inv_ex(a), (A,), (0,)),
    "solve_ex": (lambda l, a, b: l.linalg.solve_ex(a, b), (A, B), (0, 1)),
    "solve_ex_vector": (lambda l, a, v: l.linalg.solve_ex(a, v), (A, V), (0, 1)),
    "solve_ex_right": (lambda l, a, b: l.linalg.solve_ex(a, b, left=False), (A, BT), (0, 1)),
    "qr": (lambda l, a: l.qr(a), (RECT,), (0,)),
    "qr_method": (lambda l, a: a.qr(), (TALL,), (0,)),
    "qr_complete": (lambda l, a: a.qr(some=False), (A1,), ()),
}  # fmt: skip


def _run(lib, case, grad):
    fn, inputs, grads = CASES[case]
    ts = [lib.tensor(x, requires_grad=grad and i in grads) for i, x in enumerate(inputs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation warnings
        return fn(lib, *ts), ts


def _fields(out):
    return getattr(out, "_fields", None) or (
        [f for f in dir(type(out)) if not f.startswith("_") and f not in ("count", "index",
                                                                            "n_fields",
                                                                            "n_sequence_fields",
                                                                            "n_unnamed_fields")]
    )  # fmt: skip


def _outs(out):
    return list(out) if isinstance(out, tuple) or type(out).__module__ == "torch.return_types" \
        else [out]  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_match_torch(case):
    want, _ = _run(torch, case, False)
    got, _ = _run(jaxmod, case, False)
    if type(want).__module__ == "torch.return_types":
        assert type(got).__name__ == type(want).__name__
        assert list(got._fields) == [f for f in want.__match_args__]
    else:
        assert type(got) is type(want) or isinstance(want, torch.Tensor)
    for i, (g, w) in enumerate(zip(_outs(got), _outs(want), strict=True)):
        assert isinstance(g, jaxmod.Tensor), i
        assert tuple(g.shape) == tuple(w.shape), i
        assert g.is_floating_point() == w.is_floating_point(), i
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-5, err_msg=str(i))


GRAD_CASES = sorted(c for c, (_, _, g) in CASES.items() if g)


@pytest.mark.parametrize("case", GRAD_CASES)
def test_gradients_match_torch(case):
    res = []
    for lib in (torch, jaxmod):
        out, ts = _run(lib, case, True)
        loss = 0
        for k, o in enumerate(_outs(out)):
            if o.is_floating_point():
                w = np.linspace(-1, 1, o.numel(), dtype=np.float32).reshape(tuple(o.shape))
                loss = loss + (o * lib.tensor(w + k)).sum()
        loss.backward()
        res.append([t.grad for t in ts if t.requires_grad])
    for i, (g, w) in enumerate(zip(res[1], res[0], strict=True)):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-3, atol=1e-4, err_msg=str(i))


def test_infos_of_failed_factorisations_match_torch():
    for mat in (NOT_PD, np.stack([SPD1[:3, :3], NOT_PD])):
        t = torch.linalg.cholesky_ex(torch.tensor(mat)).info
        j = jaxmod.linalg.cholesky_ex(jaxmod.tensor(mat)).info
        np.testing.assert_array_equal(j.numpy(), t.numpy())
    for mat in (SINGULAR, np.zeros((3, 3), np.float32), np.stack([A1[:3, :3], SINGULAR])):
        for name, args in (("inv_ex", ()), ("solve_ex", (np.ones(3, np.float32),))):
            t = getattr(torch.linalg, name)(torch.tensor(mat), *map(torch.tensor, args)).info
            j = getattr(jaxmod.linalg, name)(jaxmod.tensor(mat), *map(jaxmod.tensor, args)).info
            np.testing.assert_array_equal(j.numpy(), t.numpy(), err_msg=name)
        t = torch.linalg.lu_factor_ex(torch.tensor(mat)).info
        np.testing.assert_array_equal(
            jaxmod.linalg.lu_factor_ex(jaxmod.tensor(mat)).info.numpy(), t.numpy()
        )


ERRORS = {
    "cholesky_not_pd": lambda l: l.linalg.cholesky_ex(l.tensor(NOT_PD), check_errors=True),
    "cholesky_not_pd_batch": lambda l: l.linalg.cholesky_ex(
        l.tensor(np.stack([SPD1[:3, :3], NOT_PD])), check_errors=True),
    "inv_singular": lambda l: l.linalg.inv_ex(l.tensor(SINGULAR), check_errors=True),
    "solve_singular": lambda l: l.linalg.solve_ex(l.tensor(SINGULAR), l.ones(3),
                                                  check_errors=True),
    "solve_singular_batch": lambda l: l.linalg.solve_ex(
        l.tensor(np.stack([A1[:3, :3], SINGULAR])), l.ones(2, 3), check_errors=True),
    "lu_factor_ex_singular": lambda l: l.linalg.lu_factor_ex(l.tensor(SINGULAR),
                                                             check_errors=True),
    "lu_factor_no_pivot": lambda l: l.linalg.lu_factor(l.tensor(A1), pivot=False),
    "lu_no_pivot": lambda l: l.linalg.lu(l.tensor(A1), pivot=False),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_match_torch(case):
    with pytest.raises(RuntimeError) as want:
        ERRORS[case](torch)
    with pytest.raises(RuntimeError) as got:
        ERRORS[case](jaxmod)
    assert str(got.value) == str(want.value)
    linalg_error = isinstance(want.value, torch.linalg.LinAlgError)
    assert isinstance(got.value, jaxmod.linalg.LinAlgError) == linalg_error


def test_arrays_in_arrays_out():
    import jax

    x = jaxmod.linalg.solve_triangular(A1, B1, upper=True)
    assert isinstance(x, jax.Array)
    lu, piv = jaxmod.linalg.lu_factor(A1)
    assert isinstance(lu, jax.Array) and str(piv.dtype) == "int32"
