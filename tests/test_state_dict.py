"""state_dict / load_state_dict and their hooks: jaxmod vs torch 2.13."""

from __future__ import annotations

from collections import OrderedDict

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from _torch_pairs import (
    JAX,
    TORCH,
    assert_state_close,
    both,
    error_of,
    norm_msg,
    pair,
    state_keys,
    to_numpy,
    torch_to_jax_state,
)

import jaxmod
import jaxmod.nn as jnn


def _nested(lib):
    class Inner(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("running", lib.zeros(3))
            self.fc = lib.nn.Linear(3, 3)
            self.gain = lib.nn.Parameter(lib.ones(3))
            self.register_buffer("scratch", lib.zeros(3), persistent=False)
            self.register_buffer("absent", None)

        def forward(self, x):
            return self.fc(x) * self.gain + self.running

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.nn.Linear(4, 3)
            self.inner = Inner()
            self.seq = lib.nn.Sequential(lib.nn.ReLU(), Inner(), lib.nn.Linear(3, 2, bias=False))
            self.scale = lib.nn.Parameter(lib.ones(()))
            self.register_parameter("unused", None)

        def forward(self, x):
            return self.seq(self.inner(self.stem(x))) * self.scale

    return Net()


def _tied(lib):
    class Tied(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = lib.nn.Linear(3, 3)
            self.dec = lib.nn.Linear(3, 3)
            self.dec.weight = self.enc.weight
            self.again = self.enc

    return Tied()


def _perturbed(sd):
    return {k: v + 1.0 for k, v in sd.items()}


# ------------------------------------------------------------------ state_dict
@pytest.mark.parametrize("builder", [_nested, _tied])
def test_state_dict_matches_torch_key_order_and_values(builder):
    tm, jm = pair(builder)
    assert_state_close(tm, jm)
    assert isinstance(jm.state_dict(), OrderedDict)


def test_state_dict_excludes_non_persistent_and_none_entries():
    _, jm = both(_nested)
    keys = state_keys(jm)
    assert not any("scratch" in k or "absent" in k or "unused" in k for k in keys)
    assert "inner.running" in keys and "seq.1.running" in keys


def test_shared_parameter_appears_under_every_name_in_state_dict_only():
    tm, jm = pair(_tied)
    every = ["enc.weight", "enc.bias", "dec.weight", "dec.bias", "again.weight", "again.bias"]
    assert state_keys(tm) == state_keys(jm) == every
    assert [n for n, _ in jm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in jm.named_parameters()] == ["enc.weight", "enc.bias", "dec.bias"]


def test_state_dict_prefix_and_destination_like_torch():
    tm, jm = both(_nested)
    assert list(tm.state_dict(prefix="m.")) == list(jm.state_dict(prefix="m."))
    td, jd = OrderedDict(), OrderedDict()
    assert tm.state_dict(destination=td) is td and jm.state_dict(destination=jd) is jd
    assert list(td) == list(jd)


def test_state_dict_keep_vars_returns_boxes_else_detached_tensors():
    _, jm = pair(_nested)
    sd = jm.state_dict()
    assert all(jaxmod.is_tensor(v) and not isinstance(v, jnn.Variable) for v in sd.values())
    assert not any(v.requires_grad for v in sd.values())
    kv = jm.state_dict(keep_vars=True)
    assert kv["stem.weight"] is jm.stem.weight and kv["inner.running"] is jm.inner.running
    assert isinstance(kv["seq.1.gain"], jnn.Parameter)


@pytest.mark.parametrize("lib", [torch, jaxmod], ids=["torch", "jaxmod"])
def test_state_dict_values_share_the_parameters_values_like_torch(lib):
    # torch's values are p.detach(): the same storage, so a change on either side shows
    # on the other; the tutorial's loop prints model.state_dict()[k].size()
    m = _nested(lib)
    sd = m.state_dict()
    assert tuple(sd["stem.weight"].size()) == (3, 4)
    with lib.no_grad():
        m.stem.weight.fill_(5.0)
    assert float(sd["stem.weight"].min()) == 5.0
    sd["inner.running"].add_(2.0)
    assert float(m.inner.running.sum()) == 6.0
    snapshot = {k: v.clone() for k, v in m.state_dict().items()}
    with lib.no_grad():
        m.stem.weight.zero_()
    assert float(snapshot["stem.weight"].min()) == 5.0


def test_state_dict_metadata_matches_torch():
    tm, jm = both(_nested)
    tmeta, jmeta = tm.state_dict()._metadata, jm.state_dict()._metadata
    assert list(tmeta) == list(jmeta)
    assert dict(tmeta) == dict(jmeta)
    assert dict(tm.state_dict(prefix="p.")._metadata) == dict(jm.state_dict(prefix="p.")._metadata)


# ------------------------------------------------------------- load_state_dict
def test_load_state_dict_roundtrip_from_torch_and_all_keys_matched():
    tm, jm = both(_nested)
    tsd = _perturbed(tm.state_dict())
    result = jm.load_state_dict(torch_to_jax_state(tsd))
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == repr(tm.load_state_dict(tsd)) == "<All keys matched successfully>"
    assert_state_close(tm, jm)


@pytest.mark.parametrize("source", ["numpy", "jax", "torch", "boxes"])
def test_load_state_dict_accepts_numpy_jax_torch_and_boxes(source):
    tm, jm = both(_nested)
    tsd = _perturbed(tm.state_dict())
    tm.load_state_dict(tsd)
    convert = {
        "numpy": lambda v: v.numpy(),
        "jax": lambda v: jnp.asarray(v.numpy()),
        "torch": lambda v: v,
        "boxes": lambda v: jnn.Parameter(v.numpy()),
    }[source]
    jm.load_state_dict({k: convert(v) for k, v in tsd.items()})
    assert_state_close(tm, jm)


def test_load_keeps_box_identity_and_dtype():
    _, jm = pair(_tied)
    w = jm.enc.weight
    jm.load_state_dict({k: np.full(v.shape, 2.0, np.float64) for k, v in jm.state_dict().items()})
    assert jm.enc.weight is w and jm.dec.weight is w
    assert w.dtype == jnp.float32 and float(w.sum()) == 18.0


def test_load_assign_takes_checkpoint_dtype_and_keeps_tying():
    _, jm = pair(_tied)
    w = jm.enc.weight
    sd = {k: jnp.ones(v.shape, jnp.bfloat16) for k, v in jm.state_dict().items()}
    jm.load_state_dict(sd, assign=True)
    assert jm.enc.weight is w and jm.dec.weight is w
    assert jm.enc.weight.dtype == jnp.bfloat16 and jm.enc.bias.dtype == jnp.bfloat16


def test_load_assign_matches_torch_dtype():
    tm, jm = both(_tied)
    tsd = {k: v.to(torch.float16) for k, v in tm.state_dict().items()}
    tm.load_state_dict(tsd, assign=True)
    jm.load_state_dict(tsd, assign=True)
    assert [str(v.dtype) for v in tm.state_dict().values()] == [
        str(v.dtype) for v in jm.state_dict().values()
    ]


def test_scalar_param_loads_from_one_element_vector_like_torch():
    tm, jm = both(_nested)
    tsd = tm.state_dict()
    tsd["scale"] = torch.tensor([3.0])
    tm.load_state_dict(tsd)
    jm.load_state_dict(torch_to_jax_state(tsd))
    assert float(jm.scale) == float(tm.scale) == 3.0 and jm.scale.shape == ()


def test_scalar_param_from_longer_vector_is_a_size_mismatch_like_torch():
    tm, jm = both(_nested)
    tsd = tm.state_dict()
    tsd["scale"] = torch.tensor([3.0, 4.0])
    assert error_of(lambda: tm.load_state_dict(tsd)) == error_of(
        lambda: jm.load_state_dict(torch_to_jax_state(tsd))
    )


def _bad_state(tm):
    sd = tm.state_dict()
    del sd["stem.bias"], sd["seq.1.running"]
    sd["extra.weight"] = torch.zeros(1)
    sd["seq.7.weight"] = torch.zeros(1)
    sd["inner.fc.nope"] = torch.zeros(1)
    sd["inner.fc.weight"] = torch.zeros(3, 4)
    sd["seq.2.weight"] = torch.zeros(5)
    sd["scratch"] = torch.zeros(1)
    return sd


@pytest.mark.parametrize("strict", [True, False])
def test_load_error_text_matches_torch(strict):
    tm, jm = both(_nested)
    tsd = _bad_state(tm)
    t = error_of(lambda: tm.load_state_dict(tsd, strict=strict))
    j = error_of(lambda: jm.load_state_dict(torch_to_jax_state(tsd), strict=strict))
    assert t == j
    assert t[0] is RuntimeError
    assert ("Missing key(s)" in t[1]) is strict and "size mismatch for inner.fc.weight" in t[1]


def test_missing_and_unexpected_keys_non_strict_match_torch():
    tm, jm = both(_nested)
    sd = tm.state_dict()
    del sd["stem.bias"], sd["seq.1.running"], sd["scale"]
    sd["extra.weight"] = torch.zeros(1)
    sd["seq.1.fc.nope"] = torch.zeros(1)
    sd["stem.weight.x"] = torch.zeros(1)
    t = tm.load_state_dict(sd, strict=False)
    j = jm.load_state_dict(torch_to_jax_state(sd), strict=False)
    assert t.missing_keys == j.missing_keys and t.unexpected_keys == j.unexpected_keys
    assert repr(t) == repr(j) and str(t) == str(j)
    assert j.missing_keys == ["scale", "stem.bias", "seq.1.running"]  # own, then children


@pytest.mark.parametrize("strict", [True, False])
def test_missing_unexpected_error_text_matches_torch(strict):
    tm, jm = both(_nested)
    sd = tm.state_dict()
    del sd["seq.2.weight"]
    sd["nope"] = torch.zeros(1)
    if strict:
        assert error_of(lambda: tm.load_state_dict(sd)) == error_of(
            lambda: jm.load_state_dict(torch_to_jax_state(sd))
        )
    else:
        assert tuple(tm.load_state_dict(sd, strict=False)) == tuple(
            jm.load_state_dict(torch_to_jax_state(sd), strict=False)
        )


def test_failed_load_changes_nothing_unlike_torch():
    tm, jm = pair(_nested)
    before = {k: np.asarray(v).copy() for k, v in jm.state_dict().items()}
    t_before = {k: v.clone() for k, v in tm.state_dict().items()}
    bad = _perturbed(tm.state_dict())
    bad["seq.2.weight"] = torch.zeros(9, 9)  # size mismatch, after good keys
    for strict in (True, False):
        with pytest.raises(RuntimeError, match="size mismatch"):
            jm.load_state_dict(torch_to_jax_state(bad), strict=strict)
        for k, v in jm.state_dict().items():
            np.testing.assert_array_equal(np.asarray(v), before[k], err_msg=k)
    # torch copied every good key before raising
    with pytest.raises(RuntimeError, match="size mismatch"):
        tm.load_state_dict(bad, strict=False)
    assert not torch.equal(tm.stem.weight, t_before["stem.weight"])


def test_failed_strict_load_for_missing_key_changes_nothing():
    tm, jm = pair(_nested)
    before = {k: np.asarray(v).copy() for k, v in jm.state_dict().items()}
    bad = _perturbed(tm.state_dict())
    del bad["scale"]
    with pytest.raises(RuntimeError, match="Missing key"):
        jm.load_state_dict(torch_to_jax_state(bad))
    for k, v in jm.state_dict().items():
        np.testing.assert_array_equal(np.asarray(v), before[k], err_msg=k)


def test_non_array_value_error_matches_torch():
    tm, jm = both(_nested)
    sd = tm.state_dict()
    sd["scale"] = "not a tensor"
    assert error_of(lambda: tm.load_state_dict(sd)) == error_of(
        lambda: jm.load_state_dict(dict(sd))
    )


def test_load_state_dict_rejects_non_mapping_like_torch():
    tm, jm = both(_tied)
    assert error_of(lambda: tm.load_state_dict([1])) == error_of(lambda: jm.load_state_dict([1]))


def test_load_into_non_persistent_buffer_is_unexpected_like_torch():
    tm, jm = both(_nested)
    sd = tm.state_dict()
    sd["inner.scratch"] = torch.zeros(3)
    assert error_of(lambda: tm.load_state_dict(sd)) == error_of(
        lambda: jm.load_state_dict(torch_to_jax_state(sd))
    )


# ------------------------------------------------------------- state_dict hooks
def _record_hooks(lib, log):
    m = _nested(lib)

    def pre(module, prefix, keep_vars):
        log.append(("pre", type(module).__name__, prefix, keep_vars))

    def post(module, sd, prefix, local_metadata):
        log.append(("post", type(module).__name__, prefix, list(sd), dict(local_metadata)))

    for mod in (m, m.inner, m.seq):
        mod.register_state_dict_pre_hook(pre)
        mod.register_state_dict_post_hook(post)
    return m


def test_state_dict_pre_and_post_hooks_order_and_arguments_match_torch():
    t_log, j_log = [], []
    tm, jm = _record_hooks(TORCH, t_log), _record_hooks(JAX, j_log)
    tm.state_dict(prefix="x.", keep_vars=True)
    jm.state_dict(prefix="x.", keep_vars=True)
    assert t_log == j_log and len(j_log) == 6


def test_state_dict_post_hook_must_return_none_like_torch():
    tm, jm = both(_tied)
    tm.register_state_dict_post_hook(lambda *a: {})
    jm.register_state_dict_post_hook(lambda *a: {})
    assert error_of(tm.state_dict) == error_of(jm.state_dict)


def test_private_state_dict_hook_can_replace_dict_like_torch():
    def build(lib):
        m = _tied(lib)

        def hook(module, sd, prefix, local_metadata):
            return OrderedDict((k.upper(), v) for k, v in sd.items())

        m._register_state_dict_hook(hook)
        m.enc._register_state_dict_hook(lambda *a: OrderedDict())  # ignored: not root
        return m

    tm, jm = both(build)
    assert list(tm.state_dict()) == list(jm.state_dict())
    assert list(jm.state_dict())[0] == "ENC.WEIGHT"


def test_same_function_cannot_be_public_and_private_state_dict_hook_like_torch():
    def fn(*a):
        return None

    tm, jm = both(_tied)
    tm.register_state_dict_post_hook(fn)
    jm.register_state_dict_post_hook(fn)
    assert error_of(lambda: tm._register_state_dict_hook(fn)) == error_of(
        lambda: jm._register_state_dict_hook(fn)
    )


def _load_hook_model(lib, log):
    m = _nested(lib)

    def pre(module, sd, prefix, local_metadata, strict, missing, unexpected, errors):
        log.append(("pre", type(module).__name__, prefix, sorted(sd), dict(local_metadata), strict))

    def post(module, keys):
        log.append(("post", type(module).__name__, list(keys.missing_keys)))

    for mod in (m, m.inner, m.seq[1]):
        mod.register_load_state_dict_pre_hook(pre)
        mod.register_load_state_dict_post_hook(post)
    return m


@pytest.mark.parametrize("assign", [False, True])
def test_load_state_dict_hooks_order_and_arguments_match_torch(assign):
    t_log, j_log = [], []
    tm, jm = _load_hook_model(TORCH, t_log), _load_hook_model(JAX, j_log)
    tsd = tm.state_dict()
    del tsd["inner.gain"]
    jsd = torch_to_jax_state(tsd)
    jsd = OrderedDict(jsd)
    jsd._metadata = tsd._metadata
    tm.load_state_dict(tsd, strict=False, assign=assign)
    jm.load_state_dict(jsd, strict=False, assign=assign)
    assert t_log == j_log and len(j_log) == 6


def test_load_post_hook_can_clear_missing_keys_to_avoid_strict_error():
    def build(lib):
        m = _tied(lib)
        m.register_load_state_dict_post_hook(lambda module, keys: keys.missing_keys.clear())
        return m

    tm, jm = both(build)
    sd = tm.state_dict()
    del sd["dec.bias"]
    assert tuple(tm.load_state_dict(sd)) == tuple(jm.load_state_dict(torch_to_jax_state(sd)))


def test_load_post_hook_returning_value_raises_like_torch():
    def build(lib):
        m = _tied(lib)
        m.register_load_state_dict_post_hook(lambda module, keys: 1)
        return m

    tm, jm = both(build)
    sd = tm.state_dict()
    assert error_of(lambda: tm.load_state_dict(sd)) == error_of(
        lambda: jm.load_state_dict(torch_to_jax_state(sd))
    )


def test_load_pre_hook_can_rename_keys_like_torch():
    def build(lib):
        m = _tied(lib)

        def hook(module, sd, prefix, *rest):
            for k in [k for k in sd if k.startswith(prefix + "old_")]:
                sd[k.replace("old_", "")] = sd.pop(k)

        m.register_load_state_dict_pre_hook(hook)
        return m

    tm, jm = both(build)
    sd = {("old_" + k if k.startswith("dec.") else k): v + 1 for k, v in tm.state_dict().items()}
    tm.load_state_dict(sd)
    jm.load_state_dict({k: v.numpy() for k, v in sd.items()})
    assert_state_close(tm, jm)


def test_removed_state_dict_hooks_stop_running():
    jm = _tied(JAX)
    calls = []
    h1 = jm.register_state_dict_pre_hook(lambda *a: calls.append("pre"))
    h2 = jm.register_state_dict_post_hook(lambda *a: calls.append("post"))
    h3 = jm.register_load_state_dict_pre_hook(lambda *a: calls.append("lpre"))
    h4 = jm.register_load_state_dict_post_hook(lambda *a: calls.append("lpost"))
    jm.load_state_dict(jm.state_dict())
    assert calls == ["pre", "post", "lpre", "lpost"]
    for h in (h1, h2, h3, h4):
        h.remove()
    jm.load_state_dict(jm.state_dict())
    assert calls == ["pre", "post", "lpre", "lpost"]


# ---------------------------------------------------------------- extra state
def _extra(lib):
    class WithExtra(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(2, 2)
            self.counter = 0

        def get_extra_state(self):
            return {"counter": self.counter}

        def set_extra_state(self, state):
            self.counter = state["counter"]

    m = lib.nn.Sequential(WithExtra())
    return m


def test_extra_state_saved_and_loaded_like_torch():
    tm, jm = both(_extra)
    tm[0].counter = jm[0].counter = 7
    tsd, jsd = tm.state_dict(), jm.state_dict()
    assert list(tsd) == list(jsd) == ["0._extra_state", "0.fc.weight", "0.fc.bias"]
    assert jsd["0._extra_state"] == tsd["0._extra_state"] == {"counter": 7}
    tm2, jm2 = both(_extra)
    tm2.load_state_dict(tsd)
    jm2.load_state_dict(jsd)
    assert tm2[0].counter == jm2[0].counter == 7


def test_extra_state_missing_and_unexpected_like_torch():
    tm, jm = both(_extra)
    tsd, jsd = tm.state_dict(), jm.state_dict()
    del tsd["0._extra_state"], jsd["0._extra_state"]
    assert error_of(lambda: tm.load_state_dict(tsd)) == error_of(lambda: jm.load_state_dict(jsd))
    tp, jp = both(lambda lib: lib.nn.Sequential(lib.nn.Linear(2, 2)))
    sd = tp.state_dict()
    sd["0._extra_state"] = 1
    assert error_of(lambda: tp.load_state_dict(sd)) == error_of(
        lambda: jp.load_state_dict(
            {k: to_numpy(v) if k != "0._extra_state" else 1 for k, v in sd.items()}
        )
    )


def test_extra_state_not_set_when_load_fails():
    jm = _extra(JAX)
    sd = jm.state_dict()
    sd["0._extra_state"] = {"counter": 9}
    sd["0.fc.weight"] = np.zeros((5, 5), np.float32)
    with pytest.raises(RuntimeError, match="size mismatch"):
        jm.load_state_dict(sd)
    assert jm[0].counter == 0


def test_norm_msg_turns_torch_sizes_into_tuples():
    assert norm_msg("shape torch.Size([3, 4]) and torch.Size([5]) torch.Size([])") == (
        "shape (3, 4) and (5,) ()"
    )
    assert jaxmod is not None


def test_positional_state_dict_args_warn_and_parse_like_torch():
    results = []
    for lib in (TORCH, JAX):
        m = lib.nn.Linear(2, 2)
        with pytest.warns(FutureWarning) as rec:
            sd = m.state_dict(None, "x.", True)
        results.append((list(sd), type(sd["x.weight"]).__name__, str(rec[0].message)))
    (t_keys, t_type, t_msg), (j_keys, j_type, j_msg) = results
    assert t_keys == j_keys == ["x.weight", "x.bias"]
    assert (t_type, j_type) == ("Parameter", "Parameter")  # keep_vars=True
    assert t_msg == j_msg
