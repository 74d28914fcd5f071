"""Step time of one training step on 1 vs 8 host devices, and on one GPU when present.

A correctness-at-scale check on CPU, not a speed claim: 8 "devices" forced onto one
CPU (``--xla_force_host_platform_device_count=8``) share the same cores, so sharding
only adds collectives there. Every configuration trains the same MLP from the same
seed on the same batches with Adam; the table reports the median step time and the
largest loss difference from the single-device run. Each device count needs its own
process (XLA fixes it at start-up), so the script re-runs itself per configuration.

Run: ``python benchmarks/sharding.py [--steps 20] [--width 256] [--batch 256]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(args: argparse.Namespace) -> None:
    """Run the configurations for one process and print one JSON line per config."""
    import statistics
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec as P

    import jaxmod
    import jaxmod.nn.functional as F
    from jaxmod import distributed as dist
    from jaxmod import nn

    def make_model() -> nn.Module:
        layers: list[nn.Module] = [nn.Linear(64, args.width), nn.ReLU()]
        for _ in range(args.depth - 1):
            layers += [nn.Linear(args.width, args.width), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(args.width, 16))

    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(args.batch, 64)).astype(np.float32),
             rng.integers(0, 16, size=args.batch)) for _ in range(args.steps)]  # fmt: skip
    n = len(jax.devices())
    for config in args.configs.split(","):
        jaxmod.manual_seed(0)
        model = make_model()
        mesh = None
        if config == "dp":
            mesh = dist.make_mesh((n,), ("data",))
            dist.replicate(model, mesh)
        elif config == "fsdp":
            mesh = dist.make_mesh((n,), ("data",))
            dist.fully_shard(model, mesh)
        elif config == "tp":
            mesh = dist.make_mesh((2, n // 2), ("data", "model"))
            # alternate column / row parallel layers (Megatron pairs)
            rules = {rf"{i}\.weight": P("model", None) if (i // 2) % 2 == 0 else P(None, "model")
                     for i in range(0, 2 * args.depth, 2)}  # fmt: skip
            rules.update({rf"{i}\.bias": P("model") for i in range(0, 2 * args.depth, 4)})
            dist.shard(model, mesh, rules)
        elif config == "gpu":
            model.to("cuda")
        opt = jaxmod.optim.Adam(model.parameters(), lr=1e-3)

        @jaxmod.jit
        def step(model, opt, x, y):
            loss, grads = jaxmod.value_and_grad(lambda m: F.cross_entropy(m(x), y))(model)
            opt.step(grads)
            return loss

        losses, times = [], []
        for x, y in data:
            x, y = jnp.asarray(x), jnp.asarray(y)
            if config == "gpu":
                x, y = jax.device_put((x, y), jax.devices("gpu")[0])
            elif mesh is not None:
                x, y = dist.shard_batch((x, y), mesh)
            t = time.perf_counter()
            loss = step(model, opt, x, y)
            loss.block_until_ready()
            times.append(time.perf_counter() - t)
            losses.append(float(loss))
        print("RESULT " + json.dumps({
            "config": config, "devices": 1 if config in ("single", "gpu") else n,
            "ms": 1e3 * statistics.median(times[2:] or times), "first_ms": 1e3 * times[0],
            "losses": losses, "platform": jax.devices()[0].platform,
            "traces": step.trace_count,
        }))  # fmt: skip


def run(configs: str, devices: int, args: argparse.Namespace, platform: str = "cpu") -> list:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if platform == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    cmd = [sys.executable, __file__, "--child", "--configs", configs, "--steps",
           str(args.steps), "--width", str(args.width), "--depth", str(args.depth),
           "--batch", str(args.batch)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"{configs} on {devices} devices failed:\n{proc.stderr[-3000:]}")
    return [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]


def has_gpu() -> bool:
    code = "import jax,sys; sys.exit(0 if jax.devices()[0].platform == 'gpu' else 1)"
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True,
                              timeout=120).returncode == 0  # fmt: skip
    except (subprocess.TimeoutExpired, OSError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--configs", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    results = run("single", 1, args) + run("dp,fsdp,tp", 8, args)
    gpu = has_gpu()
    if gpu:
        results += run("gpu", 1, args, platform="gpu")
    ref = results[0]["losses"]
    print(f"MLP depth {args.depth}, width {args.width}, batch {args.batch}, Adam, "
          f"{args.steps} steps (median over steps 3..{args.steps})")  # fmt: skip
    print()
    print("| config | devices | ms/step | first step ms | traces | max abs loss diff vs 1 CPU |")
    print("|---|---|---|---|---|---|")
    names = {"single": "one CPU device", "dp": "data parallel", "fsdp": "FSDP",
             "tp": "2x4 data x model (TP)", "gpu": "one GPU"}  # fmt: skip
    for r in results:
        diff = max(abs(a - b) for a, b in zip(r["losses"], ref))
        print(f"| {names[r['config']]} | {r['devices']} {r['platform']} | {r['ms']:.2f} | "
              f"{r['first_ms']:.0f} | {r['traces']} | {diff:.1e} |")  # fmt: skip
    if not gpu:
        print("\n(no GPU visible to JAX on this machine: GPU row skipped)")


if __name__ == "__main__":
    main()
