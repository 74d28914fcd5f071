"""``torch.distributions.laplace``: :class:`Laplace`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import Laplace

__all__ = ["Laplace"]
