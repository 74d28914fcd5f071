"""``torch.distributions.gamma``: :class:`Gamma`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import Gamma

__all__ = ["Gamma"]
