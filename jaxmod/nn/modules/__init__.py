"""torch's module layout: ``jaxmod.nn.modules.module``, ``.linear``, ``.conv``, ``.container``...

Each name is an alias of the jaxmod module that implements it (the same module object),
so torch paths such as ``from torch.nn.modules.module import register_module_forward_hook``
or ``torch.nn.modules.batchnorm._BatchNorm`` work with only ``torch`` replaced.
"""

import sys

from jaxmod.nn import (
    activation,
    containers,
    conv,
    dropout,
    linear,
    loss,
    module,
    normalization,
    padding,
    pooling,
    rnn,
    shape,
    sparse,
    transformer,
)

# torch's submodule name -> the jaxmod module holding those classes.
_ALIASES = {
    "module": module, "linear": linear, "conv": conv, "container": containers,
    "activation": activation, "batchnorm": normalization, "normalization": normalization,
    "instancenorm": normalization, "pooling": pooling, "dropout": dropout, "loss": loss,
    "sparse": sparse, "rnn": rnn, "transformer": transformer, "padding": padding,
    "flatten": linear, "pixelshuffle": shape, "upsampling": shape, "channelshuffle": shape,
    "distance": shape,
}  # fmt: skip

for _name, _mod in _ALIASES.items():
    sys.modules[f"{__name__}.{_name}"] = _mod
    globals()[_name] = _mod

# ``torch.nn.modules.Linear`` and friends.
from jaxmod.nn.activation import *  # noqa: E402, F403
from jaxmod.nn.containers import *  # noqa: E402, F403
from jaxmod.nn.conv import *  # noqa: E402, F403
from jaxmod.nn.linear import *  # noqa: E402, F403
from jaxmod.nn.module import Module  # noqa: E402, F401
from jaxmod.nn.normalization import *  # noqa: E402, F403
from jaxmod.nn.pooling import *  # noqa: E402, F403
