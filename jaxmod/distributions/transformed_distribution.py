""":class:`TransformedDistribution`: a base distribution pushed through transforms
(``torch.distributions.transformed_distribution``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod.distributions import constraints
from jaxmod.distributions.distribution import Distribution, sum_rightmost, wants_tensor
from jaxmod.distributions.independent import Independent
from jaxmod.distributions.transforms import ComposeTransform, Transform

__all__ = ["TransformedDistribution"]


class TransformedDistribution(Distribution):
    """``Y = f(X)`` for ``X ~ base_distribution`` and ``f`` the chain ``transforms``:
    ``log p(y) = log p(x) - log |det df/dx|`` (torch's shapes: a transform whose domain
    spans more dimensions than the base's events makes the base :class:`Independent`).

    ``rsample`` is differentiable where the base's is; with ``cache_size=1`` transforms,
    ``log_prob`` of the sample just drawn reuses its ``x`` (no inverse is computed).
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    _repr_params = False

    def __init__(self, base_distribution: Distribution, transforms: Any,
                 validate_args: bool | None = None) -> None:  # fmt: skip
        if isinstance(transforms, Transform):
            transforms = [transforms]
        elif isinstance(transforms, list):
            if not all(isinstance(t, Transform) for t in transforms):
                raise ValueError("transforms must be a Transform or a list of Transforms")
        else:
            raise ValueError(f"transforms must be a Transform or list, but was {transforms}")
        self.transforms = transforms
        base_shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        base_event_dim = len(base_distribution.event_shape)
        chain = ComposeTransform(transforms)
        if len(base_shape) < chain.domain.event_dim:
            raise ValueError(
                f"base_distribution needs to have shape with size at least "
                f"{chain.domain.event_dim}, but got {_dt.Size(base_shape)}."
            )
        forward_shape = tuple(chain.forward_shape(_dt.Size(base_shape)))
        expanded = tuple(chain.inverse_shape(_dt.Size(forward_shape)))
        if base_shape != expanded:
            base_distribution = base_distribution.expand(expanded[: len(expanded) - base_event_dim])
        extra = chain.domain.event_dim - base_event_dim
        if extra > 0:
            base_distribution = Independent(base_distribution, extra)
        self.base_dist = base_distribution
        leaves = jax.tree_util.tree_leaves(transforms, is_leaf=_b.is_tensor)
        self._wrap = base_distribution._wrap or (bool(leaves) and wants_tensor(*leaves))
        self._params = vars(self).get("_params", {})  # a subclass's own parameters
        change = chain.codomain.event_dim - chain.domain.event_dim
        event_dim = max(chain.codomain.event_dim, base_event_dim + change)
        cut = len(forward_shape) - event_dim
        super().__init__(forward_shape[:cut], forward_shape[cut:], validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        """The distribution with the base expanded so the result has ``batch_shape``."""
        new_batch = tuple(int(s) for s in batch_shape)
        shape = _dt.Size(new_batch + tuple(self.event_shape))
        for t in reversed(self.transforms):
            shape = t.inverse_shape(shape)
        new = type(self).__new__(type(self))
        vars(new).update(vars(self))
        new._params = {k: jnp.broadcast_to(v, new_batch + v.shape[len(self.batch_shape):])
                       for k, v in self._params.items()}  # fmt: skip
        new.base_dist = self.base_dist.expand(
            tuple(shape)[: len(shape) - len(self.base_dist.event_shape)]
        )
        new._batch_shape = _dt.Size(new_batch)
        return new

    @constraints.dependent_property(is_discrete=False)
    def support(self) -> constraints.Constraint:
        if not self.transforms:
            return self.base_dist.support
        support = self.transforms[-1].codomain
        extra = len(self.event_shape) - support.event_dim
        return constraints.independent(support, extra) if extra > 0 else support

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.base_dist.has_rsample

    def _sample(self, shape: tuple[int, ...]) -> Any:
        x = self.base_dist._sample(shape)
        for t in self.transforms:
            x = t._forward(x)
        return x

    # rsample, sample and log_prob work through the public transform calls (not recorded
    # whole on the tape): each transform then caches the Tensors themselves, so scoring
    # the sample just drawn uses its pre-image, and the gradient flows through it.
    def _own(self, x: Any) -> Any:
        """A base sample as this distribution's type (Tensor or array) before the
        transforms see it."""
        return _b.unwrap(x) if not self._wrap else x if _b.is_tensor(x) else _b.new(x)

    def rsample(self, sample_shape: Any = ()) -> Any:
        """Transformed reparameterised base samples."""
        x = self._own(self.base_dist.rsample(sample_shape))
        for t in self.transforms:
            x = t(x)
        return x

    def sample(self, sample_shape: Any = ()) -> Any:
        """Transformed base samples, without gradient."""
        x = self._own(self.base_dist.sample(sample_shape))
        for t in self.transforms:
            x = t(x)
        return x

    def log_prob(self, value: Any) -> Any:
        """The base log-density of the inverted value less the log-Jacobians."""
        xs, y = [], value
        for t in reversed(self.transforms):
            y = t._cached_input(y) if getattr(t, "_cache_size", 0) else None
            if y is None:
                break
            xs.append(y)
        return self._log_prob_given(value, xs)

    rsample.__tape_wrapped__ = sample.__tape_wrapped__ = True  # type: ignore[attr-defined]
    log_prob.__tape_wrapped__ = True  # type: ignore[attr-defined]

    def _log_prob_given(self, value: Any, xs: list[Any]) -> Any:
        """``log_prob(value)`` with the pre-images ``xs`` of the last transforms known."""
        y = self._value(value)
        event_dim = len(self.event_shape)
        lp: Any = 0.0
        for i, t in enumerate(reversed(self.transforms)):
            x = jnp.asarray(_b.unwrap(xs[i])) if i < len(xs) else t._backward(y)
            event_dim += t.domain.event_dim - t.codomain.event_dim
            lp = lp - sum_rightmost(t._log_det(x, y), event_dim - t.domain.event_dim)
            y = x
        base = _b.unwrap(self.base_dist.log_prob(y))
        return self._out(lp + sum_rightmost(base, event_dim - len(self.base_dist.event_shape)))

    def _monotonize_cdf(self, value: Any) -> Any:
        sign: Any = 1
        for t in self.transforms:
            sign = sign * t.sign
        if isinstance(sign, int) and sign == 1:
            return value
        return _b.unwrap(sign) * (value - 0.5) + 0.5

    def cdf(self, value: Any) -> Any:
        """The base cdf of the inverted value (flipped for decreasing transforms)."""
        v = _b.unwrap(value)
        for t in reversed(self.transforms):
            v = t._backward(v)
        if self._validate_args:
            self.base_dist._validate_sample(v)
        out = _b.unwrap(self.base_dist.cdf(v))
        return self._out(self._monotonize_cdf(out))

    def icdf(self, value: Any) -> Any:
        """The transformed base quantile."""
        v = self._monotonize_cdf(_b.unwrap(value))
        v = _b.unwrap(self.base_dist.icdf(v))
        for t in self.transforms:
            v = t._forward(v)
        return self._out(v)
