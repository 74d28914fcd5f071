"""bfloat16 autocast training step vs float32, on a compute-bound MLP.

Both steps train the same MLP (float32 master weights, SGD) under ``jaxmod.jit``; the
autocast step wraps the forward in ``jaxmod.autocast(dtype=jnp.bfloat16)`` so the matmuls
run in bfloat16 and the loss in float32. They are timed in interleaved rounds (each round
runs both), and the ratio is taken within each round, because shared machines are noisy.
Prints median ms/step of each and the median (and quartiles) of the per-round ratio.

Run: ``python benchmarks/amp.py [--width 1024] [--batch 256] [--depth 4] [--rounds 15]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import jax
import jax.numpy as jnp

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn


def make_step(width: int, depth: int, amp: bool):  # noqa: ANN201
    jaxmod.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    opt = jaxmod.optim.SGD(model.parameters(), lr=1e-3)

    def loss_fn(m: nn.Module, x: jax.Array, y: jax.Array) -> jax.Array:
        return F.mse_loss(m(x), y)

    @jaxmod.jit
    def step(x: jax.Array, y: jax.Array) -> jax.Array:
        with jaxmod.autocast("cpu", dtype=jnp.bfloat16, enabled=amp):
            loss, grads = jaxmod.value_and_grad(loss_fn)(model, x, y)
        opt.step(grads)
        return loss

    return step, model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed run")
    a = ap.parse_args()
    x = jax.random.normal(jax.random.key(0), (a.batch, a.width))
    y = jax.random.normal(jax.random.key(1), (a.batch, a.width))
    systems = {"float32": make_step(a.width, a.depth, False),
               "bf16 autocast": make_step(a.width, a.depth, True)}  # fmt: skip
    for step, model in systems.values():  # compile and warm up
        for _ in range(2):
            step(x, y)
        jax.block_until_ready(next(iter(model.parameters())).value)
    times: dict[str, list[float]] = {k: [] for k in systems}
    ratios = []
    for r in range(a.rounds):
        order = list(systems) if r % 2 == 0 else list(reversed(systems))
        got = {}
        for name in order:
            step, model = systems[name]
            t0 = time.perf_counter()
            for _ in range(a.steps):
                step(x, y)
            jax.block_until_ready(next(iter(model.parameters())).value)
            got[name] = (time.perf_counter() - t0) / a.steps * 1e3
            times[name].append(got[name])
        ratios.append(got["bf16 autocast"] / got["float32"])
    q = statistics.quantiles(ratios, n=4)
    print(f"# {platform.processor() or platform.machine()}, jax {jax.__version__}, "
          f"backend {jax.default_backend()}; MLP depth {a.depth}, width {a.width}, "
          f"batch {a.batch}; {a.rounds} interleaved rounds of {a.steps} steps")  # fmt: skip
    for name, ts in times.items():
        print(f"{name:>14}: {statistics.median(ts):8.2f} ms/step (median)")
    med = statistics.median(ratios)
    print(f"bf16 autocast / float32 step time: median {med:.2f}x (quartiles "
          f"{q[0]:.2f}-{q[2]:.2f}, min {min(ratios):.2f}, max {max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
