"""Data-parallel training (torch DDP) of an MLP on every device, with jaxmod.distributed.

The model is replicated on a 1-D ``data`` mesh and each batch is split over it (a
``DataLoader`` wrapped in ``prefetch_to_device`` with a ``NamedSharding``: the next batch is
placed on the devices while the current step runs); XLA inserts the gradient all-reduce.
Runs on one machine: without accelerators it asks XLA for 8 host (CPU) devices. Losses
match single-device training (checked at the end).

Run: ``python examples/data_parallel.py [--steps 20] [--devices 8]``.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--devices", type=int, default=8, help="host devices to force on CPU")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    # Must happen before JAX starts (importing jaxmod starts it).
    flag = f"--xla_force_host_platform_device_count={args.devices}"
    if "jax" not in sys.modules and flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()

    import jax
    import numpy as np
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import jaxmod
    import jaxmod.nn.functional as F
    from jaxmod import distributed as dist
    from jaxmod import nn
    from jaxmod.utils.data import DataLoader, TensorDataset, prefetch_to_device

    class MLP(nn.Module):
        def __init__(self, input_size: int = 32, hidden_size: int = 64, output_size: int = 10):
            super().__init__()
            self.hidden = nn.Linear(input_size, hidden_size)
            self.act = nn.ReLU()
            self.output = nn.Linear(hidden_size, output_size)

        def forward(self, x):
            return self.output(self.act(self.hidden(x)))

    n = len(jax.devices())
    mesh = dist.make_mesh((n,), ("data",))
    batch = args.batch - args.batch % n or n
    rng = np.random.default_rng(0)
    w_true = rng.normal(size=(32, 10)).astype(np.float32)
    x_all = rng.normal(size=(args.steps * batch, 32)).astype(np.float32)
    # sequential batches: both runs see the same data in the same order
    loader = DataLoader(TensorDataset(x_all, (x_all @ w_true).argmax(1)), batch_size=batch)

    def train(parallel: bool) -> list[float]:
        jaxmod.manual_seed(0)
        model = MLP()
        if parallel:
            dist.replicate(model, mesh)  # DDP: every device holds all parameters
        opt = jaxmod.optim.Adam(model.parameters(), lr=1e-2)  # after placement

        @jaxmod.jit
        def step(model, opt, x, y):
            loss, grads = jaxmod.value_and_grad(lambda m: F.cross_entropy(m(x), y))(model)
            opt.step(grads)
            return loss

        # parallel: each device gets batch/n rows of every batch, placed in the background
        batches = prefetch_to_device(loader, sharding=NamedSharding(mesh, P("data")))
        losses = [float(step(model, opt, x, y)) for x, y in (batches if parallel else loader)]
        if parallel:
            print(
                f"  hidden.weight on {len(model.hidden.weight.sharding.device_set)} devices, "
                f"spec {model.hidden.weight.sharding.spec}; traced {step.trace_count}x"
            )
        return losses

    print(f"data parallel over {n} devices ({jax.devices()[0].platform}), batch {batch}")
    losses = train(parallel=True)
    reference = train(parallel=False)
    for i in range(0, len(losses), max(1, len(losses) // 5)):
        print(f"  step {i:3d}  loss {losses[i]:.4f}  (one device: {reference[i]:.4f})")
    np.testing.assert_allclose(losses, reference, rtol=1e-4, atol=1e-5)
    print(f"final loss {losses[-1]:.4f}; matches single-device training")
    return losses


if __name__ == "__main__":
    main()
