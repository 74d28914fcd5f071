"""L-BFGS with torch's closure-based ``step``, its iterates and its state layout."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxmod._autograd import enable_grad
from jaxmod._core import state
from jaxmod._core.cells import to_array
from jaxmod.nn.parameter import Parameter
from jaxmod.optim import _handwritten, _load
from jaxmod.optim._wolfe import strong_wolfe
from jaxmod.optim.optimizer import Optimizer

__all__ = ["LBFGS"]

# What torch's LBFGS keeps in the state of its first parameter: the counters, then what
# one iteration leaves for the next (``al`` is the two-loop's scratch list).
_COUNTS = ("func_evals", "n_iter")
_CARRIED = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss")
_KEYS = (*_COUNTS, *_CARRIED, "al")


@jax.jit
def _flatten(grads: tuple) -> jax.Array:
    """One flat vector of the parameters' gradients, in parameter order."""
    return jnp.concatenate([jnp.ravel(g) for g in grads])


@jax.jit
def _moved(xs: tuple, t: Any, d: jax.Array) -> tuple:
    """The parameters ``xs`` moved by ``t * d`` (``d`` flat, in parameter order)."""
    out, offset = [], 0
    for x in xs:
        n = x.size
        out.append((x + t * d[offset : offset + n].reshape(x.shape)).astype(x.dtype))
        offset += n
    return tuple(out)


@jax.jit
def _two_loop(g: jax.Array, dirs: tuple, stps: tuple, ro: tuple, h_diag: Any,
              n: jax.Array) -> tuple[jax.Array, tuple]:  # fmt: skip
    """The L-BFGS direction ``-H g`` from the ``n`` newest curvature pairs (Nocedal &
    Wright, algorithm 7.4): ``dirs`` are the gradient changes ``y``, ``stps`` the steps
    ``s``, ``ro`` their ``1 / y.s``, padded to the history size; ``h_diag`` scales the
    initial inverse Hessian. Also returns the first loop's coefficients (``al``), one
    0-d array each (unpacked here: slicing them eagerly would compile once per ``n``)."""
    ys, ss, rs = jnp.stack(dirs), jnp.stack(stps), jnp.stack(ro)

    def newest_first(j: Any, carry: tuple) -> tuple:
        q, al = carry
        i = n - 1 - j
        a = jnp.dot(ss[i], q) * rs[i]
        return q - a * ys[i], al.at[i].set(a)

    q, al = lax.fori_loop(0, n, newest_first, (-g, jnp.zeros_like(rs)))

    def oldest_first(i: Any, r: jax.Array) -> jax.Array:
        be = jnp.dot(ys[i], r) * rs[i]
        return r + (al[i] - be) * ss[i]

    return lax.fori_loop(0, n, oldest_first, q * h_diag), tuple(al)


def _max_abs(v: jax.Array) -> jax.Array:
    return jnp.max(jnp.abs(v))


class LBFGS(Optimizer):
    """L-BFGS with torch's constructor, closure-based :meth:`step`, iterates and state.

    ``step(closure)`` runs torch's algorithm on the host: up to ``max_iter`` iterations
    (``max_eval`` closure calls) of the two-loop recursion over the last ``history_size``
    curvature pairs, the first step scaled to ``min(1, 1 / |g|_1) * lr``, then either a
    fixed step ``lr`` or, with ``line_search_fn="strong_wolfe"``, torch's cubic
    interpolating strong-Wolfe search (``c1=1e-4``, ``c2=0.9``, at most 25 trials), with
    torch's stopping rules (``tolerance_grad`` on the largest gradient entry,
    ``tolerance_change`` on the step, the slope and the loss change). The vector math is
    ``jax.numpy``; the closure is called eagerly, in Python, as torch calls it, so the
    iterates are torch's (up to float32 rounding).

    The closure is torch's (``opt.zero_grad(); loss = ...; loss.backward(); return
    loss``: gradients from each parameter's ``.grad``) or returns ``(loss, grads)``,
    ``grads`` in any form :meth:`Optimizer.step` accepts (e.g. from
    :func:`jaxmod.value_and_grad`). A parameter without gradient counts as zero gradient.

    ``state[first parameter]`` and ``state_dict()["state"][0]`` hold torch's entries
    (``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``,
    ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``), JAX arrays where torch has
    tensors; ``load_state_dict`` also takes torch's. Only one parameter group; real
    parameters only; runs eagerly (not inside :func:`jaxmod.jit`).
    """

    # Its own step() and no _transform: the base gives it torch's plain state layout
    # (optim/_handwritten.py), which the step below fills as torch's LBFGS does.

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if not 0.0 <= float(to_array(lr)):
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError("only 'strong_wolfe' is supported")
        defaults = dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size,
            line_search_fn=line_search_fn,
        )  # fmt: skip
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        for p in self.param_groups[0]["params"]:
            if jnp.iscomplexobj(p._value):
                raise TypeError("jaxmod's LBFGS optimizes real parameters only")

    # -- jaxmod.jit protocol -----------------------------------------------------------
    def _jaxmod_cells_(self) -> list:
        """The parameters: LBFGS keeps no state a compiled step could lift (its ``step``
        refuses to run inside :func:`jaxmod.jit`)."""
        return list(self._flat_params())

    # -- pieces of a step ----------------------------------------------------------------
    def _params(self) -> list[Parameter]:
        return self.param_groups[0]["params"]

    def _evaluate(self, closure: Callable[[], Any]) -> tuple[Any, float, jax.Array]:
        """Call the closure (gradients enabled, as torch does): its return value, the loss
        as a Python float, and the flat gradient."""
        with enable_grad():
            out = closure()
        if isinstance(out, tuple) and len(out) == 2:
            ret, grads = out[0], out[1]
        else:
            ret, grads = out, None
        gmap = self._resolve_grads(grads)
        flat = []
        for p in self._params():
            g = gmap.get(id(p))
            if g is None:
                flat.append(jnp.zeros(p.shape, p.dtype))
                continue
            g = to_array(g)
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(
                    f"LBFGS got a gradient of shape {tuple(g.shape)} for a parameter of shape "
                    f"{tuple(p.shape)}"
                )
            flat.append(g)
        return ret, float(to_array(ret)), _flatten(tuple(flat))

    def _place(self, xs: tuple, t: Any, d: jax.Array) -> None:
        """Set the parameters to ``xs + t * d``."""
        for p, v in zip(self._params(), _moved(xs, t, d)):
            p._value = v

    def _direction(self, g: jax.Array, st: dict, history_size: int) -> jax.Array:
        """The two-loop direction from the stored pairs; fills ``st["al"]`` like torch."""
        dirs, stps, ro = st["old_dirs"], st["old_stps"], st["ro"]
        n = len(dirs)
        al = st.setdefault("al", [None] * history_size)
        if n == 0:
            return -g * st["H_diag"]
        pad = history_size - n
        zero, zero1 = jnp.zeros_like(g), jnp.zeros((), g.dtype)
        h = jnp.asarray(st["H_diag"], g.dtype)
        d, coeffs = _two_loop(g, (*dirs, *[zero] * pad), (*stps, *[zero] * pad),
                              (*ro, *[zero1] * pad), h, jnp.int32(n))  # fmt: skip
        al[:n] = list(coeffs[:n])
        return d

    # -- the step ----------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; returns the closure's first result
        (the loss, or the loss of a ``(loss, grads)`` closure)."""
        if closure is None or not callable(closure):
            raise ValueError("LBFGS.step needs a closure")
        if state.ctx.jit_depth:
            raise RuntimeError(
                "LBFGS.step runs eagerly (it calls the closure in Python, as torch does): "
                "call it outside jaxmod.jit"
            )
        group = self.param_groups[0]
        lr = group["lr"]
        lr = float(lr) if isinstance(lr, (int, float)) else float(to_array(lr))
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        params = self._params()

        # global state, kept (as torch does) in the first parameter's entry
        st = self.state[params[0]]
        st.setdefault("func_evals", 0)
        st.setdefault("n_iter", 0)

        orig, loss, g = self._evaluate(closure)
        evals = 1
        st["func_evals"] += 1
        if _max_abs(g) <= tol_grad:
            return orig

        d, t = st.get("d"), st.get("t")
        prev_g, prev_loss = st.get("prev_flat_grad"), st.get("prev_loss")
        for it in range(1, max_iter + 1):
            st["n_iter"] += 1
            if st["n_iter"] == 1:
                # steepest descent, no curvature pairs yet
                d = -g
                st.update(old_dirs=[], old_stps=[], ro=[], H_diag=1)
            else:
                y, s = g - prev_g, d * t
                ys = jnp.dot(y, s)
                if ys > 1e-10:  # keep the pair only where the curvature is positive
                    if len(st["old_dirs"]) == history_size:
                        for k in ("old_dirs", "old_stps", "ro"):
                            st[k] = st[k][1:]
                    st["old_dirs"] = [*st["old_dirs"], y]
                    st["old_stps"] = [*st["old_stps"], s]
                    st["ro"] = [*st["ro"], 1.0 / ys]
                    st["H_diag"] = ys / jnp.dot(y, y)
                d = self._direction(g, st, history_size)
            prev_g, prev_loss = g, loss

            # first step of all: at most 1 / |g|_1 (the gradient's scale is unknown)
            t = min(1.0, 1.0 / jnp.sum(jnp.abs(g))) * lr if st["n_iter"] == 1 else lr
            gtd = jnp.dot(g, d)
            if gtd > -tol_change:  # not a descent direction (to tolerance)
                break

            xs = tuple(p._value for p in params)
            converged = False
            if group["line_search_fn"] is not None:

                def along(step: Any, xs: tuple = xs, d: jax.Array = d) -> tuple[float, Any]:
                    self._place(xs, step, d)
                    try:
                        _, f, grad = self._evaluate(closure)
                    finally:
                        for p, x in zip(params, xs):
                            p._value = x
                    return f, grad

                loss, g, t, ls_evals = strong_wolfe(
                    along, d, t, loss, g, gtd, tolerance_change=tol_change,
                    max_ls=max_eval - evals,
                )  # fmt: skip
                self._place(xs, t, d)
                converged = _max_abs(g) <= tol_grad
            else:
                self._place(xs, t, d)
                ls_evals = 0
                if it != max_iter:
                    # no evaluation after the last iteration (the next step makes one)
                    _, loss, g = self._evaluate(closure)
                    converged = _max_abs(g) <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            st["func_evals"] += ls_evals

            if it == max_iter or evals >= max_eval or converged:
                break
            if _max_abs(d * t) <= tol_change or abs(loss - prev_loss) < tol_change:
                break  # no progress

        st.update(d=d, t=t, prev_flat_grad=prev_g, prev_loss=prev_loss)
        return orig

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{"state": {0: {"func_evals", "n_iter", "d", "t", ...}},
        "param_groups": [...]}`` (``"state"`` is empty before the first step)."""
        sd = _handwritten.state_dict(self)
        sd["state"] = {
            k: {n: list(v) if isinstance(v, list) else v for n, v in entry.items()}
            for k, entry in sd["state"].items()
            if entry
        }
        return sd

    def load_state_dict(self, state_dict: Any) -> None:
        """Load a state dict saved by :meth:`state_dict`, or by torch's LBFGS (tensors
        become JAX arrays). Everything is checked first: a load that raises changes
        nothing."""
        groups = _load.check_groups(self, state_dict)
        saved = state_dict["state"]
        if not isinstance(saved, Mapping) or any(_load._index(k) != 0 for k in saved):
            raise ValueError(
                "loaded state dict's 'state' must be {} or {0: {...}} (LBFGS keeps its state "
                "with its first parameter, as torch does), got keys " + repr(list(saved))
            )
        entry = next(iter(saved.values()), None)
        new = None if entry is None else self._checked_state(entry, groups[0])
        self.param_groups[:] = groups
        st = _handwritten.state(self)
        st.clear()
        if new is not None:
            st[self._params()[0]] = new
        state.bump()

    def _checked_state(self, entry: Any, group: dict) -> dict[str, Any]:
        """``entry`` (torch's keys) checked and converted: vectors to JAX arrays of the
        parameters' total size and dtype, counters to ints, scalars to floats or 0-d
        arrays."""
        what = "loaded state dict's state[0]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{what} is a {type(entry).__name__}, not a dict")
        extra = sorted(map(str, set(entry) - set(_KEYS)))
        if extra or not set(_COUNTS) <= set(entry):
            raise ValueError(
                f"{what} must hold {list(_COUNTS)} and, after an iteration, "
                f"{list(_CARRIED)} (and 'al'), got {sorted(map(str, entry))}: the state of "
                "another optimizer"
            )
        out: dict[str, Any] = {k: _load._step_of(entry[k], f"{what}[{k!r}]") for k in _COUNTS}
        carried = [k for k in _CARRIED if k in entry]
        if carried and len(carried) != len(_CARRIED) or (out["n_iter"] and not carried):
            missing = sorted(set(_CARRIED) - set(carried))
            raise ValueError(f"{what} lacks {missing}, which an iteration leaves")
        params = group["params"]
        dtype = jnp.result_type(*[p.dtype for p in params])
        vec = jax.ShapeDtypeStruct((sum(p._value.size for p in params),), dtype)
        one = jax.ShapeDtypeStruct((), dtype)

        def number(v: Any, name: str) -> Any:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return v
            return _load._leaves_like(v, one, f"{what}[{name!r}]")

        def vectors(name: str) -> list:
            v = entry[name]
            if not isinstance(v, (list, tuple)):
                raise ValueError(f"{what}[{name!r}] is a {type(v).__name__}, not a list")
            return [_load._leaves_like(x, vec, f"{what}[{name!r}][{i}]") for i, x in enumerate(v)]

        if carried:
            out["d"] = _load._leaves_like(entry["d"], vec, f"{what}['d']")
            out["prev_flat_grad"] = _load._leaves_like(
                entry["prev_flat_grad"], vec, f"{what}['prev_flat_grad']"
            )
            out["old_dirs"], out["old_stps"] = vectors("old_dirs"), vectors("old_stps")
            ro = entry["ro"]
            if not isinstance(ro, (list, tuple)):
                raise ValueError(f"{what}['ro'] is a {type(ro).__name__}, not a list")
            out["ro"] = [number(x, "ro") for x in ro]
            if not len(out["old_dirs"]) == len(out["old_stps"]) == len(out["ro"]):
                raise ValueError(f"{what}'s 'old_dirs', 'old_stps' and 'ro' have different lengths")
            if len(out["ro"]) > group["history_size"]:
                raise ValueError(
                    f"{what} holds {len(out['ro'])} curvature pairs, more than history_size="
                    f"{group['history_size']}"
                )
            for k in ("t", "H_diag"):
                out[k] = number(entry[k], k)
            out["prev_loss"] = float(to_array(entry["prev_loss"]))
        if "al" in entry:
            al = entry["al"]
            if not isinstance(al, (list, tuple)):
                raise ValueError(f"{what}['al'] is a {type(al).__name__}, not a list")
            out["al"] = [None if x is None else number(x, "al") for x in al]
            out["al"] += [None] * (group["history_size"] - len(out["al"]))
        return out
