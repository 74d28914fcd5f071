"""jaxmod.summary: torch's parameter counts, the right output shapes, and no FLOPs spent."""

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
    rows = jaxmod.summary(jmodel, jax.ShapeDtypeStruct(shape, jnp.float32), print_fn=None)
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


def test_no_device_computation(monkeypatch):
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
    rows = jaxmod.summary(model, jnp.ones((2, 3)), print_fn=None)
    assert calls == [1]
    assert seen == [(True, True)]  # inputs and parameters are abstract: nothing computed
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
    rows = jaxmod.summary(model, jnp.ones((3, 4)), print_fn=None)
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
    assert "Total size (bytes): 116" in text  # 25 float32 params + 4 float32 buffer entries
    assert "block.0" not in text and "  0 " not in text  # depth 1 hides block's children
    assert {r.path: r.num_calls for r in rows}["block"] == 2
    assert "[2, 4] x2" in text
    assert rows[-1].as_dict()["output_shape"] == (2, 1)
