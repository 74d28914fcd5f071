"""``repr`` of modules and containers: byte-identical to torch 2.13 where torch has it."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from _torch_pairs import both

import jaxmod
import jaxmod.nn as jnn


def _mlp(lib):
    class MLP(lib.nn.Module):
        def __init__(self, input_size=784, hidden_size=256, output_size=10):
            super().__init__()
            self.hidden = lib.nn.Linear(input_size, hidden_size)
            self.act = lib.nn.ReLU()
            self.output = lib.nn.Linear(hidden_size, output_size)

    return MLP(4, 3, 2)


def _nest_mlp(lib):
    class NestMLP(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = lib.nn.Sequential(
                lib.nn.Linear(4, 3), lib.nn.ReLU(), lib.nn.Linear(3, 2), lib.nn.ReLU()
            )
            self.linear = lib.nn.Linear(2, 3)

    class FixedHiddenMLP(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.rand_weight = lib.randn(4, 4)  # plain array: not shown
            self.linear = lib.nn.Linear(4, 4)

    return lib.nn.Sequential(NestMLP(), lib.nn.Linear(3, 4), FixedHiddenMLP())


def _sequential(lib):
    return lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.ReLU(), lib.nn.Linear(3, 2))


def _sequential_od(lib):
    return lib.nn.Sequential(
        OrderedDict(
            [
                ("fc1", lib.nn.Linear(4, 3)),
                ("relu3", lib.nn.ReLU()),
                ("fc2", lib.nn.Linear(3, 2, bias=False)),
                ("relu4", lib.nn.ReLU(inplace=True)),
            ]
        )
    )


def _module_list_repeats(lib):
    ml = lib.nn.ModuleList([lib.nn.Linear(2, 2) for _ in range(3)])
    ml.append(lib.nn.ReLU())
    ml.extend([lib.nn.Linear(2, 2), lib.nn.Linear(2, 2), lib.nn.Linear(2, 3)])
    return ml


def _module_list_nested_repeats(lib):
    block = lambda: lib.nn.Sequential(lib.nn.Linear(4, 4), lib.nn.ReLU())  # noqa: E731
    return lib.nn.ModuleList([block(), block(), lib.nn.Identity(), block()])


def _module_dict(lib):
    d = lib.nn.ModuleDict({"linear": lib.nn.Linear(4, 3), "act": lib.nn.ReLU()})
    d["output"] = lib.nn.Linear(3, 2)
    d["inner"] = lib.nn.ModuleDict({"a": lib.nn.Identity()})
    return d


def _deep(lib):
    class Leaf(lib.nn.Module):
        def extra_repr(self):
            return "k=1"

    class MultiLine(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.child = Leaf()

        def extra_repr(self):
            return "first line\nsecond line"

    class MultiLineNoChild(lib.nn.Module):
        def extra_repr(self):
            return "a=1,\nb=2"

    class Root(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = lib.nn.Sequential(
                lib.nn.Sequential(MultiLine(), lib.nn.Identity()),
                lib.nn.ModuleList([Leaf(), Leaf()]),
            )
            self.b = MultiLineNoChild()
            self.c = lib.nn.ModuleDict()
            self.d = lib.nn.ModuleList()
            self.e = lib.nn.Sequential()
            self.register_module("f", None)

    return Root()


def _tied_children(lib):
    shared = lib.nn.Linear(2, 2)
    return lib.nn.Sequential(shared, lib.nn.ReLU(), shared)


@pytest.mark.parametrize(
    "builder",
    [
        _mlp,
        _nest_mlp,
        _sequential,
        _sequential_od,
        _module_list_repeats,
        _module_list_nested_repeats,
        _module_dict,
        _deep,
        _tied_children,
    ],
)
def test_repr_is_byte_identical_to_torch(builder):
    tm, jm = both(builder)
    assert repr(jm) == repr(tm)
    assert str(jm) == str(tm)


@pytest.mark.parametrize(
    "builder",
    [
        lambda lib: lib.nn.Identity(54, unused="x"),
        lambda lib: lib.nn.ReLU(),
        lambda lib: lib.nn.ReLU(inplace=True),
        lambda lib: lib.nn.Linear(3, 4),
        lambda lib: lib.nn.Linear(3, 4, bias=False),
        lambda lib: lib.nn.Module(),
        lambda lib: lib.nn.ModuleList(),
        lambda lib: lib.nn.ModuleDict(),
        lambda lib: lib.nn.Sequential(),
    ],
)
def test_leaf_repr_matches_torch(builder):
    tm, jm = both(builder)
    assert repr(jm) == repr(tm)


def test_module_list_collapses_repeated_children_format():
    ml = jnn.ModuleList([jnn.Linear(2, 2) for _ in range(3)])
    assert repr(ml) == (
        "ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n)"
    )


def test_repr_follows_structure_changes():
    tm, jm = both(_sequential)
    for m in (tm, jm):
        del m[1]
        m.append(m[0])
    assert repr(jm) == repr(tm)


def test_parameter_list_repr_uses_jax_dtype_names():
    pl = jnn.ParameterList(
        [jaxmod.zeros(2, 3), jnn.Parameter(jaxmod.zeros(4, dtype=jaxmod.nn.module.jnp.bfloat16))]
    )
    pl.append("text")
    assert repr(pl) == (
        "ParameterList(\n"
        "    (0): Parameter containing: [float32 of size 2x3]\n"
        "    (1): Parameter containing: [bfloat16 of size 4]\n"
        "    (2): Object of type: str\n"
        ")"
    )


def test_parameter_dict_repr_uses_jax_dtype_names():
    pd = jnn.ParameterDict(OrderedDict([("w", jaxmod.zeros(5)), ("s", jaxmod.zeros(()))]))
    assert repr(pd) == (
        "ParameterDict(\n"
        "    (w): Parameter containing: [float32 of size 5]\n"
        "    (s): Parameter containing: [float32 of size ]\n"
        ")"
    )


def test_parameter_list_repr_line_structure_matches_torch():
    # same lines as torch apart from the dtype spelling (torch.FloatTensor -> float32)
    tm, jm = both(lambda lib: lib.nn.ParameterList([lib.zeros(2, 3), lib.zeros(4)]))
    t = repr(tm).replace("torch.float32", "float32")
    assert repr(jm) == t


def test_empty_parameter_containers_repr_match_torch():
    tm, jm = both(lambda lib: lib.nn.ParameterList())
    assert repr(jm) == repr(tm)
    tm, jm = both(lambda lib: lib.nn.ParameterDict())
    assert repr(jm) == repr(tm)


def test_model_holding_parameter_containers_repr_matches_torch_modulo_dtype():
    def build(lib):
        class Holder(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = lib.nn.Linear(2, 2)
                self.pl = lib.nn.ParameterList([lib.zeros(2)])
                self.pd = lib.nn.ParameterDict({"b": lib.zeros(1, 2)})

        return Holder()

    tm, jm = both(build)
    assert repr(jm) == repr(tm).replace("torch.float32", "float32").replace(
        "torch.FloatTensor", "float32"
    )


BOX_CASES = [
    ("parameter", lambda L: L.nn.Parameter(L.zeros(2))),
    ("frozen parameter", lambda L: L.nn.Parameter(L.arange(3.0), requires_grad=False)),
    ("parameter data", lambda L: L.nn.Parameter(L.ones(2, 2)).data),
    ("buffer", lambda L: L.nn.Buffer(L.ones(3))),
]


@pytest.mark.parametrize("make", [c[1] for c in BOX_CASES], ids=[c[0] for c in BOX_CASES])
def test_box_repr_and_str_match_torch(make):
    j, t = make(jaxmod), make(torch)
    assert repr(j) == repr(t)
    assert str(j) == str(t)


FORMAT_CASES = {  # f"{x:spec}" as torch formats it: 0-d Tensors as their number
    "scalar_fixed": (lambda L: L.tensor(1.5), ".2f"),
    "scalar_plain": (lambda L: L.tensor(1.5), ""),
    "scalar_width": (lambda L: L.tensor(1.5), ">8"),
    "scalar_int": (lambda L: L.tensor(3), "d"),
    "scalar_bool": (lambda L: L.tensor(True), ""),
    "scalar_exp": (lambda L: L.tensor(0.00125), ".3e"),
    "vector_plain": (lambda L: L.tensor([1.5, 2.0]), ""),
    "vector_spec": (lambda L: L.tensor([1.5, 2.0]), ".2f"),
    "scalar_parameter_plain": (lambda L: L.nn.Parameter(L.tensor(2.0)), ""),
    "scalar_parameter_spec": (lambda L: L.nn.Parameter(L.tensor(2.0)), ".2f"),
}


@pytest.mark.parametrize("case", list(FORMAT_CASES))
def test_tensor_format_matches_torch(case):
    make, spec = FORMAT_CASES[case]

    def fmt(lib):
        try:
            return format(make(lib), spec)
        except TypeError as e:
            return f"TypeError: {e}"

    assert fmt(jaxmod) == fmt(torch)


def test_tensor_format_under_jit_shows_the_tensor_not_a_trace_error():
    seen = []
    jaxmod.jit(lambda x: seen.append(f"{x.sum()}") or x)(jaxmod.ones(2))
    assert seen and seen[0].startswith("tensor(")


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_copied_boxes_stay_boxes_with_their_flags(how):
    import copy
    import pickle

    dup = {
        "copy": copy.copy,
        "deepcopy": copy.deepcopy,
        "pickle": lambda x: pickle.loads(pickle.dumps(x)),
    }[how]
    p = jaxmod.nn.Parameter(jaxmod.ones(2), requires_grad=False)
    b = jaxmod.nn.Buffer(jaxmod.zeros(2), persistent=False)
    p2, b2 = dup(p), dup(b)
    assert type(p2) is jaxmod.nn.Parameter and p2.requires_grad is False
    assert type(b2) is jaxmod.nn.Buffer and b2.persistent is False
    np.testing.assert_array_equal(np.asarray(p2), np.ones(2))
    m = jaxmod.nn.Linear(2, 3)
    m2 = dup(m)
    assert type(m2.weight) is jaxmod.nn.Parameter
    assert (m2.weight is m.weight) == (how == "copy")  # a shallow copy shares, as in torch
