"""jaxmod.summary: torch's parameter counts and output shapes in torchinfo's layout, nothing
computed on the device, FLOPs and forward/backward memory from XLA's analyses."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn

ROOT = Path(__file__).resolve().parent.parent
summary_mod = importlib.import_module(
    "jaxmod.summary"
)  # the module (jaxmod.summary is the function)


def _example(name: str):
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _torch_shapes(tmodel, x) -> dict[str, tuple]:
    shapes = {}

    def hook(name):
        def record(mod, args, out):
            shapes.setdefault(name, tuple(out.shape))  # returns None: output unchanged

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in tmodel.named_modules()]
    tmodel.eval()
    tmodel(x)
    for h in handles:
        h.remove()
    return shapes


def _check_against_torch(torch, jmodel, tmodel, shape):
    rows = jaxmod.summary(jmodel, jax.ShapeDtypeStruct(shape, jnp.float32), print_fn=None,
                          cost=False)  # fmt: skip
    assert sum(r.num_params for r in rows) == sum(p.numel() for p in tmodel.parameters())
    t_own = {n: sum(p.numel() for p in m.parameters(recurse=False)) for n, m in
             tmodel.named_modules()}  # fmt: skip
    t_shapes = _torch_shapes(tmodel, torch.zeros(shape))
    assert [r.path for r in rows] == list(t_own)
    for r in rows:
        assert r.num_params == t_own[r.path], r.path
        assert r.output_shape == t_shapes[r.path], r.path
        if r.path:
            assert r.type == type(tmodel.get_submodule(r.path)).__name__
    return rows


def test_mlp_matches_torch(torch):
    mlp = _example("mlp")
    tm = torch.nn.Sequential()  # the torch MLP of examples/mlp.py, same attribute names
    tm.hidden, tm.act, tm.output = (
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    rows = _check_against_torch(torch, mlp.MLP(), tm, (2, 784))
    assert [r.depth for r in rows] == [0, 1, 1, 1]
    assert rows[1].trainable is True and rows[2].trainable is None


def test_lenet_matches_torch(torch):
    if not all(hasattr(nn, n) for n in ("Conv2d", "MaxPool2d", "Dropout")):
        pytest.skip("nn.Conv2d / nn.MaxPool2d / nn.Dropout not available yet")
    digits = _example("train_digits")
    tnn = torch.nn
    tm = tnn.Module()
    tm.features = tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
    )  # fmt: skip
    tm.classifier = tnn.Sequential(
        tnn.Linear(256, 128), tnn.ReLU(), tnn.Dropout(0.2), tnn.Linear(128, 10)
    )
    tm.forward = lambda x: tm.classifier(tm.features(x).flatten(1))
    rows = _check_against_torch(torch, digits.LeNet(), tm, (5, 1, 8, 8))
    by_path = {r.path: r for r in rows}
    assert by_path[""].output_shape == (5, 10)
    assert by_path["features.2"].output_shape == (5, 32, 4, 4)
    assert by_path["features.0"].num_params == 32 * 9 + 32


@pytest.mark.parametrize("cost", [False, True])
def test_no_device_computation(monkeypatch, cost):
    calls = []
    real = jax.eval_shape

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(summary_mod.jax, "eval_shape", spy)
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 4)

        def forward(self, x):
            seen.append(
                (isinstance(x, jax.core.Tracer), isinstance(self.lin.weight.value, jax.core.Tracer))
            )
            return self.lin(x)

    model = Probe()
    before = np.asarray(model.lin.weight.value)
    rows = jaxmod.summary(model, jnp.ones((2, 3)), print_fn=None, cost=cost)
    assert calls == [1]
    # inputs and parameters are abstract in every trace (shapes; XLA's lowering): nothing
    # is computed
    assert seen == [(True, True)] * (3 if cost else 1)
    assert rows[0].output_shape == (2, 4)
    assert not isinstance(model.lin.weight.value, jax.core.Tracer)  # restored
    np.testing.assert_array_equal(np.asarray(model.lin.weight.value), before)


def test_modes_generator_and_requires_grad_restored():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    if hasattr(nn, "Dropout"):
        model.append(nn.Dropout(0.5))
    model[2].eval()  # a mixed-mode model keeps each module's own mode
    model[0].requires_grad_(False)
    key = jaxmod.default_generator.get_state()
    rows = jaxmod.summary(model, jnp.ones((3, 4)), print_fn=None, cost=False)
    assert model.training and model[0].training and not model[2].training
    assert bool(jnp.all(jax.random.key_data(jaxmod.default_generator.get_state())
                        == jax.random.key_data(key)))  # fmt: skip
    assert rows[1].trainable is False and rows[3].trainable is True
    assert (rows[1].num_params, rows[1].trainable_params) == (40, 0)


def test_table_totals_depth_and_kwargs():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
            self.head = nn.Linear(4, 1)
            self.register_buffer("scale", jnp.ones(4))

        def forward(self, x, *, repeat=1):
            for _ in range(repeat):  # a Python int kwarg stays static
                x = self.block(x) * self.scale
            return self.head(x)

    out = []
    rows = jaxmod.summary(Twice(), jnp.ones((2, 4)), repeat=2, depth=1, print_fn=out.append)
    text = out[0]
    assert "Total params: 25" in text and "Trainable params: 25" in text
    assert (rows.param_bytes, rows.buffer_bytes) == (100, 16)  # 25 + 4 float32 entries
    assert "Params size (MB): 0.00" in text and "Buffers size (MB): 0.00" in text
    assert "Linear: 2-1" not in text  # depth 1 hides block's children...
    assert "├─Sequential: 1-1" in text and " 20 " in text  # ...and counts their parameters
    assert {r.path: r.num_calls for r in rows}["block"] == 2
    assert "[2, 4] x2" in text
    assert rows[-1].as_dict()["output_shape"] == (2, 1)


def _mlp():
    return nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 2), nn.BatchNorm1d(2))
    )


def test_torchinfo_layout():
    model = _mlp()
    model[0].requires_grad_(False)
    model[2][1].weight.requires_grad_(False)
    rows = jaxmod.summary(model, (3, 4), print_fn=None, cost=False)
    lines = str(rows).splitlines()
    width = 40 + 3 * 25
    assert lines[0] == lines[2] == "=" * width
    assert lines[1] == "Layer (type:depth-idx)".ljust(41) + "Output Shape".ljust(26) + (
        "Param #".ljust(26) + "Trainable"
    )
    body = lines[3:9]
    cells = [[line[:41].strip()] + [line[41 + 26 * i : 41 + 26 * (i + 1)].strip()
                                     for i in range(3)] for line in body]  # fmt: skip
    assert [c[0] for c in cells] == [
        "Sequential", "├─Linear: 1-1", "├─ReLU: 1-2", "├─Sequential: 1-3",
        "│    └─Linear: 2-1", "│    └─BatchNorm1d: 2-2",
    ]  # fmt: skip
    assert [c[1:] for c in cells] == [
        ["[3, 2]", "--", "--"],
        ["[3, 8]", "(40)", "False"],  # frozen parameters in parentheses, as torchinfo
        ["[3, 8]", "--", "--"],
        ["[3, 2]", "--", "--"],
        ["[3, 2]", "18", "True"],
        ["[3, 2]", "4", "Partial"],
    ]
    assert lines[9] == "=" * width
    assert lines[10:13] == ["Total params: 62", "Trainable params: 20", "Non-trainable params: 42"]
    assert lines[13] == "=" * width and lines[14] == "Input size (MB): 0.00"
    assert lines[-2] == "Estimated Total Size (MB): 0.00" and lines[-1] == "=" * width
    ascii_rows = jaxmod.summary(model, (3, 4), print_fn=None, cost=False,
                                row_settings=("ascii_only", "var_names"))  # fmt: skip
    assert "|    + Linear (0)" in str(ascii_rows) and "Layer (type (var_name))" in str(ascii_rows)


@pytest.mark.parametrize(
    "call",
    [
        lambda f, m: f(m, (5, 3)),  # torchinfo's positional input_size
        lambda f, m: f(m, input_size=(5, 3)),
        lambda f, m: f(m, input_size=[(5, 3)], dtypes=[jnp.float32]),
        lambda f, m: f(m, input_data=jnp.ones((5, 3))),
        lambda f, m: f(m, input_data=[jnp.ones((5, 3))]),
        lambda f, m: f(m, input_data={"input": jnp.ones((5, 3))}),  # Linear.forward(input)
        lambda f, m: f(m, jax.ShapeDtypeStruct((5, 3), jnp.float32)),
    ],
    ids=[
        "positional_size",
        "input_size",
        "sizes_dtypes",
        "data",
        "data_list",
        "data_dict",
        "placeholder",
    ],  # fmt: skip
)
def test_ways_of_giving_the_input(call):
    rows = call(lambda m, *a, **k: jaxmod.summary(m, *a, print_fn=None, cost=False, **k),
                nn.Linear(3, 2))  # fmt: skip
    assert rows[0].output_shape == (5, 2) and rows.input_bytes == 5 * 3 * 4


def test_dtypes_for_integer_inputs(torch):
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.out = nn.Linear(8, 2)

        def forward(self, tokens, feats):
            return self.out(jnp.concatenate([self.emb(tokens), feats], -1))

    rows = jaxmod.summary(Tagger(), [(2, 7), (2, 7, 4)], dtypes=[torch.long, torch.float],
                          print_fn=None)  # fmt: skip
    assert rows[0].output_shape == (2, 7, 2)
    assert rows.input_bytes == 2 * 7 * 4 + 2 * 7 * 4 * 4  # int32 tokens (x64 off), floats


def test_flops_and_memory_from_xla():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    rows = jaxmod.summary(model, (8, 16), print_fn=None, col_names=("output_size", "flops"))
    want = {"0": 2 * 8 * 16 * 32 + 8 * 32, "1": 8 * 32, "2": 2 * 8 * 32 * 4 + 8 * 4}
    assert {r.path: r.flops for r in rows if r.path} == want  # matmul 2*m*n*k, + bias, relu
    assert rows.flops == sum(want.values())
    assert "Total FLOPs (K): 10.78" in str(rows)
    big = jaxmod.summary(model, (512, 16), print_fn=None)
    assert 0 < rows.activation_bytes < big.activation_bytes  # activations grow with batch
    assert big.activation_bytes >= 512 * 32 * 4  # at least the hidden layer, kept for backward
    assert "Forward/backward pass size (MB):" in str(big)


def test_bad_options_raise():
    with pytest.raises(ValueError, match='"mult_adds": use "flops"'):
        jaxmod.summary(nn.Linear(3, 2), (1, 3), col_names=("mult_adds",))
    with pytest.raises(ValueError, match="one way"):
        jaxmod.summary(nn.Linear(3, 2), jnp.ones((1, 3)), input_size=(1, 3))
    with pytest.raises(ValueError, match="2 dtypes for 1 input sizes"):
        jaxmod.summary(nn.Linear(3, 2), input_size=(1, 3), dtypes=[jnp.float32] * 2)
    printed = []
    jaxmod.summary(nn.Linear(3, 2), (1, 3), verbose=0, print_fn=printed.append, cost=False)
    assert printed == []


def test_tensor_input_gives_the_same_table_as_an_array():
    net = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 2))
    as_tensor = jaxmod.summary(net, jaxmod.ones(1, 64), print_fn=None)
    as_array = jaxmod.summary(net, jnp.ones((1, 64)), print_fn=None)
    assert [r.output_shape for r in as_tensor] == [(1, 2), (1, 8), (1, 8), (1, 2)]
    assert as_tensor.table == as_array.table
