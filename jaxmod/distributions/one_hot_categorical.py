"""``torch.distributions.one_hot_categorical``: :class:`OneHotCategorical`, re-exported from
:mod:`jaxmod.distributions.discrete`."""

from jaxmod.distributions.discrete import OneHotCategorical

__all__ = ["OneHotCategorical"]
