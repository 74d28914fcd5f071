"""Eager per-op cost of jaxmod Tensor methods vs the same ``jnp`` call on the array.

Each row times the Tensor spelling (``x.sum(1)``) and the jnp spelling
(``jnp.sum(a, axis=1)``) alternately, 15 rounds each, in process CPU time (other
processes on a shared machine do not count); the ratio is the median of the per-round
ratios. Both results are blocked on, so device time counts the same for both.

Also: the traced program of a torch-spelled attention block against the jnp-spelled one
(the number of jaxpr equations must be equal: the Tensor layer adds no ops).

The process pins itself to one CPU core before JAX starts (set ``JAXMOD_BENCH_NO_PIN=1`` to
skip): on a 2-core machine, unpinned runs of the same code swing by 30% between processes
as JAX's dispatch threads and the timed thread trade cores; pinned, rows repeat within 2%.

Run: ``python benchmarks/tensor_ops.py`` (goal: every ratio <= 1.2).
"""

from __future__ import annotations

import os

if hasattr(os, "sched_setaffinity") and not os.environ.get("JAXMOD_BENCH_NO_PIN"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import jaxmod  # noqa: E402


def _interleaved(ours, theirs, number: int, repeat: int = 15) -> tuple[float, float, float]:
    a, b = [], []
    for _ in range(repeat):
        a.append(timeit.Timer(ours, timer=time.process_time).timeit(number) / number * 1e6)
        b.append(timeit.Timer(theirs, timer=time.process_time).timeit(number) / number * 1e6)
    return (
        statistics.median(a),
        statistics.median(b),
        statistics.median(x / y for x, y in zip(a, b)),
    )


def _rows(x, y, m, a, b, am):
    sync = jax.block_until_ready
    return {
        "x + y": (lambda: sync((x + y)._value), lambda: sync(a + b)),
        "x * 2.0": (lambda: sync((x * 2.0)._value), lambda: sync(a * 2.0)),
        "x.exp()": (lambda: sync(x.exp()._value), lambda: sync(jnp.exp(a))),
        "x.sum(1)": (lambda: sync(x.sum(1)._value), lambda: sync(jnp.sum(a, axis=1))),
        "x.mean(-1, keepdim)": (
            lambda: sync(x.mean(-1, keepdim=True)._value),
            lambda: sync(jnp.mean(a, axis=-1, keepdims=True)),
        ),
        "x.view(-1)": (lambda: sync(x.view(-1)._value), lambda: sync(a.reshape(-1))),
        "x.transpose(0, 1)": (
            lambda: sync(x.transpose(0, 1)._value),
            lambda: sync(jnp.swapaxes(a, 0, 1)),
        ),
        "x[:, 1:]": (lambda: sync(x[:, 1:]._value), lambda: sync(a[:, 1:])),
        "x @ y.T": (lambda: sync((x @ y.T)._value), lambda: sync(a @ b.T)),
        "x.softmax(-1)": (
            lambda: sync(x.softmax(-1)._value),
            lambda: sync(jax.nn.softmax(a, axis=-1)),
        ),
        "x.masked_fill(m, 0)": (
            lambda: sync(x.masked_fill(m, 0.0)._value),
            lambda: sync(jnp.where(am, jnp.zeros((), a.dtype), a)),
        ),
        "jaxmod.cat([x, y], 1)": (
            lambda: sync(jaxmod.cat([x, y], 1)._value),
            lambda: sync(jnp.concatenate([a, b], axis=1)),
        ),
        "x.max(1) (values, indices)": (
            lambda: sync(x.max(1)[0]._value),
            lambda: sync((jnp.max(a, axis=1), jnp.argmax(a, axis=1))[0]),
        ),
    }


def _attention(t, x, mask, wq, n_head: int):
    """A causal self-attention block; ``t`` is jaxmod (torch spelling) or None (jnp)."""
    if t is not None:
        B, T, C = x.size()
        q, k, v = (x @ wq).split(C, dim=2)
        q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
        k = k.view(B, T, n_head, C // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(mask[:, :, :T, :T] == 0, float("-inf"))
        att = att.softmax(dim=-1)
        y = att @ v
        return y.transpose(1, 2).contiguous().view(B, T, C)
    B, T, C = x.shape
    q, k, v = jnp.split(x @ wq, 3, axis=2)
    q = jnp.swapaxes(q.reshape(B, T, n_head, C // n_head), 1, 2)
    k = jnp.swapaxes(k.reshape(B, T, n_head, C // n_head), 1, 2)
    v = jnp.swapaxes(v.reshape(B, T, n_head, C // n_head), 1, 2)
    att = (q @ jnp.swapaxes(k, -2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
    att = jnp.where(mask[:, :, :T, :T] == 0, jnp.asarray(float("-inf"), att.dtype), att)
    att = jax.nn.softmax(att, axis=-1)
    y = att @ v
    return jnp.swapaxes(y, 1, 2).reshape(B, T, C)


def op_counts() -> tuple[int, int]:
    """jaxpr equation counts of the torch-spelled and the jnp-spelled attention block."""
    B, T, C = 2, 8, 16
    x = jnp.ones((B, T, C))
    wq = jnp.ones((C, 3 * C))
    mask = jnp.tril(jnp.ones((T, T))).reshape(1, 1, T, T)
    torch_style = jax.make_jaxpr(
        lambda x, m, w: _attention(jaxmod, jaxmod.Tensor(x), jaxmod.Tensor(m), w, 4)._value
    )(x, mask, wq)
    jnp_style = jax.make_jaxpr(lambda x, m, w: _attention(None, x, m, w, 4))(x, mask, wq)
    return len(torch_style.eqns), len(jnp_style.eqns)


def main() -> None:
    a = jax.random.normal(jax.random.key(0), (64, 64))
    b = jax.random.normal(jax.random.key(1), (64, 64))
    am = a > 0
    x, y, m = jaxmod.Tensor(a), jaxmod.Tensor(b), jaxmod.Tensor(am)
    print(f"{'op':>28} {'Tensor µs':>10} {'jnp µs':>8} {'ratio':>6}")
    worst = 0.0
    for name, (ours, theirs) in _rows(x, y, m, a, b, am).items():
        ours(), theirs()  # compile outside the timing
        t_ours, t_jnp, ratio = _interleaved(ours, theirs, number=200)
        worst = max(worst, ratio)
        print(f"{name:>28} {t_ours:10.1f} {t_jnp:8.1f} {ratio:6.2f}")
    print(f"worst ratio: {worst:.2f} (goal <= 1.2)")
    n_torch, n_jnp = op_counts()
    print(f"attention block jaxpr equations: torch spelling {n_torch}, jnp spelling {n_jnp}")


if __name__ == "__main__":
    main()
