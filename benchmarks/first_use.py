"""What a torch user meets before any fast step: building a model, the first eager forward,
the first eager gradient, the first jitted step; jaxmod against torch, on the same files.

Models: torchvision's ResNet-18, DenseNet-121 and MobileNetV2 (torchvision's own files,
imports rewritten by ``tests/_torch_port.py``, run on jaxmod and on torch) and a GPT block
stack (``benchmarks/_model_zoo.py``). For each, in one process and in this order:

* ``construct``: building the model (parameters initialised) -- ``jaxmod.manual_seed``
  then the constructor, against torch's constructor;
* ``forward``: the first eager call ``model(x)`` (train mode, as built), synchronised;
* ``grad``: the first eager gradient of the training loss -- ``jaxmod.grad`` on the module
  (no jit) against torch's forward + ``loss.backward()``;
* ``grad again``: the same a second time (the warm eager loop);
* ``backward``, ``backward again``: the same gradient in torch's spelling on jaxmod
  (``model.zero_grad(); loss.backward()``: the autograd tape records the forward and
  replays it, compiled, under ``jax.vjp``), against torch's first and second backward
  (its ``grad`` stages);
* ``jit step``: the first call of a ``jaxmod.jit`` training step (``value_and_grad`` +
  ``opt.step``: trace + compile + run) against torch's first eager optimizer step.

Every jaxmod/torch pair prints its ratio. One measurement each (these are first uses: they
cannot be repeated in one process), so noise on a shared machine is large.

Run: ``python benchmarks/first_use.py [--quick] [--models resnet18,densenet121,...]
[--json out.json]``. ``--quick``: 32x32 images, batch 2, a 2-layer 128-wide GPT, and no
DenseNet-121 unless ``--models`` names it (its first eager gradient takes minutes).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _model_zoo as zoo  # noqa: E402  (also puts this checkout's jaxmod first on sys.path)
import jax  # noqa: E402

import jaxmod  # noqa: E402
import jaxmod.nn.functional as JF  # noqa: E402

ALL_MODELS = "resnet18,densenet121,mobilenet_v2,gpt"
STAGES = ("construct", "forward", "grad", "grad again", "backward", "backward again", "jit step")


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    jax.block_until_ready(getattr(out, "value", out) if not isinstance(out, dict) else out)
    return out, time.perf_counter() - t0


def _cfg(name: str, quick: bool) -> dict[str, Any]:
    cfg = zoo.spec(name, "quick" if quick else "cpu")
    if zoo.is_convnet(name):
        cfg.update(batch=2 if quick else 4, size=32 if quick else 64)
    else:
        cfg.update(batch=2 if quick else 4)
    return cfg


def _unbox(t: Any) -> Any:
    return t.numpy() if hasattr(t, "numpy") and not isinstance(t, jax.Array) else t


def _construct(name: str, cfg: dict[str, Any], ns: Any) -> tuple[Any, Any, Any, dict]:
    """The inputs as ``ns`` tensors, and the model built under a timer (``out``)."""
    xn, yn = zoo.batch(name, cfg)
    x, y = ns.from_numpy(xn), ns.from_numpy(yn)
    out: dict[str, float] = {}

    def construct() -> Any:
        ns.manual_seed(0)
        return zoo.build(name, ns.__name__, cfg)

    model, out["construct"] = _timed(construct)
    return model, x, y, out


def jaxmod_costs(name: str, cfg: dict[str, Any]) -> dict[str, float]:
    model, x, y, out = _construct(name, cfg, jaxmod)
    _, out["forward"] = _timed(lambda: _unbox(model(x)))

    def loss(m: Any) -> Any:
        return zoo.loss_of(name, JF, m(x), y)

    _, out["grad"] = _timed(lambda: dict(jaxmod.grad(loss)(model)))
    _, out["grad again"] = _timed(lambda: dict(jaxmod.grad(loss)(model)))

    def backward() -> dict:  # torch's spelling: the autograd tape records and replays
        model.zero_grad(set_to_none=True)
        loss(model).backward()
        return {
            str(i): p.grad._value for i, p in enumerate(model.parameters()) if p.grad is not None
        }

    _, out["backward"] = _timed(backward)
    _, out["backward again"] = _timed(backward)
    opt = zoo.optimizer(name, jaxmod, model.parameters())

    @jaxmod.jit
    def step(model, opt, x, y):  # noqa: ANN001, ANN202
        value, grads = jaxmod.value_and_grad(loss)(model)
        opt.step(grads)
        return value

    _, out["jit step"] = _timed(lambda: _unbox(step(model, opt, x, y)))
    return out


def torch_costs(name: str, cfg: dict[str, Any]) -> dict[str, float]:
    import torch

    model, x, y, out = _construct(name, cfg, torch)
    _, out["forward"] = _timed(lambda: model(x).detach().numpy())

    def grad() -> dict:
        model.zero_grad(set_to_none=True)
        zoo.loss_of(name, torch.nn.functional, model(x), y).backward()
        return {}

    _, out["grad"] = _timed(grad)
    _, out["grad again"] = _timed(grad)
    # torch's first backward is its "grad" stage: jaxmod's two spellings both compare to it
    out["backward"], out["backward again"] = out["grad"], out["grad again"]
    opt = zoo.optimizer(name, torch, model.parameters())

    def step() -> dict:
        grad()
        opt.step()
        return {}

    _, out["jit step"] = _timed(step)
    return out


def _warm() -> None:
    """JAX's and torch's own one-time costs (first op, first compile), on a tiny model."""
    cfg = {"batch": 2, "width": 8, "layers": 2}
    jaxmod_costs("mlp", cfg)
    try:
        torch_costs("mlp", cfg)
    except ImportError:
        pass


def warm_layer_costs(rounds: int = 5, calls: int = 200) -> dict[str, dict[str, float]]:
    """Warm eager forward of a Linear (8x128 -> 128) and a Conv2d (2x16x16x16, 3x3), in us
    per call, with eager kernels (one compiled program per call signature) and op by op
    (``jaxmod.nn.functional._eager`` switched off), interleaved, best of ``rounds``."""
    from jaxmod.nn.functional import _eager

    jaxmod.manual_seed(0)
    layers = {
        "Linear": (jaxmod.nn.Linear(128, 128), jax.numpy.ones((8, 128))),
        "Conv2d": (jaxmod.nn.Conv2d(16, 16, 3, padding=1), jax.numpy.ones((2, 16, 16, 16))),
    }
    probe, out = _eager._probe, {}
    try:
        for name, (layer, x) in layers.items():
            best = {"kernel": float("inf"), "op by op": float("inf")}
            for _ in range(rounds):
                for mode in best:
                    _eager._probe = probe if mode == "kernel" else None
                    jax.block_until_ready(layer(x))
                    t0 = time.perf_counter()
                    for _ in range(calls):
                        y = layer(x)
                    jax.block_until_ready(y)
                    best[mode] = min(best[mode], (time.perf_counter() - t0) / calls * 1e6)
            out[name] = best
    finally:
        _eager._probe = probe
    return out


def table(results: dict[str, dict[str, dict[str, float]]], quick: bool) -> str:
    lines = [
        f"### first use: {jax.devices()[0].platform} "
        f"({'--quick: 32x32, batch 2' if quick else '64x64, batch 4'}), seconds",
        "",
        "jit step: jaxmod's first `jaxmod.jit` step (trace + compile + run) vs torch's first "
        "eager optimizer step. One measurement each (first uses), on a shared machine.",
        "",
        "| model | stage | jaxmod s | torch s | ratio |",
        "|---|---|---|---|---|",
    ]
    for model, res in results.items():
        for st in STAGES:
            j, t = res["jaxmod"].get(st), res.get("torch", {}).get(st)
            ratio = f"{j / t:.1f}x" if j is not None and t else "—"
            tt = f"{t:.3f}" if t is not None else "—"
            lines.append(f"| {model} | {st} | {j:.3f} | {tt} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--models",
        default=None,
        help="default resnet18,densenet121,mobilenet_v2,gpt (--quick: no densenet)",
    )
    ap.add_argument("--quick", action="store_true", help="small inputs")
    ap.add_argument("--json", default=None)
    ap.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    args = ap.parse_args(argv)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.models is None:
        # DenseNet-121's first eager gradient alone took 10 minutes on the shared 2-core
        # machine (its jitted step compiled 2.5 minutes): not a quick run.
        args.models = "resnet18,mobilenet_v2,gpt" if args.quick else ALL_MODELS
        if args.quick:
            print("--quick leaves densenet121 out (minutes of eager compiles); "
                  "--models densenet121 runs it", flush=True)  # fmt: skip
    names = [m for m in args.models.split(",") if m]
    for n in names:  # read each torchvision file once, untimed, for both
        if n in zoo.TORCHVISION:
            zoo.torchvision_file(n, "jaxmod")
            zoo.torchvision_file(n, "torch")
    _warm()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        cfg = _cfg(name, args.quick)
        print(f"{name} {cfg}", flush=True)
        res: dict[str, dict[str, float]] = {}
        try:
            res["torch"] = torch_costs(name, cfg)
        except ImportError:
            print("  torch: not installed", flush=True)
        res["jaxmod"] = jaxmod_costs(name, cfg)
        for st in STAGES:
            j, t = res["jaxmod"][st], res.get("torch", {}).get(st)
            extra = f"  torch {t:8.3f} s  ratio {j / t:6.1f}x" if t else ""
            print(f"  {st:10s} jaxmod {j:8.3f} s{extra}", flush=True)
        results[name] = res
    print(table(results, args.quick))
    warm = warm_layer_costs()
    for name, w in warm.items():
        print(f"warm eager {name}: kernel {w['kernel']:.0f} us/call, "
              f"op by op {w['op by op']:.0f} us/call", flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
