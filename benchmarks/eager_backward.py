"""torch's training loop as written, eagerly: jaxmod's autograd tape against torch eager and
against jaxmod's compiled step, on the same model files.

For each model of ``_model_zoo`` (``cnn``, ``gpt``, ``lstm``; ``--models``), three systems
run the same training step on the same batch:

* ``torch eager``: ``opt.zero_grad(); loss = F(model(x), y); loss.backward(); opt.step()``;
* ``jaxmod eager (tape)``: those lines unchanged on jaxmod (``loss.backward()`` replays the
  recorded module calls under ``jax.vjp``, compiled once per graph structure);
* ``jaxmod.jit``: the whole step compiled (``value_and_grad`` + ``opt.step(grads)``).

Reported: the first step (recording + compiling the replay), and the warm step time as the
median of interleaved rounds, each system's ratio to torch eager (process CPU time is not
used: torch and XLA run threads, so wall time it is; read the spread on a shared machine).

Run: ``python benchmarks/eager_backward.py [--models cnn gpt] [--rounds 7] [--steps 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _model_zoo as zoo  # noqa: E402

import jaxmod  # noqa: E402


def _torch_step(name: str, cfg: dict) -> Callable[[], Any]:
    import torch

    torch.manual_seed(0)
    model = zoo.build(name, "torch", cfg)
    opt = zoo.optimizer(name, torch, model.parameters())
    x, y = (torch.from_numpy(a) for a in zoo.batch(name, cfg))
    y = y if y.is_floating_point() else y.long()

    def step() -> Any:
        opt.zero_grad()
        loss = zoo.loss_of(name, torch.nn.functional, model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _jaxmod_model(name: str, cfg: dict) -> tuple[Any, Any, Any, Any]:
    jaxmod.manual_seed(0)
    model = zoo.build(name, "jaxmod", cfg)
    opt = zoo.optimizer(name, jaxmod, model.parameters())
    x, y = (jaxmod.from_numpy(a) for a in zoo.batch(name, cfg))
    return model, opt, x, y


def _tape_step(name: str, cfg: dict) -> Callable[[], Any]:
    model, opt, x, y = _jaxmod_model(name, cfg)
    F = jaxmod.nn.functional

    def step() -> Any:
        opt.zero_grad()
        loss = zoo.loss_of(name, F, model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _jit_step(name: str, cfg: dict) -> Callable[[], Any]:
    model, opt, x, y = _jaxmod_model(name, cfg)
    F = jaxmod.nn.functional

    @jaxmod.jit
    def train_step(model: Any, opt: Any, x: Any, y: Any) -> Any:
        loss, grads = jaxmod.value_and_grad(lambda m: zoo.loss_of(name, F, m(x), y))(model)
        opt.step(grads)
        return loss

    def step() -> Any:
        return float(train_step(model, opt, x, y))

    return step


SYSTEMS = {"torch eager": _torch_step, "jaxmod eager (tape)": _tape_step,
           "jaxmod.jit": _jit_step}  # fmt: skip


def measure(name: str, size: str, rounds: int, steps: int) -> dict[str, dict[str, float]]:
    """First step and median warm step (ms) of every system on model ``name``."""
    cfg = zoo.spec(name, size)
    fns, first = {}, {}
    for sys_name, make in SYSTEMS.items():
        fn = make(name, cfg)
        t = time.perf_counter()
        fn()
        first[sys_name] = (time.perf_counter() - t) * 1e3
        fns[sys_name] = fn
    times: dict[str, list[float]] = {s: [] for s in fns}
    for _ in range(rounds):
        for s, fn in fns.items():
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            times[s].append((time.perf_counter() - t) / steps * 1e3)
    base = times["torch eager"]
    out = {}
    for s, ts in times.items():
        ratio = statistics.median(a / b for a, b in zip(ts, base))
        out[s] = {"first_ms": first[s], "step_ms": statistics.median(ts), "ratio": ratio}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["cnn", "gpt", "lstm"])
    p.add_argument("--size", default="cpu", help="_model_zoo size: cpu, quick or tiny")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; wall time, ms per step")
    print("| model | system | first step ms | warm step ms | ratio to torch eager |")
    print("|---|---|---|---|---|")
    res = {}
    for name in a.models:
        res[name] = measure(name, a.size, a.rounds, a.steps)
        for s, r in res[name].items():
            print(f"| {name} | {s} | {r['first_ms']:.0f} | {r['step_ms']:.1f} | "
                  f"{r['ratio']:.2f}x |")  # fmt: skip
    return res


if __name__ == "__main__":
    main()
