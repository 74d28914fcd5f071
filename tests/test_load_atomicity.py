"""A failed ``Module.load_state_dict`` changes nothing, whatever the bad value (issue 15.7).

Every case builds a model, offers it a state dict whose *other* keys hold good, different
values (so a partial load would show), checks the error names the key, compares every
array bit for bit before and after, and runs a jitted training step afterwards. The
optimizer's side is in ``test_optim_load_atomicity.py``.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn as jnn
from jaxmod import optim


def _model() -> jnn.Module:
    return jnn.Sequential(jnn.Linear(3, 4), jnn.BatchNorm1d(4), jnn.Linear(4, 2))


@jaxmod.jit
def _train_step(model, opt, x):
    loss, grads = jaxmod.value_and_grad(lambda m: jnp.sum(m(x) ** 2))(model)
    opt.step(grads)
    return loss


_X = jnp.linspace(-1.0, 1.0, 15, dtype=jnp.float32).reshape(5, 3)


def _snapshot(model: jnn.Module) -> dict[str, tuple[np.ndarray, str, type]]:
    """Every persistent array with its dtype and box class (a LazyLinear's included)."""
    out = {}
    for name, box in [*model.named_parameters(), *model.named_buffers()]:
        out[name] = (np.array(box._value, copy=True), str(box._value.dtype), type(box))
    return out


def _assert_unchanged(model: jnn.Module, before: dict) -> None:
    after = _snapshot(model)
    assert list(after) == list(before)
    for k, (arr, dtype, cls) in before.items():
        assert after[k][1:] == (dtype, cls), k
        assert after[k][0].tobytes() == arr.tobytes(), f"{k} changed"


def _assert_still_trains(model: jnn.Module) -> None:
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = np.asarray(model[0].weight._value).copy()
    loss = _train_step(model, opt, _X)
    assert np.isfinite(float(loss))
    assert not np.array_equal(np.asarray(model[0].weight._value), before)


def _good_other_values(model: jnn.Module) -> dict:
    """A full state dict whose every value differs from the model's (as numpy)."""
    return {
        k: np.asarray(v) + 1 if isinstance(v, jax.Array) or jaxmod.is_tensor(v) else v
        for k, v in model.state_dict().items()
    }


def _donated() -> jax.Array:
    """A float32[4] array that a jitted step has donated (deleted)."""
    m = jnn.Linear(3, 4)
    held = m.bias._value  # the array itself (a state_dict value is a view: it follows m)
    _train_step(m, optim.SGD(m.parameters(), lr=0.1), _X[:, :3])
    assert held.is_deleted()
    return held


# (case id, bad value for "0.bias" (a float32[4] parameter), text the error must contain)
BAD_VALUES = [
    ("str", lambda: np.array(["a", "b", "c", "d"]), "dtype <U1 (strings)"),
    ("bytes", lambda: np.array([b"a", b"b", b"c", b"d"]), "dtype |S1 (bytes)"),
    ("object-mixed", lambda: np.array([1.0, "x", None, 2], dtype=object), "(Python objects)"),
    ("object-none", lambda: np.array([None] * 4, dtype=object), "(Python objects)"),
    ("object-floats", lambda: np.array([1.0, 2.0, 3.0, 4.0], dtype=object), "(Python objects)"),
    ("void", lambda: np.zeros(4, dtype="V4"), "dtype |V4 (raw bytes)"),
    ("datetime64", lambda: np.array(["2020-01-01"] * 4, dtype="datetime64[D]"), "(dates)"),
    ("timedelta64", lambda: np.arange(4).astype("timedelta64[s]"), "(time deltas)"),
    ("record", lambda: np.zeros(4, dtype=[("a", "f4")]), "cannot be loaded"),
    ("donated", _donated, "array has been deleted (donated to a jitted step)"),
    ("no-data", lambda: jax.ShapeDtypeStruct((4,), jnp.float32), "Tensor-like object"),
    ("not-an-array", lambda: "0.5", "Tensor-like object"),
    ("size", lambda: np.zeros((4, 1), np.float32), "torch.Size([4, 1])"),
]


@pytest.mark.parametrize("assign", [False, True], ids=["copy", "assign"])
@pytest.mark.parametrize("case", BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_failed_load_changes_no_array_and_names_the_key(case, assign):
    _, make_bad, text = case
    model = _model()
    before = _snapshot(model)
    sd = _good_other_values(model)
    sd["0.bias"] = make_bad()
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(sd, assign=assign)
    msg = str(info.value)
    assert msg.startswith("Error(s) in loading state_dict for Sequential:")
    line = next(x for x in msg.split("\n\t") if '"0.bias"' in x or " 0.bias:" in x)
    assert text in line, msg
    _assert_unchanged(model, before)
    _assert_still_trains(model)


def test_reloading_a_state_dict_whose_arrays_a_jitted_step_donated_changes_nothing():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    held = {k: v._value for k, v in model.state_dict().items()}  # arrays: deleted by a step
    _train_step(model, opt, _X)
    before = _snapshot(model)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(held)
    msg = str(info.value)
    for key in held:
        assert f'While copying the parameter named "{key}", the checkpoint\'s array' in msg
    assert f"The arrays of {len(held)} key(s) were deleted" in msg
    assert "copy.deepcopy(model.state_dict())" in msg and "jnp.copy(v)" in msg
    _assert_unchanged(model, before)
    _assert_still_trains(model)


def test_a_state_dict_taken_before_steps_follows_the_model_as_torchs_does():
    # torch's state_dict values share the parameters' storage: "best = model.state_dict()"
    # before more training reads the trained values, and reloading it changes nothing
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    best = model.state_dict()
    _train_step(model, opt, _X)
    before = _snapshot(model)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(best[k]), np.asarray(v), err_msg=k)
    assert str(model.load_state_dict(best)) == "<All keys matched successfully>"
    _assert_unchanged(model, before)
    _assert_still_trains(model)


@pytest.mark.parametrize(
    "keep",
    [copy.deepcopy, lambda sd: {k: jnp.copy(v) for k, v in sd.items()}],
    ids=["deepcopy", "jnp.copy"],
)
def test_keep_the_best_weights_idiom_survives_donation(keep):
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    _train_step(model, opt, _X)
    best = keep(model.state_dict())
    expected = {k: np.asarray(v).copy() for k, v in best.items()}
    for _ in range(2):
        _train_step(model, opt, _X)
    assert not any(v.is_deleted() for v in best.values())
    assert str(model.load_state_dict(best)) == "<All keys matched successfully>"
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(v), expected[k], err_msg=k)
    _train_step(model, opt, _X)  # the loaded model does not share buffers with `best`
    assert not any(v.is_deleted() for v in best.values())


def test_deepcopy_of_a_state_dict_gives_independent_arrays_and_keeps_metadata():
    model = _model()
    sd = model.state_dict()
    dup = copy.deepcopy(sd)
    assert type(dup) is OrderedDict and list(dup) == list(sd)
    assert dup._metadata == sd._metadata and dup._metadata is not sd._metadata
    for k in sd:
        assert dup[k] is not sd[k]
        assert dup[k].unsafe_buffer_pointer() != sd[k].unsafe_buffer_pointer(), k
        np.testing.assert_array_equal(np.asarray(dup[k]), np.asarray(sd[k]))


def test_set_extra_state_raising_changes_no_array():
    class Counter(jnn.Linear):
        def get_extra_state(self):
            return {"n": 1}

        def set_extra_state(self, state):
            raise ValueError("bad extra state")

    model = jnn.Sequential(Counter(3, 4), jnn.Linear(4, 2))
    before = _snapshot(model)
    sd = _good_other_values(model)
    sd["0._extra_state"] = {"n": 2}
    with pytest.raises(ValueError, match="bad extra state") as info:
        model.load_state_dict(sd)
    assert any("'0._extra_state'" in n for n in info.value.__notes__)
    _assert_unchanged(model, before)


# ------------------------------------------------------------------ torch's texts
@pytest.mark.parametrize(
    "bad",
    [
        {"weight": (3, 4), "bias": (4,)},  # transposed weight
        {"weight": (4, 3), "bias": ()},  # a scalar for a vector
        {"weight": (4, 3, 1), "bias": (2,)},  # two mismatches, in key order
    ],
    ids=["transposed", "scalar", "two"],
)
def test_size_mismatch_message_is_torchs_exactly(bad):
    tm, jm = torch.nn.Linear(3, 4), jnn.Linear(3, 4)
    texts = []
    for m, zeros in ((tm, torch.zeros), (jm, jnp.zeros)):
        with pytest.raises(RuntimeError) as info:
            m.load_state_dict({k: zeros(s) for k, s in bad.items()})
        texts.append(str(info.value))
    assert texts[0] == texts[1]
    assert "torch.Size([" in texts[1]


def test_complex_into_real_warns_like_torch_and_keeps_the_real_part():
    values = np.array([[1 + 2j, 3 - 1j]] * 2, np.complex64)
    tm, jm = torch.nn.Linear(2, 2), jnn.Linear(2, 2)
    caught = []
    for m, sd in (
        (tm, {"weight": torch.from_numpy(values), "bias": torch.zeros(2)}),
        (jm, {"weight": values, "bias": np.zeros(2, np.float32)}),
    ):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            m.load_state_dict(sd)
        caught.append([str(w.message) for w in rec if w.category is UserWarning])
    assert any("Casting complex values to real discards the imaginary part" in w for w in caught[0])
    assert any("casting complex values to real discards the imaginary part" in w
               for w in caught[1])  # fmt: skip
    np.testing.assert_array_equal(np.asarray(jm.weight._value), tm.weight.detach().numpy())


# ------------------------------------------------------------------ LazyLinear
@pytest.mark.parametrize("assign", [False, True], ids=["copy", "assign"])
@pytest.mark.parametrize(
    "bad",
    [{"junk": np.zeros(1)}, {"bias": np.array(["a", "b"])}, {"weight": np.zeros((2, 3), "M8[D]")}],
    ids=["unexpected-key", "string-bias", "datetime-weight"],
)
def test_failed_load_does_not_materialise_a_lazy_linear(bad, assign):
    m = jnn.LazyLinear(2)
    sd = {"weight": np.ones((2, 3), np.float32), "bias": np.ones(2, np.float32), **bad}
    with pytest.raises(RuntimeError):
        m.load_state_dict(sd, assign=assign)
    assert m.has_uninitialized_params()
    assert type(m.weight) is jnn.UninitializedParameter and m.weight.shape == (0,)


def test_torch_materialises_a_lazy_linear_on_a_failed_load_jaxmod_does_not():
    sd = {"weight": np.ones((2, 3), np.float32), "bias": np.ones(2, np.float32), "junk": np.ones(1)}
    tm, jm = torch.nn.LazyLinear(2), jnn.LazyLinear(2)
    for m, conv in ((tm, torch.from_numpy), (jm, np.asarray)):
        with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "junk"'):
            m.load_state_dict({k: conv(v) for k, v in sd.items()})
    assert not tm.has_uninitialized_params()  # torch's lazy hook ran before the check
    assert jm.has_uninitialized_params()


@pytest.mark.parametrize("dtype", [None, jnp.bfloat16])
def test_successful_load_materialises_a_lazy_linear_like_torch(dtype):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    bias = np.array([0.5, -1.0], np.float32)
    m = jnn.LazyLinear(2, dtype=dtype)
    tm = torch.nn.LazyLinear(2)
    assert str(m.load_state_dict({"weight": weight, "bias": bias})) == str(
        tm.load_state_dict({"weight": torch.from_numpy(weight), "bias": torch.from_numpy(bias)})
    )
    assert type(m.weight) is jnn.Parameter and not m.has_uninitialized_params()
    assert m.weight.dtype == (dtype or jnp.float32)
    x = np.ones((1, 3), np.float32)
    # a bfloat16 model takes bfloat16 inputs (a float32 one raises, as in torch)
    np.testing.assert_allclose(
        np.asarray(m(jnp.asarray(x, dtype or jnp.float32)), np.float32),
        tm(torch.from_numpy(x)).detach().numpy(),
        rtol=1e-2 if dtype else 1e-6,
    )


# ------------------------------------------------------------------ shared BatchNorm
def _shared_bn(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = lib.nn.BatchNorm1d(3)
            self.b = self.a  # one module, registered under two names

    return Net()


def _bn_state(lib, nbt: dict[str, int]) -> dict:
    sd = {}
    for p, n in (("a.", 5), ("b.", 7)):
        for k, v in (("weight", 1.0), ("bias", 0.0), ("running_mean", n), ("running_var", 1.0)):
            sd[p + k] = torch.full((3,), float(v)) if lib is torch else np.full(3, v, np.float32)
        if p[0] in nbt:
            sd[p + "num_batches_tracked"] = (
                torch.tensor(nbt[p[0]]) if lib is torch else np.asarray(nbt[p[0]], np.int64)
            )
    return sd


@pytest.mark.parametrize("version", [None, 1, 2])
@pytest.mark.parametrize(
    "nbt", [{"a": 5, "b": 7}, {"a": 5}, {"b": 7}, {}], ids=["both", "a-only", "b-only", "none"]
)
def test_shared_batchnorm_keeps_num_batches_tracked_as_torch(nbt, version):
    results = []
    for lib in (torch, jaxmod):
        m = _shared_bn(lib)
        sd = OrderedDict(_bn_state(lib, nbt))
        if version is not None:
            sd._metadata = {"": {"version": 1}, "a": {"version": version},
                            "b": {"version": version}}  # fmt: skip
        keys = m.load_state_dict(sd, strict=False)
        results.append(
            (int(m.a.num_batches_tracked), float(m.a.running_mean[0]), list(keys.missing_keys))
        )
    assert results[0] == results[1]


def test_jaxmod_tensor_values_load_and_a_bad_one_changes_nothing():
    model = jnn.Linear(3, 4)
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match=r"torch\.Size\(\[3\]\)"):
        model.load_state_dict({"weight": jaxmod.ones(4, 3), "bias": jaxmod.zeros(3)})
    _assert_unchanged(model, before)
    model.load_state_dict({"weight": jaxmod.ones(4, 3), "bias": jaxmod.zeros(4)})
    np.testing.assert_array_equal(np.asarray(model.weight._value), np.ones((4, 3), np.float32))
