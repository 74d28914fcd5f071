"""Learning-rate schedulers with torch's names, arithmetic and state dicts.

The schedulers write ``group["lr"]`` (and, for CyclicLR / OneCycleLR, ``momentum`` or
``betas[0]``) as Python floats, exactly as ``torch.optim.lr_scheduler`` does: the code is
a port of torch's (the chainable/recursive forms, float64 Python math), so the lr
sequence equals torch's. A scheduler marks the values it drives as traced inputs of
jitted steps when it is created (others are compiled in as constants until they first
change), so stepping it never causes a retrace.

The classes live in one private module per family (``_base``: :class:`LRScheduler` and
the shared helpers; ``_decay``: the epoch-driven decays; ``_composite``:
:class:`SequentialLR` and :class:`ChainedScheduler`; ``_plateau``:
:class:`ReduceLROnPlateau`; ``_cyclic``: :class:`CyclicLR`,
:class:`CosineAnnealingWarmRestarts`, :class:`OneCycleLR`); this package is the public
face, and the classes report it as their ``__module__`` (as torch's report
``torch.optim.lr_scheduler``), so reprs and pickles name ``jaxmod.optim.lr_scheduler``.
"""

from __future__ import annotations

from jaxmod.optim.lr_scheduler._base import EPOCH_DEPRECATION_WARNING as EPOCH_DEPRECATION_WARNING
from jaxmod.optim.lr_scheduler._base import LRScheduler
from jaxmod.optim.lr_scheduler._base import _enable_get_lr_call as _enable_get_lr_call
from jaxmod.optim.lr_scheduler._base import _format_param as _format_param
from jaxmod.optim.lr_scheduler._base import _initial_mode as _initial_mode
from jaxmod.optim.lr_scheduler._base import _param_groups_val_list as _param_groups_val_list
from jaxmod.optim.lr_scheduler._base import _update_param_group_val as _update_param_group_val
from jaxmod.optim.lr_scheduler._base import (
    _warn_get_lr_called_within_step as _warn_get_lr_called_within_step,
)
from jaxmod.optim.lr_scheduler._composite import ChainedScheduler, SequentialLR
from jaxmod.optim.lr_scheduler._cyclic import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from jaxmod.optim.lr_scheduler._cyclic import _SchedulePhase as _SchedulePhase
from jaxmod.optim.lr_scheduler._decay import (
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)
from jaxmod.optim.lr_scheduler._plateau import ReduceLROnPlateau
from jaxmod.optim.optimizer import Optimizer as Optimizer


class _LRScheduler(LRScheduler):
    """torch's old name of the base class, still what many custom schedulers subclass."""


__all__ = [
    "LRScheduler",
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "CyclicLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
]

# The public classes name this module, not the private one defining them: the repr
# (``<jaxmod.optim.lr_scheduler.StepLR object ...>``) and pickles stay what they were
# when the schedulers lived in one file, and match torch's ``torch.optim.lr_scheduler``.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
