"""Utilities: hook handles and gradient helpers."""

from jaxmod.nn.utils import hooks

__all__ = ["hooks"]
