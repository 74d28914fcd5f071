"""Utilities: hook handles, gradient clipping, parameter vectors, checkpoint conversion."""

from jaxmod.nn.utils import hooks
from jaxmod.nn.utils.clip_grad import (
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from jaxmod.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters
from jaxmod.serialization import convert_state_dict

__all__ = [
    "hooks",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "parameters_to_vector",
    "vector_to_parameters",
    "convert_state_dict",
]
