"""jaxmod.vmap (ensembles, per-example gradients), checkpoint and scan_layers."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxmod
from jaxmod import nn

X = jnp.asarray(np.random.default_rng(1).standard_normal((6, 3)), jnp.float32)
Y = jnp.asarray(np.random.default_rng(2).standard_normal((6, 2)), jnp.float32)


def loss(m, x, y):
    return jnp.mean((m(x) - y) ** 2)


def test_vmap_ensemble_forward_matches_each_member():
    members = [nn.Linear(3, 2) for _ in range(5)]
    ens = jaxmod.stack_modules(members)
    out = jaxmod.vmap(lambda m, x: m(x), in_axes=(0, None))(ens, X)
    assert out.shape == (5, 6, 2)
    for i, m in enumerate(members):
        np.testing.assert_allclose(out[i], m(X), rtol=1e-6)


def test_vmap_of_grad_gives_per_example_gradients():
    model = nn.Linear(3, 2)
    per_ex = jaxmod.vmap(jaxmod.grad(loss), in_axes=(None, 0, 0))(model, X[:, None], Y[:, None])
    assert per_ex["weight"].shape == (6, 2, 3)
    for i in range(6):
        g = jaxmod.grad(loss)(model, X[i : i + 1], Y[i : i + 1])
        np.testing.assert_allclose(per_ex["weight"][i], g["weight"], rtol=1e-5, atol=1e-6)


def test_vmap_writes_back_mutated_buffers_with_their_axis():
    class Count(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("total", jnp.zeros(()))

        def forward(self, x):
            self.total = self.total + x.sum()
            return x

    ens = jaxmod.stack_modules([Count() for _ in range(3)])
    jaxmod.vmap(lambda m, x: m(x))(ens, jnp.arange(3.0))
    np.testing.assert_allclose(ens.total.value, [0.0, 1.0, 2.0])


def test_vmap_lanes_draw_different_random_numbers():
    out = jaxmod.vmap(lambda x: x + jaxmod.rand(()), in_axes=0)(jnp.zeros(4))
    assert len(set(np.asarray(out).tolist())) == 4


def test_checkpoint_gives_the_same_value_and_gradients():
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
    plain = jaxmod.grad(loss)(model, X, Y)
    remat = jaxmod.grad(lambda m, x, y: jnp.mean((jaxmod.checkpoint(m)(x) - y) ** 2))(model, X, Y)
    for k in plain:
        np.testing.assert_allclose(remat[k], plain[k], rtol=1e-5, atol=1e-6)
    jaxpr = jax.make_jaxpr(lambda x: jaxmod.checkpoint(model)(x))(X)
    assert "checkpoint" in str(jaxpr) or "remat" in str(jaxpr)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        return jnp.tanh(self.lin(x))


def test_scan_layers_equals_python_loop_and_grads():
    blocks = nn.ModuleList([Block() for _ in range(6)])
    x = jnp.ones((2, 8))
    loop = x
    for b in blocks:
        loop = b(loop)
    np.testing.assert_allclose(jaxmod.scan_layers(blocks, x), loop, rtol=1e-5, atol=1e-6)
    g_scan = jaxmod.grad(lambda m: jaxmod.scan_layers(m, x).sum())(blocks)
    g_loop = jaxmod.grad(lambda m: functools.reduce(lambda h, b: b(h), m, x).sum())(blocks)
    for k in g_loop:
        np.testing.assert_allclose(g_scan[k], g_loop[k], rtol=1e-4, atol=1e-6)


def test_scan_layers_traces_one_layer_whatever_the_depth():
    def body_size(n):
        blocks = nn.ModuleList([Block() for _ in range(n)])
        jaxpr = jax.make_jaxpr(lambda x: jaxmod.scan_layers(blocks, x))(jnp.ones((2, 8)))
        (scan,) = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
        assert scan.params["length"] == n
        return len(scan.params["jaxpr"].jaxpr.eqns)

    assert body_size(3) == body_size(30)


def _bn_stack(n):
    jaxmod.manual_seed(0)
    return nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8)) for _ in range(n)])


def test_scan_layers_writes_back_buffers_and_only_them_as_the_loop_does():
    x = jnp.arange(32.0).reshape(4, 8) / 10
    scanned, looped = _bn_stack(3), _bn_stack(3)
    weights = [b[0].weight for b in scanned]
    np.testing.assert_allclose(
        jaxmod.scan_layers(scanned, x),
        functools.reduce(lambda h, b: b(h), looped, x),
        rtol=1e-5,
        atol=1e-6,
    )
    for s, lp in zip(scanned, looped):
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(getattr(s[1], name), getattr(lp[1], name), rtol=1e-5)
        assert int(s[1].num_batches_tracked) == 1
    # parameters the forward does not write keep their arrays (no copy through the scan)
    assert all(b[0].weight is w and w.value is not None for b, w in zip(scanned, weights))

    @jaxmod.jit
    def run(m, x):
        return jaxmod.scan_layers(m, x).sum()

    before = np.asarray(scanned[0][0].weight)
    run(scanned, x)
    assert int(scanned[2][1].num_batches_tracked) == 2
    np.testing.assert_array_equal(scanned[0][0].weight, before)
