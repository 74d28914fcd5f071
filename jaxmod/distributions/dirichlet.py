"""``torch.distributions.dirichlet``: :class:`Dirichlet`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import Dirichlet

__all__ = ["Dirichlet"]
