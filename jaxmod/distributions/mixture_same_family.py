"""``torch.distributions.mixture_same_family``: :class:`MixtureSameFamily`, re-exported from
:mod:`jaxmod.distributions.mixture`."""

from jaxmod.distributions.mixture import MixtureSameFamily

__all__ = ["MixtureSameFamily"]
