"""``torch.nn.functional`` on ``jax.numpy``, ``jax.lax`` and ``jax.nn``.

The functions live in one private module per family (``_activation``, ``_conv``,
``_pool``, ``_norm``, ``_dropout``, ``_sparse``, ``_attention``, ``_vision``, ``_distance``,
``_linear``, ``_loss``, ``_loss_regression``); this package re-exports them under torch's
flat namespace, which is the public one.

Every function keeps torch's name, signature, defaults and layout conventions (channels
first: ``NCL``/``NCHW``/``NCDHW``; ``dim=`` keywords) and is jit-compatible: shapes and
hyper-parameters are static, values may be traced. Weights and biases may be jaxmod
boxes (:class:`~jaxmod.nn.Parameter`, :class:`~jaxmod.nn.Buffer`); they are unwrapped.

Differences from torch that follow from JAX having immutable arrays:

* ``inplace=True`` (and the ``relu_``-style functions) store the result in the input when
  it is a :class:`jaxmod.Tensor` and return it, as torch does (a view writes through to its
  base); a ``jax.Array`` cannot change, so with one ``inplace=True`` returns a new array
  and the ``_`` functions raise ``TypeError``. ``batch_norm``
  and ``instance_norm`` do not update running statistics (modules do that with
  :func:`_batch_norm_stats`), and ``embedding(max_norm=...)`` renormalises the rows it
  returns but leaves the weight unchanged;
* random functions (dropout, ``rrelu`` in training) draw a key from
  :func:`jaxmod.random.next_key` (the global generator, or ``generator=``), and only when
  they actually randomise;
* integer results (``one_hot``, pooling indices) use JAX's default integer dtype
  (``int32`` unless ``jax_enable_x64`` is on) instead of ``int64``.
"""

from __future__ import annotations

# private, used by the BatchNorm layers (``F._batch_norm_stats``)
from jaxmod.nn.functional._activation import (
    celu,
    elu,
    gelu,
    glu,
    gumbel_softmax,
    hardshrink,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    rrelu,
    selu,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softshrink,
    softsign,
    tanh,
    tanhshrink,
    threshold,
)
from jaxmod.nn.functional._attention import (
    scaled_dot_product_attention,
)
from jaxmod.nn.functional._conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    fold,
    unfold,
)
from jaxmod.nn.functional._distance import (
    cosine_similarity,
    pairwise_distance,
    pdist,
)
from jaxmod.nn.functional._dropout import (
    alpha_dropout,
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
)
from jaxmod.nn.functional._linear import (
    bilinear,
    linear,
)
from jaxmod.nn.functional._loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    ctc_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    nll_loss,
)
from jaxmod.nn.functional._loss_regression import (
    cosine_embedding_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from jaxmod.nn.functional._norm import _batch_norm_stats as _batch_norm_stats
from jaxmod.nn.functional._norm import (
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    local_response_norm,
    normalize,
    rms_norm,
)
from jaxmod.nn.functional._pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool1d_with_indices,
    adaptive_max_pool2d,
    adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d,
    adaptive_max_pool3d_with_indices,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_pool1d,
    max_pool1d_with_indices,
    max_pool2d,
    max_pool2d_with_indices,
    max_pool3d,
    max_pool3d_with_indices,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
)
from jaxmod.nn.functional._sparse import (
    embedding,
    embedding_bag,
    one_hot,
)
from jaxmod.nn.functional._vision import (
    affine_grid,
    channel_shuffle,
    grid_sample,
    interpolate,
    pad,
    pixel_shuffle,
    pixel_unshuffle,
    upsample,
    upsample_bilinear,
    upsample_nearest,
)

# fmt: off
__all__ = [
    # linear
    "linear", "bilinear",
    # convolution
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "unfold", "fold", "pad",
    # pooling
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "lp_pool1d", "lp_pool2d", "lp_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices",
    # normalisation
    "batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm",
    "rms_norm", "normalize",
    # dropout
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout",
    # activations
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu",
    "mish", "sigmoid", "tanh", "softmax", "log_softmax", "softmin", "softplus", "softsign",
    "hardtanh", "hardswish", "hardsigmoid", "hardshrink", "softshrink", "tanhshrink",
    "threshold", "glu", "logsigmoid", "gumbel_softmax",
    # sparse
    "embedding", "embedding_bag", "one_hot",
    # attention
    "scaled_dot_product_attention",
    # vision / distances
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle",
    "affine_grid", "grid_sample",
    "cosine_similarity", "pairwise_distance", "pdist",
    # losses
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cosine_embedding_loss",
    "cross_entropy",
    "ctc_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "margin_ranking_loss",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]
# fmt: on

# torch's type rule for the functional API, as for the layers (``nn/_typerule.py``): called
# with a ``jaxmod.Tensor``, a function computes on its array and returns Tensors (so torch
# code after ``F.relu(x)`` has ``.view``/``.size``/``.max(dim)``); called with arrays it
# returns arrays. The submodules keep the array functions for jaxmod's own layers.
import functools as _functools  # noqa: E402
import inspect as _inspect  # noqa: E402
from typing import Any as _Any  # noqa: E402

from jaxmod._tensor.base import inplace_result as _inplace_result  # noqa: E402
from jaxmod._tensor.base import is_tensor as _is_tensor  # noqa: E402
from jaxmod._tensor.base import tensor_op as _tensor_op  # noqa: E402


def _inplace_rule(fn: _Any) -> _Any:
    """``fn`` (which takes ``inplace``) storing its result in a Tensor input when
    ``inplace=True``: torch code that reads the input again sees the new values."""
    at = list(_inspect.signature(fn).parameters).index("inplace")

    @_functools.wraps(fn)
    def f(*args: _Any, **kwargs: _Any) -> _Any:
        out = fn(*args, **kwargs)
        if args[at] if len(args) > at else kwargs.get("inplace", False):
            return _inplace_result(args[0] if args else kwargs.get("input"), out)
        return out

    f.__wrapped_array_fn__ = fn.__wrapped_array_fn__  # type: ignore[attr-defined]
    return f


def _underscore(fn: _Any) -> _Any:
    """torch's ``F.<name>_(input, ...)``: ``fn(input, ..., inplace=True)`` on a Tensor."""
    name = fn.__name__ + "_"

    def f(input: _Any, *args: _Any, **kwargs: _Any) -> _Any:
        if not _is_tensor(input):
            raise TypeError(
                f"F.{name} changes its input in place, which needs a jaxmod Tensor; got "
                f"{type(input).__name__} (JAX arrays are immutable: use F.{fn.__name__} and "
                "rebind)"
            )
        return fn(input, *args, **kwargs, inplace=True)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"In-place ``{fn.__name__}`` of a Tensor (``torch.nn.functional.{name}``)."
    return f


for _name in __all__:
    _fn = _tensor_op(globals()[_name])  # already-wrapped ones stay as they are
    if "inplace" in _inspect.signature(_fn).parameters:
        _fn = _inplace_rule(_fn)
    globals()[_name] = _fn
for _name in ("celu", "elu", "hardtanh", "leaky_relu", "relu", "rrelu", "selu", "threshold"):
    globals()[_name + "_"] = _underscore(globals()[_name])
    __all__.append(_name + "_")
del _name, _fn
