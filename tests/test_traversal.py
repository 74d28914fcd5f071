"""Traversal (parameters, buffers, modules, get_/set_submodule), modes and casting vs torch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from _torch_pairs import JAX, TORCH, assert_same_error, both, names, pair, state_keys

import jaxmod
import jaxmod.nn as jnn


def _nested(lib):
    """Nested model with parameters, persistent/non-persistent buffers, a None child."""

    class Block(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(3, 3)
            self.act = lib.nn.ReLU()
            self.scale = lib.nn.Parameter(lib.ones(3))
            self.register_buffer("count", lib.zeros(1))
            self.register_buffer("tmp", lib.zeros(2), persistent=False)

        def forward(self, x):
            return self.act(self.fc(x)) * self.scale

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = lib.nn.Linear(4, 3)
            self.blocks = lib.nn.Sequential(Block(), Block())
            self.head = lib.nn.ModuleDict({"a": lib.nn.Linear(3, 2), "b": lib.nn.Identity()})
            self.nothing = None
            self.register_module("empty", None)
            self.register_parameter("nop", None)
            self.temperature = lib.nn.Parameter(lib.ones(1))

        def forward(self, x):
            return self.head["a"](self.blocks(self.inp(x)))

    return Net()


def _tied(lib):
    """Shared parameter and shared submodule (weight tying)."""

    class Tied(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = lib.nn.Linear(3, 3)
            self.dec = lib.nn.Linear(3, 3)
            self.dec.weight = self.enc.weight
            self.shared = lib.nn.ReLU()
            self.seq = lib.nn.Sequential(self.shared, lib.nn.Linear(3, 3), self.shared)
            self.alias = self.enc
            self.register_buffer("buf", lib.zeros(1))
            self.seq[1].register_buffer("buf", self.buf)

    return Tied()


@pytest.mark.parametrize("builder", [_nested, _tied])
@pytest.mark.parametrize("remove_duplicate", [True, False])
@pytest.mark.parametrize("recurse", [True, False])
@pytest.mark.parametrize("prefix", ["", "model"])
def test_named_parameters_and_buffers_match_torch(builder, remove_duplicate, recurse, prefix):
    tm, jm = both(builder)
    kw = dict(prefix=prefix, recurse=recurse, remove_duplicate=remove_duplicate)
    assert names(tm.named_parameters(**kw)) == names(jm.named_parameters(**kw))
    assert names(tm.named_buffers(**kw)) == names(jm.named_buffers(**kw))
    assert len(list(tm.parameters(recurse))) == len(list(jm.parameters(recurse)))
    assert len(list(tm.buffers(recurse))) == len(list(jm.buffers(recurse)))


@pytest.mark.parametrize("builder", [_nested, _tied])
@pytest.mark.parametrize("remove_duplicate", [True, False])
@pytest.mark.parametrize("prefix", ["", "root"])
def test_named_modules_match_torch(builder, remove_duplicate, prefix):
    tm, jm = both(builder)
    kw = dict(prefix=prefix, remove_duplicate=remove_duplicate)
    assert names(tm.named_modules(**kw)) == names(jm.named_modules(**kw))
    assert [type(m).__name__ for m in tm.modules()] == [type(m).__name__ for m in jm.modules()]


@pytest.mark.parametrize("builder", [_nested, _tied])
def test_named_children_match_torch(builder):
    tm, jm = both(builder)
    assert names(tm.named_children()) == names(jm.named_children())
    assert len(list(tm.children())) == len(list(jm.children()))


def test_named_modules_memo_skips_given_modules_like_torch():
    tm, jm = both(_nested)
    t_memo, j_memo = {tm.blocks[0]}, {jm.blocks[0]}
    assert names(tm.named_modules(memo=t_memo)) == names(jm.named_modules(memo=j_memo))
    assert len(t_memo) == len(j_memo)  # filled in the same way


def test_named_parameters_remove_duplicate_like_torch():
    # torch test_named_parameters_remove_duplicate
    def build(lib):
        m = lib.nn.Module()
        m.l1 = lib.nn.Linear(2, 2)
        m.l2 = m.l1
        return m

    tm, jm = both(build)
    assert names(jm.named_parameters()) == names(tm.named_parameters()) == ["l1.weight", "l1.bias"]
    everything = ["l1.weight", "l1.bias", "l2.weight", "l2.bias"]
    assert names(jm.named_parameters(remove_duplicate=False)) == everything
    assert names(tm.named_parameters(remove_duplicate=False)) == everything


def test_tied_parameter_is_same_box_and_counted_once():
    _, jm = pair(_tied)
    assert jm.dec.weight is jm.enc.weight
    assert len(list(jm.parameters())) == 5  # enc.w, enc.b, dec.b, seq.1.w, seq.1.b
    jm.enc.weight.fill_(2.0)
    assert float(jm.dec.weight.sum()) == 18.0


# ------------------------------------------------------------ get_/set_submodule
@pytest.mark.parametrize("target", ["", "blocks", "blocks.1", "blocks.1.fc", "head.a"])
def test_get_submodule_matches_torch(target):
    tm, jm = both(_nested)
    assert type(tm.get_submodule(target)).__name__ == type(jm.get_submodule(target)).__name__


@pytest.mark.parametrize("target", ["nope", "blocks.7", "blocks.0.fc.weight", "blocks.0.count"])
def test_get_submodule_errors_match_torch(target):
    tm, jm = both(_nested)
    assert_same_error(lambda: tm.get_submodule(target), lambda: jm.get_submodule(target))


@pytest.mark.parametrize(
    "method,target",
    [
        ("get_parameter", "blocks.0.fc.weight"),
        ("get_parameter", "temperature"),
        ("get_buffer", "blocks.1.count"),
        ("get_buffer", "blocks.1.tmp"),
    ],
)
def test_get_parameter_and_buffer_match_torch(method, target):
    tm, jm = pair(_nested)
    t, j = getattr(tm, method)(target), getattr(jm, method)(target)
    np.testing.assert_allclose(np.asarray(j), t.detach().numpy())


@pytest.mark.parametrize(
    "method,target",
    [
        ("get_parameter", "blocks.0.fc.nope"),
        ("get_parameter", "blocks.0.count"),
        ("get_parameter", "blocks.0.fc"),
        ("get_parameter", "nope.weight"),
        ("get_buffer", "blocks.0.scale"),
        ("get_buffer", "blocks.0.nope"),
        ("get_buffer", "blocks.0.fc"),
    ],
)
def test_get_parameter_and_buffer_errors_match_torch(method, target):
    tm, jm = both(_nested)
    assert_same_error(lambda: getattr(tm, method)(target), lambda: getattr(jm, method)(target))


def test_set_submodule_replaces_and_adds_like_torch():
    tm, jm = both(_nested)
    for m, lib in ((tm, TORCH), (jm, JAX)):
        m.set_submodule("blocks.0.fc", lib.nn.Linear(3, 3, bias=False))
        m.set_submodule("head.c", lib.nn.ReLU())
        m.set_submodule("extra", lib.nn.Identity())
    assert state_keys(tm) == state_keys(jm)
    assert names(tm.named_modules()) == names(jm.named_modules())


@pytest.mark.parametrize(
    "target,strict,value",
    [
        ("", False, "mod"),
        ("blocks.0.missing", True, "mod"),
        ("blocks.0.scale", False, "mod"),
        ("nope.x", False, "mod"),
        ("blocks.0.fc", False, "int"),
    ],
)
def test_set_submodule_errors_match_torch(target, strict, value):
    tm, jm = both(_nested)
    tv = torch.nn.ReLU() if value == "mod" else 3
    jv = jnn.ReLU() if value == "mod" else 3
    assert_same_error(
        lambda: tm.set_submodule(target, tv, strict=strict),
        lambda: jm.set_submodule(target, jv, strict=strict),
    )


# ------------------------------------------------------------------ apply/modes
def test_apply_visits_children_first_then_self_like_torch():
    tm, jm = both(_nested)
    t_order, j_order = [], []
    assert tm.apply(lambda m: t_order.append(type(m).__name__)) is tm
    assert jm.apply(lambda m: j_order.append(type(m).__name__)) is jm
    assert t_order == j_order
    assert j_order[-1] == "Net"


def test_apply_visits_shared_submodule_like_torch():
    tm, jm = both(_tied)
    t_order, j_order = [], []
    tm.apply(lambda m: t_order.append(type(m).__name__))
    jm.apply(lambda m: j_order.append(type(m).__name__))
    assert t_order == j_order


def test_train_eval_recurse_and_return_self_like_torch():
    tm, jm = both(_nested)
    assert tm.eval() is tm and jm.eval() is jm
    assert [m.training for m in tm.modules()] == [m.training for m in jm.modules()]
    assert not any(m.training for m in jm.modules())
    jm.blocks.train()
    tm.blocks.train()
    assert [m.training for m in tm.modules()] == [m.training for m in jm.modules()]
    assert jm.training is False and jm.blocks[1].fc.training is True
    assert_same_error(lambda: tm.train("yes"), lambda: jm.train("yes"))


def test_requires_grad_and_zero_grad_like_torch():
    tm, jm = both(_nested)
    assert tm.requires_grad_(False) is tm and jm.requires_grad_(False) is jm
    assert [p.requires_grad for p in jm.parameters()] == [p.requires_grad for p in tm.parameters()]
    assert not any(p.requires_grad for p in jm.parameters())
    jm.blocks.requires_grad_()
    tm.blocks.requires_grad_()
    assert [p.requires_grad for p in jm.parameters()] == [p.requires_grad for p in tm.parameters()]
    for p in jm.parameters():
        p.grad = jnp.ones(p.shape)
    jm.zero_grad()
    assert all(p.grad is None for p in jm.parameters())


# -------------------------------------------------------------------- casting
def _mixed(lib):
    m = lib.nn.Module()
    m.fc = lib.nn.Linear(2, 2)
    m.register_buffer("steps", lib.arange(3))  # integer buffer: never cast
    m.register_buffer("f", lib.zeros(2))
    return m


def _dtype_name(d):
    # the array's own dtype (jaxmod prints JAX's 32-bit default integer as torch.int64)
    return np.dtype(d).name if isinstance(d, jaxmod.dtype) else str(d).replace("torch.", "")


@pytest.mark.parametrize(
    "call",
    [
        ("to", "float16"),
        ("to", "bfloat16"),
        ("to", "float32"),
        ("half", None),
        ("bfloat16", None),
        ("float", None),
    ],
)
def test_casting_changes_only_floating_arrays_like_torch(call):
    method, dtype = call
    tm, jm = both(_mixed)
    if method == "to":
        assert tm.to(getattr(torch, dtype)) is tm
        assert jm.to(getattr(jnp, dtype)) is jm
    else:
        assert getattr(tm, method)() is tm and getattr(jm, method)() is jm
    t_dtypes = {k: _dtype_name(v.dtype) for k, v in tm.state_dict().items()}
    j_dtypes = {k: _dtype_name(v.dtype) for k, v in jm.state_dict().items()}
    assert t_dtypes == j_dtypes
    assert j_dtypes["steps"] == "int32"  # integer buffers are never cast
    assert j_dtypes["fc.weight"] == (dtype or {"half": "float16"}.get(method, method)) + (
        "32" if method == "float" else ""
    )


def test_to_keeps_boxes_so_references_stay_valid():
    _, jm = pair(_tied)
    w = jm.enc.weight
    jm.half()
    assert jm.enc.weight is w and jm.dec.weight is w and w.dtype == jnp.float16


def test_to_rejects_integer_dtype_like_torch():
    tm, jm = both(_mixed)
    e_t = pytest.raises(TypeError, tm.to, torch.int32).value
    e_j = pytest.raises(TypeError, jm.to, jnp.int32).value
    assert str(e_t).split("dtype=")[0] == str(e_j).split("dtype=")[0]


def test_cuda_without_gpu_raises_clear_runtime_error():
    jm = _mixed(JAX)
    import jax

    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="No CUDA device is available to JAX"):
        jm.cuda()
    with pytest.raises(RuntimeError, match="No CUDA device"):
        jm.to("cuda:0")
    assert jm.cpu() is jm
    assert jm.share_memory() is jm and jm.to_empty(device="cpu") is jm


def test_forward_of_paired_models_matches_torch():
    tm, jm = pair(_nested)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    with torch.no_grad():
        t_out = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(jm(jnp.asarray(x))), t_out, rtol=1e-5, atol=1e-6)
