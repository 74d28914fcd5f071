"""Neural-network building blocks with torch's names and semantics."""
# ruff: noqa: F405  (layer classes come in through the star imports below)

from jaxmod.nn import module as modules  # noqa: F401  (torch spelling: nn.modules.module)
from jaxmod.nn import utils
from jaxmod.nn.activation import *  # noqa: F403
from jaxmod.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from jaxmod.nn.dropout import *  # noqa: F403
from jaxmod.nn.linear import Identity, Linear
from jaxmod.nn.loss import *  # noqa: F403
from jaxmod.nn.module import Module
from jaxmod.nn.normalization import *  # noqa: F403
from jaxmod.nn.parameter import Buffer, Parameter, UninitializedParameter, Variable

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
    "ReLU",
    "utils",
    # activation
    "Threshold",
    "RReLU",
    "Hardtanh",
    "ReLU6",
    "Sigmoid",
    "Hardsigmoid",
    "Tanh",
    "SiLU",
    "Mish",
    "Hardswish",
    "ELU",
    "CELU",
    "SELU",
    "GLU",
    "GELU",
    "Hardshrink",
    "LeakyReLU",
    "LogSigmoid",
    "Softplus",
    "Softshrink",
    "PReLU",
    "Softsign",
    "Tanhshrink",
    "Softmin",
    "Softmax",
    "Softmax2d",
    "LogSoftmax",
    # dropout
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    # loss
    "L1Loss",
    "NLLLoss",
    "PoissonNLLLoss",
    "GaussianNLLLoss",
    "KLDivLoss",
    "MSELoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "HingeEmbeddingLoss",
    "MultiLabelMarginLoss",
    "SmoothL1Loss",
    "HuberLoss",
    "SoftMarginLoss",
    "CrossEntropyLoss",
    "MultiLabelSoftMarginLoss",
    "CosineEmbeddingLoss",
    "MarginRankingLoss",
    "MultiMarginLoss",
    "TripletMarginLoss",
    "CTCLoss",
    # normalization
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LayerNorm",
    "GroupNorm",
    "LocalResponseNorm",
    "RMSNorm",
]
