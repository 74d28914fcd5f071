"""Stochastic gradient descent (torch's ``SGD``) from optax pieces."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import jax.numpy as jnp
import optax

from jaxmod.optim.optimizer import Optimizer, _check, _maximize, _weight_decay

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, exactly torch's ``SGD`` update.

    optax composition (``optax.named_chain``)::

        scale(-1)                        # only with maximize
        add_decayed_weights(weight_decay) # g + wd * p   (L2, coupled, as in torch)
        scale_by_schedule(c -> 1 if c == 0 else 1 - dampening)   # momentum != 0 only
        trace(momentum, nesterov)        # momentum_buffer; momentum != 0 only
        scale_by_learning_rate(lr)

    torch seeds the momentum buffer with the first gradient *undamped*; ``optax.trace``
    starts from zeros, so the first step yields ``g`` too, and the ``scale_by_schedule``
    piece applies ``1 - dampening`` from the second step on. ``nesterov`` uses
    ``g + momentum * buf`` (``optax.trace(nesterov=True)``), like torch.

    Whether the group has a momentum buffer is decided when the group is added
    (``momentum != 0``); changing momentum between zero and non-zero afterwards is not
    supported.
    """

    _torch_has_step = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(
            not nesterov or (momentum > 0 and dampening == 0),
            "Nesterov momentum requires a momentum and zero dampening",
        )
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, foreach=foreach,
            differentiable=differentiable, fused=fused,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _structure(self, group: dict) -> Hashable:
        return (group["momentum"] != 0,)

    def _transform(
        self, structure: Hashable, static: dict[str, Any], hp: dict[str, Any]
    ) -> optax.GradientTransformation:
        (has_momentum,) = structure
        parts: list = []
        parts.append(("maximize", _maximize(static)))
        parts.append(("weight_decay", _weight_decay(hp, static)))
        if has_momentum:
            d = hp["dampening"]
            parts.append(
                ("dampening", optax.scale_by_schedule(lambda c: jnp.where(c == 0, 1.0, 1.0 - d)))
            )
            parts.append(
                ("momentum", optax.trace(hp["momentum"], nesterov=bool(static.get("nesterov"))))
            )
        parts.append(("lr", optax.scale_by_learning_rate(hp["lr"])))
        return optax.named_chain(*parts)

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        return {"momentum_buffer": ("momentum", "trace")} if structure[0] else {}
