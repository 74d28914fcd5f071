"""The :class:`Distribution` base class: shapes, argument validation, repr, the type rule.

Parameters are kept as JAX arrays (``self._params``); the public properties (``probs``,
``loc``, ``mean``, ...) and every method result follow jaxmod's type rule: a
:class:`jaxmod.Tensor` unless the distribution was built from plain ``jax.Array``s only
(Python numbers, Tensors and Parameters give Tensors, as torch gives tensors). Sampling
draws keys from jaxmod's generator (``jaxmod.manual_seed``; a ``jaxmod.jit`` lifts it
as state), so it works eagerly and compiled.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod import random as _random
from jaxmod._core.cells import Variable as _Box
from jaxmod._tensor import base as _b
from jaxmod._tensor import dtypes as _dt
from jaxmod._tensor import tape as _tape
from jaxmod.distributions import constraints
from jaxmod.distributions.constraints import fmt

__all__ = ["Distribution"]

_Tracer = jax.core.Tracer


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray)) and not _b.is_tensor(x)


def wants_tensor(*values: Any) -> bool:
    """The type rule for distribution arguments: plain arrays only give arrays."""
    return not any(_is_array(v) for v in values) or any(
        _b.is_tensor(v) or isinstance(v, (_Box, _b.TensorBase)) for v in values
    )


def as_array(x: Any, dtype: Any = None) -> Any:
    """A parameter as a JAX array; numbers take ``dtype`` (default: the default float)."""
    if isinstance(x, numbers.Number) and not isinstance(x, bool):
        return jnp.asarray(x, dtype or _dt.default_np())
    a = _b.unwrap(x)
    if not isinstance(a, (jax.Array, np.ndarray, _Tracer)):
        raise ValueError(
            "Input arguments must all be instances of Number, torch.Tensor or objects "
            "implementing __torch_function__."
        )
    return jnp.asarray(a)


def broadcast_all(*values: Any) -> list[Any]:
    """torch's ``broadcast_all``: numbers take the dtype of the first tensor argument."""
    dtype = next((as_array(v).dtype for v in values if not isinstance(v, numbers.Number)), None)
    arrays = [as_array(v, dtype) for v in values]
    return list(jnp.broadcast_arrays(*arrays))


def sum_rightmost(value: Any, dim: int) -> Any:
    """Sum the ``dim`` rightmost dimensions of an array."""
    return value if dim == 0 else value.reshape(value.shape[: value.ndim - dim] + (-1,)).sum(-1)


def sample_size(sample_shape: Any) -> tuple[int, ...]:
    """``sample_shape`` (a ``Size``, tuple or list) as a tuple of ints."""
    return tuple(int(s) for s in sample_shape)


def concrete(x: Any) -> bool:
    """Whether ``x`` has a value now (validation is skipped for traced values)."""
    return not isinstance(x, _Tracer)


def check_param(param: str, value: Any, constraint: Any, owner: str) -> None:
    """Raise torch's ValueError when a concrete ``value`` breaks ``constraint``."""
    if not concrete(value):
        return
    if not bool(np.all(np.asarray(constraint.check(value)))):
        raise ValueError(
            f"Expected parameter {param} (Tensor of shape {tuple(value.shape)}) "
            f"of distribution {owner} to satisfy the constraint {constraint!r}, "
            f"but found invalid values:\n{fmt(value)}"
        )


def _is_part(v: Any) -> bool:
    """A transform, or a list of them (``TransformedDistribution.transforms``)."""
    if getattr(type(v), "_tree_part", False):
        return True
    return type(v) in (list, tuple) and bool(v) and all(_is_part(t) for t in v)


def _flatten(d: Distribution) -> tuple[Any, Any]:
    """A distribution as a pytree: its parameter arrays, inner distributions and
    transforms are the children, everything else (shapes, flags) the static part. The
    inner distributions come before the transforms, as :func:`_link` counts them."""
    inner = {k: v for k, v in vars(d).items() if isinstance(v, Distribution)}
    parts = {k: v for k, v in vars(d).items() if _is_part(v)}
    rest = tuple(sorted((k, v) for k, v in vars(d).items()
                        if k not in ("_params", "_tape_leaves") and k not in inner
                        and k not in parts))  # fmt: skip
    return (getattr(d, "_params", {}), inner, parts), rest


def _unflatten(cls: type, rest: Any, children: Any) -> Distribution:
    """The inverse of :func:`_flatten`. Parameters are kept as arrays: a tree map that
    wraps leaves as Tensors (a module's forward returning a distribution built from
    Tensors) would otherwise give Tensors inside Tensors to ``mean`` / ``stddev``."""
    d = cls.__new__(cls)
    params, inner, parts = children
    vars(d).update(rest)
    vars(d).update(inner)
    vars(d).update(parts)
    d._params = {k: _b.unwrap(v) for k, v in params.items()}
    return d


class Distribution:
    """The base class of probability distributions (``torch.distributions.Distribution``).

    Distributions are pytrees (their parameters are the leaves), so a module's forward
    can return one, and they pass through ``jaxmod.jit`` / ``jax.tree_util``.

    Args:
        batch_shape: the shape over which parameters are batched.
        event_shape: the shape of one sample, without batching.
        validate_args: whether to check parameters and ``log_prob`` values (default: on,
            as in torch; checks need concrete values and are skipped inside a trace).
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__
    arg_constraints: dict[str, constraints.Constraint] = {}
    _params: dict[str, Any]
    _wrap: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, _flatten, functools.partial(_unflatten, cls))
        _on_tape(cls)

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn argument validation on or off for every distribution."""
        if value not in [True, False]:
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape: Any = (), event_shape: Any = (),
                 validate_args: bool | None = None) -> None:  # fmt: skip
        self._batch_shape = _dt.Size(tuple(batch_shape))
        self._event_shape = _dt.Size(tuple(event_shape))
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            self._check_params()

    def _check_params(self) -> None:
        """Validate the given parameters against ``arg_constraints`` (torch's message)."""
        for param, constraint in self.arg_constraints.items():
            if constraints.is_dependent(constraint) or param not in self._given():
                continue
            check_param(param, self._params[param], constraint, repr(self))

    # -- plumbing -------------------------------------------------------------------
    def _given(self) -> list[str]:
        """The parameters the distribution was built from (torch's repr lists these)."""
        return [k for k in self.arg_constraints if k in getattr(self, "_params", {})]

    def _out(self, x: Any) -> Any:
        """An array result, as a Tensor where the type rule asks for one."""
        return _b.new(x) if self._wrap else x

    def _value(self, value: Any) -> Any:
        """A ``log_prob``/``cdf`` argument as an array, validated as torch does."""
        if self._validate_args:
            self._validate_sample(value)
        a = _b.unwrap(value)
        # an array stays the same object (a transform's cache recognises its own sample)
        return a if isinstance(a, jax.Array) else jnp.asarray(a)

    def _key(self) -> Any:
        return _random.next_key(None)

    # -- torch's API ----------------------------------------------------------------
    @property
    def batch_shape(self) -> _dt.Size:
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> _dt.Size:
        """The shape of a single sample (without batching)."""
        return self._event_shape

    @property
    def support(self) -> constraints.Constraint:
        """The constraint the distribution's samples satisfy."""
        raise NotImplementedError

    @property
    def mean(self) -> Any:
        """The mean of the distribution."""
        raise NotImplementedError

    @property
    def mode(self) -> Any:
        """The mode of the distribution."""
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self) -> Any:
        """The variance of the distribution."""
        raise NotImplementedError

    @property
    def stddev(self) -> Any:
        """The standard deviation of the distribution."""
        return self._out(jnp.sqrt(_b.unwrap(self.variance)))

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        """The distribution with its parameters broadcast to ``batch_shape`` (torch's
        ``expand``: each parameter keeps its own trailing, non-batch dimensions)."""
        new_batch = tuple(int(s) for s in batch_shape)
        old = len(self._batch_shape)
        new = type(self).__new__(type(self))
        vars(new).update(vars(self))
        new._params = {k: jnp.broadcast_to(v, new_batch + v.shape[old:])
                       for k, v in self._params.items()}  # fmt: skip
        for k, v in vars(self).items():
            if isinstance(v, Distribution):
                setattr(new, k, v.expand(new_batch + tuple(v.batch_shape)[old:]))
        new._batch_shape = _dt.Size(new_batch)
        return new

    def _sample(self, shape: tuple[int, ...]) -> Any:
        """A sample array of ``shape + batch_shape + event_shape`` (may carry gradients)."""
        raise NotImplementedError

    def rsample(self, sample_shape: Any = ()) -> Any:
        """A reparameterised sample: differentiable in the parameters (``jaxmod.grad``)."""
        if not self.has_rsample:
            raise NotImplementedError
        return self._out(self._sample(sample_size(sample_shape)))

    def sample(self, sample_shape: Any = ()) -> Any:
        """A sample of shape ``sample_shape + batch_shape + event_shape`` (no gradient,
        as torch samples under ``no_grad``)."""
        return self._out(jax.lax.stop_gradient(self._sample(sample_size(sample_shape))))

    def sample_n(self, n: int) -> Any:
        """``sample((n,))`` (deprecated in torch)."""
        return self.sample((n,))

    def log_prob(self, value: Any) -> Any:
        """The log of the probability density / mass at ``value``."""
        raise NotImplementedError

    def cdf(self, value: Any) -> Any:
        """The cumulative distribution function at ``value``."""
        raise NotImplementedError

    def icdf(self, value: Any) -> Any:
        """The inverse cumulative distribution function at ``value``."""
        raise NotImplementedError

    def enumerate_support(self, expand: bool = True) -> Any:
        """Every value of a discrete distribution's support, along dimension 0."""
        raise NotImplementedError

    def entropy(self) -> Any:
        """The entropy, batched over ``batch_shape``."""
        raise NotImplementedError

    def perplexity(self) -> Any:
        """``exp(entropy())``."""
        return self._out(jnp.exp(_b.unwrap(self.entropy())))

    def _extended_shape(self, sample_shape: Any = ()) -> _dt.Size:
        return _dt.Size(sample_size(sample_shape) + tuple(self._batch_shape)
                        + tuple(self._event_shape))  # fmt: skip

    def _validate_sample(self, value: Any) -> None:
        if not (_b.is_tensor(value) or isinstance(value, (jax.Array, _Box, _b.TensorBase))):
            raise ValueError("The value argument to log_prob must be a Tensor")
        shape = tuple(_b.unwrap(value).shape)
        event = tuple(self._event_shape)
        start = len(shape) - len(event)
        if shape[start:] != event:
            raise ValueError(
                f"The right-most size of value must match event_shape: {_dt.Size(shape)} vs "
                f"{self._event_shape}."
            )
        expected = tuple(self._batch_shape) + event
        for i, j in zip(reversed(shape), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(
                    "Value is not broadcastable with batch_shape+event_shape: "
                    f"{_dt.Size(shape)} vs {_dt.Size(expected)}."
                )
        a = _b.unwrap(value)
        if not concrete(a):
            return
        if not bool(np.all(np.asarray(self.support.check(jnp.asarray(a))))):
            raise ValueError(
                f"Expected value argument (Tensor of shape {shape}) to be within the support "
                f"({self.support!r}) of the distribution {self!r}, but found invalid "
                f"values:\n{fmt(a)}"
            )

    _repr_params = True  # False where torch's repr is ``Name()`` (parameters held inside)

    def __repr__(self) -> str:
        if not self._repr_params:
            return f"{type(self).__name__}()"
        parts = []
        for p in self._given():
            v = self._params[p]
            parts.append(f"{p}: {fmt(v) if v.size == 1 else _dt.Size(v.shape)}")
        return f"{type(self).__name__}({', '.join(parts)})"


# ------------------------------------------------------------------- the autograd tape
# A distribution built from tensors that require grad (or returned by a recorded module
# call) knows which tape tensors its arrays are (``_tape_leaves``); its constructor,
# methods and properties are then recorded, so ``dist.log_prob(a).backward()`` reaches
# the parameters, as in torch.
_NOT_RECORDED = {"support", "batch_shape", "event_shape", "arg_constraints", "sample",
                 "sample_n", "enumerate_support", "set_default_validate_args"}  # fmt: skip
_METHODS = {"log_prob", "cdf", "icdf", "entropy", "perplexity", "rsample", "expand",
            "_log_prob_given"}  # fmt: skip
_MARK = "jaxmod.distribution"


def _link(d: Distribution, leaves: list) -> None:
    d._tape_leaves = list(leaves)
    (params, inner, _), _ = _flatten(d)
    off = len(jax.tree_util.tree_leaves(params, is_leaf=_tape._stop))
    for k in sorted(inner):
        n = len(jax.tree_util.tree_leaves(inner[k], is_leaf=_tape._stop))
        _link(inner[k], leaves[off : off + n])
        off += n


def _linked(x: Any) -> bool:
    return isinstance(x, Distribution) and getattr(x, "_tape_leaves", None) is not None


def _ref(x: Any) -> Any:
    """A linked distribution as recordable arguments (its tape tensors are the leaves)."""
    if _linked(x):
        return (_MARK, jax.tree_util.tree_structure(x, is_leaf=_tape._stop), x._tape_leaves)
    return x


def _rebuild(x: Any) -> Any:
    if type(x) is tuple and len(x) == 3 and x[0] == _MARK:
        return jax.tree_util.tree_unflatten(x[1], [_b.unwrap(v) for v in x[2]])
    return x


def _wanted(self: Any, args: tuple, kwargs: dict) -> bool:
    if not _tape.recording():
        return False
    if _linked(self) or _tape.marked(args, kwargs):
        return True
    return any(_linked(a) for a in args) or any(_linked(v) for v in kwargs.values())


def _refs(args: tuple, kwargs: dict) -> tuple[list, dict]:
    return [_ref(a) for a in args], {k: _ref(v) for k, v in kwargs.items()}


def _rebuilt(args: list, kwargs: dict) -> tuple[list, dict]:
    """The inverse of :func:`_refs`."""
    return [_rebuild(a) for a in args], {k: _rebuild(v) for k, v in kwargs.items()}


def _construct(cls: type, args: list, kwargs: dict) -> Any:
    args, kwargs = _rebuilt(args, kwargs)
    return cls(*args, **kwargs)


def _call(ref: Any, name: str, is_property: bool, args: list, kwargs: dict) -> Any:
    attr = getattr(_rebuild(ref), name)
    if is_property:
        return attr
    args, kwargs = _rebuilt(args, kwargs)
    return attr(*args, **kwargs)


def _recorded_init(orig: Any) -> Any:
    @functools.wraps(orig)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if not _wanted(None, args, kwargs):
            return orig(self, *args, **kwargs)
        new = _tape.record(_construct, type(self).__name__, (type(self), *_refs(args, kwargs)), {})
        vars(self).update(vars(new))
        return None

    init.__tape_wrapped__ = True  # type: ignore[attr-defined]
    return init


def _recorded(orig: Any, name: str, is_property: bool) -> Any:
    label = name.strip("_").title().replace("_", "")

    @functools.wraps(orig)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _wanted(self, args, kwargs):
            return orig(self, *args, **kwargs)
        cargs, ckw = _refs(args, kwargs)
        return _tape.record(_call, f"{type(self).__name__}{label}",
                            (_ref(self), name, is_property, cargs, ckw), {})  # fmt: skip

    method.__tape_wrapped__ = True  # type: ignore[attr-defined]
    return method


def _on_tape(cls: type) -> None:
    """Record ``cls``'s constructor, methods and parameter properties on the tape."""
    for name, raw in list(vars(cls).items()):
        if name in _NOT_RECORDED or getattr(raw, "__tape_wrapped__", False):
            continue
        if name == "__init__" and callable(raw):
            setattr(cls, name, _recorded_init(raw))
        elif isinstance(raw, property) and not getattr(raw.fget, "__tape_wrapped__", False):
            setattr(cls, name, property(_recorded(raw.fget, name, True), raw.fset))
        elif name in _METHODS and callable(raw):
            setattr(cls, name, _recorded(raw, name, False))


_on_tape(Distribution)
_tape.register_linkable(Distribution, _link)
