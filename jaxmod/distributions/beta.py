"""``torch.distributions.beta``: :class:`Beta`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import Beta

__all__ = ["Beta"]
