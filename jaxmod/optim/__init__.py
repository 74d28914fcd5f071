"""Optimizers with torch's interface and update rules, built from optax transformations.

See ``docs/optim.md`` for the optax composition behind each optimizer and every
difference from torch.
"""

from jaxmod.optim import lr_scheduler, swa_utils
from jaxmod.optim._handwritten import HandWrittenOptimizerError
from jaxmod.optim.adam import Adam, Adamax, AdamW, NAdam, RAdam
from jaxmod.optim.adaptive import ASGD, Adadelta, Adagrad, RMSprop, Rprop
from jaxmod.optim.lbfgs import LBFGS
from jaxmod.optim.optimizer import Optimizer, from_optax, required
from jaxmod.optim.sgd import SGD

__all__ = [
    "HandWrittenOptimizerError",
    "Optimizer",
    "from_optax",
    "required",
    "SGD",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "Rprop",
    "ASGD",
    "LBFGS",
    "lr_scheduler",
    "swa_utils",
]
