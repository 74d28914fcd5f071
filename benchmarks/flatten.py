"""Flatten + unflatten cost of a module graph vs ``jax.tree_util`` on an equivalent dict.

Models are ``Sequential`` stacks of ``Linear`` layers (10, 100, 1000 modules); the
equivalent pytree is ``{"0": {"weight": w, "bias": b}, ...}`` holding the same arrays.
"Flatten" is the steady state (the graph walk is cached until the structure changes);
"cold flatten" forces the walk by bumping the structure version first.

The two are timed alternately, 9 times each; the ratio is the median of the per-pair
ratios (the machine's speed drifts between one measurement and the next).

Run: ``python benchmarks/flatten.py`` (ratio goal: within 3x of the dict at 1,000 modules).
"""

from __future__ import annotations

import statistics
import timeit

import jax

from jaxmod import nn
from jaxmod.nn import module as _module


def _interleaved(ours, theirs, number: int, repeat: int = 9) -> tuple[float, float, float]:
    """Median µs of each and the median of per-repeat ratios, timing the two alternately
    (this machine's speed drifts; back-to-back pairs see the same conditions)."""
    a, b = [], []
    for _ in range(repeat):
        a.append(timeit.timeit(ours, number=number) / number * 1e6)
        b.append(timeit.timeit(theirs, number=number) / number * 1e6)
    ratio = statistics.median(x / y for x, y in zip(a, b))
    return statistics.median(a), statistics.median(b), ratio


def main() -> None:
    print(f"{'modules':>8} {'what':>16} {'jaxmod µs':>10} {'dict µs':>9} {'ratio':>6}")
    for n in (10, 100, 1000):
        _bench(n)


def _bench(n: int) -> None:
    tu = jax.tree_util
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(n)])
    tree = {str(i): {"weight": m.weight.value, "bias": m.bias.value} for i, m in enumerate(model)}
    m_leaves, m_def = tu.tree_flatten(model)
    d_leaves, d_def = tu.tree_flatten(tree)
    number = max(10, 20000 // n)

    def cold() -> None:
        _module._bump_version()
        tu.tree_flatten(model)

    rows = {
        "flatten": (lambda: tu.tree_flatten(model), lambda: tu.tree_flatten(tree)),
        "cold flatten": (cold, lambda: tu.tree_flatten(tree)),
        "unflatten": (
            lambda: tu.tree_unflatten(m_def, m_leaves),
            lambda: tu.tree_unflatten(d_def, d_leaves),
        ),
        "flatten+unflatten": (
            lambda: tu.tree_unflatten(*reversed(tu.tree_flatten(model))),
            lambda: tu.tree_unflatten(*reversed(tu.tree_flatten(tree))),
        ),
    }
    for what, (ours, theirs) in rows.items():
        a, b, ratio = _interleaved(ours, theirs, number)
        print(f"{n:>8} {what:>16} {a:>10.1f} {b:>9.1f} {ratio:>5.1f}x", flush=True)


if __name__ == "__main__":
    main()
