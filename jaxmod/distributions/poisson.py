"""``torch.distributions.poisson``: :class:`Poisson`, re-exported from
:mod:`jaxmod.distributions.discrete`."""

from jaxmod.distributions.discrete import Poisson

__all__ = ["Poisson"]
