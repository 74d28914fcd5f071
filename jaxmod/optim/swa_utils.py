"""``torch.optim.swa_utils``: weight averaging (SWA, EMA) as torch spells it.

:class:`AveragedModel` keeps a copy of a model whose parameters (and, with
``use_buffers=True``, buffers) are a running average of another model's, updated by
``update_parameters(model)`` after optimizer steps; :class:`SWALR` anneals each group's
learning rate to a constant SWA rate; :func:`update_bn` recomputes BatchNorm statistics
for averaged weights with one pass over the data. The averaging functions
(:func:`get_ema_avg_fn`, :func:`get_swa_avg_fn`, and the ``multi`` forms taking lists)
follow torch's formulas, so averaged weights equal torch's.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import jax.numpy as jnp

from jaxmod._autograd import no_grad
from jaxmod._tensor.base import unwrap
from jaxmod.nn.module import Module
from jaxmod.nn.normalization import _BatchNorm
from jaxmod.optim.lr_scheduler._base import LRScheduler, _format_param
from jaxmod.optim.optimizer import Optimizer

__all__ = [
    "AveragedModel", "SWALR", "update_bn", "get_ema_avg_fn", "get_swa_avg_fn",
    "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
]  # fmt: skip


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[Any, Any, Any], Any]:
    """``avg_fn`` of an exponential moving average: ``decay * avg + (1 - decay) * new``."""
    return lambda avg, new, n: decay * unwrap(avg) + (1 - decay) * unwrap(new)


def get_swa_avg_fn() -> Callable[[Any, Any, Any], Any]:
    """``avg_fn`` of the equal-weight average: ``avg + (new - avg) / (n + 1)``."""
    return lambda avg, new, n: unwrap(avg) + (unwrap(new) - unwrap(avg)) / (unwrap(n) + 1)


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[list, list, Any], None]:
    """``multi_avg_fn`` of an EMA: updates the averaged tensors in place."""

    def update(averaged: list, current: list, n: Any) -> None:
        for a, c in zip(averaged, current):
            a.copy_(unwrap(a) + (1 - decay) * (unwrap(c) - unwrap(a)))

    return update


def get_swa_multi_avg_fn() -> Callable[[list, list, Any], None]:
    """``multi_avg_fn`` of the equal-weight average: updates in place."""
    return _in_place(get_swa_avg_fn())


def _in_place(avg_fn: Callable[[Any, Any, Any], Any]) -> Callable[[list, list, Any], None]:
    """A ``multi_avg_fn`` storing ``avg_fn(averaged, current, n)`` into each averaged tensor.
    (EMA's ``multi`` form keeps torch's lerp, which rounds apart from ``avg_fn``'s form.)"""

    def update(averaged: list, current: list, n: Any) -> None:
        for a, c in zip(averaged, current):
            a.copy_(unwrap(avg_fn(a, c, n)))

    return update


class AveragedModel(Module):
    """A copy of ``model`` holding averaged weights (torch's ``AveragedModel``).

    Args:
        model: the model to average; it is deep-copied into ``self.module``.
        device: where the copy lives (``.to(device)``), if given.
        avg_fn: ``avg_fn(averaged, current, n_averaged)`` returning the new average of one
            tensor (default: the equal-weight SWA average).
        multi_avg_fn: ``multi_avg_fn(averaged_list, current_list, n_averaged)`` updating
            the averaged tensors in place; give ``avg_fn`` or this, not both.
        use_buffers: average the buffers too; else they are copied from ``model``.

    ``forward`` calls the averaged copy; ``n_averaged`` (a buffer) counts the updates.
    """

    def __init__(
        self, model: Module, device: Any = None, avg_fn: Callable | None = None,
        multi_avg_fn: Callable | None = None, use_buffers: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", jnp.asarray(0, jnp.int32))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The averaged model's forward."""
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current weights into the average (the first call copies them)."""
        if self.use_buffers:
            mine = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            mine, theirs = list(self.module.parameters()), list(model.parameters())
        n = int(self.n_averaged)
        with no_grad():
            if n == 0:
                for a, c in zip(mine, theirs):
                    a.copy_(unwrap(c))
            else:
                update = self.multi_avg_fn or _in_place(self.avg_fn or get_swa_avg_fn())
                update([a.detach() for a in mine], [c.detach() for c in theirs],
                       self.n_averaged)  # fmt: skip
            if not self.use_buffers:
                for a, c in zip(self.module.buffers(), model.buffers()):
                    a.copy_(unwrap(c))
        self.n_averaged = self.n_averaged + 1


def update_bn(loader: Iterable, model: Module, device: Any = None) -> None:
    """Recompute every BatchNorm's running statistics of ``model`` with one pass over
    ``loader`` (a cumulative average, as torch's ``update_bn``); the model's training
    flag and the layers' momenta are restored."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return
    momenta = {}
    for m in norms:
        m.reset_running_stats()
        momenta[m] = m.momentum
        m.momentum = None
    was_training = model.training
    model.train()
    with no_grad():
        for batch in loader:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            if device is not None:
                x = x.to(device)
            model(x)
    for m, momentum in momenta.items():
        m.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's learning rate to ``swa_lr`` over ``anneal_epochs`` steps, then
    keep it there (torch's ``SWALR``); ``anneal_strategy`` is ``"cos"`` or ``"linear"``."""

    def __init__(self, optimizer: Optimizer, swa_lr: Any, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:  # fmt: skip
        for lr, group in zip(_format_param("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        self.anneal_func = self._cosine if anneal_strategy == "cos" else self._linear
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear(t: float) -> float:
        return t

    @staticmethod
    def _cosine(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _start_lr(lr: float, swa_lr: float, alpha: float) -> float:
        """The rate the annealing started from, given the current rate at ``alpha``."""
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list[float]:
        """Each group's rate at this step of the annealing."""
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        span = max(1, self.anneal_epochs)
        prev_alpha = self.anneal_func(max(0.0, min(1.0, (step - 1) / span)))
        alpha = self.anneal_func(max(0.0, min(1.0, step / span)))
        groups = self.optimizer.param_groups
        return [g["swa_lr"] * alpha + self._start_lr(g["lr"], g["swa_lr"], prev_alpha) * (1 - alpha)
                for g in groups]  # fmt: skip
