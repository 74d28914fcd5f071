"""``torch.distributions.uniform``: :class:`Uniform`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import Uniform

__all__ = ["Uniform"]
