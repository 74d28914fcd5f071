"""Parity helpers for the stateful-layer, activation and loss tests (``test_layers_*.py``).

A parity check builds the same layer in torch and jaxmod, copies torch's state over,
runs one forward/backward step on both with the same inputs and a fixed random
cotangent, and compares outputs, input gradients, parameter gradients and buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import torch

import jaxmod

torch.set_num_threads(1)

ATOL = 1e-5
RTOL = 1e-4


def torch_state(tm: torch.nn.Module) -> dict[str, np.ndarray]:
    """torch's state_dict as numpy arrays for ``load_state_dict``.

    The arrays are copied: ``jnp.asarray`` of a numpy view of torch memory can be
    zero-copy on CPU, and ``Module.load_state_dict`` currently keeps such an array as it
    is, so torch's later in-place updates (BatchNorm statistics) would show through in
    the jaxmod module. See ``test_load_state_dict_does_not_alias_numpy_source``.
    """
    return {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}


def load_from_torch(jm: Any, tm: torch.nn.Module) -> None:
    jm.load_state_dict(torch_state(tm))


def check_structure(tm: torch.nn.Module, jm: Any) -> None:
    """Same repr, state_dict keys (in order) and shapes."""
    assert repr(jm) == repr(tm)
    tsd, jsd = tm.state_dict(), jm.state_dict()
    assert list(jsd) == list(tsd)
    for k in tsd:
        assert tuple(jsd[k].shape) == tuple(tsd[k].shape), k


def close(a: Any, b: Any, atol: float = ATOL, rtol: float = RTOL, msg: str = "") -> None:
    if isinstance(b, torch.Tensor):
        b = b.detach().numpy()
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=rtol, err_msg=msg)


def _cotangent(shape: Sequence[int]) -> np.ndarray:
    return np.asarray(np.random.RandomState(123).randn(*shape), np.float32)


class Step:
    """One forward/backward step on a torch/jaxmod pair, optionally under jaxmod.jit.

    ``diff`` lists the positions of the inputs to differentiate (float inputs by
    default). Reuse one Step for several calls so that the jitted function is traced once.
    """

    def __init__(self, jm: Any, n_inputs: int, diff: Sequence[int] | None, jit: bool) -> None:
        self.diff = tuple(diff) if diff is not None else None
        self.jit = jit
        self.jm = jm
        self._fn: Any = None
        self._n = n_inputs

    def _build(self, diff: tuple[int, ...], cot: np.ndarray) -> Any:
        def loss(m: Any, *xs: Any) -> Any:
            y = m(*xs)
            return jnp.sum(y * cot), y

        argnums = (0,) + tuple(i + 1 for i in diff)
        fn = jaxmod.value_and_grad(loss, argnums=argnums, has_aux=True)
        return jaxmod.jit(fn) if self.jit else fn

    def __call__(self, tm: torch.nn.Module, *inputs: np.ndarray, atol: float = ATOL) -> Any:
        diff = self.diff
        if diff is None:
            diff = tuple(i for i, x in enumerate(inputs) if np.issubdtype(x.dtype, np.floating))
        tin = [torch.tensor(x, requires_grad=i in diff) for i, x in enumerate(inputs)]
        for p in tm.parameters():
            p.grad = None
        # clones: torch's inplace layers may not write into a leaf that requires grad
        ty = tm(*[t.clone() if t.requires_grad else t for t in tin])
        cot = _cotangent(ty.shape)
        (ty * torch.tensor(cot)).sum().backward()
        if self._fn is None:
            self._fn = self._build(diff, cot)
        (_, jy), grads = self._fn(self.jm, *[jnp.asarray(x) for x in inputs])
        close(jy, ty, atol=atol, msg="output")
        pgrads, igrads = grads[0], grads[1:]
        for i, g in zip(diff, igrads):
            close(g, tin[i].grad, atol=atol, msg=f"grad of input {i}")
        tp = dict(tm.named_parameters())
        assert set(pgrads) == {n for n, p in tp.items() if p.requires_grad}
        for n, g in pgrads.items():
            close(g, tp[n].grad, atol=atol, msg=f"grad of {n}")
        return jy


def check_buffers(tm: torch.nn.Module, jm: Any, atol: float = ATOL) -> None:
    tb, jb = dict(tm.named_buffers()), dict(jm.named_buffers())
    assert set(tb) == set(jb)
    for n, b in tb.items():
        if b is None:
            assert jb[n] is None
            continue
        close(jb[n]._value, b, atol=atol, msg=n)


def parity(
    tm: torch.nn.Module, jm: Any, *inputs: np.ndarray, diff: Sequence[int] | None = None,
    jit: bool = False, steps: int = 1, atol: float = ATOL, fresh: Any = None,
) -> None:  # fmt: skip
    """Copy torch's state into ``jm``; run ``steps`` steps (new inputs from ``fresh``)."""
    load_from_torch(jm, tm)
    step = Step(jm, len(inputs), diff, jit)
    for s in range(steps):
        xs = inputs if s == 0 or fresh is None else fresh(s)
        step(tm, *xs, atol=atol)
        check_buffers(tm, jm, atol=atol)


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.RandomState(seed).randn(*shape) * scale).astype(np.float32)
