""":class:`Independent`: reinterpret batch dimensions of a distribution as event ones."""

from __future__ import annotations

from typing import Any

from jaxmod._tensor import base as _b
from jaxmod.distributions import constraints
from jaxmod.distributions.distribution import Distribution, sum_rightmost

__all__ = ["Independent"]


class Independent(Distribution):
    """``base_distribution`` with its rightmost ``reinterpreted_batch_ndims`` batch
    dimensions made event dimensions: ``log_prob`` and ``entropy`` sum over them (a
    diagonal Gaussian is ``Independent(Normal(mu, std), 1)``)."""

    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(self, base_distribution: Distribution, reinterpreted_batch_ndims: int,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        n = int(reinterpreted_batch_ndims)
        shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        event_dim = n + len(base_distribution.event_shape)
        if n > len(base_distribution.batch_shape):
            raise ValueError(
                "Expected reinterpreted_batch_ndims <= len(base_distribution.batch_shape), "
                f"actual {n} vs {len(base_distribution.batch_shape)}"
            )
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = n
        self._wrap = base_distribution._wrap
        self._params = {}
        split = len(shape) - event_dim
        super().__init__(shape[:split], shape[split:], validate_args=validate_args)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.base_dist.has_rsample

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return self.base_dist.has_enumerate_support and self.reinterpreted_batch_ndims == 0

    @constraints.dependent_property
    def support(self) -> constraints.Constraint:
        result = self.base_dist.support
        n = self.reinterpreted_batch_ndims
        return constraints.independent(result, n) if n else result

    @property
    def mean(self) -> Any:
        """The base distribution's mean."""
        return self.base_dist.mean

    @property
    def mode(self) -> Any:
        """The base distribution's mode."""
        return self.base_dist.mode

    @property
    def variance(self) -> Any:
        """The base distribution's variance."""
        return self.base_dist.variance

    def _sample(self, shape: tuple[int, ...]) -> Any:
        return self.base_dist._sample(shape)

    def log_prob(self, value: Any) -> Any:
        """The base log-probability summed over the reinterpreted dimensions."""
        lp = _b.unwrap(self.base_dist.log_prob(value))
        return self._out(sum_rightmost(lp, self.reinterpreted_batch_ndims))

    def entropy(self) -> Any:
        """The base entropy summed over the reinterpreted dimensions."""
        h = _b.unwrap(self.base_dist.entropy())
        return self._out(sum_rightmost(h, self.reinterpreted_batch_ndims))

    def enumerate_support(self, expand: bool = True) -> Any:
        """The base support (only without reinterpreted dimensions, as in torch)."""
        if self.reinterpreted_batch_ndims > 0:
            raise NotImplementedError("Enumeration over cartesian product is not implemented")
        return self.base_dist.enumerate_support(expand=expand)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_dist}, {self.reinterpreted_batch_ndims})"
