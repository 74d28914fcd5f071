"""The programs in shared/torch_reference/, ported to examples/, match torch.

For each model: the same structure (repr, state_dict keys and shapes), and with torch's
weights loaded, the same outputs eagerly and under jaxmod.jit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT.parent / "shared" / "torch_reference"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ref(torch):
    if not REF.exists():
        pytest.skip(f"torch reference programs not found at {REF}")
    return {n: _load(REF / f"{n}.py", f"torch_ref_{n}") for n in
            ("mlp", "fancy", "containers", "cnn", "module_api")}  # fmt: skip


@pytest.fixture(scope="module")
def port():
    return {n: _load(ROOT / "examples" / f"{n}.py", f"jaxmod_port_{n}") for n in
            ("mlp", "fancy", "containers", "cnn", "module_api")}  # fmt: skip


def _copy(torch, tm, jm):
    """Load torch's weights (and plain constant tensors) into the jaxmod port."""
    jm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    for (_, t_sub), (_, j_sub) in zip(tm.named_modules(), jm.named_modules()):
        for k, v in vars(t_sub).items():
            if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter):
                setattr(j_sub, k, jaxmod.tensor(v.numpy()))


def _check(torch, tm, jm, *inputs, jit=True, rtol=1e-5, atol=1e-5):
    assert repr(jm) == repr(tm)
    assert [(k, tuple(v.shape)) for k, v in jm.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in tm.state_dict().items()
    ]
    _copy(torch, tm, jm)
    with torch.no_grad():
        expected = tm(*[torch.tensor(x) for x in inputs]).numpy()
    got = jm(*[jaxmod.tensor(x) for x in inputs])  # Tensors, as torch is fed
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
    if jit:
        jitted = jaxmod.jit(lambda m, *xs: m(*xs))(jm, *[jaxmod.tensor(x) for x in inputs])
        np.testing.assert_allclose(jitted, expected, rtol=rtol, atol=atol)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_mlp_and_functional_mlp_match_torch(torch, ref, port):
    _check(torch, ref["mlp"].MLP(), port["mlp"].MLP(), _rand(2, 784))
    _check(torch, ref["mlp"].FunctionalMLP(20, 256, 10), port["mlp"].FunctionalMLP(20, 256, 10),
           _rand(2, 20))  # fmt: skip


def test_sequential_mlp_matches_torch(torch, port):
    tm = torch.nn.Sequential(torch.nn.Linear(20, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    jm = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    _check(torch, tm, jm, _rand(2, 20))


def test_fixed_hidden_and_fancy_mlp_match_torch_eagerly(torch, ref, port):
    x = _rand(2, 20)
    _check(torch, ref["fancy"].FixedHiddenMLP(), port["fancy"].FixedHiddenMLP(), x, jit=False)
    _check(torch, ref["fancy"].FancyMLP(), port["fancy"].FancyMLP(), x, jit=False)


def test_fancy_mlp_data_dependent_loop_raises_clearly_under_jit(port):
    with pytest.raises(jaxmod.TraceError, match="FancyMLP"):
        jaxmod.jit(lambda m, x: m(x))(port["fancy"].FancyMLP(), jaxmod.ones(2, 20))


def test_fancy_mlp_rewritten_with_lax_matches_torch_under_jit(torch, ref, port):
    tm, jm = ref["fancy"].FancyMLP(), port["fancy"].FancyMLPJit()
    _copy(torch, tm, jm)
    x = _rand(2, 20)
    with torch.no_grad():
        expected = tm(torch.tensor(x)).item()
    got = jaxmod.jit(lambda m, x: m(x))(jm, jaxmod.tensor(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_nest_mlp_and_chimera_match_torch(torch, ref, port):
    _check(torch, ref["fancy"].NestMLP(), port["fancy"].NestMLP(), _rand(2, 20))
    t, j = ref["fancy"], port["fancy"]
    tm = torch.nn.Sequential(t.NestMLP(), torch.nn.Linear(16, 20), t.FixedHiddenMLP())
    jm = nn.Sequential(j.NestMLP(), nn.Linear(16, 20), j.FixedHiddenMLP())
    _check(torch, tm, jm, _rand(2, 20), jit=False)
    tm = torch.nn.Sequential(t.NestMLP40(), torch.nn.Linear(30, 20), t.FancyMLP())
    jm = nn.Sequential(j.NestMLP40(), nn.Linear(30, 20), j.FancyMLP())
    _check(torch, tm, jm, _rand(2, 40), jit=False)


def test_repeated_linears_and_module_lists_match_torch(torch, ref, port):
    t, j = ref["containers"], port["containers"]
    _check(torch, t.RepeatedLinears(), j.RepeatedLinears(), _rand(2, 10))
    assert [p.shape for p in j.WithModuleList().parameters()] == [
        tuple(p.shape) for p in t.WithModuleList().parameters()
    ]
    assert list(j.WithPlainList().parameters()) == list(t.WithPlainList().parameters()) == []
    tl = torch.nn.ModuleList([torch.nn.Linear(784, 256), torch.nn.ReLU()])
    jl = nn.ModuleList([nn.Linear(784, 256), nn.ReLU()])
    tl.append(torch.nn.Linear(256, 10))
    jl.append(nn.Linear(256, 10))
    assert repr(jl) == repr(tl) and repr(jl[-1]) == repr(tl[-1])
    with pytest.raises(NotImplementedError) as je:
        jl(jnp.zeros((1, 784)))
    with pytest.raises(NotImplementedError) as te:
        tl(torch.zeros(1, 784))
    assert str(je.value) == str(te.value)
    td = torch.nn.ModuleDict({"linear": torch.nn.Linear(784, 256), "act": torch.nn.ReLU()})
    jd = nn.ModuleDict({"linear": nn.Linear(784, 256), "act": nn.ReLU()})
    td["output"], jd["output"] = torch.nn.Linear(256, 10), nn.Linear(256, 10)
    assert repr(jd) == repr(td) and repr(jd.output) == repr(td.output)


def test_two_linears_init_weights_through_apply(torch, ref, port):
    tm, jm = ref["module_api"].TwoLinears(), port["module_api"].TwoLinears()
    tm.apply(ref["module_api"].init_weights)
    jm.apply(port["module_api"].init_weights)
    np.testing.assert_array_equal(jm.l1.weight.value, tm.l1.weight.detach().numpy())
    assert list(jm.state_dict()) == list(tm.state_dict())
    _check(torch, tm, jm, _rand(3, 5))
    with pytest.raises(RuntimeError):
        tm.forward2(torch.rand(3, 5))
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=2.*\(3, 5\)"):
        jm.forward2(jnp.ones((3, 5)))


needs_conv = pytest.mark.skipif(not hasattr(nn, "Conv2d"), reason="conv layers not built yet")


@needs_conv
def test_choices_module_dict_matches_torch(torch, ref, port):
    tm, jm = ref["containers"].Choices(), port["containers"].Choices()
    assert repr(jm) == repr(tm)
    _copy(torch, tm, jm)
    x = np.random.default_rng(0).standard_normal((2, 10, 12, 12)).astype(np.float32)
    for choice, act in [("conv", "lrelu"), ("pool", "prelu")]:
        with torch.no_grad():
            expected = tm(torch.tensor(x), choice, act).numpy()
        f = jaxmod.jit(lambda m, x, c, a: m(x, c, a), static_argnums=(2, 3))
        np.testing.assert_allclose(f(jm, jnp.asarray(x), choice, act), expected, rtol=1e-5,
                                   atol=1e-5)  # fmt: skip


@needs_conv
def test_sequential_conv_models_match_torch(torch, ref, port):
    for tm, jm in zip(
        ref["containers"].sequential_models(), port["containers"].sequential_models()
    ):
        _check(torch, tm, jm, _rand(1, 1, 28, 28))


@needs_conv
def test_cnns_match_torch(torch, ref, port):
    t, j = ref["cnn"], port["cnn"]
    _check(torch, t.SmallAlexNet(), j.SmallAlexNet(), _rand(2, 3, 32, 32), rtol=1e-4)
    _check(torch, t.LeNetSequential(10), j.LeNetSequential(10), _rand(4, 3, 32, 32), rtol=1e-4)
    _check(torch, t.LeNetSequentialOrderDict(10), j.LeNetSequentialOrderDict(10),
           _rand(4, 3, 32, 32), rtol=1e-4)  # fmt: skip
    tm, jm = t.AlexNet(num_classes=10).eval(), j.AlexNet(num_classes=10).eval()
    _check(torch, tm, jm, _rand(1, 3, 64, 64), rtol=1e-4, atol=1e-4)  # adaptive pool: any size


@needs_conv
def test_small_alexnet_initialize_weights_follows_torch_formulas(port):
    net = port["cnn"].SmallAlexNet()
    net.initialize_weights()
    w = np.asarray(net.conv5[0].weight.value)
    fan_out = 128 * 3 * 3
    assert abs(w.std() - np.sqrt(2.0 / fan_out)) < 0.1 * np.sqrt(2.0 / fan_out)
    assert np.all(np.asarray(net.dense[0].bias.value) == 0)


@needs_conv
def test_module_api_registration_matches_torch(torch, ref, port):
    tm, jm = ref["module_api"].Registered(), port["module_api"].Registered()
    assert list(jm._parameters) == list(tm._parameters)
    assert list(jm._modules) == list(tm._modules)
    assert ("t1" in jm.__dict__) == ("t1" in tm.__dict__) is True
    for m in (tm, jm):
        m.add_module("conv2", (torch.nn if m is tm else nn).Conv2d(2, 2, 3))
    assert [n for n, _ in jm.named_children()] == [n for n, _ in tm.named_children()]
    assert [type(m).__name__ for m in jm.modules()] == [type(m).__name__ for m in tm.modules()]
    assert [(n, tuple(p.shape)) for n, p in jm.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in tm.named_parameters()
    ]
    assert repr(jm.get_submodule("conv2")) == repr(tm.get_submodule("conv2"))
    for bad in ["a.b", ""]:
        with pytest.raises(KeyError) as je:
            jm.add_module(bad, nn.ReLU())
        with pytest.raises(KeyError) as te:
            tm.add_module(bad, torch.nn.ReLU())
        assert str(je.value) == str(te.value)
