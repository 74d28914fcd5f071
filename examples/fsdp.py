"""Fully sharded data parallel training (torch FSDP / ZeRO-3) with jaxmod.distributed.

Every parameter and its Adam moments are split over a ``data`` mesh axis (each device
stores 1/n of the model); the batch is split over the same axis. XLA gathers weights
where a layer uses them and reduce-scatters the gradients. With ``--tensor-parallel 2``
the mesh becomes ``(data, model)`` and the MLP's two layers are also split Megatron-style
(column- then row-parallel) over ``model``. Runs on one machine: without accelerators it
asks XLA for 8 host (CPU) devices.

Run: ``python examples/fsdp.py [--steps 20] [--devices 8] [--tensor-parallel 2]``.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--devices", type=int, default=8, help="host devices to force on CPU")
    parser.add_argument("--tensor-parallel", type=int, default=1, help="size of the model axis")
    parser.add_argument("--width", type=int, default=128)
    args = parser.parse_args(argv)
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

    class Block(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.up = nn.Linear(width, 4 * width)
            self.down = nn.Linear(4 * width, width)

        def forward(self, x):
            return x + self.down(F.gelu(self.up(x)))

    class Net(nn.Module):
        def __init__(self, width: int, depth: int = 2, classes: int = 8):
            super().__init__()
            self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
            self.head = nn.Linear(width, classes)

        def forward(self, x):
            return self.head(self.blocks(x))

    n, tp = len(jax.devices()), args.tensor_parallel
    if n % tp:
        raise SystemExit(f"--tensor-parallel {tp} does not divide {n} devices")
    mesh = dist.make_mesh((n // tp, tp), ("data", "model"))
    rules = {  # Megatron MLP: up is column parallel, down is row parallel
        r".*\.up\.weight": P("model", None),
        r".*\.up\.bias": P("model"),
        r".*\.down\.weight": P(None, "model"),
    }
    width, batch = args.width, 4 * n
    rng = np.random.default_rng(0)
    x_all = rng.normal(size=(args.steps * batch, width)).astype(np.float32)
    loader = DataLoader(TensorDataset(x_all, rng.integers(0, 8, size=len(x_all))), batch_size=batch)

    def place(model: nn.Module) -> None:
        if tp > 1:  # 2-D: tensor-parallel rules, FSDP over data for everything else
            dist.shard(model, mesh, rules, default=lambda name, shape: dist.fsdp_spec(shape, mesh))
        else:
            dist.fully_shard(model, mesh, axis="data")

    def train(parallel: bool) -> tuple[list[float], nn.Module, object]:
        jaxmod.manual_seed(0)
        model = Net(width)
        if parallel:
            place(model)
        opt = jaxmod.optim.Adam(model.parameters(), lr=1e-3)  # moments inherit the sharding

        @jaxmod.jit
        def step(model, opt, x, y):
            loss, grads = jaxmod.value_and_grad(lambda m: F.cross_entropy(m(x), y))(model)
            opt.step(grads)
            return loss

        # parallel: every batch split over the data axis (replicated over model), placed
        # on the devices in the background while the previous step runs
        batches = prefetch_to_device(loader, sharding=NamedSharding(mesh, P("data")))
        losses = [float(step(model, opt, x, y)) for x, y in (batches if parallel else loader)]
        return losses, model, opt

    print(f"mesh {dict(mesh.shape)} on {jax.devices()[0].platform}")
    losses, model, opt = train(parallel=True)
    for name, spec in dist.placement(model).items():
        p = model.get_parameter(name)
        local = p.value.addressable_shards[0].data.shape
        print(f"  {name:22s} {str(p.shape):12s} spec {str(spec):22s} per-device {local}")
    moment = jax.tree_util.tree_leaves(opt.state[model.head.weight])
    print(
        "  Adam state of head.weight:",
        sorted({str(m.sharding.spec) for m in moment if getattr(m, "ndim", 0) == 2}),
    )
    reference, _, _ = train(parallel=False)
    for i in range(0, len(losses), max(1, len(losses) // 5)):
        print(f"  step {i:3d}  loss {losses[i]:.4f}  (one device: {reference[i]:.4f})")
    np.testing.assert_allclose(losses, reference, rtol=1e-4, atol=1e-5)
    print(f"final loss {losses[-1]:.4f}; matches single-device training")
    return losses


if __name__ == "__main__":
    main()
