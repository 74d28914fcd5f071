"""Utilities around the model, like ``torch.utils``: :mod:`jaxmod.utils.data` (data loading)
and :mod:`jaxmod.utils.checkpoint` (activation checkpointing)."""

from jaxmod.utils import checkpoint, data

__all__ = ["checkpoint", "data"]
