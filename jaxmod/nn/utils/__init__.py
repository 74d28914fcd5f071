"""Utilities: hook handles, gradient helpers, checkpoint conversion."""

from jaxmod.nn.utils import hooks
from jaxmod.serialization import convert_state_dict

__all__ = ["hooks", "convert_state_dict"]
