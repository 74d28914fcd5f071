"""Neural-network building blocks with torch's names and semantics."""

# ruff: noqa: F405  (layer files are star-imported; their names are listed in __all__)

from jaxmod.nn import module as modules  # noqa: F401  (torch spelling: nn.modules.module)
from jaxmod.nn import utils
from jaxmod.nn.activation import ReLU
from jaxmod.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from jaxmod.nn.conv import *  # noqa: F403
from jaxmod.nn.linear import Bilinear, Flatten, Identity, LazyLinear, Linear, Unflatten
from jaxmod.nn.module import Module
from jaxmod.nn.padding import *  # noqa: F403
from jaxmod.nn.parameter import Buffer, Parameter, UninitializedParameter, Variable
from jaxmod.nn.pooling import *  # noqa: F403
from jaxmod.nn.shape import *  # noqa: F403
from jaxmod.nn.sparse import *  # noqa: F403

__all__ = [
    "Module",
    "Parameter",
    "Buffer",
    "Variable",
    "UninitializedParameter",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Identity",
    "Linear",
    "Bilinear",
    "LazyLinear",
    "Flatten",
    "Unflatten",
    # conv
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    # pooling
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    # padding
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    # shape
    "PixelShuffle",
    "PixelUnshuffle",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "ChannelShuffle",
    "CosineSimilarity",
    "PairwiseDistance",
    # sparse
    "Embedding",
    "EmbeddingBag",
    "ReLU",
    "utils",
]
