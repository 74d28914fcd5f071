"""The strong-Wolfe line search behind ``LBFGS(line_search_fn="strong_wolfe")``.

Nocedal & Wright, *Numerical Optimization* (2nd ed.), algorithms 3.5 (bracketing) and 3.6
(zoom), with trial steps from the minimiser of the cubic through two points' values and
slopes (their eq. 3.59), in the variant torch ships (minFunc's ``lswolfe``): the same
constants, safeguards and evaluation budget, so that for the same objective it tries
the same steps and returns the same point as ``torch.optim.LBFGS``.

Runs eagerly on the host. Scalars are 0-d JAX arrays where torch holds 0-d tensors (a
slope, a step from an interpolation) and Python floats where it holds floats (the
losses), so that comparisons round as torch's do (a Python float meeting a float32
array is compared in float32, in JAX as in torch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

__all__ = ["cubic_step", "strong_wolfe"]


class _Trial(NamedTuple):
    """A point on the line: step ``t``, loss ``f``, flat gradient ``g`` and slope ``gtd``."""

    t: Any
    f: Any
    g: Any
    gtd: Any


def cubic_step(a: Any, fa: Any, ga: Any, b: Any, fb: Any, gb: Any,
               bounds: tuple[Any, Any] | None = None) -> Any:  # fmt: skip
    """The minimiser of the cubic matching ``(fa, ga)`` at ``a`` and ``(fb, gb)`` at ``b``,
    clipped to ``bounds`` (default: the interval between ``a`` and ``b``); the middle of
    the bounds when that cubic has no real local minimiser."""
    lo, hi = bounds if bounds is not None else ((a, b) if a <= b else (b, a))
    d1 = ga + gb - 3 * (fa - fb) / (a - b)
    disc = d1**2 - ga * gb
    if not disc >= 0:
        return (lo + hi) / 2.0
    d2 = jnp.sqrt(disc)
    # written from the endpoint further along the line
    if a <= b:
        m = b - (b - a) * ((gb + d2 - d1) / (gb - ga + 2 * d2))
    else:
        m = a - (a - b) * ((ga + d2 - d1) / (ga - gb + 2 * d2))
    return min(max(m, lo), hi)


def strong_wolfe(
    evaluate: Callable[[Any], tuple[float, Any]],
    d: Any,
    t: Any,
    f: float,
    g: Any,
    gtd: Any,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, Any, Any, int]:
    """Search along ``d`` from the current point (loss ``f``, gradient ``g``, slope ``gtd``)
    starting with step ``t``; ``evaluate(step)`` gives the loss and flat gradient there.

    Returns ``(loss, gradient, step, evaluations)`` of the accepted point: one meeting the
    strong Wolfe conditions (``c1`` sufficient decrease, ``c2`` curvature), or the best
    point found when ``max_ls`` trials or a bracket narrower than ``tolerance_change``
    (in the largest coordinate of ``d``) end the search.
    """
    d_scale = jnp.max(jnp.abs(d))
    start = _Trial(0, f, g, gtd)

    def armijo_fails(trial: _Trial) -> bool:
        return bool(trial.f > f + c1 * trial.t * gtd)

    def curvature_holds(trial: _Trial) -> bool:
        return bool(abs(trial.gtd) <= -c2 * gtd)

    def trial_at(step: Any) -> _Trial:
        f_new, g_new = evaluate(step)
        return _Trial(step, f_new, g_new, jnp.dot(g_new, d))

    # Phase 1 (bracketing): lengthen the step until it overshoots a minimiser.
    evals, trials = 1, 0
    prev, cur = start, trial_at(t)
    bracket: list[_Trial] | None = None
    found = False
    while trials < max_ls:
        if armijo_fails(cur) or (trials > 1 and cur.f >= prev.f):
            bracket = [prev, cur]
            break
        if curvature_holds(cur):
            bracket, found = [cur], True
            break
        if cur.gtd >= 0:
            bracket = [prev, cur]
            break
        # still descending: extrapolate, at least 1% past the current step, at most 10x
        nxt = cubic_step(prev.t, prev.f, prev.gtd, cur.t, cur.f, cur.gtd,
                         bounds=(cur.t + 0.01 * (cur.t - prev.t), cur.t * 10))  # fmt: skip
        prev, cur = cur, trial_at(nxt)
        evals += 1
        trials += 1
    if trials == max_ls:
        # out of trials: choose between the start and the last step (slopes unused)
        bracket = [start._replace(gtd=None), cur._replace(gtd=None)]
    assert bracket is not None

    # Phase 2 (zoom): shrink the bracket around a point meeting both conditions.
    def best_first() -> tuple[int, int]:
        return (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)

    low, high = best_first()
    stalled = False
    while not found and trials < max_ls:
        left, right = bracket[0], bracket[1]
        if abs(right.t - left.t) * d_scale < tolerance_change:
            break
        step = cubic_step(left.t, left.f, left.gtd, right.t, right.f, right.gtd)
        top, bottom = max(left.t, right.t), min(left.t, right.t)
        margin = 0.1 * (top - bottom)
        if min(top - step, step - bottom) < margin:
            # next to an end: accept once; the second time in a row (or on an end
            # itself) move to a tenth of the bracket inside the nearer end
            if stalled or step >= top or step <= bottom:
                step = top - margin if abs(step - top) < abs(step - bottom) else bottom + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        cur = trial_at(step)
        evals += 1
        trials += 1
        if armijo_fails(cur) or cur.f >= bracket[low].f:
            bracket[high] = cur
            low, high = best_first()
        else:
            if curvature_holds(cur):
                found = True
            elif cur.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = cur
    best = bracket[low]
    return best.f, best.g, best.t, evals
