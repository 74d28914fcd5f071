"""Normalisation layers with torch's names, arguments, state and ``repr``.

``BatchNorm1d/2d/3d``, ``InstanceNorm1d/2d/3d``, ``LayerNorm``, ``GroupNorm``,
``LocalResponseNorm`` and ``RMSNorm``. The arithmetic is :mod:`jaxmod.nn.functional`'s;
these classes add the parameters and the running statistics.

Running statistics are buffers. JAX arrays are immutable, so a training-mode forward
*assigns* the new statistics (``self.running_mean = new``), which updates the buffer's box
in place: eagerly the module simply holds the new arrays, and under :func:`jaxmod.jit`
(or :func:`jaxmod.grad`) the new values are written back after the call, as torch's
in-place updates would be.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod.nn import _typerule, init
from jaxmod.nn import functional as F
from jaxmod.nn.functional._eager import eager_kernel
from jaxmod.nn.lazy import LazyModuleMixin
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import (
    Buffer,
    Parameter,
    UninitializedBuffer,
    UninitializedParameter,
    _materialize,
    _unwrap,
)

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LayerNorm",
    "GroupNorm",
    "LocalResponseNorm",
    "RMSNorm",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
]


def _float_dtype(dtype: Any) -> Any:
    return jnp.float32 if dtype is None else dtype


def _ndim(x: Any) -> int:
    return len(jnp.shape(x))


def _stats(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Mean and unbiased variance over ``axes`` (computed in at least float32)."""
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    n = math.prod(x.shape[a] for a in axes)
    mean = jnp.mean(x, axis=axes)
    var = jnp.var(x, axis=axes)
    unbiased = var * (n / (n - 1)) if n > 1 else jnp.full_like(var, jnp.nan)
    return jax.lax.stop_gradient(mean), jax.lax.stop_gradient(unbiased)


def _moving(running: jax.Array, stat: jax.Array, factor: Any) -> jax.Array:
    """A running statistic after one batch: ``(1 - factor) * running + factor * stat``."""
    return ((1 - factor) * running + factor * stat).astype(running.dtype)


class _NormBase(Module):
    """Parameters (``weight``, ``bias``) and running statistics shared by batch/instance norm.

    Buffers, when ``track_running_stats`` is true: ``running_mean`` (zeros),
    ``running_var`` (ones) and ``num_batches_tracked``. torch stores the last as int64;
    JAX has 64-bit types off by default, so here it is **int32** (torch checkpoints are
    converted on ``load_state_dict``).
    """

    _version = 2

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
        affine: bool = True, track_running_stats: bool = True, device: Any = None,
        dtype: Any = None, *, bias: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = _float_dtype(dtype)
        if affine:
            self.weight = Parameter(init._filled(num_features, 1, dtype))
            if bias:
                self.bias = Parameter(init._filled(num_features, 0, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", init._filled(num_features, 0, dtype))
            self.register_buffer("running_var", init._filled(num_features, 1, dtype))
            self.register_buffer("num_batches_tracked", init._filled((), 0, jnp.int32))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, batch count 0."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        """Reset the running statistics; weight to ones and bias to zeros."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input: Any) -> None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )

    def _update_running(self, mean: jax.Array, unbiased_var: jax.Array, factor: Any) -> None:
        rm, rv = _unwrap(self.running_mean), _unwrap(self.running_var)
        self.running_mean = _moving(rm, mean, factor)
        self.running_var = _moving(rv, unbiased_var, factor)

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, local_metadata: dict, strict: bool,
        missing_keys: list, unexpected_keys: list, error_msgs: list,
    ) -> None:  # fmt: skip
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats:
            # checkpoints from before num_batches_tracked existed: keep the current count
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                # torch inserts the buffer itself: loading it is a no-op (so a BatchNorm
                # shared under two names keeps what the other name loaded)
                nbt = self.num_batches_tracked
                state_dict[key] = nbt if nbt is not None else jnp.zeros((), jnp.int32)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
            error_msgs,
        )  # fmt: skip


class _BatchNorm(_NormBase):
    """Batch normalisation over the channel dim 1 of ``(N, C, *)``."""

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        self._check_input_dim(x)
        factor: Any = 0.0 if self.momentum is None else self.momentum
        update = self.training and self.track_running_stats
        if update and self.num_batches_tracked is not None:
            nbt = _unwrap(self.num_batches_tracked) + 1
            self.num_batches_tracked = nbt
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / nbt.astype(jnp.float32)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_buffers = not self.training or self.track_running_stats
        running_mean = self.running_mean if use_buffers else None
        running_var = self.running_var if use_buffers else None
        channels = x.shape[1]
        if running_mean is not None and running_mean.shape[0] != channels:
            raise RuntimeError(
                f"running_mean should contain {channels} elements not {running_mean.shape[0]}"
            )
        if self.weight is not None and self.weight.shape[0] != channels:
            raise RuntimeError(
                f"weight should contain {channels} elements not {self.weight.shape[0]}"
            )
        momentum = 0.0 if self.momentum is None else self.momentum
        if bn_training and running_mean is not None and running_var is not None:
            out, self.running_mean, self.running_var = _batch_norm_train(
                x, _unwrap(running_mean), _unwrap(running_var), self.weight, self.bias,
                factor, momentum, self.eps,
            )  # fmt: skip
            return out
        return F.batch_norm(
            x, running_mean, running_var, self.weight, self.bias, bn_training, momentum, self.eps
        )


@eager_kernel
def _batch_norm_train(
    x: jax.Array, rm: jax.Array, rv: jax.Array, weight: Any, bias: Any, factor: Any,
    momentum: float, eps: float,
) -> tuple[jax.Array, jax.Array, jax.Array]:  # fmt: skip
    """A training-mode BatchNorm step: the output and the updated running statistics, as
    one eager kernel (one compiled program per configuration instead of one per op)."""
    out = F.batch_norm(x, rm, rv, weight, bias, True, momentum, eps)
    mean, unbiased = _stats(x, (0,) + tuple(range(2, x.ndim)))
    return out, _moving(rm, mean, factor), _moving(rv, unbiased, factor)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs.

    Args:
        num_features: ``C``.
        eps: added to the variance for numerical stability.
        momentum: weight of the newest batch in the running statistics; ``None`` for a
            cumulative moving average (``1 / num_batches_tracked``).
        affine: learn ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean``/``running_var``/``num_batches_tracked``
            buffers and use them in eval mode; otherwise batch statistics are always used.
        device: where to place parameters and buffers.
        dtype: parameter and running-statistics dtype (default float32).
        bias: with ``affine``, whether to learn ``bias`` (keyword only, as in torch).

    In training the batch statistics normalise the input and the running statistics are
    updated with the unbiased batch variance, as in torch. ``num_batches_tracked`` is
    int32 (torch: int64), since JAX's 64-bit types are off by default.
    """

    def _check_input_dim(self, input: Any) -> None:
        if _ndim(input) not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {_ndim(input)}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` inputs; arguments as :class:`BatchNorm1d`."""

    def _check_input_dim(self, input: Any) -> None:
        if _ndim(input) != 4:
            raise ValueError(f"expected 4D input (got {_ndim(input)}D input)")


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of ``(N, C, D, H, W)`` inputs; arguments as :class:`BatchNorm1d`."""

    def _check_input_dim(self, input: Any) -> None:
        if _ndim(input) != 5:
            raise ValueError(f"expected 5D input (got {_ndim(input)}D input)")


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over the whole batch when it is split across devices.

    Arguments as :class:`BatchNorm1d`, plus torch's ``process_group`` (accepted; there are
    no process groups here). Under ``jax.sharding`` a batch split over devices is still
    one logical array, so the batch statistics of every :class:`BatchNorm1d` / ``2d`` /
    ``3d`` already span all devices: this layer computes exactly what they do, on inputs
    of any rank >= 2.
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
        affine: bool = True, track_running_stats: bool = True, process_group: Any = None,
        device: Any = None, dtype: Any = None,
    ) -> None:  # fmt: skip
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input: Any) -> None:
        if _ndim(input) < 2:
            raise ValueError(f"expected at least 2D input (got {_ndim(input)}D input)")

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """``module`` with every ``BatchNorm*d`` in it replaced by a :class:`SyncBatchNorm`
        that shares its parameters and buffers (the module itself if it is one)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(
                module.num_features, module.eps, module.momentum, module.affine,
                module.track_running_stats, process_group,
            )  # fmt: skip
            for name in ("weight", "bias"):
                if module.affine:
                    setattr(out, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                out.register_buffer(name, module._buffers.get(name))
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out


class _InstanceNorm(_NormBase):
    """Instance normalisation: statistics per sample and channel."""

    _no_batch_dim: int = 2

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
        affine: bool = False, track_running_stats: bool = False, device: Any = None,
        dtype: Any = None, *, bias: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )

    def _check_input_dim(self, input: Any) -> None:
        d = self._no_batch_dim
        if _ndim(input) not in (d, d + 1):
            raise ValueError(f"expected {d}D or {d + 1}D input (got {_ndim(input)}D input)")

    def _apply_instance_norm(self, x: jax.Array) -> jax.Array:
        use_input_stats = self.training or not self.track_running_stats
        momentum = self.momentum if self.momentum is not None else 0.0
        out = F.instance_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            use_input_stats, momentum, self.eps,
        )  # fmt: skip
        if use_input_stats and self.running_mean is not None and self.running_var is not None:
            # torch averages the per-instance statistics over the batch; it does not
            # count batches for instance norm.
            mean, unbiased = _stats(x, tuple(range(2, x.ndim)))
            self._update_running(jnp.mean(mean, 0), jnp.mean(unbiased, 0), momentum)
        return out

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        self._check_input_dim(x)
        feature_dim = x.ndim - self._no_batch_dim
        if x.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"expected input's size at dim={feature_dim} to match num_features"
                    f" ({self.num_features}), but got: {x.shape[feature_dim]}."
                )
            warnings.warn(
                f"input's size at dim={feature_dim} does not match num_features. "
                "You can silence this warning by not passing in num_features, "
                "which is not used because affine=False",
                stacklevel=2,
            )
        if x.ndim == self._no_batch_dim:
            return self._apply_instance_norm(x[None])[0]
        return self._apply_instance_norm(x)

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, local_metadata: dict, strict: bool,
        missing_keys: list, unexpected_keys: list, error_msgs: list,
    ) -> None:  # fmt: skip
        version = local_metadata.get("version", None)
        if version is None and not self.track_running_stats:
            keys = [prefix + n for n in ("running_mean", "running_var") if prefix + n in state_dict]
            if keys:
                klass = type(self).__name__
                error_msgs.append(
                    "Unexpected running stats buffer(s) {names} for {klass} "
                    "with track_running_stats=False. If state_dict is a "
                    "checkpoint saved before 0.4.0, this may be expected "
                    "because {klass} does not track running stats by default "
                    "since 0.4.0. Please remove these keys from state_dict. If "
                    "the running stats are actually needed, instead set "
                    "track_running_stats=True in {klass} to enable them. See "
                    "the documentation of {klass} for details.".format(
                        names=" and ".join(f'"{k}"' for k in keys), klass=klass
                    )
                )
                for key in keys:
                    state_dict.pop(key)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
            error_msgs,
        )  # fmt: skip


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of ``(N, C, L)`` or unbatched ``(C, L)`` inputs.

    Args are :class:`BatchNorm1d`'s, with ``affine=False`` and
    ``track_running_stats=False`` by default. With ``track_running_stats`` the running
    statistics (the batch average of the per-instance statistics) are updated in
    training and used in eval mode; ``num_batches_tracked`` (int32) is never advanced,
    as in torch.
    """

    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of ``(N, C, H, W)`` or ``(C, H, W)``; see :class:`InstanceNorm1d`."""

    _no_batch_dim = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of ``(N, C, D, H, W)`` or ``(C, D, H, W)``."""

    _no_batch_dim = 4


class _LazyNormBase(LazyModuleMixin):
    """``num_features`` from dim 1 of the first input (torch's rule for every lazy norm,
    instance norms' unbatched inputs included); weight/bias are
    :class:`UninitializedParameter` and running_mean/var :class:`UninitializedBuffer`
    until then; ``num_batches_tracked`` exists from the start. Defaults are
    ``affine=True, track_running_stats=True`` for the lazy instance norms too, as torch."""

    def __init__(
        self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
        track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
        bias: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(0, eps, momentum, False, False, bias=False)  # type: ignore[call-arg]
        self._lazy_setup(device, dtype)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter()
            if bias:
                self.bias = UninitializedParameter()
        if track_running_stats:
            self.running_mean = UninitializedBuffer()
            self.running_var = UninitializedBuffer()
            self.num_batches_tracked = Buffer(init._filled((), 0, jnp.int32))

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Any) -> None:
        if not self.has_uninitialized_params():
            return
        x = _unwrap(input)
        if _ndim(x) < 2:
            self._check_input_dim(x)
            raise ValueError(f"expected an input with a dim 1 (got {_ndim(x)}D input)")
        self.num_features = int(x.shape[1])
        c, dtype = (self.num_features,), self._lazy_dtype
        if self.affine:
            _materialize(self.weight, c, dtype)
            if self.bias is not None:
                _materialize(self.bias, c, dtype)
        if self.track_running_stats:
            _materialize(self.running_mean, c, dtype)
            _materialize(self.running_var, c, dtype)
        self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    """A :class:`BatchNorm1d` whose ``num_features`` is inferred from the first input's dim 1.

    Arguments as :class:`BatchNorm1d` without ``num_features``; the first (eager) call
    materialises the parameters (ones/zeros) and running statistics and turns the module
    into a :class:`BatchNorm1d`.
    """

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    """A :class:`BatchNorm2d` whose ``num_features`` is inferred from the first input's dim 1.

    Arguments as :class:`BatchNorm2d` without ``num_features``; the first (eager) call
    materialises the parameters (ones/zeros) and running statistics and turns the module
    into a :class:`BatchNorm2d`.
    """

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    """A :class:`BatchNorm3d` whose ``num_features`` is inferred from the first input's dim 1.

    Arguments as :class:`BatchNorm3d` without ``num_features``; the first (eager) call
    materialises the parameters (ones/zeros) and running statistics and turns the module
    into a :class:`BatchNorm3d`.
    """

    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyNormBase, InstanceNorm1d):
    """A :class:`InstanceNorm1d` whose ``num_features`` is inferred from the first input's dim 1.

    Arguments as :class:`InstanceNorm1d` without ``num_features``; the first (eager) call
    materialises the parameters (ones/zeros) and running statistics and turns the module
    into a :class:`InstanceNorm1d`.
    """

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyNormBase, InstanceNorm2d):
    """A :class:`InstanceNorm2d` whose ``num_features`` is inferred from the first input's dim 1.

    Arguments as :class:`InstanceNorm2d` without ``num_features``; the first (eager) call
    materialises the parameters (ones/zeros) and running statistics and turns the module
    into a :class:`InstanceNorm2d`.
    """

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyNormBase, InstanceNorm3d):
    """A :class:`InstanceNorm3d` whose ``num_features`` is inferred from the first input's dim 1.

    Arguments as :class:`InstanceNorm3d` without ``num_features``; the first (eager) call
    materialises the parameters (ones/zeros) and running statistics and turns the module
    into a :class:`InstanceNorm3d`.
    """

    cls_to_become = InstanceNorm3d


def _shape_tuple(normalized_shape: Any) -> tuple[int, ...]:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(normalized_shape)


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims.

    Args:
        normalized_shape: int or shape of the trailing dims.
        eps: added to the variance.
        elementwise_affine: learn ``weight`` (ones) and ``bias`` (zeros) of that shape.
        bias: with ``elementwise_affine``, whether to learn ``bias``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).
    """

    def __init__(
        self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True,
        bias: bool = True, device: Any = None, dtype: Any = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = _float_dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(init._filled(self.normalized_shape, 1, dtype))
            if bias:
                self.bias = Parameter(init._filled(self.normalized_shape, 0, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Weight to ones, bias to zeros."""
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Any) -> jax.Array:
        return F.layer_norm(_unwrap(input), self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Group normalisation of ``(N, C, *)``: statistics per sample and channel group.

    Args:
        num_groups: number of groups; must divide ``num_channels``.
        num_channels: ``C``.
        eps: added to the variance.
        affine: learn per-channel ``weight`` (ones) and ``bias`` (zeros).
        device: where to place the parameters.
        dtype: parameter dtype (default float32).
        bias: with ``affine``, whether to learn ``bias`` (keyword only).
    """

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
        device: Any = None, dtype: Any = None, *, bias: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        dtype = _float_dtype(dtype)
        if affine:
            self.weight = Parameter(init._filled(num_channels, 1, dtype))
            if bias:
                self.bias = Parameter(init._filled(num_channels, 0, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Weight to ones, bias to zeros."""
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        if self.weight is not None and (x.ndim < 2 or x.shape[1] != self.num_channels):
            raise RuntimeError(
                "Expected weight to be a vector of size equal to the number of channels in "
                f"input, but got weight of shape [{self.num_channels}] and input of shape "
                f"{list(x.shape)}"
            )
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class LocalResponseNorm(Module):
    """Local response normalisation across channels of ``(N, C, *)`` inputs.

    ``b_c = a_c / (k + alpha / size * sum_{c' near c} a_{c'}^2) ** beta``.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Any) -> jax.Array:
        return F.local_response_norm(_unwrap(input), self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims.

    Args:
        normalized_shape: int or shape of the trailing dims.
        eps: added to the mean square; ``None`` uses the input dtype's machine epsilon.
        elementwise_affine: learn a ``weight`` (ones) of that shape.
        device: where to place the parameter.
        dtype: parameter dtype (default float32).
    """

    def __init__(
        self, normalized_shape: Any, eps: float | None = None, elementwise_affine: bool = True,
        device: Any = None, dtype: Any = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(init._filled(self.normalized_shape, 1, _float_dtype(dtype)))
        else:
            self.register_parameter("weight", None)
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Weight to ones."""
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, input: Any) -> jax.Array:
        return F.rms_norm(_unwrap(input), self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


_typerule.tensor_forwards(globals())
