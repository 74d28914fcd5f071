"""Torch-parity helpers for the layer tests: same layer in torch and jaxmod, same weights,
same inputs and cotangent; outputs, input gradients and parameter gradients compared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
import torch

import jaxmod

torch.set_num_threads(1)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    """Standard-normal float32 test data."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def close(actual: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """allclose with the absolute tolerance scaled by the magnitude of ``expected``."""
    a = np.asarray(actual)
    if isinstance(expected, torch.Tensor):
        e = (expected.to_dense() if expected.is_sparse else expected).detach().numpy()
    else:
        e = np.asarray(expected)
    assert a.shape == e.shape, (a.shape, e.shape)
    scale = max(1.0, float(np.abs(e).max())) if e.size else 1.0
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * scale)


def copy_weights(t_layer: torch.nn.Module, j_layer: jaxmod.nn.Module) -> None:
    """Load the torch layer's state dict into the jaxmod layer."""
    j_layer.load_state_dict({k: v.detach().numpy() for k, v in t_layer.state_dict().items()})


def check_structure(t_layer: torch.nn.Module, j_layer: jaxmod.nn.Module) -> None:
    """``repr`` and ``state_dict`` keys and shapes equal to torch's."""
    assert repr(j_layer) == repr(t_layer)
    t_sd, j_sd = t_layer.state_dict(), j_layer.state_dict()
    assert list(j_sd) == list(t_sd)
    for k in t_sd:
        assert tuple(j_sd[k].shape) == tuple(t_sd[k].shape), k


def _to_torch(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        return torch.tensor(x, requires_grad=True)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x.astype(np.int64))
    return x


def parity(
    t_layer: torch.nn.Module,
    j_layer: jaxmod.nn.Module,
    *inputs: Any,
    jit: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    kwargs: dict | None = None,
    check_repr: bool = True,
) -> None:
    """Compare forward outputs, input grads and parameter grads of the two layers.

    Float numpy inputs are differentiated; integer ones are passed as indices. A tuple
    output (``return_indices``) has its first element differentiated and the rest
    compared exactly.
    """
    kwargs = kwargs or {}
    if check_repr:
        check_structure(t_layer, j_layer)
    copy_weights(t_layer, j_layer)
    t_in = [_to_torch(x) for x in inputs]
    t_out = t_layer(*t_in, **kwargs)
    t_rest: tuple = ()
    if isinstance(t_out, tuple):
        t_out, *t_rest = t_out
    cot = rand(*t_out.shape, seed=1)
    if t_out.requires_grad:
        (t_out * torch.from_numpy(cot)).sum().backward()

    def call(m: Any, *xs: Any) -> Any:
        out = m(*xs, **kwargs)
        return out

    def loss(m: Any, *xs: Any) -> Any:
        out = call(m, *xs)
        out = out[0] if isinstance(out, tuple) else out
        return (out * cot).sum()

    forward: Callable = jaxmod.jit(call) if jit else call
    j_out = forward(j_layer, *inputs)
    j_rest: tuple = ()
    if isinstance(j_out, tuple):
        j_out, *j_rest = j_out
    close(j_out, t_out, atol, rtol)
    assert len(j_rest) == len(t_rest)
    for a, e in zip(j_rest, t_rest):
        np.testing.assert_array_equal(np.asarray(a), e.numpy())

    # parameter and input gradients, in one differentiation
    trainable = [(n, p) for n, p in t_layer.named_parameters() if p.requires_grad]
    float_pos = [
        i for i, x in enumerate(inputs) if isinstance(x, np.ndarray) and x.dtype.kind == "f"
    ]
    if not trainable and not float_pos:
        return
    grad_fn = jaxmod.grad(loss, argnums=(0, *(i + 1 for i in float_pos)))
    jx = [jnp.asarray(x) if isinstance(x, np.ndarray) else x for x in inputs]
    grads, *input_grads = (jaxmod.jit(grad_fn) if jit else grad_fn)(j_layer, *jx)
    assert sorted(grads) == sorted(n for n, _ in trainable)
    for n, p in trainable:
        close(grads[n], p.grad, atol, rtol)
    for gi, i in zip(input_grads, float_pos):
        close(gi, t_in[i].grad, atol, rtol)


def uniform_bound_stats(values: Any, bound: float) -> None:
    """``values`` look like ``U(-bound, bound)``: inside the bounds, filling them, right moments."""
    v = np.asarray(values).ravel()
    assert np.abs(v).max() <= bound * (1 + 1e-6)
    assert np.abs(v).max() >= 0.9 * bound
    assert abs(v.mean()) < 4 * bound / np.sqrt(3 * v.size)
    assert abs(v.std() - bound / np.sqrt(3)) < 0.05 * bound / np.sqrt(3)
