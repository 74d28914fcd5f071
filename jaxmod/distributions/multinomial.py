"""``torch.distributions.multinomial``: :class:`Multinomial`, re-exported from
:mod:`jaxmod.distributions.discrete`."""

from jaxmod.distributions.discrete import Multinomial

__all__ = ["Multinomial"]
