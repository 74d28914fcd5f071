"""``torch.distributions.binomial``: :class:`Binomial`, re-exported from
:mod:`jaxmod.distributions.discrete`."""

from jaxmod.distributions.discrete import Binomial

__all__ = ["Binomial"]
