"""``torch.distributions.exponential``: :class:`Exponential`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import Exponential

__all__ = ["Exponential"]
