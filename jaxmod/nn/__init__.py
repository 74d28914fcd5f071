"""Neural-network building blocks with torch's names and semantics."""

from jaxmod.nn import (
    activation,
    attention,
    containers,
    conv,
    dropout,
    functional,
    init,
    linear,
    loss,
    modules,  # noqa: F401  (torch spelling: nn.modules.module, ...)
    normalization,
    padding,
    parallel,  # noqa: F401  (torch.nn.parallel.data_parallel)
    pooling,
    rnn,
    shape,
    sparse,
    transformer,
    utils,
)
from jaxmod.nn.activation import *  # noqa: F403
from jaxmod.nn.attention import *  # noqa: F403
from jaxmod.nn.containers import *  # noqa: F403
from jaxmod.nn.conv import *  # noqa: F403
from jaxmod.nn.dropout import *  # noqa: F403
from jaxmod.nn.linear import *  # noqa: F403
from jaxmod.nn.loss import *  # noqa: F403
from jaxmod.nn.module import Module, ShapeError
from jaxmod.nn.normalization import *  # noqa: F403
from jaxmod.nn.padding import *  # noqa: F403
from jaxmod.nn.parallel import DataParallel, DistributedDataParallel
from jaxmod.nn.parameter import (
    Buffer,
    Parameter,
    UninitializedBuffer,
    UninitializedParameter,
    Variable,
)
from jaxmod.nn.pooling import *  # noqa: F403
from jaxmod.nn.rnn import *  # noqa: F403
from jaxmod.nn.shape import *  # noqa: F403
from jaxmod.nn.sparse import *  # noqa: F403
from jaxmod.nn.transformer import *  # noqa: F403

__all__ = [
    "Module",
    "ShapeError",
    "Parameter",
    "Buffer",
    "Variable",
    "UninitializedParameter",
    "UninitializedBuffer",
    "utils",
    "functional",
    "init",
    *activation.__all__,
    *attention.__all__,
    *containers.__all__,
    *conv.__all__,
    *dropout.__all__,
    *linear.__all__,
    *loss.__all__,
    *normalization.__all__,
    *padding.__all__,
    "DataParallel",
    "DistributedDataParallel",
    *pooling.__all__,
    *rnn.__all__,
    *shape.__all__,
    *sparse.__all__,
    *transformer.__all__,
]
