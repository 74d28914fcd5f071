"""Per-coordinate adaptive methods: ``Adagrad``, ``Adadelta``, ``RMSprop``, ``Rprop``, ``ASGD``."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmod.optim.optimizer import Optimizer, _check, _maximize, _weight_decay

__all__ = ["Adagrad", "Adadelta", "RMSprop", "Rprop", "ASGD"]


def _prefix(static: dict, hp: dict) -> list:
    parts: list = []
    parts.append(("maximize", _maximize(static)))
    if "weight_decay" in hp:
        parts.append(("weight_decay", _weight_decay(hp, static)))
    return parts


class ScaleByTorchRssState(NamedTuple):
    """State of :func:`scale_by_torch_rss`: the running sum of squared gradients."""

    sum: Any


def scale_by_torch_rss(initial_accumulator_value: Any, eps: Any) -> Any:
    """torch's Adagrad scaling ``g / (sqrt(sum) + eps)`` with ``sum += g * g``.

    ``optax.scale_by_rss`` puts eps inside the square root and zeroes coordinates whose
    sum is 0, so it differs from torch; this replaces it.
    """

    def init(params: Any) -> ScaleByTorchRssState:
        return ScaleByTorchRssState(optax.tree.full_like(params, initial_accumulator_value))

    def update(updates: Any, state: ScaleByTorchRssState, params: Any = None) -> Any:
        del params
        s = jax.tree.map(lambda a, g: a + g * g, state.sum, updates)
        out = jax.tree.map(lambda g, a: g / (jnp.sqrt(a) + eps), updates, s)
        return out, ScaleByTorchRssState(s)

    return optax.GradientTransformation(init, update)


class Adagrad(Optimizer):
    """Adagrad, torch's rule (eps outside the square root, ``lr_decay``).

    optax composition: ``scale(-1)`` (maximize), ``add_decayed_weights(weight_decay)``,
    :func:`scale_by_torch_rss` (custom, see there), then
    ``scale_by_schedule(c -> -lr / (1 + c * lr_decay))``.

    Like torch, the state (``sum`` = ``initial_accumulator_value``, ``step`` = 0) exists
    for every parameter from construction and appears in ``state_dict`` before any step.
    The initial accumulator is taken from the group when it is added.
    """

    _torch_eager_state = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= lr_decay, f"Invalid lr_decay value: {lr_decay}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        _check(
            0.0 <= initial_accumulator_value,
            f"Invalid initial_accumulator_value value: {initial_accumulator_value}",
        )
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        defaults = dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach,
            maximize=maximize, differentiable=differentiable, fused=fused,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        lr, decay = hp["lr"], hp["lr_decay"]
        return optax.named_chain(
            *_prefix(static, hp),
            ("adagrad", scale_by_torch_rss(hp["initial_accumulator_value"], hp["eps"])),
            ("lr", optax.scale_by_schedule(lambda c: -lr / (1 + c * decay))),
        )

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        return {"sum": ("adagrad", "sum")}


class Adadelta(Optimizer):
    """Adadelta, torch's rule.

    optax composition: ``scale(-1)`` (maximize), ``add_decayed_weights(weight_decay)``,
    ``scale_by_adadelta(rho, eps)`` (exactly torch's ``square_avg`` / ``acc_delta``
    recursion), ``scale_by_learning_rate(lr)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
            capturable=capturable, foreach=foreach, differentiable=differentiable,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        return optax.named_chain(
            *_prefix(static, hp),
            ("adadelta", optax.scale_by_adadelta(hp["rho"], hp["eps"])),
            ("lr", optax.scale_by_learning_rate(hp["lr"])),
        )

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        return {"square_avg": ("adadelta", "e_g"), "acc_delta": ("adadelta", "e_x")}


class RMSprop(Optimizer):
    """RMSprop, torch's rule (eps outside the square root, optional centering/momentum).

    optax composition: ``scale(-1)`` (maximize), ``add_decayed_weights(weight_decay)``,
    ``scale_by_rms(alpha, eps, eps_in_sqrt=False)`` or, when ``centered``,
    ``scale_by_stddev(alpha, eps, eps_in_sqrt=False)``, then ``trace(momentum)`` when
    ``momentum > 0`` (torch's ``buf = momentum * buf + g / avg``), then
    ``scale_by_learning_rate(lr)``. ``centered`` and ``momentum > 0`` are fixed when the
    group is added.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        _check(0.0 <= momentum, f"Invalid momentum value: {momentum}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        _check(0.0 <= alpha, f"Invalid alpha value: {alpha}")
        defaults = dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, capturable=capturable, foreach=foreach,
            maximize=maximize, differentiable=differentiable,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _structure(self, group: dict) -> Hashable:
        return (bool(group["centered"]), group["momentum"] > 0)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        centered, has_momentum = structure
        scale = optax.scale_by_stddev if centered else optax.scale_by_rms
        parts = [
            *_prefix(static, hp),
            ("rms", scale(hp["alpha"], hp["eps"], eps_in_sqrt=False)),
        ]
        if has_momentum:
            parts.append(("momentum", optax.trace(hp["momentum"])))
        parts.append(("lr", optax.scale_by_learning_rate(hp["lr"])))
        return optax.named_chain(*parts)

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        centered, has_momentum = structure
        out = {"square_avg": ("rms", "nu")}
        if has_momentum:
            out["momentum_buffer"] = ("momentum", "trace")
        if centered:
            out["grad_avg"] = ("rms", "mu")
        return out


class ScaleByTorchRpropState(NamedTuple):
    """State of :func:`scale_by_torch_rprop`."""

    prev: Any
    step_size: Any


def scale_by_torch_rprop(
    learning_rate: Any, eta_minus: Any, eta_plus: Any, min_step: Any, max_step: Any
) -> Any:
    """torch's Rprop: ``step_size = clip(step_size * factor, min, max)`` for every
    coordinate, the gradient zeroed where ``factor == eta_minus``, update
    ``-sign(g) * step_size`` (already scaled: no learning rate follows).

    ``optax.scale_by_rprop`` clamps only coordinates whose step size changes and keeps a
    different ``prev`` (``step_size * sign(g)``), so it is replaced.
    """

    def init(params: Any) -> ScaleByTorchRpropState:
        return ScaleByTorchRpropState(
            optax.tree.zeros_like(params), optax.tree.full_like(params, learning_rate)
        )

    def update(updates: Any, state: ScaleByTorchRpropState, params: Any = None) -> Any:
        del params

        def one(g: Any, prev: Any, step: Any) -> tuple[Any, Any, Any]:
            s = jnp.sign(g * prev)
            one_ = jnp.ones_like(s)
            factor = jnp.where(s > 0, eta_plus * one_, jnp.where(s < 0, eta_minus * one_, one_))
            step = jnp.clip(step * factor, min_step, max_step)
            g = jnp.where(factor == eta_minus * one_, jnp.zeros_like(g), g)
            return -jnp.sign(g) * step, g, step

        res = jax.tree.map(one, updates, state.prev, state.step_size)
        is_t = lambda x: isinstance(x, tuple)  # noqa: E731
        out = jax.tree.map(lambda r: r[0], res, is_leaf=is_t)
        prev = jax.tree.map(lambda r: r[1], res, is_leaf=is_t)
        step = jax.tree.map(lambda r: r[2], res, is_leaf=is_t)
        return out, ScaleByTorchRpropState(prev, step)

    return optax.GradientTransformation(init, update)


class Rprop(Optimizer):
    """Resilient backpropagation, torch's rule.

    optax composition: ``scale(-1)`` (maximize), :func:`scale_by_torch_rprop` (custom).
    As in torch, ``lr`` only sets the initial per-coordinate step size; here that happens
    when the group is added (torch: at the first step).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 < etas[0] < 1.0 < etas[1], f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(
            lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
            differentiable=differentiable, capturable=capturable,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        em, ep = hp["etas"]
        lo, hi = hp["step_sizes"]
        parts = [("maximize", _maximize(static))]
        parts.append(("rprop", scale_by_torch_rprop(hp["lr"], em, ep, lo, hi)))
        return optax.named_chain(*parts)

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        return {"prev": ("rprop", "prev"), "step_size": ("rprop", "step_size")}


class TorchASGDState(NamedTuple):
    """State of :func:`torch_asgd`."""

    count: jax.Array
    eta: jax.Array
    mu: jax.Array
    ax: Any


def torch_asgd(lr: Any, lambd: Any, alpha: Any, t0: Any) -> optax.GradientTransformation:
    """torch's averaged SGD (optax has none): ``p <- p * (1 - lambd * eta) - eta * g``,
    the average ``ax`` (copied while ``mu == 1``), ``eta = lr / (1 + lambd * lr * t) **
    alpha`` and ``mu = 1 / max(1, t - t0)``. The returned update is ``new_p - p``.
    """

    def init(params: Any) -> TorchASGDState:
        return TorchASGDState(
            jnp.zeros([], jnp.int32),
            jnp.asarray(lr, jnp.float32),
            jnp.ones([], jnp.float32),
            optax.tree.zeros_like(params),
        )

    def update(updates: Any, state: TorchASGDState, params: Any = None) -> Any:
        count = optax.safe_increment(state.count)
        t = count.astype(jnp.float32)
        eta, mu = state.eta, state.mu
        new_p = jax.tree.map(lambda p, g: p * (1 - lambd * eta) - eta * g, params, updates)
        ax = jax.tree.map(lambda a, p: jnp.where(mu == 1, p, a + (p - a) * mu), state.ax, new_p)
        new_eta = jnp.asarray(lr / ((1 + lambd * lr * t) ** alpha), jnp.float32)
        new_mu = jnp.asarray(1 / jnp.maximum(1.0, t - t0), jnp.float32)
        out = jax.tree.map(lambda n, p: n - p, new_p, params)
        return out, TorchASGDState(count, new_eta, new_mu, ax)

    return optax.GradientTransformation(init, update)


class ASGD(Optimizer):
    """Averaged SGD, torch's rule.

    optax composition: ``scale(-1)`` (maximize), ``add_decayed_weights(weight_decay)``,
    :func:`torch_asgd` (custom; optax has no averaged SGD). The initial ``eta`` is the
    group's ``lr`` when the group is added (torch: at the first step).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(
            lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
            foreach=foreach, maximize=maximize, differentiable=differentiable,
            capturable=capturable,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        return optax.named_chain(
            *_prefix(static, hp),
            ("asgd", torch_asgd(hp["lr"], hp["lambd"], hp["alpha"], hp["t0"])),
        )

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        return {"eta": ("asgd", "eta"), "mu": ("asgd", "mu"), "ax": ("asgd", "ax")}
