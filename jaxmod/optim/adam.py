"""The Adam family: ``Adam``, ``AdamW``, ``Adamax``, ``NAdam``, ``RAdam``.

Each is an ``optax.named_chain``; where optax's transform differs from torch's rule a
small custom ``GradientTransformation`` built from ``optax.tree`` helpers replaces it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmod.optim.optimizer import Optimizer, _check, _maximize, _weight_decay

__all__ = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]


def _check_adam_args(lr: float, betas: tuple, eps: float, weight_decay: float) -> None:
    _check(0.0 <= lr, f"Invalid learning rate: {lr}")
    _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
    _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
    _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
    _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")


class ScaleByTorchAmsgradState(NamedTuple):
    """State of :func:`scale_by_torch_amsgrad`."""

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_torch_amsgrad(b1: Any, b2: Any, eps: Any) -> optax.GradientTransformation:
    """torch's AMSGrad: the running max is taken of the *raw* second moment ``exp_avg_sq``
    and bias-corrected afterwards with the current step.

    ``optax.scale_by_amsgrad`` takes the max of the bias-corrected moment instead, which
    gives different numbers, hence this transform.
    """

    def init(params: Any) -> ScaleByTorchAmsgradState:
        z = optax.tree.zeros_like(params)
        return ScaleByTorchAmsgradState(jnp.zeros([], jnp.int32), z, z, z)

    def update(updates: Any, state: ScaleByTorchAmsgradState, params: Any = None) -> Any:
        del params
        count = optax.safe_increment(state.count)
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)
        mu_hat = optax.tree.bias_correction(mu, b1, count)
        nu_hat = optax.tree.bias_correction(nu_max, b2, count)
        out = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        return out, ScaleByTorchAmsgradState(count, mu, nu, nu_max)

    return optax.GradientTransformation(init, update)


class ScaleByTorchNAdamState(NamedTuple):
    """State of :func:`scale_by_torch_nadam`."""

    count: jax.Array
    mu_product: jax.Array
    mu: Any
    nu: Any


def scale_by_torch_nadam(b1: Any, b2: Any, eps: Any, momentum_decay: Any) -> Any:
    """torch's NAdam (Dozat 2016) with the momentum-decay schedule
    ``mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))`` and its running product.

    ``optax.nadam`` uses a constant ``b1`` in the Nesterov correction (no schedule, no
    ``mu_product``), so this transform replaces it; the moments use ``optax.tree``.
    """

    def init(params: Any) -> ScaleByTorchNAdamState:
        z = optax.tree.zeros_like(params)
        return ScaleByTorchNAdamState(jnp.zeros([], jnp.int32), jnp.ones([], jnp.float32), z, z)

    def update(updates: Any, state: ScaleByTorchNAdamState, params: Any = None) -> Any:
        del params
        count = optax.safe_increment(state.count)
        t = count.astype(jnp.float32)
        bc2 = 1 - b2**t
        mu_t = b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = state.mu_product * mu_t
        mu_product_next = mu_product * mu_next
        m = optax.tree.update_moment(updates, state.mu, b1, 1)
        v = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        c_grad = (1.0 - mu_t) / (1.0 - mu_product)
        c_avg = mu_next / (1.0 - mu_product_next)

        def direction(g: Any, m_: Any, v_: Any) -> Any:
            denom = jnp.sqrt(v_ / bc2) + eps
            return g * c_grad / denom + m_ * c_avg / denom

        out = jax.tree.map(direction, updates, m, v)
        return out, ScaleByTorchNAdamState(count, mu_product, m, v)

    return optax.GradientTransformation(init, update)


def scale_by_torch_radam(b1: Any, b2: Any, eps: Any) -> optax.GradientTransformation:
    """torch's RAdam: rectify when ``rho_t > 5`` with the adaptive term
    ``sqrt(bc2) / (sqrt(exp_avg_sq) + eps)``.

    ``optax.scale_by_radam`` puts eps after the bias correction
    (``sqrt(nu / bc2) + eps``) and rectifies when ``rho_t >= threshold``; both differ
    from torch, hence this transform (state: ``optax.ScaleByAdamState``).
    """

    def init(params: Any) -> optax.ScaleByAdamState:
        z = optax.tree.zeros_like(params)
        return optax.ScaleByAdamState(jnp.zeros([], jnp.int32), z, z)

    def update(updates: Any, state: optax.ScaleByAdamState, params: Any = None) -> Any:
        del params
        count = optax.safe_increment(state.count)
        t = count.astype(jnp.float32)
        m = optax.tree.update_moment(updates, state.mu, b1, 1)
        v = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        bc1 = 1 - b1**t
        bc2 = 1 - b2**t
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * (b2**t) / bc2
        rect = jnp.sqrt(
            jnp.maximum((rho_t - 4) * (rho_t - 2) * rho_inf, 0.0)
            / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        )

        def direction(m_: Any, v_: Any) -> Any:
            m_hat = m_ / bc1
            adaptive = jnp.sqrt(bc2) / (jnp.sqrt(v_) + eps)
            return jnp.where(rho_t > 5.0, m_hat * adaptive * rect, m_hat)

        return jax.tree.map(direction, m, v), optax.ScaleByAdamState(count, m, v)

    return optax.GradientTransformation(init, update)


def _prefix(static: dict, hp: dict, decoupled: bool) -> list:
    parts: list = []
    parts.append(("maximize", _maximize(static)))
    if not decoupled:
        parts.append(("weight_decay", _weight_decay(hp, static)))
    return parts


def _suffix(static: dict, hp: dict, decoupled: bool) -> list:
    parts: list = []
    if decoupled:
        # p - lr * (u + wd * p) == p * (1 - lr * wd) - lr * u: torch's decoupled decay.
        parts.append(("weight_decay", _weight_decay(hp, static)))
    parts.append(("lr", optax.scale_by_learning_rate(hp["lr"])))
    return parts


class Adam(Optimizer):
    """Adam (and AMSGrad), torch's update rule.

    optax composition::

        scale(-1)                               # maximize only
        add_decayed_weights(weight_decay)       # coupled L2 (decoupled: after "adam")
        scale_by_adam(b1, b2, eps)              # or scale_by_torch_amsgrad with amsgrad
        scale_by_learning_rate(lr)

    ``optax.scale_by_adam`` computes ``m_hat / (sqrt(v_hat) + eps)``, which is torch's
    ``m / bc1 / (sqrt(v) / sqrt(bc2) + eps)``. With ``amsgrad`` torch takes the max of
    the raw ``exp_avg_sq`` (optax: of the bias-corrected one), so a custom transform
    :func:`scale_by_torch_amsgrad` is used. ``decoupled_weight_decay=True`` is AdamW.
    ``amsgrad`` is fixed when the group is added.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _structure(self, group: dict) -> Hashable:
        return (bool(group["amsgrad"]),)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        b1, b2 = hp["betas"]
        decoupled = bool(static.get("decoupled_weight_decay"))
        core = (
            scale_by_torch_amsgrad(b1, b2, hp["eps"])
            if structure[0]
            else optax.scale_by_adam(b1, b2, hp["eps"])
        )
        return optax.named_chain(
            *_prefix(static, hp, decoupled), ("adam", core), *_suffix(static, hp, decoupled)
        )

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        out = {"exp_avg": ("adam", "mu"), "exp_avg_sq": ("adam", "nu")}
        if structure[0]:
            out["max_exp_avg_sq"] = ("adam", "nu_max")
        return out


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (``p *= 1 - lr * wd``), torch's rule.

    optax composition: ``scale_by_adam`` (or :func:`scale_by_torch_amsgrad`), then
    ``add_decayed_weights(weight_decay)``, then ``scale_by_learning_rate(lr)`` — i.e.
    ``optax.adamw``; ``p - lr * (u + wd * p)`` equals torch's ``p * (1 - lr * wd) - lr * u``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
            capturable=capturable, differentiable=differentiable, fused=fused,
            decoupled_weight_decay=True,
        )  # fmt: skip


class Adamax(Optimizer):
    """Adamax (infinity-norm Adam), torch's rule.

    optax composition: ``scale(-1)`` (maximize), ``add_decayed_weights(weight_decay)``,
    ``scale_by_adamax(b1, b2, eps)`` (``exp_inf = max(b2 * exp_inf, |g| + eps)``, exactly
    torch's), ``scale_by_learning_rate(lr)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        b1, b2 = hp["betas"]
        return optax.named_chain(
            *_prefix(static, hp, False),
            ("adamax", optax.scale_by_adamax(b1, b2, hp["eps"])),
            *_suffix(static, hp, False),
        )

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        return {"exp_avg": ("adamax", "mu"), "exp_inf": ("adamax", "nu")}


class NAdam(Optimizer):
    """NAdam with torch's momentum-decay schedule.

    optax composition: ``scale(-1)`` (maximize), ``add_decayed_weights`` (coupled; after
    the core when ``decoupled_weight_decay``), :func:`scale_by_torch_nadam` (custom:
    optax's ``nadam`` has no ``momentum_decay`` schedule / ``mu_product``),
    ``scale_by_learning_rate(lr)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        _check(0.0 <= momentum_decay, f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        b1, b2 = hp["betas"]
        decoupled = bool(static.get("decoupled_weight_decay"))
        core = scale_by_torch_nadam(b1, b2, hp["eps"], hp["momentum_decay"])
        return optax.named_chain(
            *_prefix(static, hp, decoupled), ("nadam", core), *_suffix(static, hp, decoupled)
        )

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        return {
            "mu_product": ("nadam", "mu_product"),
            "exp_avg": ("nadam", "mu"),
            "exp_avg_sq": ("nadam", "nu"),
        }


class RAdam(Optimizer):
    """RAdam (rectified Adam), torch's rule.

    optax composition: ``scale(-1)`` (maximize), ``add_decayed_weights`` (coupled; after
    the core when ``decoupled_weight_decay``), :func:`scale_by_torch_radam` (custom:
    torch's eps placement and ``rho_t > 5`` threshold), ``scale_by_learning_rate(lr)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
            foreach=foreach, capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
            differentiable=differentiable,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _transform(self, structure: Hashable, static: dict, hp: dict) -> Any:
        b1, b2 = hp["betas"]
        decoupled = bool(static.get("decoupled_weight_decay"))
        core = scale_by_torch_radam(b1, b2, hp["eps"])
        return optax.named_chain(
            *_prefix(static, hp, decoupled), ("radam", core), *_suffix(static, hp, decoupled)
        )

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        return {"exp_avg": ("radam", "mu"), "exp_avg_sq": ("radam", "nu")}
