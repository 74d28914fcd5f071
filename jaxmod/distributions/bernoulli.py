"""``torch.distributions.bernoulli``: :class:`Bernoulli`, re-exported from
:mod:`jaxmod.distributions.discrete`."""

from jaxmod.distributions.discrete import Bernoulli

__all__ = ["Bernoulli"]
