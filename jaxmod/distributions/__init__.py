"""Probability distributions with torch's API (``torch.distributions``) on JAX.

Continuous: ``Normal``, ``Uniform``, ``Beta``, ``Gamma``, ``Dirichlet``, ``Exponential``,
``Laplace``, ``LogNormal``, ``Cauchy``, ``HalfNormal``, ``StudentT``,
``MultivariateNormal``; discrete: ``Bernoulli``, ``Categorical``, ``OneHotCategorical``,
``Poisson``, ``Binomial``, ``Geometric``, ``Multinomial``; ``Independent``,
``MixtureSameFamily``, and ``kl_divergence`` for the same-type pairs torch has. Densities,
entropies and KL divergences follow torch's formulas (on ``jax.scipy`` / ``jax.nn``);
``sample`` and ``rsample`` draw from jaxmod's generator (``jaxmod.manual_seed``), so they
work eagerly and inside :func:`jaxmod.jit`, and ``rsample`` is differentiable under
:func:`jaxmod.grad` (Gamma, Beta, Dirichlet and StudentT through ``jax.random``'s
implicitly reparameterised samplers). The numbers drawn differ from torch's (a different
generator).
"""

from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import (
    Beta,
    Cauchy,
    Dirichlet,
    Exponential,
    Gamma,
    HalfNormal,
    Laplace,
    LogNormal,
    Normal,
    StudentT,
    Uniform,
)
from jaxmod.distributions.discrete import (
    Bernoulli,
    Binomial,
    Categorical,
    Geometric,
    Multinomial,
    OneHotCategorical,
    Poisson,
)
from jaxmod.distributions.distribution import Distribution
from jaxmod.distributions.independent import Independent
from jaxmod.distributions.kl import kl_divergence, register_kl
from jaxmod.distributions.mixture import MixtureSameFamily
from jaxmod.distributions.multivariate_normal import MultivariateNormal

__all__ = [
    "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Dirichlet", "Distribution",
    "Exponential", "Gamma", "Geometric", "HalfNormal", "Independent", "Laplace", "LogNormal",
    "MixtureSameFamily", "Multinomial", "MultivariateNormal", "Normal", "OneHotCategorical",
    "Poisson", "StudentT", "Uniform", "constraints", "kl_divergence", "register_kl",
]  # fmt: skip
