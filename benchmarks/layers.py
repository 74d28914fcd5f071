"""Forward+backward time of jaxmod layers vs the same computation in plain JAX and torch.

Three blocks: a Conv2d block (two 3x3 convolutions with ReLU, via
``jaxmod.nn.functional.conv2d``), a self-attention block (``nn.MultiheadAttention``)
and an ``nn.LSTM``. For each, the gradient of ``sum(out**2)`` with respect to the
parameters and the input is timed as

* ``jaxmod.jit``: ``jaxmod.jit(jaxmod.grad(loss, argnums=(0, 1)))`` on the Module;
* ``direct jax.jit``: the same math written with ``jax.lax`` / ``jax.nn`` on a dict of
  arrays under ``jax.jit(jax.grad(...))``;
* ``torch eager``: the torch module with ``backward()`` (CPU only).

Systems run in interleaved rounds (noisy shared machines); we report the median time
per call and the median of per-round ratios to ``direct jax.jit`` (goal <= 1.05x).

Run: ``PYTHONPATH=. python benchmarks/layers.py [--rounds 7] [--write]``; ``--write``
replaces the ``<!-- layers:BACKEND -->`` section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn

Runner = Callable[[], None]


def _sizes(backend: str) -> dict[str, dict[str, int]]:
    if backend == "cpu":
        return {
            "conv": {"B": 8, "C": 16, "HW": 32},
            "attention": {"B": 8, "L": 64, "E": 64, "H": 4},
            "lstm": {"B": 8, "T": 32, "I": 32, "Hd": 64},
        }
    return {
        "conv": {"B": 64, "C": 64, "HW": 64},
        "attention": {"B": 32, "L": 256, "E": 512, "H": 8},
        "lstm": {"B": 64, "T": 128, "I": 256, "Hd": 512},
    }


# ----------------------------------------------------------------------- conv block
class ConvBlock(nn.Module):
    """conv3x3 -> relu -> conv3x3 (padding 1), parameters as in ``nn.Conv2d``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        bound = 1 / np.sqrt(c * 9)
        key = jax.random.key(0)
        k = jax.random.split(key, 4)
        self.w1 = nn.Parameter(jax.random.uniform(k[0], (c, c, 3, 3), minval=-bound, maxval=bound))
        self.b1 = nn.Parameter(jax.random.uniform(k[1], (c,), minval=-bound, maxval=bound))
        self.w2 = nn.Parameter(jax.random.uniform(k[2], (c, c, 3, 3), minval=-bound, maxval=bound))
        self.b2 = nn.Parameter(jax.random.uniform(k[3], (c,), minval=-bound, maxval=bound))

    def forward(self, x: jax.Array) -> jax.Array:
        x = F.relu(F.conv2d(x, self.w1, self.b1, padding=1))
        return F.conv2d(x, self.w2, self.b2, padding=1)


def _conv_direct(p: dict, x: jax.Array) -> jax.Array:
    def conv(x, w, b):
        y = jax.lax.conv_general_dilated(
            x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        return y + b[None, :, None, None]

    return conv(jax.nn.relu(conv(x, p["w1"], p["b1"])), p["w2"], p["b2"])


def conv_systems(s: dict[str, int], with_torch: bool) -> dict[str, Callable[[], Runner]]:
    B, C, HW = s["B"], s["C"], s["HW"]
    x_np = np.random.default_rng(0).standard_normal((B, C, HW, HW)).astype(np.float32)
    block = ConvBlock(C)
    params = {k: jnp.asarray(np.asarray(v)) for k, v in block.state_dict().items()}
    systems = {
        "jaxmod.jit": lambda: _jaxmod_runner(block, x_np, lambda m, x: m(x)),
        "direct jax.jit": lambda: _direct_runner(_conv_direct, params, x_np),
    }
    if with_torch:
        import torch

        def make_torch() -> Runner:
            t = torch.nn.Sequential(
                torch.nn.Conv2d(C, C, 3, padding=1),
                torch.nn.ReLU(),
                torch.nn.Conv2d(C, C, 3, padding=1),
            )
            return _torch_runner(t, x_np, lambda m, x: m(x))

        systems["torch eager"] = make_torch
    return systems


# ------------------------------------------------------------------- attention block
def _mha_direct(p: dict, x: jax.Array, heads: int) -> jax.Array:
    B, L, E = x.shape
    qkv = x @ p["in_proj_weight"].T + p["in_proj_bias"]
    q, k, v = (t.reshape(B, L, heads, E // heads) for t in jnp.split(qkv, 3, axis=-1))
    o = jax.nn.dot_product_attention(q, k, v)
    return o.reshape(B, L, E) @ p["out_proj.weight"].T + p["out_proj.bias"]


def attention_systems(s: dict[str, int], with_torch: bool) -> dict[str, Callable[[], Runner]]:
    B, L, E, H = s["B"], s["L"], s["E"], s["H"]
    x_np = np.random.default_rng(0).standard_normal((B, L, E)).astype(np.float32)
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    params = {k: jnp.asarray(np.asarray(v)) for k, v in mha.state_dict().items()}

    def call(m, x):
        return m(x, x, x, need_weights=False)[0]

    systems = {
        "jaxmod.jit": lambda: _jaxmod_runner(mha, x_np, call),
        "direct jax.jit": lambda: _direct_runner(lambda p, x: _mha_direct(p, x, H), params, x_np),
    }
    if with_torch:
        import torch

        systems["torch eager"] = lambda: _torch_runner(
            torch.nn.MultiheadAttention(E, H, batch_first=True), x_np, call
        )
    return systems


# ------------------------------------------------------------------------------ LSTM
def _lstm_direct(p: dict, x: jax.Array) -> jax.Array:
    T, B, _ = x.shape
    Hd = p["weight_hh_l0"].shape[1]
    xg = x @ p["weight_ih_l0"].T + (p["bias_ih_l0"] + p["bias_hh_l0"])
    w_hh = p["weight_hh_l0"]

    def step(carry, g):
        h, c = carry
        i, f, gg, o = jnp.split(g + h @ w_hh.T, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((B, Hd), x.dtype)
    _, ys = jax.lax.scan(step, (zeros, zeros), xg)
    return ys


def lstm_systems(s: dict[str, int], with_torch: bool) -> dict[str, Callable[[], Runner]]:
    B, T, I, Hd = s["B"], s["T"], s["I"], s["Hd"]
    x_np = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    lstm = nn.LSTM(I, Hd)
    params = {k: jnp.asarray(np.asarray(v)) for k, v in lstm.state_dict().items()}
    systems = {
        "jaxmod.jit": lambda: _jaxmod_runner(lstm, x_np, lambda m, x: m(x)[0]),
        "direct jax.jit": lambda: _direct_runner(_lstm_direct, params, x_np),
    }
    if with_torch:
        import torch

        systems["torch eager"] = lambda: _torch_runner(
            torch.nn.LSTM(I, Hd), x_np, lambda m, x: m(x)[0]
        )
    return systems


# --------------------------------------------------------------------------- runners
def _jaxmod_runner(module: nn.Module, x_np: np.ndarray, call: Callable) -> Runner:
    x = jnp.asarray(x_np)

    def loss(m, x):
        return jnp.sum(call(m, x) ** 2)

    step = jaxmod.jit(jaxmod.grad(loss, argnums=(0, 1)))
    out: list = []

    def run() -> None:
        out[:] = [step(module, x)]

    run.sync = lambda: jax.block_until_ready(jax.tree_util.tree_leaves(out))  # type: ignore[attr-defined]
    return run


def _direct_runner(fn: Callable, params: dict, x_np: np.ndarray) -> Runner:
    x = jnp.asarray(x_np)
    step = jax.jit(jax.grad(lambda p, x: jnp.sum(fn(p, x) ** 2), argnums=(0, 1)))
    out: list = []

    def run() -> None:
        out[:] = [step(params, x)]

    run.sync = lambda: jax.block_until_ready(out)  # type: ignore[attr-defined]
    return run


def _torch_runner(module, x_np: np.ndarray, call: Callable) -> Runner:
    import torch

    x = torch.from_numpy(x_np).requires_grad_(True)

    def run() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        (call(module, x) ** 2).sum().backward()

    run.sync = lambda: None  # type: ignore[attr-defined]
    return run


# ------------------------------------------------------------------------- measuring
def bench(systems: dict[str, Callable[[], Runner]], rounds: int, iters: int) -> dict:
    runners = {}
    for name, make in systems.items():
        r = make()
        r()
        r.sync()  # compile and warm up
        runners[name] = r
    if not iters:  # aim for ~0.2 s per system per round
        r = runners["direct jax.jit"]
        t0 = time.perf_counter()
        for _ in range(3):
            r()
        r.sync()
        per = (time.perf_counter() - t0) / 3
        iters = int(min(500, max(5, 0.2 / max(per, 1e-6))))
    times: dict[str, list[float]] = {n: [] for n in runners}
    for _ in range(rounds):
        for name, r in runners.items():
            t0 = time.perf_counter()
            for _ in range(iters):
                r()
            r.sync()
            times[name].append((time.perf_counter() - t0) / iters)
    base = times["direct jax.jit"]
    return {
        n: {
            "us": statistics.median(t) * 1e6,
            "ratio": statistics.median(a / b for a, b in zip(t, base)),
            "lo": min(a / b for a, b in zip(t, base)),
            "hi": max(a / b for a, b in zip(t, base)),
            "best_us": min(t) * 1e6,
            "best_ratio": min(t) / min(base),
        }
        for n, t in times.items()
    }


def _markdown(rows: list, backend: str, sizes: dict) -> str:
    dev = jax.devices()[0]
    machine = f"{dev.platform}: {getattr(dev, 'device_kind', '')}".strip()
    lines = [
        f"### layers, {machine} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores)",
        "",
        f"jax {jax.__version__}, Python {platform.python_version()}. Forward+backward "
        "(gradient w.r.t. parameters and input); median time per call and median of "
        "per-round ratios to `direct jax.jit` (spread), and the best round of each "
        "(less sensitive to a busy machine). Sizes: "
        + "; ".join(f"{k} {v}" for k, v in sizes.items())
        + ".",
        "",
        "| block | system | µs/call | ratio | spread | best µs | best ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for block, name, r in rows:
        lines.append(
            f"| {block} | {name} | {r['us']:.1f} | {r['ratio']:.2f}x | "
            f"{r['lo']:.2f}-{r['hi']:.2f} | {r['best_us']:.1f} | {r['best_ratio']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def _write(table: str, backend: str) -> None:
    path = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    start, end = f"<!-- layers:{backend} -->", f"<!-- /layers:{backend} -->"
    block = f"{start}\n{table}{end}"
    if start in text and end in text:
        a, b = text.index(start), text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=0, help="calls per round (default: ~0.2 s)")
    ap.add_argument("--blocks", nargs="*", default=["conv", "attention", "lstm"])
    ap.add_argument("--torch", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--write", action="store_true", help="write docs/performance.md")
    args = ap.parse_args()
    backend = jax.default_backend()
    with_torch = args.torch and backend == "cpu"
    if with_torch:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    sizes = {k: v for k, v in _sizes(backend).items() if k in args.blocks}
    makers = {"conv": conv_systems, "attention": attention_systems, "lstm": lstm_systems}
    rows = []
    for block, s in sizes.items():
        print(f"{block} {s}", flush=True)
        res = bench(makers[block](s, with_torch), args.rounds, args.iters)
        for name, r in res.items():
            print(
                f"  {name:16s} {r['us']:10.1f} us  ratio {r['ratio']:5.2f}x "
                f"[{r['lo']:.2f}-{r['hi']:.2f}]  best {r['best_ratio']:.2f}x",
                flush=True,
            )
            rows.append((block, name, r))
    table = _markdown(rows, backend, sizes)
    print(table)
    if args.write:
        _write(table, backend)


if __name__ == "__main__":
    main()
