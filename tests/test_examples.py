"""Smoke tests: every example runs end to end with tiny settings, and ``python -m jaxmod``.

Each example is loaded from its file and its ``main(argv)`` called in-process (so the
jaxmod under test is this checkout's), with settings that take a few seconds.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxmod import nn

ROOT = Path(__file__).resolve().parent.parent


def _main(name: str):
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.main


def _needs(*names: str) -> None:
    missing = [n for n in names if not hasattr(nn, n)]
    if missing:
        pytest.skip(f"nn.{', nn.'.join(missing)} not available yet")


def test_python_m_jaxmod(capsys):
    from jaxmod.__main__ import main

    assert main() == 0
    out = capsys.readouterr().out
    assert "jaxmod 0.1.0" in out and "backend:" in out
    assert out.strip().splitlines()[-1].startswith("self-check: PASS")


def test_train_digits(tmp_path):
    _needs("Conv2d", "MaxPool2d", "Dropout")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    res = _main("train_digits")(
        ["--epochs", "2", "--batch-size", "128", "--out", str(tmp_path), "--no-progress"]
    )
    assert (tmp_path / "digits_checkpoint.safetensors").stat().st_size > 0
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert res["train_traces"] == 1 and res["eval_traces"] == 1  # compiled once each
    assert res["losses"][1] < res["losses"][0]
    assert res["accuracy"] > 0.3  # two short epochs; the full run reaches >= 97%


def test_char_transformer():
    _needs("Embedding", "TransformerEncoderLayer", "LayerNorm", "Transformer")
    res = _main("char_transformer")(
        [
            "--steps",
            "4",
            "--batch-size",
            "4",
            "--block-size",
            "16",
            "--sample-len",
            "6",
            "--layers",
            "1",
            "--d-model",
            "32",
            "--amp",  # mixed precision in a real jitted loop (float32 is the default path)
            "bf16",
        ]
    )
    assert res["traces"] == (1, 1)
    assert np.isfinite(res["loss"]) and len(res["sample"]) >= 6


def test_port_from_torch(torch):
    _needs("Conv2d", "MaxPool2d")
    res = _main("port_from_torch")(["--model", "lenet"])  # no files outside the repository
    assert res["err_torch_to_jaxmod"] < 1e-4 and res["err_jaxmod_to_torch"] == 0.0


def test_finetune_frozen():
    pytest.importorskip("sklearn")
    res = _main("finetune_frozen")(["--steps", "5"])
    assert res["unchanged"] and res["grad_keys"] == ["head.weight", "head.bias"]
    assert res["exported_ok"]


def test_ensemble_vmap():
    res = _main("ensemble_vmap")(["--members", "3", "--steps", "5"])
    assert res["member_mse"].shape == (3,) and res["traces"] == 1


def test_grad_accumulation():
    res = _main("grad_accumulation")(["--steps", "2"])
    assert res["grad_error"] < 1e-5 and res["traces"] == (1, 1)
