"""``torch.distributions.categorical``: :class:`Categorical`, re-exported from
:mod:`jaxmod.distributions.discrete`."""

from jaxmod.distributions.discrete import Categorical

__all__ = ["Categorical"]
