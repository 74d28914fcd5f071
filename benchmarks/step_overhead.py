"""Per-step cost of a stateful training step: jaxmod.jit vs raw jax.jit and peers.

Every system trains the same MLP (width 32, batch 8, Adam). Systems are timed in
interleaved rounds (each round runs every system once), and every run of a system is
paired with a run of raw ``jax.jit`` (hand-written pure step, donation, optax Adam) right
before or after it; the ratio is taken within each pair, because these machines are
noisy and load changes over seconds. We report per-system median µs/step and the median
of the per-round ratios to raw with their quartiles and extremes, and the same for
first calls (trace + compile + one step of a freshly built model).

Run: ``python benchmarks/step_overhead.py [--depths 2 32 128] [--rounds 40] [--write]``.
``--write`` writes the Markdown table to docs/performance.md (section for this machine).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn

LR = 1e-3


# ------------------------------------------------------------------- systems
def make_raw(depth: int, width: int, batch: int) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        key = jax.random.key(0)
        params = {}
        for i in range(depth):
            key, k = jax.random.split(key)
            params[f"w{i}"] = jax.random.normal(k, (width, width)) * 0.1
            params[f"b{i}"] = jnp.zeros((width,))
        tx = optax.adam(LR)
        state = [params, tx.init(params)]
        x = jnp.ones((batch, width))
        y = jnp.zeros((batch, width))

        def loss_fn(p: dict, x: jax.Array, y: jax.Array) -> jax.Array:
            h = x
            for i in range(depth):
                h = h @ p[f"w{i}"].T + p[f"b{i}"]
                if i < depth - 1:
                    h = jax.nn.relu(h)
            return jnp.mean((h - y) ** 2)

        @jax.jit
        def _step(p, s, x, y):  # noqa: ANN001, ANN202
            loss, g = jax.value_and_grad(loss_fn)(p, x, y)
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s, loss

        step = jax.jit(_step.__wrapped__, donate_argnums=(0, 1))

        def run() -> None:
            state[0], state[1], loss = step(state[0], state[1], x, y)
            state.append(loss)
            del state[2:]

        run.sync = lambda: jax.block_until_ready(state[0])  # type: ignore[attr-defined]
        return run

    return setup


class _MLP(nn.Module):
    def __init__(self, depth: int, width: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)  # a Tensor stays a Tensor (jax.nn.relu would return an array)
        return x


def make_jaxmod(
    depth: int, width: int, batch: int, tensors: bool = False
) -> Callable[[], Callable[[], None]]:
    """jaxmod.jit on an nn.Module; ``tensors=True`` feeds ``jaxmod.Tensor`` inputs (so every
    op inside returns a Tensor, torch-style) instead of plain jax arrays."""

    def setup() -> Callable[[], None]:
        # Every fresh build compiles from scratch: forget the optimizers' shared update
        # functions (their traces would make later builds' first calls cheaper).
        jaxmod.optim.Optimizer._shared_update_cache.clear()
        jaxmod.manual_seed(0)
        model = _MLP(depth, width)
        opt = jaxmod.optim.Adam(model.parameters(), lr=LR)
        x = jnp.ones((batch, width))
        y = jnp.zeros((batch, width))
        if tensors:
            x, y = jaxmod.as_tensor(x), jaxmod.as_tensor(y)

        @jaxmod.jit
        def step(model, opt, x, y):  # noqa: ANN001, ANN202
            loss, grads = jaxmod.value_and_grad(lambda m: F.mse_loss(m(x), y))(model)
            opt.step(grads)
            return loss

        def run() -> None:
            step(model, opt, x, y)

        run.sync = lambda: jax.block_until_ready(model.layers[0].weight.value)  # type: ignore[attr-defined]
        return run

    return setup


def make_nnx(depth: int, width: int, batch: int, cached: bool) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        from flax import nnx

        class M(nnx.Module):
            def __init__(self, rngs: nnx.Rngs) -> None:
                self.layers = nnx.List([nnx.Linear(width, width, rngs=rngs) for _ in range(depth)])

            def __call__(self, x: jax.Array) -> jax.Array:
                for i, layer in enumerate(self.layers):
                    x = layer(x)
                    if i < depth - 1:
                        x = jax.nn.relu(x)
                return x

        model = M(nnx.Rngs(0))
        opt = nnx.Optimizer(model, optax.adam(LR), wrt=nnx.Param)
        x = jnp.ones((batch, width))
        y = jnp.zeros((batch, width))

        def train_step(model, opt, x, y):  # noqa: ANN001, ANN202
            loss, g = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
            opt.update(model, g)
            return loss

        step = nnx.jit(train_step, donate_argnums=(0, 1))
        if cached:
            step = nnx.cached_partial(step, model, opt)

            def run() -> None:
                step(x, y)
        else:

            def run() -> None:
                step(model, opt, x, y)

        run.sync = lambda: jax.block_until_ready(nnx.state(model))  # type: ignore[attr-defined]
        return run

    return setup


def make_eqx(depth: int, width: int, batch: int) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        import equinox as eqx

        keys = jax.random.split(jax.random.key(0), depth)
        layers = [eqx.nn.Linear(width, width, key=k) for k in keys]
        tx = optax.adam(LR)
        holder = [layers, tx.init(eqx.filter(layers, eqx.is_array))]
        x = jnp.ones((batch, width))
        y = jnp.zeros((batch, width))

        def fwd(ls: list, x: jax.Array) -> jax.Array:
            for i, layer in enumerate(ls):
                x = jax.vmap(layer)(x)
                if i < depth - 1:
                    x = jax.nn.relu(x)
            return x

        @eqx.filter_jit(donate="all")
        def step(ls, s, x, y):  # noqa: ANN001, ANN202
            loss, g = eqx.filter_value_and_grad(lambda m: jnp.mean((fwd(m, x) - y) ** 2))(ls)
            u, s = tx.update(g, s, eqx.filter(ls, eqx.is_array))
            return eqx.apply_updates(ls, u), s, loss

        def run() -> None:
            holder[0], holder[1], _ = step(holder[0], holder[1], x, y)

        run.sync = lambda: jax.block_until_ready(eqx.filter(holder[0], eqx.is_array))  # type: ignore[attr-defined]
        return run

    return setup


def make_torch(
    depth: int, width: int, batch: int, compiled: bool
) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        import torch

        torch.manual_seed(0)
        layers = []
        for i in range(depth):
            layers.append(torch.nn.Linear(width, width))
            if i < depth - 1:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        x = torch.ones(batch, width)
        y = torch.zeros(batch, width)

        def train_step() -> None:
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()

        fn = torch.compile(train_step) if compiled else train_step
        run = fn
        run_wrapped = lambda: run()  # noqa: E731
        run_wrapped.sync = lambda: None  # type: ignore[attr-defined]
        return run_wrapped

    return setup


# ------------------------------------------------------------------- timing
CLOCK = time.perf_counter
FIRST_REPS = 3
ROUNDS = 40
RAW = "raw jax.jit"
PAUSE_S = 0.5  # after torch, whose OpenMP threads keep spinning (see bench_depth)
GAP_S = 0.01  # between other pairs
BLOCK_S = 0.01  # target length of one timed run (sets its number of steps): short runs,
# many rounds: load on a shared machine changes over tens of ms, and a pair of short
# runs sees the same load (measured at depth 2: IQR of the ratios 0.98-1.05 with ~10 ms
# runs, 0.95-1.21 with 20 ms, 0.98-1.28 with 200 ms).


def _time(run: Callable[[], None], steps: int) -> float:
    run.sync()  # type: ignore[attr-defined]
    t0 = CLOCK()
    for _ in range(steps):
        run()
    run.sync()  # type: ignore[attr-defined]
    return (CLOCK() - t0) / steps * 1e6


def _first_call(setup: Callable[[], Callable[[], None]]) -> tuple[Callable[[], None], float, float]:
    """A fresh system: (its runner, setup ms, first-call ms = trace + compile + one step).

    A full garbage collection runs before the timed call (untimed): with every peer's
    objects alive in this process one costs 100-500 ms, and left to chance it would land
    in whichever first call happened to cross Python's threshold.
    """
    t0 = CLOCK()
    run = setup()
    run.sync()  # type: ignore[attr-defined]
    setup_s = CLOCK() - t0
    gc.collect()
    t1 = CLOCK()
    run()
    run.sync()  # type: ignore[attr-defined]
    return run, setup_s * 1e3, (CLOCK() - t1) * 1e3


def _pairs(others: list[str], r: int) -> Iterator[list[str]]:
    """Round ``r``: every system once, each right next to a raw jax.jit run of its own.

    The order of systems rotates from round to round and raw goes first or second in
    turn, so no system always follows the same one. Torch always runs after its raw
    partner and is followed by a pause: its OpenMP threads keep spinning for a while
    after a step and would slow whatever ran next (measured: raw jax.jit 30% slower
    right after torch).
    """
    for name in others[r % len(others) :] + others[: r % len(others)]:
        torch = name.startswith("torch")
        # raw's side alternates per system from round to round. (Deciding it by the
        # position in the rotated order gave, with an even number of systems, each system
        # the same side in every round: the one always timed first read ~15% slower.)
        raw_first = (others.index(name) + r) % 2 == 0
        yield [RAW, name] if torch or raw_first else [name, RAW]
        time.sleep(PAUSE_S if torch else GAP_S)


def _quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def _median_ci(xs: list[float], level: float = 0.95) -> tuple[float, float]:
    """Bootstrap confidence interval of the median (2,000 resamples, fixed seed)."""
    a = np.asarray(xs)
    rng = np.random.default_rng(0)
    meds = np.median(a[rng.integers(0, len(a), (2000, len(a)))], axis=1)
    return float(np.quantile(meds, (1 - level) / 2)), float(np.quantile(meds, (1 + level) / 2))


def bench_depth(depth: int, width: int, batch: int, rounds: int, steps: int,
                systems: dict[str, Callable], first_reps: int = 3,
                raw_first_once: bool = False) -> dict[str, dict[str, float]]:  # fmt: skip
    """Paired, interleaved timing of every system against raw jax.jit.

    Each measurement of a system is paired with a measurement of raw jax.jit taken right
    before or after it (:func:`_pairs`), and the ratio is taken within the pair: load on
    a shared machine changes over seconds, so a ratio of adjacent runs cancels most of
    it, where a ratio of runs seconds apart does not. First calls are paired the same
    way (each pair builds both systems afresh, so each compiles anew); steady state runs
    ``rounds`` rounds of pairs of ``steps`` steps each (by default as many steps as take
    about ``BLOCK_S`` seconds for that system). Reports medians, quartiles and extremes.
    ``raw_first_once``: raw's first call is measured once per repetition and every system's
    first call of that repetition is divided by it (for models whose compiles take tens of
    seconds: fewer compiles, less exact pairing).
    """
    others = [n for n in systems if n != RAW]
    runners: dict[str, Callable[[], None]] = {}
    skipped: set[str] = set()
    firsts: dict[str, list[float]] = {n: [] for n in systems}
    first_ratios: dict[str, list[float]] = {n: [] for n in systems}
    setups: dict[str, list[float]] = {n: [] for n in systems}
    for rep in range(first_reps):
        raw_got: float | None = None
        for pair in _pairs(others, rep):
            if pair[0] in skipped or pair[1] in skipped:
                continue
            got = {}
            for name in pair:
                if name == RAW and raw_first_once and raw_got is not None:
                    got[RAW] = raw_got
                    continue
                try:
                    run, s_ms, f_ms = _first_call(systems[name])
                except ImportError as e:  # a peer that cannot run here is reported
                    print(f"  {name}: skipped ({type(e).__name__}: {e})", file=sys.stderr)
                    skipped.add(name)
                    break
                got[name] = f_ms
                if name == RAW:
                    raw_got = f_ms
                firsts[name].append(f_ms)
                setups[name].append(s_ms)
                runners[name] = run
            else:
                other = pair[0] if pair[1] == RAW else pair[1]
                first_ratios[other].append(got[other] / got[RAW])
    others = [n for n in others if n not in skipped]
    n_steps = {}
    for name, run in runners.items():
        for _ in range(1 if steps else 3):
            run()
        if steps:  # a fixed number of steps per run: no calibration (slow models)
            n_steps[name] = steps
            continue
        us = statistics.median(_time(run, 5) for _ in range(3))
        n_steps[name] = max(3, min(5000, int(BLOCK_S * 1e6 / us)))
    per_sys: dict[str, list[float]] = {n: [] for n in runners}
    raw_of: dict[str, list[float]] = {n: [] for n in others}  # raw's runs in n's pairs
    ratios: dict[str, list[float]] = {n: [] for n in others}
    for r in range(rounds):
        for pair in _pairs(others, r):
            # Both runs of a pair take the same number of steps (the slower system's), so
            # that fixed costs per run (the final sync) weigh the same in both.
            n = min(n_steps[name] for name in pair)
            t = {name: _time(runners[name], n) for name in pair}
            other = pair[0] if pair[1] == RAW else pair[1]
            raw_of[other].append(t[RAW])
            per_sys[other].append(t[other])
            ratios[other].append(t[other] / t[RAW])
    # Raw's own row: its runs beside jaxmod (runs beside slower peers are shorter, and a
    # short run's final sync weighs more per step).
    per_sys[RAW] = raw_of.get("jaxmod.jit") or next(iter(raw_of.values()), [])
    out: dict[str, dict[str, float]] = {}
    for name, times in per_sys.items():
        rs = ratios.get(name) or [1.0]
        fr = first_ratios.get(name) or [1.0]
        q1, q3 = _quartiles(rs)
        ci_lo, ci_hi = _median_ci(rs)
        out[name] = {
            "us": statistics.median(times),
            "ratio": statistics.median(rs),
            "q1": q1,
            "q3": q3,
            "ci_lo": ci_lo,
            "ci_hi": ci_hi,
            "lo": min(rs),
            "hi": max(rs),
            "first_ms": statistics.median(firsts[name]),
            "first_ratio": statistics.median(fr),
            "first_lo": min(fr),
            "first_hi": max(fr),
            "setup_ms": statistics.median(setups[name]),
            "best_us": min(times),
            "best_ratio": min(times) / min(raw_of.get(name) or times),
            "steps": min(n_steps[name], n_steps[RAW]),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--depths", type=int, nargs="*", default=[2, 32, 128])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument(
        "--steps", type=int, default=0, help=f"steps per timed run (default: ~{BLOCK_S} s worth)"
    )
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--torch-compile", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--compute-bound", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--first-reps", type=int, default=3, help="fresh setups per system")
    ap.add_argument("--write", action="store_true", help="write docs/performance.md")
    ap.add_argument(
        "--clock",
        choices=["wall", "process"],
        default="wall",
        help="process: CPU time of this process (steadier when other jobs share the machine)",
    )
    args = ap.parse_args()
    global CLOCK, FIRST_REPS, ROUNDS
    FIRST_REPS, ROUNDS = args.first_reps, args.rounds
    CLOCK = time.process_time if args.clock == "process" else time.perf_counter
    backend = jax.default_backend()
    if backend == "gpu":
        try:
            import torch

            torch.backends.cuda.matmul.allow_tf32 = True
        except ImportError:
            pass
    configs = [(d, 32, 8) for d in args.depths]
    if args.compute_bound:
        configs.append((2, 4096, 1024) if backend == "gpu" else (2, 1024, 256))
    rows = []
    for depth, width, batch in configs:
        systems: dict[str, Callable] = {
            "raw jax.jit": make_raw(depth, width, batch),
            "jaxmod.jit": make_jaxmod(depth, width, batch),
            "jaxmod.jit Tensors": make_jaxmod(depth, width, batch, tensors=True),
        }
        if args.peers and width == 32:
            systems["nnx.jit"] = make_nnx(depth, width, batch, cached=False)
            systems["nnx.cached_partial"] = make_nnx(depth, width, batch, cached=True)
            systems["eqx.filter_jit"] = make_eqx(depth, width, batch)
            if backend == "cpu":
                systems["torch eager"] = make_torch(depth, width, batch, compiled=False)
            if args.torch_compile and backend == "cpu":
                systems["torch.compile"] = make_torch(depth, width, batch, compiled=True)
        print(f"depth {depth}, width {width}, batch {batch}: {args.rounds} rounds", flush=True)
        if not rows:  # warm JAX's own caches (lowering rules, first jit) for no one system
            for setup in systems.values():
                try:
                    _first_call(setup)
                except ImportError:
                    pass
        res = bench_depth(depth, width, batch, args.rounds, args.steps, systems, args.first_reps)
        for name, r in res.items():
            print(
                f"  {name:20s} {r['us']:10.1f} us/step ({r['steps']} steps/run)  ratio "
                f"{r['ratio']:6.2f}x (95% CI {r['ci_lo']:.2f}-{r['ci_hi']:.2f}) "
                f"IQR {r['q1']:.2f}-{r['q3']:.2f} [{r['lo']:.2f}-{r['hi']:.2f}]"
                f"  first call {r['first_ms']:8.1f} ms ({r['first_ratio']:.2f}x "
                f"[{r['first_lo']:.2f}-{r['first_hi']:.2f}])  setup {r['setup_ms']:7.1f} ms  "
                f"best {r['best_us']:.1f} us ({r['best_ratio']:.2f}x)",
                flush=True,
            )
            rows.append((depth, width, batch, name, r))
    section = backend if args.clock == "wall" else f"{backend}, process clock"
    table = _markdown(rows, section)
    print(table)
    if args.write:
        _write(table, section)


def _machine() -> str:
    dev = jax.devices()[0]
    return f"{dev.platform}: {getattr(dev, 'device_kind', '')}".strip()


def _markdown(rows: list, backend: str) -> str:
    import jax as _jax

    lines = [
        f"### {_machine()} ({platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} cores)"
        + (", process clock" if CLOCK is time.process_time else ""),
        "",
        f"jax {_jax.__version__}, jaxmod {jaxmod.__version__}, Python {platform.python_version()}, "
        f"numpy {np.__version__}. {ROUNDS} interleaved rounds; every run of a system is "
        "paired with a run of raw `jax.jit` (with donation) right before or after it, and "
        "the ratio is taken within the pair. Ratio = median of the per-round ratios; 95% CI = "
        "bootstrap confidence interval of that median; IQR = their quartiles. First call = "
        "trace + compile + one step of a freshly built model, "
        f"{FIRST_REPS} fresh builds per system, each paired with "
        "a fresh raw build (median ratio, range in brackets); setup (building model and "
        "optimizer, not part of the first call) is shown apart. Raw's µs/step are from its "
        "runs beside jaxmod.jit. Best = each system's fastest run, and its ratio to the "
        "fastest of the raw runs paired with it."
        + (
            " Process clock: CPU time of this process (all its threads, XLA's included), "
            "steadier than wall time when other work shares the machine."
            if CLOCK is time.process_time
            else ""
        ),
        "",
        "| depth | width | batch | system | µs/step | ratio | 95% CI | IQR | first call ms "
        "| first ratio | setup ms | best µs | best ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for depth, width, batch, name, r in rows:
        lines.append(
            f"| {depth} | {width} | {batch} | {name} | {r['us']:.1f} | {r['ratio']:.2f}x | "
            f"{r['ci_lo']:.2f}-{r['ci_hi']:.2f} | {r['q1']:.2f}-{r['q3']:.2f} | "
            f"{r['first_ms']:.0f} | "
            f"{r['first_ratio']:.2f}x [{r['first_lo']:.2f}-{r['first_hi']:.2f}] | "
            f"{r['setup_ms']:.0f} | {r['best_us']:.1f} | {r['best_ratio']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def _write(table: str, backend: str) -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    marker_start = f"<!-- step_overhead:{backend} -->"
    marker_end = f"<!-- /step_overhead:{backend} -->"
    block = f"{marker_start}\n{table}{marker_end}"
    if marker_start in text:
        a = text.index(marker_start)
        b = text.index(marker_end) + len(marker_end)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
