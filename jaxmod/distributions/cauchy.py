"""``torch.distributions.cauchy``: :class:`Cauchy`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import Cauchy

__all__ = ["Cauchy"]
