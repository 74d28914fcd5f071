"""Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict: jaxmod vs torch 2.13.

Modules are ``Linear(1, 1)`` tagged by a plain ``tag`` attribute so that the order of
the entries after an operation sequence can be compared between the two libraries.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from _torch_pairs import JAX, LIBS, TORCH, assert_same_error, both, pair, state_keys

import jaxmod
import jaxmod.nn as jnn


def L(lib, tag):
    m = lib.nn.Linear(1, 1)  # one shape for all: jax compiles initialisers per shape
    m.tag = tag
    return m


def tags(container):
    return [m.tag for m in container]


def keys(container):
    return list(container._modules)


def same_layout(tc, jc):
    assert keys(tc) == keys(jc)
    assert tags(tc) == tags(jc)
    assert state_keys(tc) == state_keys(jc)


# ------------------------------------------------------------------- Sequential
def test_sequential_positional_and_ordered_dict_ctor():
    tp, jp = both(lambda lib: lib.nn.Sequential(L(lib, 1), L(lib, 2), L(lib, 3)))
    same_layout(tp, jp)
    od = lambda lib: lib.nn.Sequential(OrderedDict([("x", L(lib, 1)), ("y", L(lib, 2))]))  # noqa: E731
    to, jo = both(od)
    assert keys(jo) == keys(to) == ["x", "y"]
    same_layout(to, jo)


@pytest.mark.parametrize("idx", [0, 2, -1, -3])
def test_sequential_int_indexing(idx):
    tc, jc = both(lambda lib: lib.nn.Sequential(*[L(lib, i) for i in (1, 2, 3)]))
    assert tc[idx].tag == jc[idx].tag


@pytest.mark.parametrize("idx", [3, -4])
def test_sequential_index_errors_match_torch(idx):
    tc, jc = both(lambda lib: lib.nn.Sequential(*[L(lib, i) for i in (1, 2, 3)]))
    assert_same_error(lambda: tc[idx], lambda: jc[idx])
    assert_same_error(lambda: tc.__delitem__(idx), lambda: jc.__delitem__(idx))


@pytest.mark.parametrize(
    "sl", [slice(1, None), slice(None, 2), slice(None, None, 2), slice(-2, None)]
)
def test_sequential_slice_returns_sequential_with_original_keys(sl):
    tc, jc = both(lambda lib: lib.nn.Sequential(*[L(lib, i) for i in (1, 2, 3, 4)]))
    ts, js = tc[sl], jc[sl]
    assert type(js) is jnn.Sequential
    same_layout(ts, js)
    od = lambda lib: lib.nn.Sequential(OrderedDict((k, L(lib, i)) for i, k in enumerate("abcd")))  # noqa: E731
    to, jo = both(od)
    same_layout(to[sl], jo[sl])


def test_sequential_slice_shares_modules():
    jc = jnn.Sequential(jnn.Linear(1, 1), jnn.Linear(2, 1))
    assert jc[1:][0] is jc[1]


def _seq_ops(lib):
    s = lib.nn.Sequential(L(lib, 1), L(lib, 2), L(lib, 3))
    s.append(L(lib, 4))
    s.insert(1, L(lib, 5))
    s.insert(-1, L(lib, 6))
    s.insert(5, L(lib, 7))  # at the end
    s.extend([L(lib, 8), L(lib, 9)])
    del s[0]
    del s[1:3]
    s[-1] = L(lib, 10)
    s.pop(1)
    return s


def test_sequential_append_insert_extend_del_pop_setitem_match_torch():
    tc, jc = both(_seq_ops)
    same_layout(tc, jc)


@pytest.mark.parametrize("idx", [7, -7])
def test_sequential_insert_out_of_range_errors_match_torch(idx):
    tc, jc = both(lambda lib: lib.nn.Sequential(L(lib, 1), L(lib, 2)))
    assert_same_error(lambda: tc.insert(idx, torch.nn.ReLU()), lambda: jc.insert(idx, jnn.ReLU()))


def test_sequential_insert_non_module_errors_match_torch():
    tc, jc = both(lambda lib: lib.nn.Sequential(L(lib, 1)))
    assert_same_error(lambda: tc.insert(0, 3), lambda: jc.insert(0, 3))


def test_sequential_delitem_renumbers_keys_like_torch():
    tc, jc = both(lambda lib: lib.nn.Sequential(*[L(lib, i) for i in range(1, 6)]))
    del tc[1], jc[1]
    assert keys(jc) == keys(tc) == ["0", "1", "2", "3"]
    del tc[::2], jc[::2]
    same_layout(tc, jc)


def test_sequential_add_iadd_mul_rmul_imul_match_torch():
    def ops(lib):
        a = lib.nn.Sequential(L(lib, 1), L(lib, 2))
        b = lib.nn.Sequential(L(lib, 3))
        out = {"add": a + b, "mul": b * 3, "rmul": 2 * a}
        c = lib.nn.Sequential(L(lib, 4))
        c += a
        out["iadd"] = c
        d = lib.nn.Sequential(L(lib, 5), L(lib, 6))
        d *= 2
        out["imul"] = d
        return out

    t, j = both(ops)
    for k in t:
        assert type(j[k]) is jnn.Sequential
        same_layout(t[k], j[k])
    # repeated modules are the same objects, counted once in parameters()
    assert j["mul"][0] is j["mul"][1]
    assert len(list(j["mul"].parameters())) == len(list(t["mul"].parameters())) == 2


def test_sequential_operator_errors_match_torch():
    tc, jc = both(lambda lib: lib.nn.Sequential(L(lib, 1)))
    assert_same_error(lambda: tc + [1], lambda: jc + [1])
    assert_same_error(lambda: tc.__iadd__([1]), lambda: jc.__iadd__([1]))
    assert_same_error(lambda: tc * 0, lambda: jc * 0)
    assert_same_error(lambda: tc * -1, lambda: jc * -1)
    # the type in the message differs (torch vs jaxmod class), the start does not
    t_type, t_msg = type(e := pytest.raises(TypeError, lambda: tc * 1.5).value), str(e)
    j_msg = str(pytest.raises(TypeError, lambda: jc * 1.5).value)
    assert t_type is TypeError
    assert t_msg.split(":")[0] == j_msg.split(":")[0]
    assert t_msg.endswith("<class 'float'>") and j_msg.endswith("<class 'float'>")


def test_sequential_len_iter_and_forward_match_torch():
    tc, jc = pair(
        lambda lib: lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU(), lib.nn.Linear(4, 2))
    )
    assert len(tc) == len(jc) == 3
    assert [type(m).__name__ for m in tc] == [type(m).__name__ for m in jc]
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    with torch.no_grad():
        expected = tc(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(jc(x)), expected, rtol=1e-5, atol=1e-6)
    assert np.asarray(jnn.Sequential()(jaxmod.ones(2))).tolist() == [1.0, 1.0]


# ------------------------------------------------------------------- ModuleList
def _list_ops(lib):
    ml = lib.nn.ModuleList([L(lib, 1), L(lib, 2)])
    ml.append(L(lib, 3))
    ml.extend([L(lib, 4), L(lib, 5)])
    ml += [L(lib, 6)]
    ml.insert(0, L(lib, 7))
    ml.insert(3, L(lib, 8))
    ml[2] = L(lib, 9)
    ml[-1] = L(lib, 10)
    del ml[1]
    del ml[-2:]
    popped = ml.pop(0)
    return ml, popped


def test_module_list_operation_sequence_matches_torch():
    (tc, tp), (jc, jp) = both(_list_ops)
    same_layout(tc, jc)
    assert tp.tag == jp.tag


@pytest.mark.parametrize("sl", [slice(1, None), slice(None, None, 2), slice(-2, None), slice(3, 1)])
def test_module_list_slicing_returns_renumbered_module_list(sl):
    tc, jc = both(lambda lib: lib.nn.ModuleList([L(lib, i) for i in range(1, 5)]))
    ts, js = tc[sl], jc[sl]
    assert type(js) is jnn.ModuleList
    same_layout(ts, js)


def test_module_list_del_slice_and_pop_slice_match_torch():
    def ops(lib):
        ml = lib.nn.ModuleList([L(lib, i) for i in range(1, 8)])
        del ml[1::2]
        out = ml.pop(slice(0, 2))
        return ml, out

    (tc, tp), (jc, jp) = both(ops)
    same_layout(tc, jc)
    same_layout(tp, jp)


def test_module_list_add_returns_new_list_like_torch():
    def ops(lib):
        a = lib.nn.ModuleList([L(lib, 1)])
        b = lib.nn.ModuleList([L(lib, 2), L(lib, 3)])
        return a + b, a

    (tc, ta), (jc, ja) = both(ops)
    assert type(jc) is jnn.ModuleList
    same_layout(tc, jc)
    same_layout(ta, ja)  # left operand unchanged


@pytest.mark.parametrize("idx", [3, -4])
def test_module_list_index_errors_match_torch(idx):
    tc, jc = both(lambda lib: lib.nn.ModuleList([L(lib, i) for i in (1, 2, 3)]))
    assert_same_error(lambda: tc[idx], lambda: jc[idx])
    assert_same_error(
        lambda: tc.__setitem__(idx, torch.nn.ReLU()), lambda: jc.__setitem__(idx, jnn.ReLU())
    )
    assert_same_error(lambda: tc.__delitem__(idx), lambda: jc.__delitem__(idx))


def test_module_list_extend_and_setitem_type_errors_match_torch():
    tc, jc = both(lambda lib: lib.nn.ModuleList([L(lib, 1)]))
    assert_same_error(lambda: tc.extend(3), lambda: jc.extend(3))
    assert_same_error(lambda: tc.__iadd__(3), lambda: jc.__iadd__(3))
    assert_same_error(lambda: tc.__setitem__(0, 3), lambda: jc.__setitem__(0, 3))
    assert_same_error(lambda: tc.append(3), lambda: jc.append(3))


def test_module_list_insert_negative_index_follows_list_insert():
    # torch's ModuleList.insert(-1, m) overwrites the last entry (a torch bug); jaxmod
    # inserts before the last entry, exactly as list.insert does.
    for index in range(-4, 5):
        ref = [1, 2, 3]
        ref.insert(index, 9)
        ml = jnn.ModuleList([L(JAX, i) for i in (1, 2, 3)])
        ml.insert(index, L(JAX, 9))
        assert tags(ml) == ref, index
        assert keys(ml) == ["0", "1", "2", "3"]
        assert len(list(ml.parameters())) == 8


def test_module_list_insert_nonnegative_index_matches_torch():
    for index in (0, 1, 3):
        tc, jc = both(lambda lib: lib.nn.ModuleList([L(lib, i) for i in (1, 2, 3)]))
        tc.insert(index, L(TORCH, 9))
        jc.insert(index, L(JAX, 9))
        same_layout(tc, jc)


def test_module_list_registers_parameters_but_plain_list_does_not():
    def build(lib):
        class WithPlainList(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = [lib.nn.Linear(2, 2), lib.nn.Linear(2, 2)]

        class WithModuleList(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = lib.nn.ModuleList([lib.nn.Linear(2, 2), lib.nn.Linear(2, 2)])

        return WithPlainList(), WithModuleList()

    (tp, tl), (jp, jl) = both(build)
    assert list(jp.parameters()) == [] and list(tp.parameters()) == []
    assert state_keys(jp) == state_keys(tp) == []
    assert (
        state_keys(jl)
        == state_keys(tl)
        == [
            "layers.0.weight",
            "layers.0.bias",
            "layers.1.weight",
            "layers.1.bias",
        ]
    )


def test_module_list_len_iter_and_same_module_twice():
    def build(lib):
        lin = L(lib, 1)
        return lib.nn.ModuleList([lin, lin, L(lib, 2)])

    tc, jc = both(build)
    assert len(tc) == len(jc) == 3
    same_layout(tc, jc)
    assert len(list(jc.parameters())) == len(list(tc.parameters())) == 4
    assert len(list(jc.children())) == len(list(tc.children())) == 2


# ------------------------------------------------------------------- ModuleDict
def _dict_ops(lib):
    md = lib.nn.ModuleDict({"b": L(lib, 1), "a": L(lib, 2)})  # insertion order kept
    md.update(OrderedDict([("d", L(lib, 3)), ("c", L(lib, 4))]))
    md.update([("e", L(lib, 5)), ("b", L(lib, 6))])  # existing key keeps position
    md.update({"z": L(lib, 7), "y": L(lib, 8)})
    md.update(lib.nn.ModuleDict({"m": L(lib, 9)}))
    md["f"] = L(lib, 10)
    del md["a"]
    popped = md.pop("d")
    return md, popped


def test_module_dict_operation_sequence_matches_torch():
    (tc, tp), (jc, jp) = both(_dict_ops)
    assert list(tc.keys()) == list(jc.keys()) == list(tc) == list(jc)
    assert [m.tag for m in tc.values()] == [m.tag for m in jc.values()]
    assert [(k, v.tag) for k, v in tc.items()] == [(k, v.tag) for k, v in jc.items()]
    assert state_keys(tc) == state_keys(jc)
    assert tp.tag == jp.tag
    assert ("f" in jc) and ("a" not in jc) and len(jc) == len(tc)


def test_module_dict_clear_and_get_like_torch():
    (tc, _), (jc, _) = both(_dict_ops)
    assert jc["f"].tag == tc["f"].tag
    tc.clear()
    jc.clear()
    assert len(jc) == len(tc) == 0 and state_keys(jc) == []


def test_module_dict_errors_match_torch():
    tc, jc = both(lambda lib: lib.nn.ModuleDict({"a": L(lib, 1)}))
    assert_same_error(lambda: tc["nope"], lambda: jc["nope"])
    assert_same_error(lambda: tc.pop("nope"), lambda: jc.pop("nope"))
    assert_same_error(lambda: tc.update(3), lambda: jc.update(3))
    assert_same_error(lambda: tc.update([3]), lambda: jc.update([3]))
    assert_same_error(lambda: tc.update([("a",)]), lambda: jc.update([("a",)]))
    assert_same_error(
        lambda: tc.__setitem__("x.y", torch.nn.ReLU()), lambda: jc.__setitem__("x.y", jnn.ReLU())
    )
    assert_same_error(lambda: tc.__setitem__("x", 3), lambda: jc.__setitem__("x", 3))
    assert_same_error(lambda: tc.__delitem__("nope"), lambda: jc.__delitem__("nope"))


# ---------------------------------------------------------------- ParameterList
def test_parameter_list_wraps_arrays_and_registers_like_torch():
    def build(lib):
        pl = lib.nn.ParameterList([lib.nn.Parameter(lib.randn(2)), lib.randn(3)])
        pl.append(lib.randn(4))
        pl.extend([lib.randn(5)])
        pl += [lib.nn.Parameter(lib.randn(1))]
        pl[0] = lib.randn(2, 2)
        return pl

    tc, jc = both(build)
    assert len(tc) == len(jc) == 5
    assert [p.shape for p in jc] == [tuple(p.shape) for p in tc]
    assert all(isinstance(p, jnn.Parameter) for p in jc)
    assert state_keys(tc) == state_keys(jc) == ["0", "1", "2", "3", "4"]
    assert [n for n, _ in tc.named_parameters()] == [n for n, _ in jc.named_parameters()]
    assert [tuple(p.shape) for p in tc[1:3]] == [p.shape for p in jc[1:3]]
    assert type(jc[1:3]) is jnn.ParameterList and jc[1:3][0] is jc[1]
    assert jc[-1] is jc[4]


def test_parameter_list_errors_match_torch():
    tc, jc = both(lambda lib: lib.nn.ParameterList([lib.randn(2)]))
    assert_same_error(lambda: tc[1], lambda: jc[1])
    assert_same_error(lambda: tc.extend(3), lambda: jc.extend(3))
    assert_same_error(lambda: tc(1), lambda: jc(1))


def test_parameter_list_keeps_non_array_objects_like_torch():
    tc, jc = both(lambda lib: lib.nn.ParameterList([lib.randn(2), "text", 3]))
    assert jc[1] == tc[1] == "text" and jc[2] == tc[2] == 3
    assert state_keys(tc) == state_keys(jc) == ["0"]


def test_parameter_list_of_parameter_list_shares_boxes():
    a = jnn.ParameterList([jaxmod.randn(2), jaxmod.randn(3)])
    b = jnn.ParameterList(a)
    assert b[0] is a[0] and b[1] is a[1]


# ---------------------------------------------------------------- ParameterDict
def test_parameter_dict_plain_dict_sorts_but_ordered_dict_keeps_order():
    def build(lib):
        plain = lib.nn.ParameterDict({"b": lib.randn(1), "a": lib.randn(2), "c": lib.randn(3)})
        ordered = lib.nn.ParameterDict(
            OrderedDict([("b", lib.randn(1)), ("a", lib.randn(2)), ("c", lib.randn(3))])
        )
        pairs = lib.nn.ParameterDict([("z", lib.randn(1)), ("y", lib.randn(1))])
        return plain, ordered, pairs

    t, j = both(build)
    for tc, jc in zip(t, j):
        assert list(tc.keys()) == list(jc.keys()) == list(jc)
        assert state_keys(tc) == state_keys(jc)
    assert list(j[0].keys()) == ["a", "b", "c"]
    assert list(j[1].keys()) == ["b", "a", "c"]


def test_parameter_dict_operation_sequence_matches_torch():
    def ops(lib):
        pd = lib.nn.ParameterDict(OrderedDict([("w", lib.randn(2)), ("v", lib.randn(3))]))
        pd["u"] = lib.randn(4)
        d = pd.setdefault("t", lib.randn(1))
        same = pd.setdefault("w", lib.randn(9))
        pd.update({"s": lib.randn(5), "r": lib.randn(6)})
        item = pd.popitem()
        popped = pd.pop("v")
        got = (pd.get("u"), pd.get("nope"), pd.get("nope", 7))
        del pd["t"]
        merged = pd | lib.nn.ParameterDict(OrderedDict([("q", lib.randn(1)), ("w", lib.randn(2))]))
        fk = pd.fromkeys(["k1", "k2"])
        return pd, d, same, item, popped, got, merged, fk

    t, j = both(ops)
    tpd, jpd = t[0], j[0]
    assert list(tpd.keys()) == list(jpd.keys())
    assert state_keys(tpd) == state_keys(jpd)
    assert tuple(t[1].shape) == j[1].shape and tuple(t[2].shape) == j[2].shape == (2,)
    assert t[3][0] == j[3][0] and tuple(t[3][1].shape) == j[3][1].shape
    assert tuple(t[4].shape) == j[4].shape
    assert tuple(t[5][0].shape) == j[5][0].shape and t[5][1:] == j[5][1:] == (None, 7)
    assert list(t[6].keys()) == list(j[6].keys()) and type(j[6]) is jnn.ParameterDict
    assert list(t[7].keys()) == list(j[7].keys()) == ["k1", "k2"]
    assert [j[7][k] for k in j[7]] == [None, None]
    assert "u" in jpd and "t" not in jpd and len(jpd) == len(tpd)
    assert list(reversed(jpd)) == list(reversed(tpd))


def test_parameter_dict_values_are_parameters_and_copy_shares_them():
    pd = jnn.ParameterDict({"a": jaxmod.randn(2), "b": jnn.Buffer(jaxmod.randn(2))})
    assert all(isinstance(v, jnn.Parameter) for v in pd.values())
    c = pd.copy()
    assert c["a"] is pd["a"] and list(c) == list(pd)
    pd.clear()
    assert len(pd) == 0 and list(pd.parameters()) == [] and len(c) == 2


def test_parameter_dict_errors_match_torch():
    tc, jc = both(lambda lib: lib.nn.ParameterDict({"a": lib.randn(1)}))
    assert_same_error(lambda: tc["nope"], lambda: jc["nope"])
    assert_same_error(lambda: tc[1], lambda: jc[1])
    assert_same_error(lambda: tc.pop("nope"), lambda: jc.pop("nope"))
    assert_same_error(lambda: tc.update(3), lambda: jc.update(3))
    assert_same_error(lambda: tc.update([3]), lambda: jc.update([3]))
    assert_same_error(lambda: tc.update([("a",)]), lambda: jc.update([("a",)]))
    assert_same_error(lambda: tc(1), lambda: jc(1))


def test_containers_nested_in_model_give_torch_state_dict_keys():
    def build(lib):
        class Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.seq = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.ReLU())
                self.ml = lib.nn.ModuleList([lib.nn.Linear(2, 2)])
                self.md = lib.nn.ModuleDict({"x": lib.nn.Linear(2, 1)})
                self.pl = lib.nn.ParameterList([lib.randn(2)])
                self.pd = lib.nn.ParameterDict({"p": lib.randn(1)})

        return Net()

    tm, jm = pair(build)
    assert state_keys(tm) == state_keys(jm)
    for lib in LIBS:
        assert lib in (TORCH, JAX)
