"""``torch.distributions.normal``: :class:`Normal`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import Normal

__all__ = ["Normal"]
