"""What JAX's persistent compilation cache saves a jaxmod program: wall time of the same
small training script in fresh processes, without the cache, with a cold cache and with
a warm one (interleaved, median of ``--reps``).

    python benchmarks/compile_cache.py [--reps 3] [--depth 8]

The child script builds an MLP, jits a training step with Adam and runs it 3 times; what
the cache removes is XLA's compile time (tracing and lowering still run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import os, sys, time
t0 = time.perf_counter()
import jax
cache = os.environ.get("CACHE_DIR")
if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
import jax.numpy as jnp
import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn

depth = int(sys.argv[1])
jaxmod.manual_seed(0)
model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(64, 64), nn.ReLU())])
opt = jaxmod.optim.Adam(model.parameters(), lr=1e-3)

@jaxmod.jit
def step(model, opt, x, y):
    loss, grads = jaxmod.value_and_grad(lambda m: F.mse_loss(m(x), y))(model)
    opt.step(grads)
    return loss

x, y = jnp.ones((32, 64)), jnp.zeros((32, 64))
t1 = time.perf_counter()
for _ in range(3):
    float(step(model, opt, x, y))
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def run(depth: int, cache: str | None) -> tuple[float, float, float]:
    env = dict(os.environ)
    env.pop("CACHE_DIR", None)
    if cache:
        env["CACHE_DIR"] = cache
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(depth)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    wall = time.perf_counter() - start
    return wall, float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--depth", type=int, default=8)
    args = ap.parse_args(argv)
    rows: dict[str, list[tuple[float, float, float]]] = {"no cache": [], "cold": [], "warm": []}
    for _ in range(args.reps):
        with tempfile.TemporaryDirectory() as d:
            rows["no cache"].append(run(args.depth, None))
            rows["cold"].append(run(args.depth, d))
            rows["warm"].append(run(args.depth, d))
    print(f"MLP depth {args.depth}, Adam, 3 jitted steps, {args.reps} interleaved reps")
    print("| cache | process wall s | import+build s | first 3 steps s |")
    print("|---|---|---|---|")
    med = {k: [statistics.median(c) for c in zip(*v)] for k, v in rows.items()}
    for k, (wall, setup, steps) in med.items():
        print(f"| {k} | {wall:.2f} | {setup:.2f} | {steps:.2f} |")
    print(f"warm / no cache: wall {med['warm'][0] / med['no cache'][0]:.2f}x, "
          f"steps {med['warm'][2] / med['no cache'][2]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
