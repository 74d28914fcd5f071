"""The model benchmarks measure what they claim: their hand-written raw JAX baselines compute
what the torch-style models compute, and ``benchmarks/models.py`` runs end to end (tiny
sizes, one round; nothing here is timed)."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import _model_zoo as zoo  # noqa: E402
import _raw_models as raw  # noqa: E402
import models  # noqa: E402


def test_raw_baselines_match_torch_models_and_models_benchmark_runs(torch) -> None:
    for name, layout in [("cnn", "NCHW"), ("cnn", "NHWC"), ("gpt", "NCHW"), ("lstm", "NCHW")]:
        cfg = zoo.spec(name, "tiny")
        torch.manual_seed(0)
        m = zoo.build(name, "torch", cfg)
        x, _ = zoo.batch(name, cfg)
        sd = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
        want = m(torch.from_numpy(x)).detach().numpy()
        after = {k: v.detach().numpy() for k, v in m.state_dict().items()}
        params, stats = raw.split_state(sd, {k for k, _ in m.named_parameters()}, layout)
        xx = x.transpose(0, 2, 3, 1) if layout == "NHWC" else x
        fwd = jax.jit(raw.forward(name, cfg), static_argnums=3)
        got, new = fwd(params, stats, xx, layout)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5, err_msg=name)
        for k, v in new.items():  # BatchNorm's running statistics after the forward
            np.testing.assert_allclose(np.asarray(v), after[k], rtol=1e-4, atol=1e-5, err_msg=k)
    res = models.main(["--tiny", "--models", "mlp", "--rounds", "1", "--no-torch"])["mlp"]
    assert {"raw jax.jit", "jaxmod.jit"} <= set(res)
    assert res["raw jax.jit"]["temp_mib"] >= 0 and res["jaxmod.jit"]["ratio"] > 0


def test_torch_spelled_attention_traces_to_as_many_ops_as_jnp_spelled() -> None:
    import tensor_ops

    n_torch, n_jnp = tensor_ops.op_counts()
    assert n_torch == n_jnp > 10, (n_torch, n_jnp)  # the Tensor layer adds no traced ops


def test_eager_backward_benchmark_runs_every_system() -> None:
    import eager_backward

    res = eager_backward.main(["--models", "cnn", "--size", "tiny", "--rounds", "1",
                               "--steps", "1"])["cnn"]  # fmt: skip
    assert set(res) == set(eager_backward.SYSTEMS)
    assert all(r["step_ms"] > 0 and r["first_ms"] > 0 for r in res.values())
