"""Utilities around the model, like ``torch.utils``: :mod:`jaxmod.utils.data` (data loading)."""

from jaxmod.utils import data

__all__ = ["data"]
