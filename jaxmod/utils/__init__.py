"""Utilities around the model, like ``torch.utils``: :mod:`jaxmod.utils.checkpoint`."""

from jaxmod.utils import checkpoint

__all__ = ["checkpoint"]
