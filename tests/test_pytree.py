"""Modules are pytrees: unique state leaves, hashable static part, jax transforms work."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.b.weight = self.a.weight  # tied weight

    def forward(self, x):
        return self.b(jax.nn.relu(self.a(x)))


class WithConstant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rand_weight = jaxmod.rand(4, 4)
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(x) @ self.rand_weight


def test_tied_weight_is_one_leaf():
    m = Tied()
    leaves = jax.tree_util.tree_leaves(m)
    assert len(leaves) == 3  # shared weight once, two biases
    assert leaves[0] is m.a.weight.value


def test_tree_map_keeps_tied_weights_tied():
    m = Tied()
    m2 = jax.tree_util.tree_map(lambda x: x * 2, m)
    assert m2.a.weight is m2.b.weight
    assert m2.a.weight is not m.a.weight
    np.testing.assert_allclose(m2.b.weight.value, m.a.weight.value * 2)


def test_flatten_copies_no_arrays_and_names_leaves():
    m = Tied()
    with_path, _ = jax.tree_util.tree_flatten_with_path(m)
    names = [jax.tree_util.keystr(p) for p, _ in with_path]
    assert names == [".a.weight", ".a.bias", ".b.bias"]
    assert all(
        leaf is box.value for (_, leaf), box in zip(with_path, [m.a.weight, m.a.bias, m.b.bias])
    )


def test_jax_jit_of_module_call_matches_eager():
    m = Tied()
    x = jnp.arange(8.0).reshape(2, 4)
    np.testing.assert_allclose(jax.jit(lambda m, x: m(x))(m, x), m(x), rtol=1e-6)


def test_jax_grad_of_tied_weight_matches_torch(torch):
    m = Tied()
    t = torch.nn.Module()
    t.a, t.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    t.b.weight = t.a.weight
    sd = {k: torch.tensor(np.asarray(v)) for k, v in m.state_dict().items()}
    t.load_state_dict(sd)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    g = jax.grad(lambda m: m(jnp.asarray(x)).sum())(m)
    tx = torch.tensor(x)
    t.b(torch.relu(t.a(tx))).sum().backward()
    np.testing.assert_allclose(g.a.weight.value, t.a.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert g.a.weight is g.b.weight


def test_plain_array_attribute_is_a_leaf_but_not_state():
    m = WithConstant()
    assert "rand_weight" not in m.state_dict()
    assert all(p is not m.rand_weight for p in m.parameters())
    leaves = jax.tree_util.tree_leaves(m)
    # jaxmod.rand returns a Tensor, a pytree whose one leaf is its array
    assert any(leaf is jax.tree_util.tree_leaves(m.rand_weight)[0] for leaf in leaves)
    x = jnp.ones((2, 4))
    np.testing.assert_allclose(jax.jit(lambda m, x: m(x))(m, x), m(x), rtol=1e-6)


def test_static_part_is_hashable_and_shared_across_instances():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    ta, tb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    assert ta == tb and hash(ta) == hash(tb)
    assert jax.tree_util.tree_structure(nn.Linear(3, 4)) != ta  # config attributes are static
    b.eval()
    assert jax.tree_util.tree_structure(b) != ta  # training is static
    c = nn.Linear(3, 2, bias=False)
    assert jax.tree_util.tree_structure(c) != ta


def test_jax_jit_compiles_once_for_two_instances():
    traces = []

    def f(m, x):
        traces.append(1)
        return m(x)

    jf = jax.jit(f)
    x = jnp.ones((1, 3))
    jf(nn.Linear(3, 2), x)
    jf(nn.Linear(3, 2), x)
    assert len(traces) == 1


def test_flatten_cache_invalidated_by_structure_change():
    m = nn.Sequential(nn.Linear(2, 2))
    assert len(jax.tree_util.tree_leaves(m)) == 2
    m.append(nn.Linear(2, 2, bias=False))
    assert len(jax.tree_util.tree_leaves(m)) == 3
    m[0].weight.requires_grad_(False)
    t1 = jax.tree_util.tree_structure(m)
    m[0].weight.requires_grad = True
    assert jax.tree_util.tree_structure(m) != t1


def test_vmap_over_stacked_ensemble_matches_each_member():
    models = [nn.Linear(3, 2) for _ in range(4)]
    ens = jaxmod.stack_modules(models)
    assert ens.weight.shape == (4, 2, 3)
    x = jnp.ones((5, 3))
    out = jax.vmap(lambda m: m(x))(ens)
    for i, m in enumerate(models):
        np.testing.assert_allclose(out[i], m(x), rtol=1e-6)


def test_eval_shape_spends_no_flops():
    m = nn.Sequential(nn.Linear(3, 7), nn.ReLU(), nn.Linear(7, 2))
    s = jax.eval_shape(m, jax.ShapeDtypeStruct((5, 3), jnp.float32))
    assert s.shape == (5, 2) and s.dtype == jnp.float32


def test_unflatten_rebuilds_shared_submodules_once():
    shared = nn.Linear(2, 2)
    m = nn.Sequential(shared, nn.ReLU(), shared)
    leaves, tdef = jax.tree_util.tree_flatten(m)
    assert len(leaves) == 2
    m2 = jax.tree_util.tree_unflatten(tdef, leaves)
    assert m2[0] is m2[2] and m2[0] is not shared
    assert repr(m2) == repr(m)


def test_flatten_and_unflatten_scale_linearly_on_1000_modules():
    big = nn.Sequential(*[nn.Linear(2, 2) for _ in range(1000)])
    leaves, tdef = jax.tree_util.tree_flatten(big)
    assert len(leaves) == 2000
    assert all(a is b.value for a, b in zip(leaves[:4], [big[0].weight, big[0].bias,
                                                          big[1].weight, big[1].bias]))  # fmt: skip
    again = jax.tree_util.tree_unflatten(tdef, leaves)
    assert len(again) == 1000 and again[999].bias.value is leaves[-1]


def test_box_is_a_single_leaf_pytree():
    p = nn.Parameter(jnp.ones(3), requires_grad=False)
    leaves, tdef = jax.tree_util.tree_flatten(p)
    assert len(leaves) == 1
    q = jax.tree_util.tree_unflatten(tdef, [jnp.zeros(3)])
    assert isinstance(q, nn.Parameter) and q.requires_grad is False
    assert float(jnp.dot(p, jnp.ones(3))) == 3.0
    assert float(jax.nn.relu(p).sum()) == 3.0


@pytest.mark.parametrize("op", ["add", "mul", "matmul", "neg", "getitem", "T"])
def test_box_behaves_as_array_in_math(op):
    a = np.arange(4.0, dtype=np.float32).reshape(2, 2)
    p = nn.Parameter(jnp.asarray(a))
    expected = {"add": a + 1, "mul": 2 * a, "matmul": a @ a, "neg": -a, "getitem": a[1],
                "T": a.T}[op]  # fmt: skip
    got = {"add": lambda: p + 1, "mul": lambda: 2 * p, "matmul": lambda: p @ p,
           "neg": lambda: -p, "getitem": lambda: p[1], "T": lambda: p.T}[op]()  # fmt: skip
    np.testing.assert_allclose(got, expected)


class _Mixed(nn.Module):
    """Every kind of slot an unflatten must rebuild: None parameter and child, buffers,
    an array attribute, odd ParameterDict keys, a shared child and a tied weight."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3, bias=False)
        self.norm = nn.BatchNorm1d(3)
        self.pd = nn.ParameterDict({"a b": nn.Parameter(jnp.ones(2)), "it's": nn.Parameter(0.5)})
        self.nothing = None
        self.register_module("empty", None)
        self.shared = self.lin
        self.other = nn.Linear(3, 3)
        self.other.weight = self.lin.weight
        self.const = jnp.arange(3.0)


@pytest.mark.parametrize("times", [1, 6])  # 6: past the point where unflatten is compiled
def test_repeated_tree_map_rebuilds_every_slot(times):
    m = _Mixed()
    m.lin.weight.requires_grad_(False)
    for _ in range(times):
        m = jax.tree_util.tree_map(lambda x: x + 1, m)
    assert m.lin.bias is None and m.empty is None and m.nothing is None
    assert m.shared is m.lin and m.other.weight is m.lin.weight
    assert not m.lin.weight.requires_grad and m.other.bias.requires_grad
    assert isinstance(m.norm.running_mean, nn.Buffer)
    assert list(m.pd.keys()) == ["a b", "it's"]
    np.testing.assert_allclose(m.pd["it's"].value, 0.5 + times)
    np.testing.assert_allclose(m.const, np.arange(3.0) + times)
    np.testing.assert_allclose(m.norm.running_var.value, np.ones(3) + times)
    assert int(m.norm.num_batches_tracked.value) == times
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in _Mixed().named_parameters()]
    assert repr(m) == repr(_Mixed())
    if times > 3:  # the generated straight-line unflatten was used
        from jaxmod._core import graph as _graph
        from jaxmod.nn import _pytree

        assert _pytree._plans[_graph.graph_state(m)[1]].build is not None


class _TaggedBuffer(nn.Buffer):
    """A box class with an extra static slot and its own __setattr__ (the generated
    unflatten must go through its setters)."""

    __slots__ = ("tag",)

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)


def test_repeated_tree_map_keeps_custom_box_classes_and_their_static_slots():
    m = nn.Linear(2, 2)
    buf = _TaggedBuffer(jnp.zeros(2))
    buf.tag = "kept"
    m.register_buffer("tagged", buf)
    for _ in range(6):
        m = jax.tree_util.tree_map(lambda x: x + 1, m)
    assert type(m.tagged) is _TaggedBuffer and m.tagged.tag == "kept"
    np.testing.assert_allclose(m.tagged.value, np.full(2, 6.0))
