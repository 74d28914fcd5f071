"""Shared pieces of the tensor-code port tests (``test_ports_tensor_code.py``,
``test_ports_tensor_code_scatter.py``): each program loaded for torch and for jaxmod, a
model pair built from one seed, the ``loss.backward()`` check and an eager SGD step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from _port_checks import assert_close, load_torch_weights, zero_random_layers
from _torch_port import program

import jaxmod

TOL = 2e-4
LIBS = (torch, jaxmod)


def mods_of(name: str) -> dict[Any, Any]:
    return {torch: program(name, "torch"), jaxmod: program(name, "jaxmod")}


def pair(name: str, build: Callable[[Any, Any], Any]) -> tuple[dict, Any, Any]:
    """The program for both libraries and a model built by ``build(module, lib)`` from the
    same seed."""
    mods = mods_of(name)
    torch.manual_seed(0)
    tm = build(mods[torch], torch)
    jaxmod.manual_seed(0)
    jm = build(mods[jaxmod], jaxmod)
    return mods, tm, jm


def adam(lib: Any, model: Any) -> Any:
    return lib.optim.Adam(model.parameters(), lr=0.01)


def backward_error(loss: Any) -> None:
    """``loss.backward()`` on a loss the program computed stops with the error that names
    the fix."""
    assert isinstance(loss, jaxmod.Tensor)
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    message = str(info.value)
    assert "backward" in message and "value_and_grad" in message, message


def eager_step(tm: Any, jm: Any, inputs: list[np.ndarray], loss_of: Callable[..., Any]) -> None:
    """One SGD step run eagerly (``jaxmod.value_and_grad`` without ``jaxmod.jit``, for a
    forward whose shapes depend on values): loss, gradients and parameters after the step
    equal torch's."""
    load_torch_weights(tm, jm)
    for m in (tm, jm):
        m.train()
        zero_random_layers(m)
    t_opt = torch.optim.SGD(tm.parameters(), lr=1.0)
    t_loss, _ = loss_of(torch, tm, *[torch.from_numpy(x) for x in inputs])
    t_loss.backward()
    t_grads = {n: p.grad.clone() for n, p in tm.named_parameters() if p.grad is not None}
    t_opt.step()
    xs = [jaxmod.from_numpy(x) for x in inputs]
    (j_loss, _), j_grads = jaxmod.value_and_grad(lambda m: loss_of(jaxmod, m, *xs), has_aux=True)(
        jm
    )
    jaxmod.optim.SGD(jm.parameters(), lr=1.0).step(j_grads)
    assert_close(j_loss, t_loss, TOL, "loss")
    assert sorted(j_grads) == sorted(t_grads)
    scale = max(float(g.abs().max()) for g in t_grads.values()) * 1e-2
    for n, g in t_grads.items():
        assert_close(j_grads[n], g, TOL, f"grad of {n}", scale)
    j_params = dict(jm.named_parameters())
    for n, p in tm.named_parameters():
        assert_close(j_params[n], p, TOL, f"{n} after the step")
