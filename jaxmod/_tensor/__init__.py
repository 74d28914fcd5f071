"""torch's tensor API on JAX: the :class:`Tensor` class, its methods, and the ``torch.*``
function namespace that ``jaxmod`` re-exports (``jaxmod.cat``, ``jaxmod.zeros``, ...).

For the rest of jaxmod: :func:`tensor_op` (apply the type rule to a function of arrays),
:func:`unwrap` / :func:`unwrap_tree`, :func:`wrap_like`, and :class:`TensorMethods` (the
method mixin, for box classes that provide ``_jx`` and ``_rebind``).
"""

from __future__ import annotations

from jaxmod._tensor import dtypes as _dtypes
from jaxmod._tensor import factories as _factories
from jaxmod._tensor import functions as _functions
from jaxmod._tensor import misc as _misc
from jaxmod._tensor import random_ops as _random_ops
from jaxmod._tensor import sparse_coo as _sparse_coo  # noqa: F401  (installs sparse COO)
from jaxmod._tensor import tape as _tape  # noqa: F401  (installs the autograd tape)
from jaxmod._tensor.base import is_tensor as _is_tensor_input
from jaxmod._tensor.base import tensor_op, unwrap, unwrap_tree, wrap, wrap_like
from jaxmod._tensor.dtypes import module_getattr
from jaxmod._tensor.tensor import LEGACY as _LEGACY
from jaxmod._tensor.tensor import Tensor, TensorMethods

_NAMESPACE: dict = {}
_NAMESPACE.update(_functions.build())
_NAMESPACE.update(_factories.FACTORIES)
_NAMESPACE.update(_random_ops.RANDOM)
_NAMESPACE.update({n: getattr(_dtypes, n) for n in _dtypes.__all__})
_NAMESPACE.update({n: getattr(_misc, n) for n in _misc.__all__})
_NAMESPACE["Tensor"] = Tensor
_NAMESPACE.update(_LEGACY)
globals().update(_NAMESPACE)

#: Every public name ``jaxmod`` takes from here (the torch namespace).
NAMES = sorted(_NAMESPACE)

#: torch's top-level aliases of ``torch.nn.functional`` functions with the same signature
#: (``torch.conv2d``, ``torch.dropout``, ...); ``jaxmod`` binds them from
#: ``jaxmod.nn.functional`` once that is imported.
F_ALIASES = (
    "adaptive_avg_pool1d", "alpha_dropout", "avg_pool1d", "bilinear", "celu",
    "channel_shuffle", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "cosine_similarity", "dropout", "feature_alpha_dropout", "group_norm",
    "hardshrink", "layer_norm", "max_pool1d", "max_pool2d", "max_pool3d", "pairwise_distance",
    "pdist", "pixel_shuffle", "pixel_unshuffle", "prelu", "rms_norm", "rrelu", "selu",
    "threshold",
)  # fmt: skip

__all__ = NAMES + [
    "TensorMethods", "tensor_op", "unwrap", "unwrap_tree", "wrap", "wrap_like",
    "module_getattr",
]  # fmt: skip
del _is_tensor_input
