"""Gradient accumulation: sum the grads of several micro-batches, step once.

    python examples/grad_accumulation.py [--steps 30] [--micro-batches 4] [--seed 0]

A ``jaxmod.grad`` result is a ``Grads`` mapping (name -> array) and a pytree, so
micro-batch gradients add with ``jax.tree_util.tree_map``. The per-micro-batch gradient
function and the optimizer update are each compiled once with ``jaxmod.jit``; the
micro-batches come from a ``DataLoader`` with ``batch_size`` the micro-batch size. The
accumulated gradient of 4 micro-batches of 32 equals the gradient of one batch of 128
(checked below), with a quarter of the activation memory.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn
from jaxmod.utils.data import DataLoader, TensorDataset


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--micro-batches", type=int, default=4)
    p.add_argument("--micro-batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    jaxmod.manual_seed(args.seed)
    k, mb = args.micro_batches, args.micro_batch_size

    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = jaxmod.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    w_true = jaxmod.randn(20, 4)
    x_all = jaxmod.randn(args.steps * k * mb, 20)
    loader = DataLoader(TensorDataset(x_all, (x_all @ w_true).argmax(dim=1)), batch_size=mb)
    micro_batches = iter(loader)  # k of them per optimizer step

    def loss_fn(model, x, y):  # mean over the micro-batch
        return F.cross_entropy(model(x), y)

    grad_fn = jaxmod.jit(jaxmod.value_and_grad(loss_fn))

    @jaxmod.jit
    def apply(opt, grads):
        opt.step(grads)

    for step in range(args.steps):
        micro = [next(micro_batches) for _ in range(k)]
        acc, total = None, 0.0
        for x, y in micro:  # accumulate: sum, then divide (mean of the micro-batch means)
            loss, g = grad_fn(model, x, y)
            acc = g if acc is None else jax.tree_util.tree_map(jaxmod.add, acc, g)
            total += loss
        acc = jax.tree_util.tree_map(lambda a: a / k, acc)
        if step == 0:  # equal micro-batches: the mean of means is the full-batch gradient
            x, y = (jaxmod.cat(parts) for parts in zip(*micro))
            full = jaxmod.grad(loss_fn)(model, x, y)
            err = max(jaxmod.abs(acc[n] - full[n]).max().item() for n in full)
            print(f"accumulated vs full-batch gradient: max abs difference {err:.2e}")
            assert err < 1e-5, err
        apply(opt, acc)
        if step % max(args.steps // 5, 1) == 0 or step == args.steps - 1:
            print(f"step {step:3d}  loss {float(total) / k:.4f}")
    print(f"traces: grad {grad_fn.trace_count}, update {apply.trace_count}")
    return {"loss": float(total) / k, "grad_error": err,
            "traces": (grad_fn.trace_count, apply.trace_count)}  # fmt: skip


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
