"""Registration of parameters, buffers and submodules: jaxmod vs torch 2.13."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _torch_pairs import JAX, LIBS, TORCH, assert_same_error, both, names, state_keys

import jaxmod
import jaxmod.nn as jnn


def _empty(lib):
    return lib.nn.Module()


def _net(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = lib.nn.Linear(2, 3)
            self.p = lib.nn.Parameter(lib.randn(3))
            self.register_buffer("b", lib.zeros(2))

    return Net()


# ------------------------------------------------------------------ __setattr__
def test_setattr_registers_parameter_module_buffer_like_torch():
    def build(lib):
        m = lib.nn.Module()
        m.w = lib.nn.Parameter(lib.randn(2, 2))
        m.sub = lib.nn.Linear(2, 2)
        m.buf = lib.nn.Buffer(lib.zeros(3))
        m.np_buf = lib.nn.Buffer(lib.zeros(3), persistent=False)
        return m

    tm, jm = both(build)
    assert list(tm._parameters) == list(jm._parameters) == ["w"]
    assert list(tm._modules) == list(jm._modules) == ["sub"]
    assert list(tm._buffers) == list(jm._buffers) == ["buf", "np_buf"]
    assert tm._non_persistent_buffers_set == jm._non_persistent_buffers_set == {"np_buf"}
    assert state_keys(tm) == state_keys(jm) == ["w", "buf", "sub.weight", "sub.bias"]
    assert names(tm.named_buffers()) == names(jm.named_buffers()) == ["buf", "np_buf"]


def test_reassigning_kind_moves_name_between_registries():
    def build(lib):
        m = lib.nn.Module()
        m.y = lib.nn.Linear(1, 1)
        m.y = lib.nn.Parameter(lib.randn(2))  # module -> parameter
        m.z = lib.nn.Buffer(lib.zeros(1))
        m.z = lib.nn.Parameter(lib.randn(1))  # buffer -> parameter
        return m

    tm, jm = both(build)
    for reg in ("_parameters", "_buffers", "_modules"):
        assert list(getattr(tm, reg)) == list(getattr(jm, reg)), reg
    assert state_keys(tm) == state_keys(jm) == ["y", "z"]


def test_assign_module_to_parameter_name_raises_like_torch():
    tm, jm = both(_net)
    assert_same_error(
        lambda: setattr(tm, "p", torch.nn.ReLU()), lambda: setattr(jm, "p", jnn.ReLU())
    )


def test_plain_array_attribute_is_not_registered():
    def build(lib):
        m = lib.nn.Module()
        m.t1 = lib.randn(2, 2)
        return m

    tm, jm = both(build)
    assert "t1" in tm.__dict__ and "t1" in jm.__dict__
    assert list(jm.parameters()) == [] and list(jm.buffers()) == []
    assert state_keys(tm) == state_keys(jm) == []
    jm.t1 = jaxmod.ones(2, 2)  # plain array keeps being a plain attribute
    assert state_keys(jm) == [] and float(jm.t1.sum()) == 4.0


def test_assign_plain_array_to_parameter_name_raises_like_torch():
    tm, jm = both(_net)
    assert_same_error(
        lambda: setattr(tm, "p", torch.randn(3)), lambda: setattr(jm, "p", jaxmod.randn(3))
    )
    assert_same_error(lambda: setattr(tm, "p", 3), lambda: setattr(jm, "p", 3))


def test_assign_non_module_to_module_name_raises_like_torch():
    tm, jm = both(_net)
    assert_same_error(lambda: setattr(tm, "l1", 3), lambda: setattr(jm, "l1", 3))
    assert_same_error(lambda: setattr(tm, "l1", "x"), lambda: setattr(jm, "l1", "x"))


def test_assign_non_array_to_buffer_name_raises_like_torch():
    tm, jm = both(_net)
    assert_same_error(lambda: setattr(tm, "b", 3), lambda: setattr(jm, "b", 3))


def test_assign_array_to_buffer_name_keeps_it_a_buffer():
    tm, jm = both(_net)
    tm.b = torch.ones(2)
    jm.b = jaxmod.ones(2)
    assert list(tm._buffers) == list(jm._buffers) == ["b"]
    np.testing.assert_array_equal(np.asarray(jm.b), tm.b.numpy())
    assert state_keys(tm) == state_keys(jm)


def test_assign_array_to_non_persistent_buffer_stays_non_persistent():
    def build(lib):
        m = lib.nn.Module()
        m.register_buffer("nb", lib.zeros(2), persistent=False)
        m.nb = lib.ones(2)
        return m

    tm, jm = both(build)
    assert tm._non_persistent_buffers_set == jm._non_persistent_buffers_set == {"nb"}
    assert state_keys(tm) == state_keys(jm) == []


def test_assign_none_to_each_kind_keeps_registration():
    tm, jm = both(_net)
    for m in (tm, jm):
        m.p = None
        m.l1 = None
        m.b = None
    for reg in ("_parameters", "_buffers", "_modules"):
        assert list(getattr(tm, reg)) == list(getattr(jm, reg)), reg
    assert jm.p is None and jm.l1 is None and jm.b is None
    assert state_keys(tm) == state_keys(jm) == []
    assert list(jm.parameters()) == [] and list(jm.children()) == []


def test_del_removes_parameter_buffer_module_and_plain_attribute():
    tm, jm = both(_net)
    for m in (tm, jm):
        m.plain = 5
        del m.p, m.b, m.l1, m.plain
    for m in (tm, jm):
        assert not hasattr(m, "p") and not hasattr(m, "b") and not hasattr(m, "l1")
        assert "plain" not in m.__dict__
    assert state_keys(tm) == state_keys(jm) == []
    assert_same_error(lambda: delattr(tm, "nope"), lambda: delattr(jm, "nope"))


def test_getattr_missing_message_matches_torch():
    tm, jm = both(_net)
    assert_same_error(lambda: tm.missing, lambda: jm.missing)


# ---------------------------------------------------------------- register_*
def test_register_buffer_persistent_flag_and_state_dict():
    def build(lib):
        m = lib.nn.Module()
        m.register_buffer("a", lib.zeros(1))
        m.register_buffer("b", lib.zeros(1), persistent=False)
        m.register_buffer("c", None)
        return m

    tm, jm = both(build)
    assert list(tm._buffers) == list(jm._buffers) == ["a", "b", "c"]
    assert state_keys(tm) == state_keys(jm) == ["a"]
    assert names(tm.named_buffers()) == names(jm.named_buffers()) == ["a", "b"]
    # re-registering as persistent moves it back into the state_dict
    for m, lib in ((tm, TORCH), (jm, JAX)):
        m.register_buffer("b", lib.ones(1), persistent=True)
    assert state_keys(tm) == state_keys(jm) == ["a", "b"]


BAD_NAMES = [("a.b", "dot"), ("", "empty"), (3, "non-string"), ("existing", "attr")]


@pytest.mark.parametrize("bad,_why", BAD_NAMES)
def test_register_buffer_bad_name_errors_match_torch(bad, _why):
    tm, jm = both(_empty)
    tm.existing, jm.existing = 1, 1
    assert_same_error(
        lambda: tm.register_buffer(bad, torch.zeros(1)),
        lambda: jm.register_buffer(bad, jaxmod.zeros(1)),
    )


@pytest.mark.parametrize("bad,_why", BAD_NAMES)
def test_register_parameter_bad_name_errors_match_torch(bad, _why):
    tm, jm = both(_empty)
    tm.existing, jm.existing = 1, 1
    assert_same_error(
        lambda: tm.register_parameter(bad, torch.nn.Parameter(torch.zeros(1))),
        lambda: jm.register_parameter(bad, jnn.Parameter(jaxmod.zeros(1))),
    )


@pytest.mark.parametrize("bad,_why", BAD_NAMES)
@pytest.mark.parametrize("method", ["add_module", "register_module"])
def test_add_module_bad_name_errors_match_torch(method, bad, _why):
    tm, jm = both(_empty)
    tm.existing, jm.existing = 1, 1
    assert_same_error(
        lambda: getattr(tm, method)(bad, torch.nn.ReLU()),
        lambda: getattr(jm, method)(bad, jnn.ReLU()),
    )


@pytest.mark.parametrize("method", ["add_module", "register_module"])
def test_add_module_non_module_value_errors_match_torch(method):
    tm, jm = both(_empty)
    assert_same_error(lambda: getattr(tm, method)("x", 3), lambda: getattr(jm, method)("x", 3))
    assert_same_error(
        lambda: getattr(tm, method)("x", "str"), lambda: getattr(jm, method)("x", "str")
    )


def test_register_parameter_non_parameter_value_errors_match_torch():
    tm, jm = both(_empty)
    assert_same_error(
        lambda: tm.register_parameter("x", torch.zeros(1)),
        lambda: jm.register_parameter("x", jaxmod.zeros(1)),
    )
    assert_same_error(lambda: tm.register_parameter("x", 3), lambda: jm.register_parameter("x", 3))


def test_register_buffer_non_array_value_errors_match_torch():
    tm, jm = both(_empty)
    assert_same_error(lambda: tm.register_buffer("x", 3), lambda: jm.register_buffer("x", 3))
    assert_same_error(
        lambda: tm.register_buffer("x", [1.0]), lambda: jm.register_buffer("x", [1.0])
    )


def test_register_parameter_none_and_existing_names_like_torch():
    tm, jm = both(_net)
    for m in (tm, jm):
        m.register_parameter("q", None)  # an absent parameter
        m.register_module("none_mod", None)
    assert list(tm._parameters) == list(jm._parameters) == ["p", "q"]
    assert list(tm._modules) == list(jm._modules) == ["l1", "none_mod"]
    assert names(tm.named_parameters()) == names(jm.named_parameters())
    assert state_keys(tm) == state_keys(jm)
    # names already holding a parameter/buffer/module of another kind
    assert_same_error(
        lambda: tm.register_parameter("b", torch.nn.Parameter(torch.zeros(1))),
        lambda: jm.register_parameter("b", jnn.Parameter(jaxmod.zeros(1))),
    )
    assert_same_error(
        lambda: tm.register_buffer("p", torch.zeros(1)),
        lambda: jm.register_buffer("p", jaxmod.zeros(1)),
    )
    assert_same_error(
        lambda: tm.add_module("p", torch.nn.ReLU()), lambda: jm.add_module("p", jnn.ReLU())
    )


def test_register_module_replaces_existing_child_in_place():
    tm, jm = both(_net)
    tm.add_module("l1", torch.nn.ReLU())
    jm.add_module("l1", jnn.ReLU())
    assert type(jm.l1) is jnn.ReLU and list(jm._modules) == list(tm._modules)


# ------------------------------------------------------- before super().__init__
@pytest.mark.parametrize("kind", ["parameter", "module", "buffer_method", "param_method"])
def test_assign_before_super_init_errors_match_torch(kind):
    def make(lib):
        class Early(lib.nn.Module):
            def __init__(self):
                if kind == "parameter":
                    self.p = lib.nn.Parameter(lib.zeros(1))
                elif kind == "module":
                    self.m = lib.nn.ReLU()
                elif kind == "buffer_method":
                    self.register_buffer("b", lib.zeros(1))
                else:
                    self.register_parameter("p", lib.nn.Parameter(lib.zeros(1)))
                super().__init__()

        return Early

    assert_same_error(lambda: make(TORCH)(), lambda: make(JAX)())


def test_module_init_rejects_unexpected_arguments_like_torch():
    assert_same_error(lambda: torch.nn.Module(1), lambda: jnn.Module(1))
    assert_same_error(lambda: torch.nn.Module(foo=1), lambda: jnn.Module(foo=1))


# --------------------------------------------------------------- forward errors
def test_calling_module_without_forward_raises_like_torch():
    tm, jm = both(_empty)
    assert_same_error(lambda: tm(torch.zeros(1)), lambda: jm(jaxmod.zeros(1)))


@pytest.mark.parametrize("cls", ["ModuleList", "ModuleDict"])
def test_calling_module_list_and_dict_raises_not_implemented_like_torch(cls):
    tm = getattr(torch.nn, cls)()
    jm = getattr(jnn, cls)()
    typ, msg = assert_same_error(lambda: tm(torch.zeros(1)), lambda: jm(jaxmod.zeros(1)))
    assert typ is NotImplementedError and cls in msg


# -------------------------------------------------------------------- __dir__
def test_dir_lists_registered_names_like_torch():
    tm, jm = both(_net)
    tm.plain = jm.plain = 1
    td, jd = set(dir(tm)), set(dir(jm))
    for name in ("l1", "p", "b", "plain", "training", "forward", "state_dict", "_parameters"):
        assert name in td and name in jd, name
    assert dir(jm) == sorted(dir(jm))


def test_dir_of_sequential_hides_numeric_keys_like_torch():
    tm, jm = both(lambda lib: lib.nn.Sequential(lib.nn.ReLU(), lib.nn.ReLU()))
    assert not any(k.isdigit() for k in dir(tm))
    assert not any(k.isdigit() for k in dir(jm))


def test_registered_members_appear_in_each_lib_identically():
    for lib in LIBS:
        m = _net(lib)
        assert isinstance(m.l1, lib.nn.Linear)
        assert isinstance(m.p, lib.nn.Parameter)
        assert "b" in m._buffers


def test_array_and_box_values_are_named_as_tensors_in_errors_like_torch():
    # torch.typename names every tensor (Parameter and Buffer included) by its tensor
    # type; jaxmod names every array or box "jax.Array"
    tm, jm = both(_net)
    cases = [
        (lambda m, lib: m.add_module("x", lib.zeros(1))),
        (lambda m, lib: m.add_module("x", lib.nn.Parameter(lib.zeros(1)))),
        (lambda m, lib: m.register_parameter("x", lib.nn.Buffer(lib.zeros(1)))),
        (lambda m, lib: setattr(m, "p", lib.nn.Buffer(lib.zeros(1)))),
        (lambda m, lib: setattr(m, "l1", lib.nn.Buffer(lib.zeros(1)))),
    ]
    for case in cases:
        assert_same_error(lambda c=case: c(tm, TORCH), lambda c=case: c(jm, JAX))
