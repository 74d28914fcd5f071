""":class:`LogisticNormal`: a :class:`Normal` vector pushed onto the simplex by stick
breaking (``torch.distributions.logistic_normal``)."""

from __future__ import annotations

from typing import Any

from jaxmod.distributions import constraints
from jaxmod.distributions.continuous import Normal
from jaxmod.distributions.transformed_distribution import TransformedDistribution
from jaxmod.distributions.transforms import StickBreakingTransform

__all__ = ["LogisticNormal"]


class LogisticNormal(TransformedDistribution):
    """``StickBreakingTransform`` of ``Normal(loc, scale)``: events of length ``K + 1``
    for parameters of length ``K`` (torch's repr: ``LogisticNormal()``)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc: Any, scale: Any, validate_args: bool | None = None) -> None:
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand([1])
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    @property
    def loc(self) -> Any:
        """The location of the underlying normal."""
        return self.base_dist.base_dist.loc

    @property
    def scale(self) -> Any:
        """The scale of the underlying normal."""
        return self.base_dist.base_dist.scale
