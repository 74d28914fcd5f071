"""Utilities: hook handles, gradient clipping, parameter vectors, checkpoint conversion,
weight reparametrisations (weight_norm, spectral_norm)."""

import importlib
from typing import Any

from jaxmod.nn.utils import hooks
from jaxmod.nn.utils.clip_grad import (
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from jaxmod.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters
from jaxmod.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm
from jaxmod.nn.utils.weight_norm import remove_weight_norm, weight_norm
from jaxmod.serialization import convert_state_dict

_LAZY = ("parametrize", "parametrizations")


def __getattr__(name: str) -> Any:
    # parametrize builds on nn.Module, whose own import reaches this package (hook
    # handles): those submodules load on first use.
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "hooks",
    "parametrize",
    "parametrizations",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "parameters_to_vector",
    "vector_to_parameters",
    "convert_state_dict",
    "weight_norm",
    "remove_weight_norm",
    "spectral_norm",
    "remove_spectral_norm",
]
