"""``torch.distributions.half_normal``: :class:`HalfNormal`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import HalfNormal

__all__ = ["HalfNormal"]
