"""``torch.distributions.log_normal``: :class:`LogNormal`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import LogNormal

__all__ = ["LogNormal"]
