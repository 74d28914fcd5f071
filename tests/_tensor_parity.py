"""Table-driven parity of jaxmod's tensor API with torch 2.13.

A case is ``(name, fn, inputs, flags)``: ``fn(lib, *tensors)`` runs once with ``torch`` and
torch tensors and once with ``jaxmod`` and jaxmod Tensors made from the same numpy
``inputs`` (names of the arrays in :data:`INPUTS`, space-separated). Outputs are compared
by structure, shape, dtype (torch's int64 is jaxmod's default integer, float64 its default
float without x64) and value; when torch raises, jaxmod must raise the same exception type.

Flags: ``f`` function form (also run on plain ``jax.Array`` inputs, which must give
``jax.Array`` outputs: the type rule); ``e`` eager only (not run under ``jaxmod.jit``);
``r`` random (shapes and dtypes only); ``x`` torch raises (jaxmod must raise the same
type); ``m`` compare the error message too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxmod

torch.set_num_threads(1)

_rng = np.random.default_rng(0)


def _distinct(*shape: int) -> np.ndarray:
    n = int(np.prod(shape))
    return (_rng.permutation(n).astype(np.float32) / n - 0.5).reshape(shape) * 4


INPUTS: dict[str, np.ndarray] = {
    "A": _rng.standard_normal((2, 3)).astype(np.float32),
    "B": _rng.standard_normal((2, 3)).astype(np.float32),
    "C": _rng.standard_normal((3, 4)).astype(np.float32),
    "D": _distinct(3, 5),  # distinct values: sort / topk / max indices are unambiguous
    "V": _rng.standard_normal((3,)).astype(np.float32),
    "W": _rng.standard_normal((4,)).astype(np.float32),
    "S": np.float32(1.5).reshape(()),
    "X": _rng.standard_normal((2, 3, 4)).astype(np.float32),
    "Y": _rng.standard_normal((2, 4, 5)).astype(np.float32),
    "P": (_rng.random((2, 3)) + 0.1).astype(np.float32),  # positive
    "U": (_rng.random((2, 3)) * 1.8 - 0.9).astype(np.float32),  # in (-1, 1)
    "I": _rng.integers(-5, 6, (2, 3)).astype(np.int64),
    "J": _rng.integers(1, 4, (2, 3)).astype(np.int64),  # positive ints
    "K": np.array([[0, 2, 1], [1, 0, 0]], np.int64),  # indices into dim 1 of A / (2, 3)
    "L": np.array([2, 0], np.int64),  # indices into dim 0 / 1
    "M": _rng.random((2, 3)) > 0.5,  # a bool mask
    "R": np.array([True, False]),  # a row mask
    "N": np.array([[1.0, np.nan, -np.inf], [np.inf, 0.0, -2.0]], np.float32),
    "H": _rng.standard_normal((2, 3)).astype(np.float16),
    "Z": np.zeros((0, 3), np.float32),
    "T": np.array([[1.0, 2.0, 2.0], [3.0, 1.0, 3.0]], np.float32),  # ties
}

Case = tuple[str, Callable[..., Any], str, str]


def _torch_input(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a)


def make_inputs(lib: Any, names: str) -> list[Any]:
    """Fresh tensors of the named inputs for ``lib`` (torch, jaxmod, or ``jnp`` arrays)."""
    arrays = [INPUTS[n] for n in names.split()] if names else []
    if lib is torch:
        return [_torch_input(a) for a in arrays]
    if lib == "arrays":
        return [jnp.asarray(a) for a in arrays]
    return [jaxmod.tensor(a) for a in arrays]


def expected_dtype(d: torch.dtype) -> np.dtype:
    """jaxmod's dtype for a torch dtype."""
    return jaxmod._tensor.dtypes.as_dtype(str(d).replace("torch.", ""))


def _structured(x: Any) -> bool:
    return hasattr(x, "values") and hasattr(x, "indices") and not hasattr(x, "shape")


def leaves(x: Any) -> list[Any]:
    """The tensors in an output (tuples, lists, named tuples), in order."""
    if isinstance(x, (torch.Tensor, jaxmod.Tensor, jax.Array)):
        return [x]
    if _structured(x) or isinstance(x, (tuple, list)):
        return [leaf for item in x for leaf in leaves(item)]
    return []


def compare(actual: Any, expected: Any, where: str, random: bool = False) -> None:
    """Assert ``actual`` (jaxmod) matches ``expected`` (torch)."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, (jaxmod.Tensor, jax.Array)), (where, type(actual))
        a = actual._jx() if isinstance(actual, jaxmod.Tensor) else actual
        assert tuple(a.shape) == tuple(expected.shape), (where, a.shape, expected.shape)
        assert a.dtype == expected_dtype(expected.dtype), (where, a.dtype, expected.dtype)
        if random:
            return
        e = expected.detach().resolve_conj().resolve_neg()
        if e.dtype == torch.bfloat16:
            e = e.float()
        e = e.numpy()
        av = np.asarray(a).astype(e.dtype) if a.dtype != e.dtype else np.asarray(a)
        if e.dtype.kind in "biu":
            np.testing.assert_array_equal(av, e, err_msg=where)
        else:
            tol = 2e-3 if a.dtype in (np.float16, jnp.bfloat16) else 1e-5
            scale = (
                max(1.0, float(np.nanmax(np.abs(e[np.isfinite(e)]))))
                if np.isfinite(e).any()
                else 1.0
            )
            np.testing.assert_allclose(av, e, rtol=tol, atol=tol * scale, err_msg=where)
        return
    if _structured(expected):
        for f in ("values", "indices"):
            assert hasattr(actual, f), (where, type(actual))
            compare(getattr(actual, f), getattr(expected, f), f"{where}.{f}", random)
        return
    if isinstance(expected, torch.Size):
        assert type(actual).__name__ == "Size" and tuple(actual) == tuple(expected), where
        assert repr(actual) == repr(expected), where
        return
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)), (where, type(actual))
        assert len(actual) == len(expected), (where, len(actual), len(expected))
        for i, (a, e) in enumerate(zip(actual, expected)):
            compare(a, e, f"{where}[{i}]", random)
        return
    if isinstance(expected, torch.dtype):
        assert actual == expected_dtype(expected), (where, actual, expected)
        return
    if isinstance(expected, float):
        assert isinstance(actual, float), (where, type(actual))
        np.testing.assert_allclose(actual, expected, rtol=1e-5, err_msg=where)
        return
    assert type(actual) is type(expected) and actual == expected, (where, actual, expected)


@contextlib.contextmanager
def quick_compiles() -> Iterator[None]:
    """XLA with most optimizations off (each op compiles about 20% faster; the cases are
    tiny, and the comparison has a tolerance)."""
    old = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", old)


def check_eager(case: Case) -> None:
    """Run one case eagerly in both libraries and compare (results or exception types)."""
    with quick_compiles():
        _check_eager(case)


def _check_eager(case: Case) -> None:
    name, fn, names, flags = case
    try:
        expected = fn(torch, *make_inputs(torch, names))
    except Exception as e:  # torch rejects it: jaxmod must raise the same type
        t_err = e
    else:
        t_err = None
    if t_err is not None:
        assert "x" in flags, f"{name}: torch raised {type(t_err).__name__}: {t_err}"
        try:
            fn(jaxmod, *make_inputs(jaxmod, names))
        except Exception as e:
            assert isinstance(e, type(t_err)), (name, type(e), e, type(t_err), t_err)
            if "m" in flags:
                assert str(e) == str(t_err), (name, str(e), str(t_err))
            return
        raise AssertionError(
            f"{name}: torch raised {type(t_err).__name__}: {t_err}; jaxmod did not"
        )
    actual = fn(jaxmod, *make_inputs(jaxmod, names))
    compare(actual, expected, name, "r" in flags)
    if "f" in flags:
        plain = fn(jaxmod, *make_inputs("arrays", names))
        for leaf in leaves(plain):
            assert not isinstance(leaf, jaxmod.Tensor), (name, "array inputs gave a Tensor")
        compare(plain, expected, name + " (jax.Array inputs)", "r" in flags)


def check_jit(cases: Sequence[Case]) -> None:
    """Run ``cases`` inside one ``jaxmod.jit`` call and compare their tensor outputs."""
    cases = [c for c in cases if "e" not in c[3] and "x" not in c[3]]
    inputs = [make_inputs(jaxmod, c[2]) for c in cases]
    fns = [c[1] for c in cases]

    @jaxmod.jit
    def run_all(inputs: list) -> list:
        return [leaves(fn(jaxmod, *args)) for fn, args in zip(fns, inputs)]

    with quick_compiles():
        outs = run_all(inputs)
    for (name, fn, names, flags), out in zip(cases, outs):
        expected = leaves(fn(torch, *make_inputs(torch, names)))
        assert len(out) == len(expected), (name, len(out), len(expected))
        for i, (a, e) in enumerate(zip(out, expected)):
            compare(a, e, f"{name} (jit) [{i}]", "r" in flags)


def ids(cases: Sequence[Case]) -> list[str]:
    """pytest ids: the case names."""
    return [c[0] for c in cases]


def chunks(cases: Sequence[Case], n: int) -> list[list[Case]]:
    """``cases`` in groups of ``n`` (one jit compile per group)."""
    return [list(cases[i : i + n]) for i in range(0, len(cases), n)]


def parity_tests(cases: Sequence[Case], chunk: int = 60) -> tuple[Callable, Callable]:
    """The two tests of a case table: each case eagerly, and the cases in groups of
    ``chunk`` under one ``jaxmod.jit`` each."""
    import pytest

    @pytest.mark.parametrize("case", cases, ids=ids(cases))
    def eager(case: Case) -> None:
        check_eager(case)

    @pytest.mark.parametrize("group", chunks(cases, chunk), ids=lambda g: f"{g[0][0]}..{g[-1][0]}")
    def under_jit(group: list[Case]) -> None:
        check_jit(group)

    return eager, under_jit
