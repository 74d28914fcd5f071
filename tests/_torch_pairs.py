"""Shared helpers for the torch-parity tests of ``jaxmod.nn``'s Module system.

Each test builds the same architecture twice, once with ``torch.nn`` and once with
``jaxmod.nn``, from one builder function that takes a :class:`Lib` (the ``nn``
namespace plus the few tensor factories the tests need), then compares behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

import jaxmod
import jaxmod.nn as jnn

Builder = Callable[[SimpleNamespace], Any]


def _torch_lib() -> SimpleNamespace:
    return SimpleNamespace(
        name="torch",
        nn=torch.nn,
        randn=lambda *s: torch.randn(*s),
        zeros=lambda *s: torch.zeros(*s),
        ones=lambda *s: torch.ones(*s),
        arange=lambda n: torch.arange(n, dtype=torch.int32),
        global_fwd=torch.nn.modules.module.register_module_forward_hook,
        global_pre=torch.nn.modules.module.register_module_forward_pre_hook,
    )


def _jax_lib() -> SimpleNamespace:
    import jax.numpy as jnp

    return SimpleNamespace(
        name="jaxmod",
        nn=jnn,
        randn=lambda *s: jaxmod.randn(*s),
        zeros=lambda *s: jaxmod.zeros(*s),
        ones=lambda *s: jaxmod.ones(*s),
        arange=lambda n: jnp.arange(n),
        global_fwd=jnn.modules.module.register_module_forward_hook,
        global_pre=jnn.modules.module.register_module_forward_pre_hook,
    )


TORCH = _torch_lib()
JAX = _jax_lib()
LIBS = (TORCH, JAX)


def to_numpy(v: Any) -> np.ndarray:
    """A torch tensor, jax array or jaxmod box as a numpy array."""
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    if isinstance(v, jnn.Variable):
        return np.asarray(v._value)
    return np.asarray(v)


def torch_to_jax_state(sd: dict) -> dict:
    """A torch state_dict as numpy arrays, ready for ``jaxmod`` ``load_state_dict``."""
    return {k: v.detach().numpy() for k, v in sd.items()}


def pair(builder: Builder, *, copy_weights: bool = True) -> tuple[Any, Any]:
    """Build ``builder``'s architecture in torch and jaxmod; copy torch's weights over."""
    tm = builder(TORCH)
    jm = builder(JAX)
    if copy_weights and isinstance(tm, torch.nn.Module):
        jm.load_state_dict(torch_to_jax_state(tm.state_dict()))
    return tm, jm


def both(builder: Builder) -> tuple[Any, Any]:
    """Call ``builder`` once per library (no weight copy); returns ``(torch, jaxmod)``."""
    return builder(TORCH), builder(JAX)


def norm_msg(msg: str) -> str:
    """Normalise the torch-only spellings in an error message.

    ``torch.Size([3, 4])`` becomes ``(3, 4)`` (jaxmod prints shapes as tuples), torch
    tensor type names (``torch.FloatTensor``) become ``jax.Array``, and library layer
    classes lose their module path (``torch.nn.modules.linear.Linear`` -> ``nn.Linear``).
    """

    def size(m: re.Match) -> str:
        dims = [d.strip() for d in m.group(1).split(",") if d.strip()]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    msg = re.sub(r"torch\.Size\(\[([^\]]*)\]\)", size, msg)
    msg = re.sub(r"torch\.(?:cuda\.)?[A-Za-z]*Tensor\b", "jax.Array", msg)
    # a library class named by its module path: torch.nn.modules.linear.Linear and
    # jaxmod.nn.linear.Linear both become nn.Linear
    msg = re.sub(r"\b(?:torch\.nn\.modules|jaxmod\.nn)\.[a-z_]+\.([A-Z]\w*)", r"nn.\1", msg)
    return msg


def raised(fn: Callable[[], Any]) -> BaseException:
    """Run ``fn`` and return the exception it raises (fails if it raises nothing)."""
    try:
        fn()
    except BaseException as e:  # noqa: BLE001
        return e
    raise AssertionError(f"{fn} did not raise")


def error_of(fn: Callable[[], Any]) -> tuple[type, str]:
    """``(type, normalised message)`` of the exception ``fn`` raises."""
    e = raised(fn)
    text = e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else str(e)
    return type(e), norm_msg(text)


def assert_same_error(torch_fn: Callable[[], Any], jax_fn: Callable[[], Any]) -> tuple:
    """Both raise the same exception type with the same (normalised) message."""
    t = error_of(torch_fn)
    j = error_of(jax_fn)
    assert t == j, f"\ntorch:  {t}\njaxmod: {j}"
    return t


def state_keys(m: Any) -> list[str]:
    return list(m.state_dict().keys())


def names(it: Any) -> list[str]:
    return [n for n, _ in it]


def assert_state_close(tm: Any, jm: Any, **kw: Any) -> None:
    """Same keys, in the same order, with the same values."""
    ts, js = tm.state_dict(), jm.state_dict()
    assert list(ts) == list(js)
    for k in ts:
        np.testing.assert_allclose(to_numpy(js[k]), to_numpy(ts[k]), rtol=1e-6, **kw)
