"""``torch.distributions.studentT``: :class:`StudentT`, re-exported from
:mod:`jaxmod.distributions.continuous`."""

from jaxmod.distributions.continuous import StudentT

__all__ = ["StudentT"]
