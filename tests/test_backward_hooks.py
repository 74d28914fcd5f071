"""Full backward (pre-)hooks: same calls, arguments and modified gradients as torch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn

X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)


def _pair(torch):
    m = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    t = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    t.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in m.state_dict().items()})
    return m, t


def _hooks(log):
    def pre(mod, grad_output):
        log.append(("pre", type(mod).__name__, [tuple(g.shape) for g in grad_output]))
        return tuple(g * 2 for g in grad_output)

    def full(mod, grad_input, grad_output):
        log.append(("full", type(mod).__name__,
                    [None if g is None else tuple(g.shape) for g in grad_input],
                    [tuple(g.shape) for g in grad_output]))  # fmt: skip
        return tuple(None if g is None else g * 3 for g in grad_input)

    return pre, full


@pytest.mark.parametrize("how", ["jax.grad", "jaxmod.grad", "jaxmod.jit"])
def test_backward_hooks_match_torch_calls_and_gradients(torch, how):
    m, t = _pair(torch)
    jlog, tlog = [], []
    for mod, log in ((m[2], jlog), (t[2], tlog)):
        pre, full = _hooks(log)
        mod.register_full_backward_pre_hook(pre)
        mod.register_full_backward_hook(full)
    tx = torch.tensor(X, requires_grad=True)
    t(tx).sum().backward()
    x = jnp.asarray(X)
    if how == "jax.grad":
        gx, gm = jax.grad(lambda x, m: m(x).sum(), argnums=(0, 1))(x, m)
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
        w0 = gm[0].weight.value
    else:
        fn = jaxmod.grad(lambda m: m(x).sum())
        g = jaxmod.jit(fn)(m) if how == "jaxmod.jit" else fn(m)
        w0 = g["0.weight"]
    np.testing.assert_allclose(w0, t[0].weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert jlog == tlog


def test_backward_hook_sees_none_grad_input_when_input_needs_no_grad(torch):
    m, t = _pair(torch)
    jlog, tlog = [], []
    m[0].register_full_backward_hook(lambda mod, gi, go: jlog.append([g is None for g in gi]))
    t[0].register_full_backward_hook(lambda mod, gi, go: tlog.append([g is None for g in gi]))
    t(torch.tensor(X)).sum().backward()
    jaxmod.grad(lambda m: m(jnp.asarray(X)).sum())(m)
    assert jlog == tlog == [[True]]


def test_global_backward_hooks_run_before_module_hooks(torch):
    m, t = _pair(torch)
    order = []
    m[2].register_full_backward_pre_hook(lambda mod, go: order.append("module"))
    h = nn.modules.module.register_module_full_backward_pre_hook(
        lambda mod, go: order.append(f"global:{type(mod).__name__}")
    )
    try:
        jax.grad(lambda x: m(x).sum())(jnp.asarray(X))
    finally:
        h.remove()
    assert order[:2] == ["global:Sequential", "global:Linear"]
    assert order.index("module") == order.index("global:Linear") + 1


def test_backward_hook_with_wrong_length_raises():
    lin = nn.Linear(3, 2)
    lin.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input"):
        jax.grad(lambda x: lin(x).sum())(jnp.asarray(X))


def test_removed_backward_hook_no_longer_runs():
    lin = nn.Linear(3, 2)
    calls = []
    h = lin.register_full_backward_pre_hook(lambda mod, go: calls.append(1))
    jax.grad(lambda x: lin(x).sum())(jnp.asarray(X))
    h.remove()
    jax.grad(lambda x: lin(x).sum())(jnp.asarray(X))
    assert calls == [1]
