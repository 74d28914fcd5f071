"""The autocast state the ops read, and torch's per-device op policy (private).

Every op that autocast changes reads one attribute, ``S.policy``: ``None`` (autocast off,
nothing else happens) or the active :class:`Policy`. The ops come in torch's two kinds:

* *lower precision* ops (matmul, linear, conv, bmm, baddbmm, einsum, prelu, attention,
  RNN cells) cast their floating inputs to the autocast dtype with :meth:`Policy.low`;
* *float32* ops cast half-precision inputs to float32 with :meth:`Policy.fp32` when the op
  is on the device type's float32 list (:data:`FP32_OPS`): on CPU torch keeps losses and a
  few others in float32, on CUDA also softmax, the norms, ``sum``/``prod``/``cumsum``, ...

This module imports nothing from jaxmod, so every layer can import it.
"""

from __future__ import annotations

import threading
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = ["S", "Policy", "FP32_OPS", "LOW_OPS", "cast"]

# torch 2.13's "ops that can autocast to the lower precision type" (the same list for cpu
# and cuda since torch 2.4: aten/src/ATen/autocast_mode.h), as jaxmod names them.
LOW_OPS = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "prelu", "addmm", "addmv", "addr", "matmul", "einsum", "mm", "mv", "linear", "addbmm",
    "baddbmm", "bmm", "chain_matmul", "multi_dot", "lstm_cell", "gru_cell", "rnn_tanh_cell",
    "rnn_relu_cell", "scaled_dot_product_attention", "multi_head_attention",
})  # fmt: skip

_LOSSES = {
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss",
    "cross_entropy", "ctc_loss", "gaussian_nll_loss", "hinge_embedding_loss", "huber_loss",
    "kl_div", "l1_loss", "margin_ranking_loss", "mse_loss", "multi_margin_loss",
    "multilabel_margin_loss", "multilabel_soft_margin_loss", "nll_loss", "poisson_nll_loss",
    "smooth_l1_loss", "soft_margin_loss", "triplet_margin_loss",
}  # fmt: skip

# Ops that autocast runs in float32, per device type (torch 2.13's lists, restricted to the
# ops jaxmod hooks; measured against torch on CPU, from torch's autocast docs for CUDA).
FP32_OPS = {
    "cpu": frozenset(_LOSSES | {"prod", "avg_pool3d", "max_pool3d", "adaptive_avg_pool3d",
                                "max_unpool2d", "max_unpool3d", "cdist", "grid_sample"}),
    "cuda": frozenset(_LOSSES | {
        "softmax", "log_softmax", "softmin", "softplus", "layer_norm", "group_norm",
        "normalize", "cosine_similarity", "pdist", "cdist", "sum", "prod", "cumsum",
        "cumprod", "exp", "expm1", "log", "log10", "log1p", "log2", "pow", "reciprocal",
        "rsqrt", "norm", "acos", "asin", "cosh", "sinh", "tan", "erfinv", "dist", "renorm",
    }),
}  # fmt: skip

_ELIGIBLE = frozenset({np.dtype(jnp.float32), np.dtype(jnp.float16), np.dtype(jnp.bfloat16)})


def cast(x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype`` if it is an eligible floating array (float32/16, bfloat16; never
    float64, integers or ``None``: torch's eligibility rule), else ``x`` unchanged."""
    dt = getattr(x, "dtype", None)
    if dt is None or dt == dtype or dt not in _ELIGIBLE:
        return x
    return x.astype(dtype)


class Policy:
    """An active autocast region: its device type's op lists and its low dtype.

    Hashable and compared by value: it is part of the key of compiled programs.
    """

    __slots__ = ("device_type", "dtype", "fp32_ops", "_key")

    def __init__(self, device_type: str, dtype: Any) -> None:
        self.device_type = device_type
        self.dtype = np.dtype(dtype)
        self.fp32_ops = FP32_OPS["cuda" if device_type == "cuda" else "cpu"]
        self._key = (device_type, self.dtype.name)

    def low(self, *xs: Any) -> tuple[Any, ...]:
        """The arguments of a lower-precision op, cast to the autocast dtype."""
        d = self.dtype
        return tuple(cast(x, d) for x in xs)

    def fp32(self, op: str, *xs: Any) -> tuple[Any, ...]:
        """The arguments of ``op``, cast to float32 when ``op`` is on the float32 list."""
        if op not in self.fp32_ops:
            return xs
        return tuple(cast(x, jnp.float32) for x in xs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"autocast({self.device_type!r}, {self.dtype.name})"


class _State(threading.local):
    """Per-thread autocast state (class attributes: each thread's starting values)."""

    policy: Policy | None = None  # what the ops read
    enabled: tuple = ()  # device types whose autocast is enabled, for is_autocast_enabled
    dtypes: tuple = ()  # (device_type, dtype) set by entered regions, innermost last


S = _State()

# Whether autocast was ever enabled in this process. Until it is, compiled jaxmod.jit plans
# carry no autocast guard at all; the first enabled region bumps the structure version so
# that every plan is re-made with one (see jaxmod/transforms/jit.py).
used = [False]


def guard(policy: Policy | None) -> Any:
    """A jaxmod.jit plan guard: the call's autocast state is the one it was compiled for."""

    def same(args: Any, s: _State = S, p: Any = policy) -> bool:
        return s.policy == p

    return same
