"""jaxmod.autograd.functional against torch.autograd.functional: jacobian, hessian, vjp,
jvp, vhp and hvp on Tensors and tuples of Tensors, with torch's return structure (a Tensor
or tuples, exactly as torch nests them), values, strict mode, create_graph and errors."""

from __future__ import annotations

import numpy as np
import pytest

import jaxmod

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
A = _RNG.standard_normal((3,)).astype(np.float32)
B = _RNG.standard_normal((3,)).astype(np.float32)
M = _RNG.standard_normal((2, 3)).astype(np.float32)
S = _RNG.standard_normal((1,)).astype(np.float32)


def _tree(lib, spec):
    """numpy arrays (possibly in a tuple) as tensors of ``lib``."""
    if isinstance(spec, tuple):
        return tuple(_tree(lib, s) for s in spec)
    return lib.tensor(spec)


def _same(got, want, path="out"):
    """Same nesting (a Tensor where torch has one, tuples or lists where torch has them)."""
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{path}[{i}]")
        return
    assert isinstance(got, jaxmod.Tensor), f"{path}: {type(got)}"
    assert tuple(got.shape) == tuple(want.shape), path
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-5,
                               err_msg=path)  # fmt: skip


FUNCS = {
    "exp": lambda x: x.exp(),
    "matvec": lambda m, x: m @ x,
    "two_out": lambda x, y: (x * y, (x**2).sum()),
    "one_in_two_out": lambda x: (x.sin(), x.cumsum(0)),
    "cubic": lambda x: (x**3).sum(),
    "mixed": lambda x, y: (x**2 * y.exp()).sum(),
    "keep1": lambda x: (x**2).sum().reshape(1),
    "scalar_in": lambda s: s.exp() * 2,
}

# name: (function, func, inputs, v, kwargs)
CASES = {
    "jacobian_tensor": ("jacobian", "exp", A, None, {}),
    "jacobian_tuple_of_one": ("jacobian", "exp", (A,), None, {}),
    "jacobian_tuple_in": ("jacobian", "matvec", (M, A), None, {}),
    "jacobian_tuple_in_out": ("jacobian", "two_out", (A, B), None, {}),
    "jacobian_tuple_out": ("jacobian", "one_in_two_out", A, None, {}),
    "jacobian_forward": ("jacobian", "two_out", (A, B), None,
                         {"vectorize": True, "strategy": "forward-mode"}),
    "jacobian_vectorize": ("jacobian", "matvec", (M, A), None, {"vectorize": True}),
    "jacobian_strict": ("jacobian", "matvec", (M, A), None, {"strict": True}),
    "hessian_tensor": ("hessian", "cubic", A, None, {}),
    "hessian_tuple": ("hessian", "mixed", (A, B), None, {}),
    "hessian_keepdim": ("hessian", "keep1", A, None, {}),
    "hessian_forward": ("hessian", "mixed", (A, B), None,
                        {"vectorize": True, "outer_jacobian_strategy": "forward-mode"}),
    "vjp_tensor": ("vjp", "exp", A, B, {}),
    "vjp_tuple": ("vjp", "two_out", (A, B), (B, np.float32(2.0) * np.ones((), np.float32)), {}),
    "vjp_no_v": ("vjp", "cubic", A, None, {}),
    "vjp_no_v_keepdim": ("vjp", "keep1", A, None, {}),
    "jvp_tensor": ("jvp", "exp", A, B, {}),
    "jvp_tuple": ("jvp", "two_out", (A, B), (B, A), {}),
    "jvp_matvec": ("jvp", "matvec", (M, A), (M * 2, B), {}),
    "jvp_no_v": ("jvp", "scalar_in", S, None, {}),
    "vhp_tensor": ("vhp", "cubic", A, B, {}),
    "vhp_tuple": ("vhp", "mixed", (A, B), (B, A), {}),
    "hvp_tensor": ("hvp", "cubic", A, B, {}),
    "hvp_tuple": ("hvp", "mixed", (A, B), (B, A), {}),
    "hvp_no_v": ("hvp", "scalar_in", S, None, {}),
    "vhp_keepdim": ("vhp", "keep1", A, B, {}),
}  # fmt: skip


def _call(lib, case):
    fname, func, inputs, v, kwargs = CASES[case]
    fn = getattr(lib.autograd.functional, fname)
    args = (FUNCS[func], _tree(lib, inputs))
    if fname not in ("jacobian", "hessian"):
        args += (None if v is None else _tree(lib, v),)
    return fn(*args, **kwargs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(case):
    _same(_call(jaxmod, case), _call(torch, case))


@pytest.mark.parametrize("fname", ["jacobian", "hessian", "vjp", "hvp"])
def test_create_graph_differentiates_again_like_torch(fname):
    grads = []
    for lib in (torch, jaxmod):
        x = lib.tensor(A, requires_grad=True)
        fn = getattr(lib.autograd.functional, fname)
        f = FUNCS["cubic"] if fname in ("hessian", "hvp") else (lambda t: t**3)
        out = fn(f, x, create_graph=True) if fname in ("jacobian", "hessian") else (
            fn(f, x, lib.tensor(B), create_graph=True))  # fmt: skip
        res = out if fname in ("jacobian", "hessian") else out[1]
        (res * lib.tensor(np.arange(res.numel(), dtype=np.float32).reshape(res.shape))).sum(
        ).backward()  # fmt: skip
        grads.append(x.grad)
    _same(grads[1], grads[0])


def test_without_create_graph_results_do_not_require_grad():
    x = jaxmod.tensor(A, requires_grad=True)
    J = jaxmod.autograd.functional.jacobian(lambda t: t**3, x)
    assert not J.requires_grad
    out, g = jaxmod.autograd.functional.vjp(lambda t: t**3, x, jaxmod.tensor(B))
    assert not out.requires_grad and not g.requires_grad


def _raises_like_torch(call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(type(want.value)) as got:
        call(jaxmod)
    assert str(got.value) == str(want.value).replace("torch.", "jaxmod.", 0)


ERRORS = {
    "list_input": lambda lib: lib.autograd.functional.jacobian(lambda x: x, [lib.tensor(A)]),
    "non_tensor_in_tuple": lambda lib: lib.autograd.functional.vjp(
        lambda x, y: x, (lib.tensor(A), 3.0), lib.tensor(A)),
    "non_tensor_output": lambda lib: lib.autograd.functional.jacobian(
        lambda x: [x], lib.tensor(A)),
    "vjp_v_none_needs_one_element": lambda lib: lib.autograd.functional.vjp(
        lambda x: x, lib.tensor(A)),
    "jvp_v_none_needs_one_element": lambda lib: lib.autograd.functional.jvp(
        lambda x: x, lib.tensor(A)),
    "v_wrong_size": lambda lib: lib.autograd.functional.vjp(
        lambda x: x, lib.tensor(A), lib.tensor(M)),
    "v_wrong_size_tuple": lambda lib: lib.autograd.functional.jvp(
        lambda x, y: x, (lib.tensor(A), lib.tensor(B)), (lib.tensor(A), lib.tensor(M))),
    "v_wrong_length": lambda lib: lib.autograd.functional.jvp(
        lambda x, y: x, (lib.tensor(A), lib.tensor(B)), (lib.tensor(A),)),
    "v_wrong_length_single": lambda lib: lib.autograd.functional.jvp(
        lambda x: x, lib.tensor(A), (lib.tensor(A), lib.tensor(B))),
    "hessian_not_scalar": lambda lib: lib.autograd.functional.hessian(
        lambda x: x, lib.tensor(A)),
    "hessian_tuple_output": lambda lib: lib.autograd.functional.hessian(
        lambda x: (x.sum(),), lib.tensor(A)),
    "hvp_not_scalar": lambda lib: lib.autograd.functional.hvp(
        lambda x: x, lib.tensor(A), lib.tensor(A)),
    "forward_needs_vectorize": lambda lib: lib.autograd.functional.jacobian(
        lambda x: x, lib.tensor(A), strategy="forward-mode"),
    "forward_create_graph": lambda lib: lib.autograd.functional.jacobian(
        lambda x: x, lib.tensor(A), strategy="forward-mode", create_graph=True),
    "bad_strategy": lambda lib: lib.autograd.functional.jacobian(
        lambda x: x, lib.tensor(A), strategy="sideways"),
    "strict_independent_output": lambda lib: lib.autograd.functional.jacobian(
        lambda x: lib.ones(3), lib.tensor(A), strict=True),
    "strict_independent_input": lambda lib: lib.autograd.functional.jacobian(
        lambda x, y: x * 2, (lib.tensor(A), lib.tensor(B)), strict=True),
    "strict_vectorize": lambda lib: lib.autograd.functional.jacobian(
        lambda x: x, lib.tensor(A), strict=True, vectorize=True),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_match_torch(case):
    _raises_like_torch(ERRORS[case])


def test_independent_output_gives_zeros_without_strict():
    J = jaxmod.autograd.functional.jacobian(lambda x, y: x * 2, (jaxmod.tensor(A),
                                                                  jaxmod.tensor(B)))  # fmt: skip
    np.testing.assert_array_equal(J[1].numpy(), np.zeros((3, 3), np.float32))


def test_module_call_inside_the_function():
    torch.manual_seed(0)
    tm = torch.nn.Linear(3, 2)
    jm = jaxmod.nn.Linear(3, 2)
    jm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    want = torch.autograd.functional.jacobian(tm, torch.tensor(A))
    _same(jaxmod.autograd.functional.jacobian(jm, jaxmod.tensor(A)), want)
