"""jaxmod.distributed: data parallel, FSDP and tensor parallel training on 8 host devices.

The device count is fixed when JAX starts, so the 8-device checks run in one subprocess
with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` that prints a JSON report; the
tests below read it. The multi-process test starts two processes that talk over loopback
(``jax.distributed`` with gloo CPU collectives).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxmod
from jaxmod import distributed as dist
from jaxmod import nn

ROOT = Path(__file__).resolve().parent.parent

# Shared by the 8-device script and the two-process script: models, data and a step.
_COMMON = textwrap.dedent(
    """
    import json, os, sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    import jaxmod
    import jaxmod.nn.functional as F
    from jaxmod import nn
    from jaxmod import distributed as dist

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(16, 32)
            self.act = nn.ReLU()
            self.output = nn.Linear(32, 8)

        def forward(self, x):
            return self.output(self.act(self.hidden(x)))

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            # no conv bias before BatchNorm: its true gradient is 0, and Adam would turn
            # round-off in it into lr-sized steps that differ between layouts
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)  # batch statistics over the global batch (SyncBN)
            self.head = nn.Linear(8 * 4 * 4, 8)

        def forward(self, x):
            h = jax.nn.relu(self.bn(self.conv(x)))
            return self.head(h.reshape(h.shape[0], -1))

    def batches(kind, n=10, batch=16):
        rng = np.random.default_rng(1)
        shape = (batch, 16) if kind == "mlp" else (batch, 3, 4, 4)
        return [(rng.normal(size=shape).astype(np.float32),
                 rng.integers(0, 8, size=batch)) for _ in range(n)]

    def make_opt(model):
        optim = getattr(jaxmod, "optim", None)
        return optim.Adam(model.parameters(), lr=1e-2) if optim is not None else None

    def make_step():
        @jaxmod.jit
        def step(model, opt, x, y):
            def loss_fn(m):
                logits = m(x)
                logp = jax.nn.log_softmax(logits)
                return -jnp.take_along_axis(logp, y[:, None], 1).mean()
            loss, grads = jaxmod.value_and_grad(loss_fn)(model)
            if opt is not None:
                opt.step(grads)
            else:  # hand-written SGD
                for name, p in model.named_parameters():
                    p.value = p.value - 0.1 * grads[name]
            return loss
        return step
    """
)

_SCRIPT_8 = _COMMON + textwrap.dedent(
    """
    assert len(jax.devices()) == 8, jax.devices()
    report = {"optimizer": "Adam" if getattr(jaxmod, "optim", None) else "SGD"}

    def train(kind, place=None, batch_axis=None, mesh=None):
        jaxmod.manual_seed(0)
        model = MLP() if kind == "mlp" else CNN()
        if place is not None:
            place(model)
        opt = make_opt(model)
        step = make_step()
        losses = []
        for x, y in batches(kind):
            x, y = jnp.asarray(x), jnp.asarray(y)
            if mesh is not None:
                x, y = dist.shard_batch((x, y), mesh, batch_axis)
            losses.append(float(step(model, opt, x, y)))
            if kind == "mlp" and place is None and len(losses) == 5:  # two-process reference
                report["w5"] = np.asarray(model.output.weight).tolist()
        return model, opt, step, losses

    def opt_specs(model, opt):
        if opt is None:
            return {}
        out = {}
        for name, p in model.named_parameters():
            for path, leaf in jax.tree_util.tree_leaves_with_path(opt.state[p]):
                if getattr(leaf, "ndim", 0) == p.ndim and p.ndim > 0:
                    out[name + jax.tree_util.keystr(path)] = [
                        str(p.sharding.spec), str(leaf.sharding.spec)]
        return out

    mesh8 = dist.make_mesh((8,), ("data",))
    mesh24 = dist.make_mesh((2, 4), ("data", "model"))
    tp_rules = {
        "mlp": {r"hidden\\.weight": P("model", None), r"hidden\\.bias": P("model"),
                r"output\\.weight": P(None, "model")},
        "cnn": {r"conv\\.weight": P("model"),
                r"bn\\.(weight|bias|running_mean|running_var)": P("model"),
                r"head\\.weight": P(None, "model")},
    }
    strategies = {
        "dp": (lambda m: dist.replicate(m, mesh8), mesh8, "data"),
        "fsdp": (lambda m: dist.fully_shard(m, mesh8, "data"), mesh8, "data"),
        "tp": (None, mesh24, "data"),
    }
    for kind in ("mlp", "cnn"):
        ref_model, _, _, ref_losses = train(kind)
        ref_params = {n: np.asarray(p) for n, p in ref_model.state_dict().items()}
        for sname, (place, mesh, axis) in strategies.items():
            if sname == "tp":
                place = lambda m, k=kind: dist.shard(m, mesh24, tp_rules[k])
            model, opt, step, losses = train(kind, place, axis, mesh)
            report[f"{kind}/{sname}"] = {
                "ref_losses": ref_losses,
                "losses": losses,
                "param_diff": max(float(np.abs(np.asarray(p) - ref_params[n]).max())
                                  for n, p in model.state_dict().items()),
                "specs": {n: str(s) for n, s in dist.placement(model).items()},
                "ndevices": {n: len(p.sharding.device_set)
                             for n, p in model.named_parameters()},
                "opt_specs": opt_specs(model, opt),
                "trace_count": step.trace_count,
            }

    # errors name the parameter and the shapes
    errors = {}
    try:
        dist.shard(nn.Sequential(nn.Linear(6, 10)), mesh24, {r"0\\.weight": P("model", None)})
    except ValueError as e:
        errors["shard"] = str(e)
    try:
        dist.shard_batch(jnp.ones((6, 2)), mesh8)
    except ValueError as e:
        errors["batch"] = str(e)
    report["errors"] = errors

    # jit in_shardings / out_shardings for the user's arguments and result
    model = dist.replicate(MLP(), mesh8)
    fwd = jaxmod.jit(lambda m, x: m(x), in_shardings=(None, NamedSharding(mesh8, P("data"))),
                     out_shardings=NamedSharding(mesh8, P(None, None)))
    out = fwd(model, jnp.ones((8, 16)))
    report["jit_out_spec"] = str(out.sharding.spec)
    report["jit_out_ndev"] = len(out.sharding.device_set)

    # re-placing state between calls: the step follows the new placement
    lin = dist.replicate(nn.Linear(8, 8), mesh8)
    sgd = make_step()
    xb, yb = dist.shard_batch((jnp.ones((8, 8)), jnp.arange(8)), mesh8)
    sgd(lin, None, xb, yb)
    lin.to(NamedSharding(mesh8, P("data")))  # Module.to: a new layout
    sgd(lin, None, xb, yb)
    moved = [str(lin.weight.sharding.spec), str(lin.bias.sharding.spec)]
    lin.weight.value = jax.device_put(lin.weight.value, NamedSharding(mesh8, P(None, "data")))
    sgd(lin, None, xb, yb)  # assigned an array placed elsewhere: re-planned, kept
    moved.append(str(lin.weight.sharding.spec))
    lin.weight.value = jnp.zeros((8, 8))  # uncommitted: goes back to the weight's sharding
    sgd(lin, None, xb, yb)
    moved.append(str(lin.weight.sharding.spec))
    report["replaced"] = moved

    # orbax: save a sharded state_dict, restore onto the same shardings, per shard
    try:
        import orbax.checkpoint as ocp
    except ImportError:
        report["orbax"] = "orbax not installed"
    else:
        import tempfile
        from jaxmod.serialization import checkpoint_manager
        model = dist.shard(MLP(), mesh24, tp_rules["mlp"])
        sd = model.state_dict()
        want = {k: np.asarray(v) for k, v in sd.items()}
        with tempfile.TemporaryDirectory() as d:
            mngr = checkpoint_manager(d, async_save=False)
            mngr.save(0, args=ocp.args.StandardSave(sd))
            mngr.wait_until_finished()
            like = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.sharding)
                    for k, v in sd.items()}
            back = mngr.restore(0, args=ocp.args.StandardRestore(like))
            fresh = dist.shard(MLP(), mesh24, tp_rules["mlp"])
            fresh.load_state_dict(back)
            report["orbax"] = {
                k: [str(back[k].sharding.spec) == str(sd[k].sharding.spec),
                    bool(np.array_equal(np.asarray(back[k]), want[k])),
                    str(fresh.state_dict()[k].sharding.spec) == str(sd[k].sharding.spec)]
                for k in sd
            }
    # the examples, smoke-tested with this process's 8 devices
    import importlib.util, contextlib, io
    for name, argv in [("data_parallel", ["--steps", "2"]),
                       ("fsdp", ["--steps", "2", "--tensor-parallel", "2", "--width", "32"])]:
        spec = importlib.util.spec_from_file_location(name, f"examples/{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        with contextlib.redirect_stdout(io.StringIO()):
            report[f"example/{name}"] = mod.main(argv)
    print("REPORT" + json.dumps(report))
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["JAX_PLATFORMS"] = "cpu"
    env.update(extra)
    return env


def _report(proc: subprocess.CompletedProcess) -> dict:
    for line in proc.stdout.splitlines():
        if line.startswith("REPORT"):
            return json.loads(line[len("REPORT") :])
    raise AssertionError(f"no report (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="module")
def report8() -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT_8],
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"),
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    return _report(proc)


CASES = [f"{k}/{s}" for k in ("mlp", "cnn") for s in ("dp", "fsdp", "tp")]


@pytest.mark.parametrize("case", CASES)
def test_sharded_training_matches_single_device(report8, case):
    r = report8[case]
    np.testing.assert_allclose(r["losses"], r["ref_losses"], rtol=2e-5, atol=2e-6)
    assert r["param_diff"] < 1e-4
    assert r["trace_count"] == 1


# What each strategy was asked for, and so must still hold after 10 steps. FSDP splits the
# largest dimension divisible by 8: (32, 16) -> dim 0, (8, 32) -> dim 1, (8, 3, 3, 3) -> dim 0.
EXPECTED = {
    "mlp/fsdp": {"hidden.weight": "P('data',)", "hidden.bias": "P('data',)",
                 "output.weight": "P(None, 'data')", "output.bias": "P('data',)"},
    "mlp/tp": {"hidden.weight": "P('model', None)", "hidden.bias": "P('model',)",
               "output.weight": "P(None, 'model')", "output.bias": "P()"},
    "cnn/fsdp": {"conv.weight": "P('data',)",
                 "head.weight": "P(None, 'data')", "head.bias": "P('data',)",
                 **{f"bn.{k}": "P('data',)" for k in ("weight", "bias", "running_mean",
                                                      "running_var")},
                 "bn.num_batches_tracked": "P()"},
    "cnn/tp": {"conv.weight": "P('model',)",
               "head.weight": "P(None, 'model')", "head.bias": "P()",
               **{f"bn.{k}": "P('model',)" for k in ("weight", "bias", "running_mean",
                                                     "running_var")},
               "bn.num_batches_tracked": "P()"},
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_shardings_kept_through_training(report8, case):
    r = report8[case]
    want = EXPECTED.get(case, {n: "P()" for n in r["specs"]})  # dp: replicated
    assert r["specs"] == want
    assert set(r["ndevices"].values()) == {8}  # never gathered onto one device


@pytest.mark.parametrize("case", CASES)
def test_optimizer_state_follows_parameters(report8, case):
    if report8["optimizer"] == "SGD":
        pytest.skip("jaxmod.optim not merged yet: the steps use hand-written SGD")
    r = report8[case]
    assert r["opt_specs"], "no optimizer state found"
    for name, (param_spec, state_spec) in r["opt_specs"].items():
        assert state_spec == param_spec, name


def test_sharding_errors_name_parameter_and_shapes(report8):
    e = report8["errors"]
    assert "'0.weight'" in e["shard"] and "(10, 6)" in e["shard"] and "'model'" in e["shard"]
    assert "(6, 2)" in e["batch"] and "size 8" in e["batch"]


def test_jit_follows_state_placed_again_between_calls(report8):
    assert report8["replaced"] == ["P('data',)", "P('data',)", "P(None, 'data')", "P(None, 'data')"]


def test_jit_user_shardings(report8):
    assert report8["jit_out_spec"] == "P(None, None)"
    assert report8["jit_out_ndev"] == 8


@pytest.mark.parametrize("name", ["data_parallel", "fsdp"])
def test_examples_run(report8, name):
    losses = report8[f"example/{name}"]
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_orbax_sharded_checkpoint_roundtrip(report8):
    r = report8["orbax"]
    if isinstance(r, str):
        pytest.skip(r)
    assert r and all(all(v) for v in r.values()), r


# ------------------------------------------------------------------ in-process (1 device)
def test_rules_first_fullmatch_wins_and_unmatched_replicated():
    mesh = dist.make_mesh((1,), ("model",))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    out = dist.shard(
        model, mesh, [(r"0\.weight", P("model", None)), (r".*weight", P(None, "model")),
                      (r"bias", P("model"))],  # "bias" fullmatches no qualified name
    )  # fmt: skip
    assert out is model
    assert dist.placement(model) == {
        "0.weight": P("model", None), "0.bias": P(), "2.weight": P(None, "model"),
        "2.bias": P(),
    }  # fmt: skip
    assert isinstance(model[0].weight.sharding, NamedSharding)


def test_explicit_mesh_is_used_as_auto_and_errors():
    mesh = jax.make_mesh((1,), ("data",))  # Explicit axes by default on this jax
    model = dist.fully_shard(nn.Linear(3, 5), mesh)
    assert model.weight.sharding.mesh.axis_types == (jax.sharding.AxisType.Auto,)
    with pytest.raises(ValueError, match="not in the mesh"):
        dist.shard(nn.Linear(3, 5), mesh, {"weight": P("model")})
    with pytest.raises(ValueError, match="2 entries for 1 dimensions"):
        dist.shard(nn.Linear(3, 5), mesh, {"bias": P("data", None)})
    with pytest.raises(ValueError, match="needs 64 devices"):
        dist.make_mesh((8, 8), ("a", "b"))


def test_shard_batch_pytree_and_jit_in_shardings_one_device():
    mesh = dist.make_mesh((len(jax.devices()),), ("data",))
    x, y, s = dist.shard_batch((jnp.ones((4, 3)), jnp.arange(4), jnp.float32(2)), mesh)
    assert x.sharding.spec == P("data") and s.sharding.spec == P()
    model = dist.replicate(nn.Linear(3, 2), mesh)
    f = jaxmod.jit(lambda m, x: m(x).sum(), in_shardings=NamedSharding(mesh, P("data")),
                   out_shardings=NamedSharding(mesh, P()))  # fmt: skip
    assert f(model, jnp.ones((4, 3))).shape == () and f.trace_count == 1


# ------------------------------------------------------------------ two processes
_SCRIPT_MP = (
    textwrap.dedent(
        """
    import sys
    import jax
    # before anything touches a device (importing jaxmod creates the global RNG key)
    pid, port = int(sys.argv[1]), sys.argv[2]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=pid, initialization_timeout=30)
    """
    )
    + _COMMON
    + textwrap.dedent(
        """
    assert jax.process_count() == 2 and len(jax.devices()) == 2, jax.devices()
    mesh = dist.make_mesh((2,), ("data",))
    jaxmod.manual_seed(0)
    model = dist.replicate(MLP(), mesh)
    opt = make_opt(model)
    step = make_step()
    losses = []
    for x, y in batches("mlp", n=5):
        half = slice(pid * 8, pid * 8 + 8)  # this process's half of the global batch
        gx, gy = dist.shard_batch((jnp.asarray(x[half]), jnp.asarray(y[half])), mesh)
        losses.append(float(step(model, opt, gx, gy)))
    w = model.output.weight.value
    print("REPORT" + json.dumps({"losses": losses, "trace_count": step.trace_count,
        "w": np.asarray(w.addressable_shards[0].data).tolist()}))
    jax.distributed.shutdown()
    """
    )
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_data_parallel_matches_single_process(report8):
    impl = getattr(jax.config, "jax_cpu_collectives_implementation", None)
    if impl != "gloo":
        pytest.skip(f"jax_cpu_collectives_implementation is {impl!r}, not 'gloo': this jax "
                    "cannot run cross-process CPU collectives")  # fmt: skip
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCRIPT_MP, str(i), port],
            env=_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = []
    deadline = time.monotonic() + 60  # hard limit for the pair
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("two-process run did not finish in 60 s")
    reports = [_report(r) for r in results]
    # the single-process reference: the same first 5 steps, on one device of report8's run
    want = {"losses": report8["mlp/dp"]["ref_losses"][:5], "w": report8["w5"]}
    for r in reports:
        np.testing.assert_allclose(r["losses"], want["losses"], rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(r["w"], want["w"], rtol=1e-4, atol=1e-5)
        assert r["trace_count"] == 1
