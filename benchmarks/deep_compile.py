"""First-call time of a deep model: does compile time grow with depth?

A GPT block stack (``benchmarks/_model_zoo.py``, 128 wide, block 64, batch 8) at 4 and 48
layers; for each depth, the first call of a ``jaxmod.jit`` training step (AdamW:
trace + compile + one step) with the blocks applied by a Python loop (XLA sees every layer)
and by ``jaxmod.scan_layers`` (one layer traced, run by ``jax.lax.scan``). The issue's goal:
the 48-layer first call within 1.5x of the 4-layer one. Each configuration is built and
compiled afresh ``--reps`` times (median); the optimizers' shared update cache is cleared
so no build profits from an earlier one.

Run: ``python benchmarks/deep_compile.py [--depths 4 48] [--reps 2] [--scan-only]``
(``--scan-only`` skips the Python loop, whose 48-layer compile takes minutes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _model_zoo as zoo  # noqa: E402

import jaxmod  # noqa: E402
import jaxmod.nn.functional as F  # noqa: E402

CFG = {"batch": 8, "block": 64, "width": 128, "heads": 4, "vocab": 512}


def first_call(layers: int, scan: bool) -> float:
    """Seconds for the first jitted training step of a fresh ``layers``-deep GPT."""
    jaxmod.optim.Optimizer._shared_update_cache.clear()
    jaxmod.manual_seed(0)
    gpt_cls = zoo.classes("jaxmod")["gpt"]
    model = gpt_cls(CFG["vocab"], CFG["block"], layers, CFG["width"], CFG["heads"])
    if scan:
        # The same model, its blocks run by scan_layers instead of the Python loop.
        def forward(idx: Any) -> Any:
            pos = jaxmod.arange(idx.shape[1])
            x = model.wte(idx) + model.wpe(pos)
            x = jaxmod.scan_layers(model.blocks, x)
            return model.head(model.ln_f(x))

        model.forward = forward
    opt = jaxmod.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    shape = (CFG["batch"], CFG["block"])
    x = jaxmod.as_tensor(rng.integers(0, CFG["vocab"], shape))
    y = jaxmod.as_tensor(rng.integers(0, CFG["vocab"], shape))

    @jaxmod.jit
    def step(model: Any, opt: Any, x: Any, y: Any) -> Any:
        def loss_fn(m: Any) -> Any:
            out = m(x)
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

        loss, grads = jaxmod.value_and_grad(loss_fn)(model)
        opt.step(grads)
        return loss

    t0 = time.perf_counter()
    jax.block_until_ready(step(model, opt, x, y))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--depths", type=int, nargs="*", default=[4, 48])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--scan-only", action="store_true", help="skip the Python-loop rows")
    args = ap.parse_args()
    kinds = (True,) if args.scan_only else (False, True)
    first_call(1, True)  # warm JAX's own caches (lowering rules) for no configuration
    times: dict[tuple[int, bool], float] = {}
    for d in args.depths:
        for scan in kinds:
            runs = [first_call(d, scan) for _ in range(args.reps)]
            times[d, scan] = statistics.median(runs)
            label = "scan_layers" if scan else "Python loop"
            print(f"{d:3d} layers, {label:11s}: first call {times[d, scan]:7.2f} s", flush=True)
    lo, hi = min(args.depths), max(args.depths)
    print(f"\n| blocks applied by | {lo} layers | {hi} layers | ratio {hi}/{lo} |")
    print("|---|---|---|---|")
    for scan in kinds:
        label = "`jaxmod.scan_layers`" if scan else "Python loop"
        a, b = times[lo, scan], times[hi, scan]
        print(f"| {label} | {a:.2f} s | {b:.2f} s | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
