"""``torch.distributions.geometric``: :class:`Geometric`, re-exported from
:mod:`jaxmod.distributions.discrete`."""

from jaxmod.distributions.discrete import Geometric

__all__ = ["Geometric"]
