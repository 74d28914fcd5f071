"""L-BFGS on top of ``optax.lbfgs`` with torch's closure-based ``step``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxmod._core import state
from jaxmod._core.cells import to_array
from jaxmod.nn.parameter import Variable
from jaxmod.optim import _load
from jaxmod.optim.optimizer import Optimizer

__all__ = ["LBFGS"]


def _raw(x: Any) -> Any:
    """A loss or gradient (array, box or Tensor) as a JAX array."""
    return jnp.asarray(to_array(x))


class LBFGS(Optimizer):
    """L-BFGS with torch's constructor and closure-based :meth:`step`, computed by optax.

    ``step(closure)`` runs up to ``max_iter`` iterations of ``optax.lbfgs`` (memory
    ``history_size``; ``line_search_fn="strong_wolfe"`` uses
    ``optax.scale_by_zoom_linesearch``, otherwise a fixed step ``lr``), stopping on
    torch's criteria (``tolerance_grad`` on the max gradient, ``tolerance_change`` on the
    step and on the loss change, ``max_eval`` closure evaluations).

    The closure may return ``(loss, grads)`` (grads in any form :meth:`Optimizer.step`
    accepts, e.g. from :func:`jaxmod.value_and_grad`) or just the loss with each
    parameter's ``.grad`` set. With ``"strong_wolfe"`` the closure is also traced by the
    line search, so it must be a pure JAX computation of the parameters.

    Not torch's exact iterates: optax scales the first direction and runs its own zoom
    line search, so parity with torch is not expected; both minimise the same problems.
    Only one parameter group; not usable inside :func:`jaxmod.jit`.
    """

    _static_hparams = ("max_iter", "max_eval", "history_size", "line_search_fn")

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
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError("only 'strong_wolfe' is supported")
        defaults = dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size,
            line_search_fn=line_search_fn,
        )  # fmt: skip
        self._lbfgs_state = Variable()
        self._n_iter = 0
        self._func_evals = 0
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    def _tx(self, group: dict) -> optax.GradientTransformationExtraArgs:
        ls = (
            optax.scale_by_zoom_linesearch(max_linesearch_steps=25)
            if group["line_search_fn"] == "strong_wolfe"
            else None
        )
        return optax.lbfgs(
            learning_rate=None if ls is not None else group["lr"],
            memory_size=group["history_size"],
            linesearch=ls,
        )

    def _init_group_state(self, group: dict, keep: bool = False) -> None:
        self._structures[id(group)] = ()
        values = [p._value for p in group["params"]]
        self._lbfgs_state._value = jax.tree.map(
            lambda x: jnp.array(x, copy=True), self._tx(group).init(values)
        )

    def _jaxmod_cells_(self) -> list:
        """Parameters and the optax state (LBFGS itself does not run under jit)."""
        return [*self._flat_params(), self._lbfgs_state]

    def _evaluate(self, closure: Callable[[], Any]) -> tuple[Any, list]:
        out = closure()
        if isinstance(out, tuple) and len(out) == 2:
            loss, grads = out
        else:
            loss, grads = out, None
        gmap = self._resolve_grads(grads)
        params = self._flat_params()
        self._func_evals += 1
        # arrays for optax (Tensors from loss.backward() are pytree nodes of their own)
        return loss, [_raw(gmap.get(id(p), jnp.zeros_like(p._value))) for p in params]

    def step(self, grads: Any = None, closure: Callable[[], Any] | None = None) -> Any:
        """Run up to ``max_iter`` L-BFGS iterations; returns the closure's first loss."""
        if closure is None:
            if callable(grads):
                closure, grads = grads, None
            else:
                raise ValueError("LBFGS.step needs a closure")
        group = self.param_groups[0]
        params = group["params"]
        tx = self._tx(group)

        def value_fn(values: list) -> Any:
            old = [p._value for p in params]
            try:
                for p, v in zip(params, values):
                    p._value = v
                out = closure()
                loss = out[0] if isinstance(out, tuple) else out
                return loss._value if isinstance(loss, Variable) else loss
            finally:
                for p, v in zip(params, old):
                    p._value = v

        key = (closure, group["lr"], group["history_size"], group["line_search_fn"])
        cached = getattr(self, "_jit_update", None)
        if cached is None or cached[0] != key:
            # Compiled once per closure: the zoom line search traces value_fn (the closure).
            fn = jax.jit(lambda g, s, x, v: tx.update(g, s, x, value=v, grad=g, value_fn=value_fn))
            self._jit_update = cached = (key, fn)
        update = cached[1]
        orig_loss, g = self._evaluate(closure)
        loss = orig_loss
        if max(float(jnp.max(jnp.abs(x))) for x in g) <= group["tolerance_grad"]:
            return orig_loss
        state = self._lbfgs_state._value
        for _ in range(group["max_iter"]):
            self._n_iter += 1
            x = [p._value for p in params]
            updates, state = update(g, state, x, _raw(loss))
            for p, v in zip(params, optax.apply_updates(x, updates)):
                p._value = v
            new_loss, g = self._evaluate(closure)
            if max(float(jnp.max(jnp.abs(x))) for x in g) <= group["tolerance_grad"]:
                break
            if max(float(jnp.max(jnp.abs(u))) for u in updates) <= group["tolerance_change"]:
                break
            if abs(float(new_loss) - float(loss)) < group["tolerance_change"]:
                break
            if self._func_evals >= group["max_eval"] * self._n_iter:
                break
            loss = new_loss
        self._lbfgs_state._value = state
        return orig_loss

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {0: {"func_evals", "n_iter", "optax_state"}}, "param_groups": ...}``."""
        sd = super().state_dict()
        sd["state"] = {}
        if self._n_iter:
            sd["state"][0] = {
                "func_evals": self._func_evals,
                "n_iter": self._n_iter,
                "optax_state": self._lbfgs_state._value,
            }
        return sd

    def load_state_dict(self, state_dict: Any) -> None:
        """Load a state dict saved by :meth:`state_dict` (checked first: a load that
        raises changes nothing)."""
        groups = _load.check_groups(self, state_dict)
        saved = state_dict["state"]
        if not isinstance(saved, Mapping) or any(_load._index(k) != 0 for k in saved):
            raise ValueError(
                "loaded state dict's 'state' must be {} or {0: {'func_evals', 'n_iter', "
                "'optax_state'}} (what LBFGS.state_dict() returns), got keys " + repr(list(saved))
            )
        entry = next(iter(saved.values()), None)
        if entry is not None:
            keys = {"func_evals", "n_iter", "optax_state"}
            if not isinstance(entry, Mapping) or set(entry) != keys:
                got = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
                raise ValueError(
                    f"loaded state dict's state[0] must hold {sorted(keys)}, got {got}: the "
                    "state of another optimizer"
                )
            values = [p._value for p in groups[0]["params"]]
            expected = jax.eval_shape(self._tx(groups[0]).init, values)
            what = "loaded state dict's 'optax_state'"
            opt_state = _load._leaves_like(entry["optax_state"], expected, what)
            counts = [_load._step_of(entry[k], f"loaded state dict's {k!r}")
                      for k in ("n_iter", "func_evals")]  # fmt: skip
        self.param_groups[:] = groups
        self._init_group_state(self.param_groups[0])
        if entry is not None:
            self._n_iter, self._func_evals = counts
            self._lbfgs_state._value = opt_state
        else:
            self._n_iter = self._func_evals = 0
        state.bump()

    def _torch_state(self, p: Variable) -> dict[str, Any]:
        return {}
