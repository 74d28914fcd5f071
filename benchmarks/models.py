"""Training steps of real models: jaxmod.jit vs hand-written raw jax.jit, torch and peers.

Models (``--models``, sizes in ``benchmarks/_model_zoo.py``): ``cnn`` (a small ResNet-style
CNN: 4 convolutions with BatchNorm, 3x32x32, batch 32), ``resnet18`` (torchvision's own
file run on jaxmod, 64x64, batch 16), ``gpt`` (4 blocks, 256 wide, block 128, batch 8),
``lstm`` (a 2-layer LSTM language model), and for GPU runs ``resnet50``, ``mlp`` (the
compute-bound MLP) and ``--gpu-sizes``.

Systems: ``raw jax.jit`` (a pure function over a dict of arrays with donation, in torch's
NCHW layout: the baseline every ratio is to), ``raw NHWC`` (the same in NHWC/HWIO, convnets
only), ``jaxmod.jit`` (the torch-style model class on jaxmod), ``torch eager``,
``torch.compile`` (``--torch-compile``; off by default: inductor compiles for minutes on
CPU), Flax NNX and Equinox (reported as not installed / not written). Each run of a system
is paired with a run of raw jax.jit right before or after it in interleaved rounds and the
ratio taken within the pair (the scheme of ``benchmarks/step_overhead.py``, whose timing
code this script uses); we report the median ratio with a bootstrap 95% CI, the first call
(trace + compile + one step of a fresh step function) and XLA's ``memory_analysis()`` of
the compiled step (temporary buffers), and achieved TFLOP/s from XLA's ``cost_analysis()``.

Run: ``python benchmarks/models.py [--quick] [--models cnn,resnet18,gpt,lstm]
[--json out.json] [--markdown out.md] [--gpu-sizes] [--amp]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _model_zoo as zoo  # noqa: E402  (also puts this checkout's jaxmod first on sys.path)
import _raw_models as raw  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import step_overhead as so  # noqa: E402

import jaxmod  # noqa: E402
import jaxmod.nn.functional as F  # noqa: E402

RAW = so.RAW
RAW_F32 = "raw jax.jit float32"  # with --amp (the other rows compute in bf16)
Setup = Callable[[], Callable[[], None]]
PEAK_TFLOPS = {
    "H100": {"float32": 67.0, "bfloat16": 989.0},
    "H200": {"float32": 67.0, "bfloat16": 989.0},
}  # fmt: skip  (SXM, dense, no sparsity)


def _amp_dtype(amp: bool) -> Any:
    return jnp.bfloat16 if amp else None


def _cast(tree: Any, dtype: Any) -> Any:
    if dtype is None:
        return tree
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating)
                        else a, tree)  # fmt: skip


_WEIGHTS: dict[tuple, tuple[dict[str, np.ndarray], set[str]]] = {}


def initial_weights(name: str, cfg: dict) -> tuple[dict[str, np.ndarray], set[str]]:
    """One initial state_dict (numpy) and the parameter names, for every raw build."""
    key = (name, json.dumps(cfg, sort_keys=True))
    if key not in _WEIGHTS:
        if importlib.util.find_spec("torch") is not None:  # fast to build
            import torch

            torch.manual_seed(0)
            m = zoo.build(name, "torch", cfg)
            sd = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
            names = {k for k, _ in m.named_parameters()}
        else:
            jaxmod.manual_seed(0)
            m = zoo.build(name, "jaxmod", cfg)
            sd = {k: np.asarray(v) for k, v in m.state_dict().items()}
            names = {k for k, _ in m.named_parameters()}
        _WEIGHTS[key] = (sd, names)
    return _WEIGHTS[key]


def make_raw(name: str, cfg: dict, layout: str, amp: bool = False) -> Setup:
    fwd = raw.forward(name, cfg)

    def setup() -> Callable[[], None]:
        if fwd is None:
            raise ImportError(f"no raw JAX version of {name} is written")
        sd, names = initial_weights(name, cfg)
        params, stats = raw.split_state(sd, names, layout)
        params, stats = jax.tree.map(jnp.asarray, (params, stats))
        x, y = zoo.batch(name, cfg)
        if layout == "NHWC" and zoo.is_convnet(name):
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        x, y = jnp.asarray(x), jnp.asarray(y)
        tx = optax.sgd(0.01, momentum=0.9) if zoo.is_convnet(name) else optax.adamw(3e-4)
        dt = _amp_dtype(amp)

        def loss_fn(p: dict, s: dict, x: jax.Array, y: jax.Array) -> tuple:
            out, new = fwd(_cast(p, dt), s, _cast(x, dt), layout)
            new = {k: v.astype(s[k].dtype) for k, v in new.items()}
            return raw.loss(name, out, y), new

        def _step(p, o, s, x, y):  # noqa: ANN001, ANN202
            (loss, new), g = jax.value_and_grad(loss_fn, has_aux=True)(p, s, x, y)
            u, o = tx.update(g, o, p)
            return optax.apply_updates(p, u), o, {**s, **new}, loss

        step = jax.jit(_step, donate_argnums=(0, 1, 2))
        state = [params, tx.init(params), stats]

        def run() -> None:
            state[0], state[1], state[2], _ = step(state[0], state[1], state[2], x, y)

        run.sync = lambda: jax.block_until_ready(state[0])  # type: ignore[attr-defined]
        run.lowered = lambda: step.lower(*state, x, y)  # type: ignore[attr-defined]
        run.compiled = lambda: run.lowered().compile()  # type: ignore[attr-defined]
        return run

    return setup


def make_jaxmod(name: str, cfg: dict, amp: bool = False) -> Setup:
    """One model per configuration (built on first use: construction is first_use.py's
    subject); every setup makes a fresh optimizer and a fresh ``jaxmod.jit``, so every
    first call traces and compiles anew."""
    held: list[Any] = []

    def setup() -> Callable[[], None]:
        jaxmod.optim.Optimizer._shared_update_cache.clear()
        if not held:
            jaxmod.manual_seed(0)
            held.append(zoo.build(name, "jaxmod", cfg))
        model = held[0]
        opt = zoo.optimizer(name, jaxmod, model.parameters())
        xn, yn = zoo.batch(name, cfg)
        x, y = jaxmod.from_numpy(xn), jaxmod.from_numpy(yn)
        autocast = _jaxmod_autocast() if amp else None

        def loss_fn(m: Any) -> Any:
            if autocast is None:
                return zoo.loss_of(name, F, m(x), y)
            with autocast:
                return zoo.loss_of(name, F, m(x), y)

        @jaxmod.jit
        def step(model, opt, x, y):  # noqa: ANN001, ANN202
            loss, grads = jaxmod.value_and_grad(loss_fn)(model)
            opt.step(grads)
            return loss

        first = next(iter(model.parameters()))

        def run() -> None:
            step(model, opt, x, y)

        run.sync = lambda: jax.block_until_ready(first.value)  # type: ignore[attr-defined]
        run.lowered = lambda: step.lower(model, opt, x, y)  # type: ignore[attr-defined]
        run.compiled = lambda: run.lowered().compile()  # type: ignore[attr-defined]
        return run

    return setup


def _jaxmod_autocast() -> Any:
    amp = getattr(jaxmod, "amp", None)
    if amp is None or not hasattr(amp, "autocast"):
        raise ImportError("jaxmod.amp.autocast does not exist yet")
    return amp.autocast(jax.default_backend(), dtype=jnp.bfloat16)


_TORCH_THREADS: list[int] = []  # the thread count torch was last set to
_DEFAULT_THREADS: list[int] = [0]  # torch's own default, read by main() (0: unknown)


def _torch_threads(torch: Any, n: int) -> None:
    if n and _TORCH_THREADS[-1:] != [n]:
        torch.set_num_threads(n)
        _TORCH_THREADS.append(n)


def make_torch(name: str, cfg: dict, compiled: bool, threads: int = 0) -> Setup:
    """torch eager (or compiled) with ``threads`` intra-op threads (0: torch's default). On
    an oversubscribed machine torch's default threads spin and slow it several-fold
    (measured here: the CNN step 1212 ms with 2 threads, 425 ms with 1)."""

    def setup() -> Callable[[], None]:
        import torch

        n = threads or _DEFAULT_THREADS[0]
        _torch_threads(torch, n)
        torch.manual_seed(0)
        model = zoo.build(name, "torch", cfg)
        opt = zoo.optimizer(name, torch, model.parameters())
        xn, yn = zoo.batch(name, cfg)
        x, y = torch.from_numpy(xn), torch.from_numpy(yn)

        def train_step() -> None:
            opt.zero_grad(set_to_none=True)
            zoo.loss_of(name, torch.nn.functional, model(x), y).backward()
            opt.step()

        fn = torch.compile(train_step) if compiled else train_step

        def run() -> None:
            _torch_threads(torch, n)
            fn()

        run.sync = lambda: None  # type: ignore[attr-defined]
        return run

    return setup


def peers_note() -> list[str]:
    """Flax NNX / Equinox: importable here or not (no port of these models is written)."""
    notes = []
    for label, mod in (("Flax NNX", "flax"), ("Equinox", "equinox")):
        if importlib.util.find_spec(mod) is None:
            notes.append(f"{label}: not installed")
        else:
            notes.append(f"{label}: installed, but no version of these models is written")
    return notes


def systems_for(name: str, cfg: dict, args: argparse.Namespace) -> dict[str, Setup]:
    systems: dict[str, Setup] = {RAW: make_raw(name, cfg, "NCHW", args.amp)}
    if zoo.is_convnet(name):
        systems["raw NHWC"] = make_raw(name, cfg, "NHWC", args.amp)
    if args.amp:  # the float32 step beside the bf16 ones: the speed-up bf16 buys
        systems[RAW_F32] = make_raw(name, cfg, "NCHW", False)
    systems["jaxmod.jit"] = make_jaxmod(name, cfg, args.amp)
    has_torch = importlib.util.find_spec("torch") is not None
    if args.torch and has_torch and jax.default_backend() == "cpu" and not args.amp:
        for n in args.torch_threads:
            label = f" ({n} thread{'s' if n > 1 else ''})" if n else ""
            systems[f"torch eager{label}"] = make_torch(name, cfg, False, n)
            if args.torch_compile:
                systems[f"torch.compile{label}"] = make_torch(name, cfg, True, n)
    return systems


def _keep_runners(systems: dict[str, Setup]) -> tuple[dict[str, Setup], dict[str, Any]]:
    """Wraps each setup so the last runner it built stays reachable (for its compiled step)."""
    latest: dict[str, Any] = {}

    def wrap(n: str, s: Setup) -> Setup:
        def setup() -> Callable[[], None]:
            latest[n] = s()
            return latest[n]

        return setup

    return {n: wrap(n, s) for n, s in systems.items()}, latest


def compiled_stats(run: Any) -> dict[str, float]:
    """XLA's temporary memory and FLOPs of a runner's compiled step ({} for torch)."""
    if not hasattr(run, "compiled"):
        return {}
    c = run.compiled()
    out: dict[str, float] = {}
    ma = c.memory_analysis()
    if ma is not None:
        out["temp_mib"] = ma.temp_size_in_bytes / 2**20
        out["args_mib"] = ma.argument_size_in_bytes / 2**20
    ca = c.cost_analysis()
    ca = ca[0] if isinstance(ca, list | tuple) else ca
    if ca and "flops" in ca:
        out["gflop"] = float(ca["flops"]) / 1e9
    return out


def peak_tflops(dtype: str, override: float | None) -> float | None:
    if override:
        return override
    kind = getattr(jax.devices()[0], "device_kind", "")
    for chip, peaks in PEAK_TFLOPS.items():
        if chip in kind:
            return peaks[dtype]
    return None


def _size(args: argparse.Namespace) -> str:
    return "gpu" if args.gpu_sizes else "tiny" if args.tiny else "quick" if args.quick else "cpu"


def bench_model(name: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    cfg = zoo.spec(name, _size(args))
    systems, latest = _keep_runners(systems_for(name, cfg, args))
    # CPU steps take 10s-1000s of ms: one step per timed run (its final sync is noise);
    # GPU steps are short: as many steps as fill step_overhead's BLOCK_S.
    steps = 1 if jax.default_backend() == "cpu" else 0
    res = so.bench_depth(0, 0, cfg["batch"], args.rounds, steps, systems, args.first_reps,
                         raw_first_once=not args.pair_first_calls)  # fmt: skip
    for sys_name, r in res.items():
        bf16 = args.amp and sys_name != RAW_F32
        peak = peak_tflops("bfloat16" if bf16 else "float32", args.peak_tflops)
        r.update(compiled_stats(latest.get(sys_name)))
        if "gflop" in r:
            r["tflops"] = r["gflop"] / r["us"] * 1e3  # 1 GFLOP/µs = 1000 TFLOP/s
            if peak:
                r["peak_frac"] = r["tflops"] / peak
    return res


def markdown(results: dict[str, dict[str, dict[str, float]]], args: argparse.Namespace) -> str:
    dev = jax.devices()[0]
    lines = [
        f"### models: {dev.platform} {getattr(dev, 'device_kind', '')} "
        f"({platform.machine()}, {__import__('os').cpu_count()} cores)"
        + (", bf16 autocast" if args.amp else ""),
        "",
        f"jax {jax.__version__}, jaxmod {jaxmod.__version__}, Python "
        f"{platform.python_version()}; {args.rounds} interleaved rounds, each run paired with "
        "raw jax.jit (NCHW); ratio = median of the per-pair ratios (95% bootstrap CI); first "
        "call = trace + compile + one step of a fresh step function (ratio to raw's); temp = "
        "XLA memory_analysis() temporary bytes of the compiled step; TFLOP/s from XLA "
        "cost_analysis() FLOPs over the median step time. torch's default intra-op threads: "
        f"{_DEFAULT_THREADS[0]}. " + "; ".join(peers_note()) + ".",
        "",
        "| model | system | ms/step | ratio to raw NCHW | 95% CI | first call s | first ratio "
        "| temp MiB | TFLOP/s | of peak |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, res in results.items():
        for sys_name, r in res.items():
            label = "raw jax.jit (NCHW)" if sys_name == RAW else sys_name
            temp = f"{r['temp_mib']:.3g}" if "temp_mib" in r else "—"
            tfl = f"{r['tflops']:.3g}" if "tflops" in r else "—"
            frac = f"{100 * r['peak_frac']:.0f}%" if "peak_frac" in r else "—"
            lines.append(
                f"| {model} | {label} | {r['us'] / 1e3:.2f} | {r['ratio']:.2f}x | "
                f"{r['ci_lo']:.2f}-{r['ci_hi']:.2f} | {r['first_ms'] / 1e3:.2f} | "
                f"{r['first_ratio']:.2f}x | {temp} | {tfl} | {frac} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="cnn,resnet18,gpt,lstm")
    ap.add_argument("--quick", action="store_true", help="few rounds, small images (<3 min)")
    ap.add_argument("--rounds", type=int, default=None, help="default 10 (--quick: 3)")
    ap.add_argument("--first-reps", type=int, default=1, help="fresh first calls per system")
    ap.add_argument(
        "--pair-first-calls",
        action="store_true",
        help="a fresh raw first call beside every system's (default: one per "
        "repetition, shared: ResNet compiles take tens of seconds on CPU)",
    )
    ap.add_argument("--torch", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument(
        "--torch-threads",
        type=lambda v: [int(n) for n in v.split(",")],
        default=[0],
        help="torch intra-op threads, one system each (0: default)",
    )
    ap.add_argument("--torch-compile", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds per model)")
    ap.add_argument("--gpu-sizes", action="store_true", help="ResNet at 224 batch 64, GPT-2 124M")
    ap.add_argument("--amp", action="store_true", help="bf16 compute (jaxmod.amp if it exists)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="chip peak for 'of peak'")
    ap.add_argument("--json", default=None, help="write the results as JSON here")
    ap.add_argument("--markdown", default=None, help="append the Markdown table to this file")
    args = ap.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick or args.tiny else 10
    so.ROUNDS, so.FIRST_REPS = args.rounds, args.first_reps
    if importlib.util.find_spec("torch") is not None:
        import torch

        _DEFAULT_THREADS[:] = [torch.get_num_threads()]
        print(f"torch default intra-op threads: {_DEFAULT_THREADS[0]}", flush=True)
    for note in peers_note():
        print(note, flush=True)
    results = {}
    t0 = time.perf_counter()
    for i, name in enumerate(m for m in args.models.split(",") if m):
        cfg = zoo.spec(name, _size(args))
        print(f"{name} {cfg}: {args.rounds} rounds", flush=True)
        if i == 0 and not args.tiny:  # warm JAX's one-time caches, for no system's benefit
            for s in systems_for("mlp", {"batch": 2, "width": 8, "layers": 2}, args).values():
                so._first_call(s)
        results[name] = bench_model(name, args)
        for sys_name, r in results[name].items():
            print(f"  {sys_name:20s} {r['us'] / 1e3:9.2f} ms/step  ratio {r['ratio']:5.2f}x "
                  f"(CI {r['ci_lo']:.2f}-{r['ci_hi']:.2f})  first {r['first_ms'] / 1e3:7.2f} s "
                  f"({r['first_ratio']:.2f}x)  temp {r.get('temp_mib', float('nan')):.1f} MiB",
                  flush=True)  # fmt: skip
    table = markdown(results, args)
    print(table)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(table + "\n")
    return results


if __name__ == "__main__":
    main()
