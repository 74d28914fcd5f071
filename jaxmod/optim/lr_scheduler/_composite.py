"""Schedulers made of other schedulers: :class:`SequentialLR` (one after another, switching
at milestones) and :class:`ChainedScheduler` (all stepped together)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from jaxmod.optim.lr_scheduler._base import (
    LRScheduler,
    _param_groups_val_list,
    _update_param_group_val,
)
from jaxmod.optim.lr_scheduler._plateau import ReduceLROnPlateau
from jaxmod.optim.optimizer import Optimizer


def _check_schedulers(
    sched: LRScheduler, schedulers: Sequence[LRScheduler], optimizer: Optimizer
) -> None:
    """torch's checks of the schedulers a composite is made of (messages name ``sched``'s
    class): each has an optimizer, the same one, and none is a ReduceLROnPlateau."""
    for scheduler_idx, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(
                f"{sched.__class__.__name__} at index {scheduler_idx} should have `optimizer` "
                "as its attribute."
            )
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{sched.__class__.__name__} does not support `ReduceLROnPlateau` scheduler as "
                "it requires additional kwargs to be specified when calling `step`, but got "
                f"one at index {scheduler_idx} in the given schedulers sequence."
            )
        if optimizer != scheduler.optimizer:
            raise ValueError(
                f"{sched.__class__.__name__} expects all schedulers to belong to the same "
                f"optimizer, but got scheduler {scheduler.__class__.__name__} at index "
                f"{scheduler_idx} has {scheduler.optimizer}, which is different from "
                f"{optimizer.__class__.__name__}."
            )


def _children_state_dict(sched: SequentialLR | ChainedScheduler) -> dict[str, Any]:
    """The composite's state, with each child's ``state_dict()`` under ``"_schedulers"``."""
    state_dict = {
        key: value
        for key, value in sched.__dict__.items()
        if key not in ("optimizer", "_schedulers")
    }
    state_dict["_schedulers"] = [None] * len(sched._schedulers)
    for idx, s in enumerate(sched._schedulers):
        state_dict["_schedulers"][idx] = s.state_dict()
    return state_dict


def _load_children_state_dict(sched: SequentialLR | ChainedScheduler, state_dict: dict) -> None:
    """Load what :func:`_children_state_dict` saved (``state_dict`` is left as given)."""
    _schedulers = state_dict.pop("_schedulers")
    sched.__dict__.update(state_dict)
    state_dict["_schedulers"] = _schedulers
    for idx, s in enumerate(_schedulers):
        sched._schedulers[idx].load_state_dict(s)


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another, switching at ``milestones``, like torch's."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[LRScheduler],
        milestones: list[int],
        last_epoch: int = -1,
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{self.__class__.__name__} expects at least one scheduler, but got no scheduler."
            )
        _check_schedulers(self, schedulers, optimizer)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more than "
                f"the number of milestone points, but got number of schedulers {len(schedulers)} "
                f"and the number of milestones to be equal to {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in self.optimizer.param_groups:
            _update_param_group_val(group, "lr", group["initial_lr"])
        self.recursive_undo()
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def recursive_undo(self, sched=None) -> None:
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        return _children_state_dict(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _load_children_state_dict(self, state_dict)


class ChainedScheduler(LRScheduler):
    """Step several schedulers together each step, like torch's."""

    def __init__(
        self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{self.__class__.__name__} expects at least one scheduler to be chained, but got "
                "no scheduler."
            )
        optimizer = optimizer or schedulers[0].optimizer
        _check_schedulers(self, schedulers, optimizer)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = _param_groups_val_list(self._schedulers[-1].optimizer, "lr")

    def step(self) -> None:
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _param_groups_val_list(self._schedulers[-1].optimizer, "lr")

    def state_dict(self) -> dict[str, Any]:
        return _children_state_dict(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _load_children_state_dict(self, state_dict)
