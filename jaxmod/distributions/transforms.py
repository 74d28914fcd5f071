"""Invertible transforms with log-Jacobians (``torch.distributions.transforms``).

A :class:`Transform` maps ``x -> y`` (``t(x)``), inverts it (``t.inv(y)``) and gives
``log |dy/dx|`` (``t.log_abs_det_jacobian(x, y)``), with torch's formulas, domains,
codomains and reprs. ``cache_size=1`` keeps the last ``(x, y)`` pair, so inverting the
``y`` just produced returns its ``x`` (torch's identity test): the SAC idiom
``TransformedDistribution(Normal(mu, std), [TanhTransform(cache_size=1)])`` scores its own
``rsample()`` without ``atanh`` of a saturated value.

Transforms are pytrees whose array parameters are the leaves (the cache is dropped), so a
transformed distribution passes through ``jaxmod.jit``. Inputs and results follow
jaxmod's type rule: a plain ``jax.Array`` gives an array, anything else a Tensor.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core.cells import Variable as _Box
from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import tape as _tape
from jaxmod.distributions import constraints
from jaxmod.distributions.distribution import Distribution, sum_rightmost, wants_tensor

__all__ = [
    "AbsTransform", "AffineTransform", "ComposeTransform", "CumulativeDistributionTransform",
    "ExpTransform", "IndependentTransform", "LowerCholeskyTransform", "PowerTransform",
    "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform", "SoftplusTransform",
    "StickBreakingTransform", "TanhTransform", "Transform", "identity_transform",
]  # fmt: skip

_NOT_TREE = ("_cached_x_y", "_cached_public", "_inv")


def _apply(t: Transform, step: str, *values: Any) -> Any:
    """``t``'s array-level ``step`` on unwrapped values, as a Tensor unless all were
    plain arrays (what the tape records for a public call)."""
    out = getattr(t, step)(*[_b.unwrap(v) for v in values])
    return _b.new(out) if wants_tensor(*values) else out


def _is_leaf_value(v: Any) -> bool:
    """Array-like parameters (the pytree leaves of a transform)."""
    return _b.is_tensor(v) or isinstance(
        v, (_Box, _b.TensorBase, jax.Array, np.ndarray, jax.core.Tracer)
    )


def is_part(v: Any) -> bool:
    """Whether ``v`` is a transform or a list / tuple of transforms (pytree children)."""
    if isinstance(v, Transform):
        return True
    return isinstance(v, (list, tuple)) and bool(v) and all(isinstance(t, Transform) for t in v)


def _flatten(t: Transform) -> tuple[Any, Any]:
    kids = {k: v for k, v in vars(t).items() if k not in _NOT_TREE
            and (_is_leaf_value(v) or is_part(v) or isinstance(v, Distribution))}  # fmt: skip
    rest = tuple(sorted((k, v) for k, v in vars(t).items()
                        if k not in _NOT_TREE and k not in kids))  # fmt: skip
    return (kids,), rest


def _unflatten(cls: type, rest: Any, children: Any) -> Transform:
    t = cls.__new__(cls)
    vars(t).update(rest)
    vars(t).update(children[0])
    t._inv = None
    if t._cache_size == 1:
        t._cached_x_y = (None, None)
    return t


def _arr(v: Any) -> Any:
    """A parameter or value as a JAX array (numbers stay numbers)."""
    return v if isinstance(v, numbers.Number) else jnp.asarray(_b.unwrap(v))


def _same(a: Any, b: Any) -> bool:
    """torch's parameter equality: numbers by value, tensors elementwise."""
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return a == b
    return bool(jnp.all(_arr(a) == _arr(b)))


def _shape(v: Any) -> tuple[int, ...]:
    return () if isinstance(v, numbers.Number) else tuple(_arr(v).shape)


class Transform:
    """The base class of invertible transforms (``torch.distributions.Transform``).

    Subclasses implement ``_call`` / ``_inverse`` / ``_log_det`` on arrays.

    Args:
        cache_size: 0 (no cache) or 1 (keep the last ``(x, y)`` pair).
    """

    bijective = False
    _tree_part = True  # a pytree child of a distribution holding it
    domain: constraints.Constraint = constraints.real
    codomain: constraints.Constraint = constraints.real

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(
            cls, _flatten, lambda rest, kids, cls=cls: _unflatten(cls, rest, kids)
        )

    def __init__(self, cache_size: int = 0) -> None:
        if cache_size not in (0, 1):
            raise ValueError("cache_size must be 0 or 1")
        self._cache_size = cache_size
        self._inv: Transform | None = None
        if cache_size == 1:
            self._cached_x_y: tuple[Any, Any] = (None, None)

    @property
    def event_dim(self) -> int:
        """The event dimensions of domain and codomain (when they agree)."""
        if self.domain.event_dim == self.codomain.event_dim:
            return self.domain.event_dim
        raise ValueError("Please use either .domain.event_dim or .codomain.event_dim")

    @property
    def inv(self) -> Transform:
        """The inverse transform (``t.inv.inv is t``)."""
        if self._inv is None:
            self._inv = _InverseTransform(self)
        return self._inv

    @property
    def sign(self) -> Any:
        """The sign of the Jacobian's determinant (bijective univariate transforms)."""
        raise NotImplementedError

    def with_cache(self, cache_size: int = 1) -> Transform:
        """This transform with ``cache_size`` (itself when that is its size)."""
        if self._cache_size == cache_size:
            return self
        if type(self).__init__ is Transform.__init__:
            return type(self)(cache_size=cache_size)
        raise NotImplementedError(f"{type(self)}.with_cache is not implemented")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    # -- array-level steps (cached) -------------------------------------------------
    def _forward(self, x: Any) -> Any:
        if self._cache_size == 0:
            return self._call(x)
        x_old, y_old = self._cached_x_y
        if x is x_old:
            return y_old
        y = self._call(x)
        self._cached_x_y = (x, y)
        return y

    def _backward(self, y: Any) -> Any:
        if self._cache_size == 0:
            return self._inverse(y)
        x_old, y_old = self._cached_x_y
        if y is y_old:
            return x_old
        x = self._inverse(y)
        self._cached_x_y = (x, y)
        return x

    def _call(self, x: Any) -> Any:
        raise NotImplementedError

    def _inverse(self, y: Any) -> Any:
        raise NotImplementedError

    def _log_det(self, x: Any, y: Any) -> Any:
        raise NotImplementedError

    # -- torch's API ----------------------------------------------------------------
    # The public calls take and give Tensors (recorded on the autograd tape, so
    # ``loss.backward()`` reaches ``x`` and the parameters); with ``cache_size=1`` they
    # also keep the last Tensor pair, so ``t.inv(t(x))`` is that ``x`` itself, as in torch.
    def _public(self, step: str, *values: Any) -> Any:
        if _tape.recording():
            return _tape.record(_apply, f"{type(self).__name__}{step}", (self, step, *values), {})
        return _apply(self, step, *values)

    def __call__(self, x: Any) -> Any:
        """``y = t(x)``."""
        if isinstance(self, _InverseTransform):
            return self._base._inv_call(x)
        if self._cache_size == 0:
            return self._public("_forward", x)
        x_old, y_old = vars(self).get("_cached_public", (None, None))
        if x is x_old:
            return y_old
        y = self._public("_forward", x)
        self._cached_public = (x, y)
        return y

    def _inv_call(self, y: Any) -> Any:
        if self._cache_size == 0:
            return self._public("_backward", y)
        x_old, y_old = vars(self).get("_cached_public", (None, None))
        if y is y_old:
            return x_old
        x = self._public("_backward", y)
        self._cached_public = (x, y)
        return x

    def _cached_input(self, y: Any) -> Any:
        """The input whose public result ``y`` is (``None`` if ``y`` is not cached)."""
        x_old, y_old = vars(self).get("_cached_public", (None, None))
        return x_old if y is not None and y is y_old else None

    def log_abs_det_jacobian(self, x: Any, y: Any) -> Any:
        """``log |dy/dx|`` at the pair ``(x, y)``."""
        return self._public("_log_det", x, y)

    def forward_shape(self, shape: Any) -> Any:
        """The output shape for an input of ``shape``."""
        return shape

    def inverse_shape(self, shape: Any) -> Any:
        """The input shape for an output of ``shape``."""
        return shape

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


class _InverseTransform(Transform):
    """``t.inv``: the inverse of one transform (its domain is ``t``'s codomain)."""

    def __init__(self, transform: Transform) -> None:
        super().__init__(cache_size=transform._cache_size)
        self._base = transform

    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        return self._base.codomain

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        return self._base.domain

    @property
    def bijective(self) -> bool:  # type: ignore[override]
        return self._base.bijective

    @property
    def sign(self) -> Any:
        return self._base.sign

    @property
    def inv(self) -> Transform:
        return self._base

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self._base.with_cache(cache_size).inv

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _InverseTransform) and self._base == other._base

    def _cached_input(self, y: Any) -> Any:
        x_old, y_old = vars(self._base).get("_cached_public", (None, None))
        return y_old if y is not None and y is x_old else None

    def _forward(self, x: Any) -> Any:
        return self._base._backward(x)

    def _backward(self, y: Any) -> Any:
        return self._base._forward(y)

    def _log_det(self, x: Any, y: Any) -> Any:
        return -self._base._log_det(y, x)

    def forward_shape(self, shape: Any) -> Any:
        return self._base.inverse_shape(shape)

    def inverse_shape(self, shape: Any) -> Any:
        return self._base.forward_shape(shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base!r})"


class ComposeTransform(Transform):
    """``parts`` applied in order (each part keeps its own cache)."""

    def __init__(self, parts: list[Transform], cache_size: int = 0) -> None:
        if cache_size:
            parts = [part.with_cache(cache_size) for part in parts]
        super().__init__(cache_size=cache_size)
        self.parts = list(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComposeTransform) and self.parts == other.parts

    def _event_dim(self, forward: bool) -> int:
        """The largest event dimension the chain needs at its input (or output)."""
        parts = self.parts if forward else self.parts[::-1]
        ends = [(p.domain.event_dim, p.codomain.event_dim) for p in parts]
        if not forward:
            ends = [(c, d) for d, c in ends]
        event_dim = ends[0][0]
        for start, end in ends:
            event_dim = max(event_dim + end - start, end)
        return event_dim

    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        if not self.parts:
            return constraints.real
        domain = self.parts[0].domain
        extra = self._event_dim(False) - domain.event_dim
        return constraints.independent(domain, extra) if extra > 0 else domain

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        if not self.parts:
            return constraints.real
        codomain = self.parts[-1].codomain
        extra = self._event_dim(True) - codomain.event_dim
        return constraints.independent(codomain, extra) if extra > 0 else codomain

    @property
    def bijective(self) -> bool:  # type: ignore[override]
        return all(p.bijective for p in self.parts)

    @property
    def sign(self) -> Any:
        sign: Any = 1
        for p in self.parts:
            sign = sign * p.sign
        return sign

    @property
    def inv(self) -> Transform:
        if self._inv is None:
            inv = ComposeTransform([p.inv for p in reversed(self.parts)])
            inv._inv = self
            self._inv = inv
        return self._inv

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return ComposeTransform(self.parts, cache_size=cache_size)

    def _forward(self, x: Any) -> Any:
        for part in self.parts:
            x = part._forward(x)
        return x

    def _backward(self, y: Any) -> Any:
        for part in reversed(self.parts):
            y = part._backward(y)
        return y

    def _log_det(self, x: Any, y: Any) -> Any:
        if not self.parts:
            return jnp.zeros_like(x)
        xs = [x]
        for part in self.parts[:-1]:
            xs.append(part._forward(xs[-1]))
        xs.append(y)
        total: Any = 0.0
        event_dim = self.domain.event_dim
        for part, a, b in zip(self.parts, xs[:-1], xs[1:]):
            term = part._log_det(a, b)
            total = total + sum_rightmost(term, event_dim - part.domain.event_dim)
            event_dim += part.codomain.event_dim - part.domain.event_dim
        return total

    def forward_shape(self, shape: Any) -> Any:
        for part in self.parts:
            shape = part.forward_shape(shape)
        return shape

    def inverse_shape(self, shape: Any) -> Any:
        for part in reversed(self.parts):
            shape = part.inverse_shape(shape)
        return shape

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(p) for p in self.parts)
        return f"{type(self).__name__}(\n    {inner}\n)"


identity_transform = ComposeTransform([])


class IndependentTransform(Transform):
    """``base_transform`` with ``reinterpreted_batch_ndims`` more rightmost dimensions in
    each event: its log-Jacobian is summed over them."""

    def __init__(self, base_transform: Transform, reinterpreted_batch_ndims: int,
                 cache_size: int = 0) -> None:  # fmt: skip
        super().__init__(cache_size=cache_size)
        self.base_transform = base_transform.with_cache(cache_size)
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return IndependentTransform(self.base_transform, self.reinterpreted_batch_ndims,
                                    cache_size=cache_size)  # fmt: skip

    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(self.base_transform.domain,
                                       self.reinterpreted_batch_ndims)  # fmt: skip

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(self.base_transform.codomain,
                                       self.reinterpreted_batch_ndims)  # fmt: skip

    @property
    def bijective(self) -> bool:  # type: ignore[override]
        return self.base_transform.bijective

    @property
    def sign(self) -> Any:
        return self.base_transform.sign

    def _call(self, x: Any) -> Any:
        if x.ndim < self.domain.event_dim:
            raise ValueError("Too few dimensions on input")
        return self.base_transform._forward(x)

    def _inverse(self, y: Any) -> Any:
        if y.ndim < self.codomain.event_dim:
            raise ValueError("Too few dimensions on input")
        return self.base_transform._backward(y)

    def _log_det(self, x: Any, y: Any) -> Any:
        return sum_rightmost(self.base_transform._log_det(x, y), self.reinterpreted_batch_ndims)

    def forward_shape(self, shape: Any) -> Any:
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape: Any) -> Any:
        return self.base_transform.inverse_shape(shape)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.base_transform!r}, "
                f"{self.reinterpreted_batch_ndims})")  # fmt: skip


class ReshapeTransform(Transform):
    """Reshape the rightmost ``in_shape`` dimensions to ``out_shape`` (unit Jacobian)."""

    bijective = True

    def __init__(self, in_shape: Any, out_shape: Any, cache_size: int = 0) -> None:
        self.in_shape = _dt.Size(tuple(in_shape))
        self.out_shape = _dt.Size(tuple(out_shape))
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError("in_shape, out_shape have different numbers of elements")
        super().__init__(cache_size=cache_size)

    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(constraints.real, len(self.in_shape))

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(constraints.real, len(self.out_shape))

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return ReshapeTransform(self.in_shape, self.out_shape, cache_size=cache_size)

    def _call(self, x: Any) -> Any:
        return x.reshape(x.shape[: x.ndim - len(self.in_shape)] + tuple(self.out_shape))

    def _inverse(self, y: Any) -> Any:
        return y.reshape(y.shape[: y.ndim - len(self.out_shape)] + tuple(self.in_shape))

    def _log_det(self, x: Any, y: Any) -> Any:
        return jnp.zeros(x.shape[: x.ndim - len(self.in_shape)], x.dtype)

    def _reshaped(self, shape: Any, old: Any, new: Any) -> Any:
        if len(shape) < len(old):
            raise ValueError("Too few dimensions on input")
        cut = len(shape) - len(old)
        if tuple(shape[cut:]) != tuple(old):
            raise ValueError(f"Shape mismatch: expected {_dt.Size(shape[cut:])} but got {old}")
        return _dt.Size(tuple(shape[:cut]) + tuple(new))

    def forward_shape(self, shape: Any) -> Any:
        return self._reshaped(shape, self.in_shape, self.out_shape)

    def inverse_shape(self, shape: Any) -> Any:
        return self._reshaped(shape, self.out_shape, self.in_shape)


class _Elementwise(Transform):
    """A bijective elementwise transform with no parameters (equal by type)."""

    bijective = True
    sign: Any = +1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self))


class ExpTransform(_Elementwise):
    """``y = exp(x)``."""

    codomain = constraints.positive

    def _call(self, x: Any) -> Any:
        return jnp.exp(x)

    def _inverse(self, y: Any) -> Any:
        return jnp.log(y)

    def _log_det(self, x: Any, y: Any) -> Any:
        return x


def _clipped_sigmoid(x: Any) -> Any:
    finfo = jnp.finfo(x.dtype)
    return jnp.clip(jax.nn.sigmoid(x), finfo.tiny, 1.0 - finfo.eps)


class SigmoidTransform(_Elementwise):
    """``y = sigmoid(x)`` (clamped into ``(0, 1)``, as torch), ``x = logit(y)``."""

    codomain = constraints.unit_interval

    def _call(self, x: Any) -> Any:
        return _clipped_sigmoid(x)

    def _inverse(self, y: Any) -> Any:
        finfo = jnp.finfo(y.dtype)
        y = jnp.clip(y, finfo.tiny, 1.0 - finfo.eps)
        return jnp.log(y) - jnp.log1p(-y)

    def _log_det(self, x: Any, y: Any) -> Any:
        return -jax.nn.softplus(-x) - jax.nn.softplus(x)


class SoftplusTransform(_Elementwise):
    """``y = log(1 + exp(x))``."""

    codomain = constraints.positive

    def _call(self, x: Any) -> Any:
        return jax.nn.softplus(x)

    def _inverse(self, y: Any) -> Any:
        return jnp.log(-jnp.expm1(-y)) + y

    def _log_det(self, x: Any, y: Any) -> Any:
        return -jax.nn.softplus(-x)


class TanhTransform(_Elementwise):
    """``y = tanh(x)``; the log-Jacobian is ``2 (log 2 - x - softplus(-2x))`` (stable
    where ``tanh`` saturates). Use ``cache_size=1`` to score a sample without ``atanh``."""

    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x: Any) -> Any:
        return jnp.tanh(x)

    def _inverse(self, y: Any) -> Any:
        return jnp.arctanh(y)

    def _log_det(self, x: Any, y: Any) -> Any:
        return 2.0 * (math.log(2.0) - x - jax.nn.softplus(-2.0 * x))


class AbsTransform(Transform):
    """``y = |x|`` (not bijective; the inverse is the identity)."""

    codomain = constraints.positive

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AbsTransform)

    def _call(self, x: Any) -> Any:
        return jnp.abs(x)

    def _inverse(self, y: Any) -> Any:
        return y


class PowerTransform(Transform):
    """``y = x ** exponent`` on the positive reals."""

    domain = constraints.positive
    codomain = constraints.positive
    bijective = True

    def __init__(self, exponent: Any, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.exponent = _b.new(_arr(exponent)) if isinstance(exponent, numbers.Number) \
            else exponent  # fmt: skip

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return PowerTransform(self.exponent, cache_size=cache_size)

    @property
    def sign(self) -> Any:
        return _b.new(jnp.sign(_arr(self.exponent)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PowerTransform) and _same(self.exponent, other.exponent)

    def _call(self, x: Any) -> Any:
        return x ** _arr(self.exponent)

    def _inverse(self, y: Any) -> Any:
        return y ** (1 / _arr(self.exponent))

    def _log_det(self, x: Any, y: Any) -> Any:
        return jnp.log(jnp.abs(_arr(self.exponent) * y / x))

    def forward_shape(self, shape: Any) -> Any:
        return _dt.Size(jnp.broadcast_shapes(tuple(shape), _shape(self.exponent)))

    inverse_shape = forward_shape


class AffineTransform(Transform):
    """``y = loc + scale * x``; ``event_dim`` rightmost dimensions form one event (the
    log-Jacobian is summed over them)."""

    bijective = True

    def __init__(self, loc: Any, scale: Any, event_dim: int = 0, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.loc = loc
        self.scale = scale
        self._event_dim = event_dim

    @property
    def event_dim(self) -> int:
        return self._event_dim

    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        if self._event_dim == 0:
            return constraints.real
        return constraints.independent(constraints.real, self._event_dim)

    codomain = domain

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return AffineTransform(self.loc, self.scale, self._event_dim, cache_size=cache_size)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AffineTransform) and _same(self.loc, other.loc)
                and _same(self.scale, other.scale))  # fmt: skip

    @property
    def sign(self) -> Any:
        if isinstance(self.scale, numbers.Number):
            s = float(self.scale)
            return 1 if s > 0 else -1 if s < 0 else 0
        return _b.new(jnp.sign(_arr(self.scale)))

    def _call(self, x: Any) -> Any:
        return _arr(self.loc) + _arr(self.scale) * x

    def _inverse(self, y: Any) -> Any:
        return (y - _arr(self.loc)) / _arr(self.scale)

    def _log_det(self, x: Any, y: Any) -> Any:
        shape = x.shape
        scale = _arr(self.scale)
        if isinstance(scale, numbers.Number):
            result = jnp.full_like(x, math.log(abs(scale)))
        else:
            result = jnp.log(jnp.abs(scale))
        if self._event_dim:
            result = result.reshape(result.shape[: result.ndim - self._event_dim] + (-1,))
            result = result.sum(-1)
            shape = shape[: len(shape) - self._event_dim]
        return jnp.broadcast_to(result, shape)

    def forward_shape(self, shape: Any) -> Any:
        return _dt.Size(jnp.broadcast_shapes(tuple(shape), _shape(self.loc), _shape(self.scale)))

    inverse_shape = forward_shape


class SoftmaxTransform(Transform):
    """Unconstrained vectors to the simplex: ``exp`` then normalise (not bijective)."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SoftmaxTransform)

    def _call(self, x: Any) -> Any:
        probs = jnp.exp(x - x.max(-1, keepdims=True))
        return probs / probs.sum(-1, keepdims=True)

    def _inverse(self, y: Any) -> Any:
        return jnp.log(y)

    def forward_shape(self, shape: Any) -> Any:
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return shape

    inverse_shape = forward_shape


class StickBreakingTransform(Transform):
    """Unconstrained vectors of length ``K - 1`` to the ``K``-simplex by stick breaking
    (bijective; torch's offsets make ``x = 0`` the simplex's centre)."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StickBreakingTransform)

    @staticmethod
    def _offset(k: int, dtype: Any) -> Any:
        return jnp.log(jnp.arange(k, 0, -1, dtype=dtype))  # log(K - 1 - i + 1), i = 0..K-2

    def _call(self, x: Any) -> Any:
        z = _clipped_sigmoid(x - self._offset(x.shape[-1], x.dtype))
        left = jnp.cumprod(1 - z, -1)
        ones = jnp.ones(x.shape[:-1] + (1,), x.dtype)
        return jnp.concatenate([z, ones], -1) * jnp.concatenate([ones, left], -1)

    def _inverse(self, y: Any) -> Any:
        crop = y[..., :-1]
        sf = jnp.maximum(1 - jnp.cumsum(crop, -1), jnp.finfo(y.dtype).tiny)
        return jnp.log(crop) - jnp.log(sf) + self._offset(crop.shape[-1], y.dtype)

    def _log_det(self, x: Any, y: Any) -> Any:
        x = x - self._offset(x.shape[-1], x.dtype)
        return (-x + jax.nn.log_sigmoid(x) + jnp.log(y[..., :-1])).sum(-1)

    def forward_shape(self, shape: Any) -> Any:
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return _dt.Size(tuple(shape[:-1]) + (shape[-1] + 1,))

    def inverse_shape(self, shape: Any) -> Any:
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return _dt.Size(tuple(shape[:-1]) + (shape[-1] - 1,))


class LowerCholeskyTransform(Transform):
    """Unconstrained matrices to lower-triangular ones with a positive (``exp``)
    diagonal."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LowerCholeskyTransform)

    @staticmethod
    def _diag(x: Any, fn: Any) -> Any:
        d = fn(jnp.diagonal(x, axis1=-2, axis2=-1))
        return jnp.tril(x, -1) + d[..., None] * jnp.eye(x.shape[-1], dtype=x.dtype)

    def _call(self, x: Any) -> Any:
        return self._diag(x, jnp.exp)

    def _inverse(self, y: Any) -> Any:
        return self._diag(y, jnp.log)


class CumulativeDistributionTransform(Transform):
    """``y = distribution.cdf(x)`` onto the unit interval (bijective for a continuous
    distribution; the log-Jacobian is its log-density)."""

    bijective = True
    codomain = constraints.unit_interval
    sign = +1

    def __init__(self, distribution: Any, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.distribution = distribution

    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        return self.distribution.support

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return type(self)(self.distribution, cache_size=cache_size)

    def _call(self, x: Any) -> Any:
        return _b.unwrap(self.distribution.cdf(x))

    def _inverse(self, y: Any) -> Any:
        return _b.unwrap(self.distribution.icdf(y))

    def _log_det(self, x: Any, y: Any) -> Any:
        return _b.unwrap(self.distribution.log_prob(x))
