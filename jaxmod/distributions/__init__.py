"""Probability distributions with torch's API (``torch.distributions``) on JAX.

``Categorical``, ``OneHotCategorical``, ``Bernoulli``, ``Normal``, ``Uniform``,
``Independent`` and ``kl_divergence`` for each same-type pair. Densities, entropies and
KL divergences follow torch's formulas (on ``jax.scipy.stats`` / ``jax.nn``); ``sample``
and ``rsample`` draw from jaxmod's generator (``jaxmod.manual_seed``), so they work
eagerly and inside :func:`jaxmod.jit`, and ``rsample`` is differentiable under
:func:`jaxmod.grad`. The numbers drawn differ from torch's (a different generator).
"""

from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import Normal, Uniform
from jaxmod.distributions.discrete import Bernoulli, Categorical, OneHotCategorical
from jaxmod.distributions.distribution import Distribution
from jaxmod.distributions.independent import Independent
from jaxmod.distributions.kl import kl_divergence, register_kl

__all__ = [
    "Bernoulli", "Categorical", "Distribution", "Independent", "Normal",
    "OneHotCategorical", "Uniform", "constraints", "kl_divergence", "register_kl",
]  # fmt: skip
