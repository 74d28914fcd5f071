"""jaxmod.export: StableHLO artifacts that serialise, run without jaxmod (a subprocess that
imports only jax and numpy), and equal the jaxmod model's outputs; weights as constants or as
an argument (a state_dict), eval mode by default, refusals for what an export cannot carry."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn
from jaxmod.export import ExportError, export

X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)


def _model():
    return nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(8, 2))  # fmt: skip


def _snapshot(m):
    return {k: np.array(v) for k, v in m.state_dict().items()}


RUNNER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import jax
    cases = np.load(sys.argv[1], allow_pickle=False)
    out = {}
    for name in [k[:-6] for k in cases.files if k.endswith(".bytes")]:
        exp = jax.export.deserialize(bytearray(cases[name + ".bytes"].tobytes()))
        args = [cases[f"{name}.arg{i}"] for i in range(int(cases[name + ".nargs"]))]
        if name + ".weights" in cases.files:
            keys = str(cases[name + ".weights"]).split(",")
            args.insert(0, {k: cases[f"{name}.w.{k}"] for k in keys})
        out[name] = np.asarray(exp.call(*args))
    assert "jaxmod" not in sys.modules and "torch" not in sys.modules, sorted(sys.modules)
    np.savez(sys.argv[2], **out)
    """
)


def test_round_trip_in_a_process_without_jaxmod(tmp_path):
    model = _model()
    with jaxmod.no_grad():
        for _ in range(2):  # move the running statistics off their initial values
            model(X)
    model.train()
    b = jax.export.symbolic_shape("b")[0]
    sd = {k: np.asarray(v) for k, v in model.state_dict().items()}
    cases = {
        "constants": (export(model, X), [X], None),
        "any_batch": (export(model, jax.ShapeDtypeStruct((b, 3), jnp.float32)), [X[:3]], None),
        "function": (export(lambda x: jax.nn.softmax(model(x), -1), X), [X], None),
        "argument": (export(model, X, weights="argument"), [X], sd),
    }
    assert model.training and model[3].training  # modes restored
    with jaxmod.no_grad():
        model.eval()
        want = {"constants": model(X), "any_batch": model(X[:3]),
                "function": jax.nn.softmax(model(X), -1), "argument": model(X)}  # fmt: skip
    blobs = {}
    for name, (exp, args, weights) in cases.items():
        blobs[f"{name}.bytes"] = np.frombuffer(bytes(exp.serialize()), np.uint8)
        blobs[f"{name}.nargs"] = np.array(len(args))
        for i, a in enumerate(args):
            blobs[f"{name}.arg{i}"] = a
        if weights is not None:
            blobs[f"{name}.weights"] = np.array(",".join(weights))
            blobs.update({f"{name}.w.{k}": v for k, v in weights.items()})
    np.savez(tmp_path / "cases.npz", **blobs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "cases.npz"), str(tmp_path / "out.npz")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for name in cases:
        np.testing.assert_allclose(got[name], np.asarray(want[name]), rtol=1e-5, atol=1e-6,
                                   err_msg=name)  # fmt: skip


def test_weights_argument_runs_other_weights_and_names_the_step():
    model = _model().eval()
    exp = export(model, X, weights="argument")
    assert exp.fun_name == "Sequential"
    assert "@jit_Sequential" in exp.mlir_module()
    other = _model().eval()
    sd = {k: np.asarray(v) for k, v in other.state_dict().items()}
    np.testing.assert_allclose(np.asarray(exp.call(sd, X)), np.asarray(other(X)), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    with pytest.raises(ExportError, match="needs a Module"):
        export(lambda x: model(x), X, weights="argument")


def test_constants_are_baked_in_and_the_model_is_unchanged():
    model = _model()
    before = _snapshot(model)
    key = jax.random.key_data(jaxmod.default_generator.get_state())
    exp = export(model, X)
    assert len(exp.in_avals) == 1  # the input only: weights are constants
    np.testing.assert_array_equal(
        np.asarray(jax.random.key_data(jaxmod.default_generator.get_state())), np.asarray(key)
    )
    after = _snapshot(model)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    model.eval()
    np.testing.assert_allclose(np.asarray(exp.call(X)), np.asarray(model(X)), rtol=1e-6)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)), "draws random numbers"),
        (lambda: nn.BatchNorm1d(3), r"changes state \(Buffer 'model.running_mean'"),
    ],
    ids=["dropout_in_train_mode", "batchnorm_in_train_mode"],
)
def test_current_mode_export_refuses_randomness_and_state_updates(make, match):
    model = make()
    before = _snapshot(model)
    with pytest.raises(ExportError, match=match):
        export(model, X, eval_mode=False)
    after = _snapshot(model)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    assert model.training


def test_static_arguments_are_baked_and_mixed_ones_refused():
    class Scale(nn.Module):
        def forward(self, x, factor, *, twice=False):
            return x * factor * (2 if twice else 1)

    exp = export(Scale(), X, 3.0, kwargs={"twice": True})
    assert len(exp.in_avals) == 1
    np.testing.assert_allclose(np.asarray(exp.call(X)), X * 6, rtol=1e-6)
    with pytest.raises(ExportError, match="mixes arrays"):
        export(Scale(), (X, 2), 1.0)
    with pytest.raises(ValueError, match="weights must be"):
        export(Scale(), X, 1.0, weights="params")


def test_torch_style_model_exported_from_tensors_serializes_with_plain_arrays():
    class ViewNet(nn.Module):  # torch tensor code on its input: needs a Tensor
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 2)

        def forward(self, x):
            return self.fc(x.view(x.size(0), -1)).softmax(dim=-1)

    model = ViewNet()
    x = jaxmod.ones(2, 3, 4)
    exported = jaxmod.export(model, x)
    back = jax.export.deserialize(exported.serialize())
    out = back.call(jnp.ones((2, 3, 4)))
    assert isinstance(out, jax.Array)
    np.testing.assert_allclose(np.asarray(out), model(x).numpy(), rtol=1e-6)
