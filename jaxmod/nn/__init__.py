"""Neural-network building blocks with torch's names and semantics."""

from jaxmod.nn import module as modules  # noqa: F401  (torch spelling: nn.modules.module)
from jaxmod.nn import utils
from jaxmod.nn.activation import ReLU
from jaxmod.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from jaxmod.nn.linear import Identity, Linear
from jaxmod.nn.module import Module, ShapeError
from jaxmod.nn.parameter import Buffer, Parameter, UninitializedParameter, Variable

__all__ = [
    "Module",
    "ShapeError",
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
]
