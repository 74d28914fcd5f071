"""Probability distributions with torch's API (``torch.distributions``) on JAX.

Continuous: ``Normal``, ``Uniform``, ``Beta``, ``Gamma``, ``Chi2``, ``Dirichlet``,
``Exponential``, ``Laplace``, ``Cauchy``, ``StudentT``, ``MultivariateNormal``;
transformed (``TransformedDistribution`` subclasses, as in torch): ``LogNormal``,
``HalfNormal``, ``HalfCauchy``, ``Gumbel``, ``Weibull``, ``Pareto``, ``Kumaraswamy``,
``LogisticNormal``, ``RelaxedBernoulli``, ``RelaxedOneHotCategorical``; discrete:
``Bernoulli``, ``Categorical``, ``OneHotCategorical``, ``Poisson``, ``Binomial``,
``Geometric``, ``Multinomial``, ``NegativeBinomial``; ``Independent``,
``MixtureSameFamily``, ``TransformedDistribution`` with :mod:`.transforms`, and
``kl_divergence`` for the pairs torch registers among these. Densities, entropies and KL
divergences follow torch's formulas (on ``jax.scipy`` / ``jax.nn``); ``sample`` and
``rsample`` draw from jaxmod's generator (``jaxmod.manual_seed``), so they work eagerly
and inside :func:`jaxmod.jit`, and ``rsample`` is differentiable under
:func:`jaxmod.grad` (Gamma, Beta, Dirichlet and StudentT through ``jax.random``'s
implicitly reparameterised samplers). The numbers drawn differ from torch's (a different
generator).

Each torch submodule has its namesake here (``jaxmod.distributions.normal``,
``.transforms``, ``.kl``, ``.utils``, ...), so ``from torch.distributions.normal import
Normal`` ports by the import rewrite alone.
"""

from jaxmod.distributions import constraints, transforms
from jaxmod.distributions.chi2 import Chi2
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
from jaxmod.distributions.gumbel import Gumbel
from jaxmod.distributions.half_cauchy import HalfCauchy
from jaxmod.distributions.independent import Independent
from jaxmod.distributions.kl import kl_divergence, register_kl
from jaxmod.distributions.kumaraswamy import Kumaraswamy
from jaxmod.distributions.logistic_normal import LogisticNormal
from jaxmod.distributions.mixture import MixtureSameFamily
from jaxmod.distributions.multivariate_normal import MultivariateNormal
from jaxmod.distributions.negative_binomial import NegativeBinomial
from jaxmod.distributions.pareto import Pareto
from jaxmod.distributions.relaxed_bernoulli import LogitRelaxedBernoulli, RelaxedBernoulli
from jaxmod.distributions.relaxed_categorical import (
    ExpRelaxedCategorical,
    RelaxedOneHotCategorical,
)
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import (
    AbsTransform,
    AffineTransform,
    ComposeTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
)
from jaxmod.distributions.weibull import Weibull

__all__ = [
    "AbsTransform", "AffineTransform", "Bernoulli", "Beta", "Binomial", "Categorical",
    "Cauchy", "Chi2", "ComposeTransform", "CumulativeDistributionTransform", "Dirichlet",
    "Distribution", "ExpRelaxedCategorical", "ExpTransform", "Exponential", "Gamma",
    "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "IndependentTransform",
    "Kumaraswamy", "Laplace", "LogNormal", "LogisticNormal", "LogitRelaxedBernoulli",
    "LowerCholeskyTransform", "MixtureSameFamily", "Multinomial", "MultivariateNormal",
    "NegativeBinomial", "Normal", "OneHotCategorical", "Pareto", "Poisson", "PowerTransform",
    "RelaxedBernoulli", "RelaxedOneHotCategorical", "ReshapeTransform", "SigmoidTransform",
    "SoftmaxTransform", "SoftplusTransform", "StickBreakingTransform", "StudentT",
    "TanhTransform", "Transform", "TransformedDistribution", "Uniform", "Weibull",
    "constraints", "kl_divergence", "register_kl", "transforms",
]  # fmt: skip
