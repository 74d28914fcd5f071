"""Constraints on distribution parameters and supports (``torch.distributions.constraints``).

Each constraint's ``check(value)`` gives a boolean array (``jax.numpy``), and its ``repr``
is torch's (``GreaterThan(lower_bound=0.0)``), which argument validation puts in its
message.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor import base as _b

__all__ = [
    "Constraint", "boolean", "dependent", "dependent_property", "greater_than",
    "greater_than_eq", "integer_interval", "interval", "half_open_interval", "is_dependent",
    "less_than", "lower_cholesky", "multinomial", "nonnegative", "nonnegative_integer",
    "integer_greater_than", "one_hot", "positive_definite", "positive_integer", "positive",
    "real", "real_vector", "simplex", "unit_interval",
]  # fmt: skip


def fmt(v: Any) -> str:
    """``f"{v}"`` as torch writes it: a 0-d tensor as its number, a larger one as text."""
    a = _b.unwrap(v)
    if isinstance(a, jax.core.Tracer):
        return str(_b.new(a))
    if hasattr(a, "ndim") and a.ndim == 0:
        return str(a.item())
    if hasattr(a, "ndim"):
        return str(_b.new(jnp.asarray(a)))
    return f"{v}"


class Constraint:
    """A region of valid values: ``check(value)`` is true elementwise inside it.

    ``is_discrete`` says whether the region is discrete, ``event_dim`` how many rightmost
    dimensions one event spans.
    """

    is_discrete = False
    event_dim = 0

    def check(self, value: Any) -> Any:
        """A boolean array: whether each event of ``value`` satisfies the constraint."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.__class__.__name__[1:] + "()"


class _Dependent(Constraint):
    """A constraint that depends on other parameters; never checked (as in torch)."""

    def __init__(self, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        self.is_discrete = is_discrete
        self.event_dim = event_dim

    def __call__(self, *, is_discrete: bool = False, event_dim: int = 0) -> _Dependent:
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, value: Any) -> Any:
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint: Any) -> bool:
    """Whether ``constraint`` is a dependent (unchecked) constraint."""
    return isinstance(constraint, _Dependent)


class dependent_property(property):
    """A property that is also a dependent constraint (torch's ``Categorical.support``)."""

    def __init__(self, fn: Any = None, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        super().__init__(fn)
        self.is_discrete = is_discrete
        self.event_dim = event_dim

    def __call__(self, fn: Any) -> dependent_property:
        return dependent_property(fn, is_discrete=self.is_discrete, event_dim=self.event_dim)


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value: Any) -> Any:
        return (value == 0) | (value == 1)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value: Any) -> Any:
        is_boolean = (value == 0) | (value == 1)
        is_normalized = value.sum(-1) == 1
        return is_boolean.all(-1) & is_normalized


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound: Any, upper_bound: Any) -> None:
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def check(self, value: Any) -> Any:
        lo, hi = _b.unwrap(self.lower_bound), _b.unwrap(self.upper_bound)
        return (value % 1 == 0) & (lo <= value) & (value <= hi)

    def __repr__(self) -> str:
        return (f"{type(self).__name__[1:]}(lower_bound={fmt(self.lower_bound)}, "
                f"upper_bound={fmt(self.upper_bound)})")  # fmt: skip


class _Real(Constraint):
    def check(self, value: Any) -> Any:
        return value == value  # false for NaN


class _Bound(Constraint):
    """A one-sided bound: ``op(value, bound)``."""

    _name = "lower_bound"

    def __init__(self, bound: Any) -> None:
        setattr(self, self._name, bound)
        self._bound = bound

    def _op(self, value: Any, bound: Any) -> Any:
        raise NotImplementedError

    def check(self, value: Any) -> Any:
        return self._op(value, _b.unwrap(self._bound))

    def __repr__(self) -> str:
        return f"{type(self).__name__[1:]}({self._name}={fmt(self._bound)})"


class _GreaterThan(_Bound):
    def _op(self, value: Any, bound: Any) -> Any:
        return bound < value


class _GreaterThanEq(_Bound):
    def _op(self, value: Any, bound: Any) -> Any:
        return bound <= value


class _LessThan(_Bound):
    _name = "upper_bound"

    def _op(self, value: Any, bound: Any) -> Any:
        return value < bound


class _Interval(Constraint):
    def __init__(self, lower_bound: Any, upper_bound: Any) -> None:
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def check(self, value: Any) -> Any:
        lo, hi = _b.unwrap(self.lower_bound), _b.unwrap(self.upper_bound)
        return (lo <= value) & (value <= hi)

    def __repr__(self) -> str:
        return (f"{type(self).__name__[1:]}(lower_bound={fmt(self.lower_bound)}, "
                f"upper_bound={fmt(self.upper_bound)})")  # fmt: skip


class _HalfOpenInterval(_Interval):
    def check(self, value: Any) -> Any:
        lo, hi = _b.unwrap(self.lower_bound), _b.unwrap(self.upper_bound)
        return (lo <= value) & (value < hi)


class _IndependentConstraint(Constraint):
    """``base`` with ``reinterpreted_batch_ndims`` more rightmost dims in each event."""

    def __init__(self, base: Constraint, reinterpreted_batch_ndims: int) -> None:
        self.base_constraint = base
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.is_discrete = base.is_discrete
        self.event_dim = base.event_dim + reinterpreted_batch_ndims

    def check(self, value: Any) -> Any:
        result = self.base_constraint.check(value)
        n = self.reinterpreted_batch_ndims
        return result.reshape(result.shape[: result.ndim - n] + (-1,)).all(-1) if n else result

    def __repr__(self) -> str:
        return (f"IndependentConstraint({self.base_constraint!r}, "
                f"{self.reinterpreted_batch_ndims})")  # fmt: skip


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value: Any) -> Any:
        return jnp.all(value >= 0, axis=-1) & (jnp.abs(value.sum(-1) - 1) < 1e-6)


class _IntegerGreaterThan(_Bound):
    is_discrete = True

    def _op(self, value: Any, bound: Any) -> Any:
        return (value % 1 == 0) & (value >= bound)


class _PositiveDefinite(Constraint):
    """Symmetric matrices with a Cholesky factor (torch's ``cholesky_ex`` test)."""

    event_dim = 2

    def check(self, value: Any) -> Any:
        sym = jnp.all(jnp.isclose(value, jnp.swapaxes(value, -1, -2), atol=1e-6), (-2, -1))
        chol = jnp.linalg.cholesky(value)
        return sym & jnp.all(jnp.isfinite(chol), (-2, -1))


class _LowerCholesky(Constraint):
    """Lower-triangular matrices with a positive diagonal."""

    event_dim = 2

    def check(self, value: Any) -> Any:
        lower = jnp.all(jnp.tril(value) == value, (-2, -1))
        return lower & jnp.all(jnp.diagonal(value, axis1=-2, axis2=-1) > 0, -1)


class _Multinomial(Constraint):
    """Nonnegative integer count vectors summing to at most ``upper_bound``."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound: Any) -> None:
        self.upper_bound = upper_bound

    def check(self, value: Any) -> Any:
        return jnp.all(value >= 0, -1) & (value.sum(-1) <= self.upper_bound)


dependent = _Dependent()
boolean = _Boolean()
one_hot = _OneHot()
real = _Real()
real_vector = _IndependentConstraint(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
unit_interval = _Interval(0.0, 1.0)
simplex = _Simplex()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_greater_than = _IntegerGreaterThan
positive_definite = _PositiveDefinite()
lower_cholesky = _LowerCholesky()
multinomial = _Multinomial
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
interval = _Interval
half_open_interval = _HalfOpenInterval
integer_interval = _IntegerInterval
independent = _IndependentConstraint
