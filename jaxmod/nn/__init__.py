"""Neural-network building blocks with torch's names and semantics."""

from jaxmod.nn import module as modules  # noqa: F401  (torch spelling: nn.modules.module)
from jaxmod.nn import utils
from jaxmod.nn.activation import ReLU
from jaxmod.nn.attention import MultiheadAttention
from jaxmod.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from jaxmod.nn.linear import Identity, Linear
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Buffer, Parameter, UninitializedParameter, Variable
from jaxmod.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from jaxmod.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

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
    "RNNBase",
    "RNN",
    "LSTM",
    "GRU",
    "RNNCellBase",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "MultiheadAttention",
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "utils",
]
