"""torch's ``grad_fn`` names for recorded operations (``tensor(0.69, grad_fn=<NllLossBackward0>)``).

The tape records a method, a function or a whole module call as one node; torch names a
tensor's ``grad_fn`` after the last ATen operation that made it (``F.cross_entropy`` ->
``NllLossBackward0``, ``x.sum(1)`` -> ``SumBackward1``, ``nn.Linear`` on a matrix ->
``AddmmBackward0``). :func:`torch_name` gives that name from the recorded label, the call's
arguments and its output, so printed tensors read as torch's. Labels with no torch
counterpart (a user's module, a custom ``autograd.Function``) keep ``"<Label>Backward"``,
which is how torch names a custom Function's node too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["torch_name"]


def _camel(label: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in label.split("_") if p)


def _ndim(x: Any) -> int:
    return len(getattr(x, "shape", ()))


def _reduction(args: tuple, kwargs: dict, at: int) -> str:
    r = kwargs.get("reduction", args[at] if len(args) > at else "mean")
    return r if isinstance(r, str) else "mean"


def _by_reduction(mean: str, total: str, none: str, at: int) -> Any:
    return lambda a, k, o: {"mean": mean, "sum": total}.get(_reduction(a, k, at), none)


def _dim_given(a: tuple, k: dict) -> bool:
    return len(a) > 1 or k.get("dim", k.get("axis")) is not None


def _getitem(a: tuple, k: dict, o: Any) -> str:
    idx = a[1] if len(a) > 1 else None
    parts = idx if isinstance(idx, tuple) else (idx,)
    if any(not isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts):
        return "IndexBackward0"  # a tensor, list or bool index
    for p in reversed(parts):
        if p is None:
            return "UnsqueezeBackward0"
        if isinstance(p, int):
            return "SelectBackward0"
        if isinstance(p, slice) and p != slice(None):
            return "SliceBackward0"
    return "AliasBackward0"


def _matmul(a: tuple, k: dict, o: Any) -> str:
    n1, n2 = _ndim(a[0]), _ndim(a[1]) if len(a) > 1 else 2
    if n1 == 2 and n2 == 2:
        return "MmBackward0"
    if n1 == 2 and n2 == 1:
        return "MvBackward0"
    if n1 == 1 and n2 == 1:
        return "DotBackward0"
    return "UnsafeViewBackward0"


def _linear(bias: bool, out: Any) -> str:
    if _ndim(out) != 2:
        return "ViewBackward0"
    return "AddmmBackward0" if bias else "MmBackward0"


def _f_linear(a: tuple, k: dict, o: Any) -> str:
    return _linear(k.get("bias", a[2] if len(a) > 2 else None) is not None, o)


def _cross_entropy(a: tuple, k: dict, o: Any) -> str:
    target = a[1] if len(a) > 1 else k.get("target")
    if target is not None and np.issubdtype(np.dtype(target.dtype), np.floating):
        return "DivBackward1" if _reduction(a, k, 5) == "mean" else "SumBackward1"
    if k.get("label_smoothing", a[6] if len(a) > 6 else 0.0):
        return "AddBackward0"
    return "NllLossBackward0"


def _pow(a: tuple, k: dict, o: Any) -> str:
    return "PowBackward0" if isinstance(a[1] if len(a) > 1 else 2, (int, float)) else "PowBackward1"


def _kl_div(a: tuple, k: dict, o: Any) -> str:
    r = _reduction(a, k, 4)
    return {"mean": "MeanBackward0", "sum": "SumBackward0", "batchmean": "DivBackward0"}.get(
        r, "MulBackward0"
    )


def _adaptive(a: tuple, k: dict, o: Any) -> str:
    size = a[1] if len(a) > 1 else k.get("output_size")
    one = size == 1 or (isinstance(size, (tuple, list)) and all(s == 1 for s in size))
    return "MeanBackward1" if one else "AdaptiveAvgPool2DBackward0"


def _interpolate(a: tuple, k: dict, o: Any) -> str:
    mode = k.get("mode", a[3] if len(a) > 3 else "nearest")
    d = max(_ndim(o) - 2, 1)
    name = {"nearest": "Nearest", "linear": "Linear", "bilinear": "Bilinear",
            "bicubic": "Bicubic", "trilinear": "Trilinear"}.get(mode, "Nearest")  # fmt: skip
    return f"Upsample{name}{d}DBackward0"


_DIM_VARIANT = {"sum": "Sum", "mean": "Mean", "squeeze": "Squeeze"}  # name0 no dim, name1 dim
_NO_DIM_1 = {"max": "Max", "min": "Min", "median": "Median"}  # name1 without dim, name0 with

# functions and methods (labels lower-cased), by torch's name for them
_FIXED = {
    "add": "AddBackward0", "radd": "AddBackward0", "sub": "SubBackward0",
    "rsub": "RsubBackward1", "mul": "MulBackward0", "rmul": "MulBackward0",
    "truediv": "DivBackward0", "div": "DivBackward0", "rtruediv": "MulBackward0",
    "rpow": "PowBackward2", "neg": "NegBackward0", "square": "PowBackward0",
    "reshape": "ViewBackward0", "flatten": "ViewBackward0", "contiguous": "CloneBackward0",
    "narrow": "SliceBackward0", "chunk": "SplitBackward0", "norm": "LinalgVectorNormBackward0",
    "clamp": "ClampBackward1", "clip": "ClampBackward1", "mm": "MmBackward0",
    "bmm": "BmmBackward0", "nll_loss": "NllLossBackward0", "layer_norm": "NativeLayerNormBackward0",
    "batch_norm": "NativeBatchNormBackward0", "conv1d": "ConvolutionBackward0",
    "conv2d": "ConvolutionBackward0", "conv3d": "ConvolutionBackward0",
    "conv_transpose1d": "ConvolutionBackward0", "conv_transpose2d": "ConvolutionBackward0",
    "conv_transpose3d": "ConvolutionBackward0", "max_pool2d": "MaxPool2DWithIndicesBackward0",
    "max_pool3d": "MaxPool3DWithIndicesBackward0", "avg_pool2d": "AvgPool2DBackward0",
    "avg_pool3d": "AvgPool3DBackward0", "pad": "ConstantPadNdBackward0",
    "logsigmoid": "LogSigmoidBackward0", "normalize": "DivBackward0",
    "cosine_similarity": "SumBackward1", "einsum": "ViewBackward0",
    "scaled_dot_product_attention": "UnsafeViewBackward0", "dropout": "MulBackward0",
    "relu6": "HardtanhBackward0", "mse_loss": "MseLossBackward0",
    "amax": "AmaxBackward0", "amin": "AminBackward0", "prelu": "PreluKernelBackward0",
    "group_norm": "NativeGroupNormBackward0",
}  # fmt: skip
_COMPUTED = {
    "getitem": _getitem, "matmul": _matmul, "linear": _f_linear, "pow": _pow,
    "cross_entropy": _cross_entropy, "kl_div": _kl_div, "adaptive_avg_pool2d": _adaptive,
    "interpolate": _interpolate, "l1_loss": _by_reduction("MeanBackward0", "SumBackward0",
                                                          "AbsBackward0", 4),
}  # fmt: skip

# module classes (a recorded module call) -> the functional op their forward ends with
_MODULE_OPS = {
    "ReLU": "relu", "ReLU6": "relu6", "GELU": "gelu", "SiLU": "silu", "Tanh": "tanh",
    "Sigmoid": "sigmoid", "Softmax": "softmax", "LogSoftmax": "log_softmax", "ELU": "elu",
    "LeakyReLU": "leaky_relu", "Hardtanh": "hardtanh", "Softplus": "softplus", "Mish": "mish",
    "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid", "PReLU": "prelu",
    "Conv1d": "conv1d", "Conv2d": "conv2d", "Conv3d": "conv3d",
    "ConvTranspose1d": "conv_transpose1d", "ConvTranspose2d": "conv_transpose2d",
    "ConvTranspose3d": "conv_transpose3d", "BatchNorm1d": "batch_norm",
    "BatchNorm2d": "batch_norm", "BatchNorm3d": "batch_norm", "LayerNorm": "layer_norm",
    "GroupNorm": "group_norm", "Embedding": "embedding", "CrossEntropyLoss": "cross_entropy",
    "NLLLoss": "nll_loss", "MSELoss": "mse_loss", "L1Loss": "l1_loss",
    "BCELoss": "binary_cross_entropy", "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    "SmoothL1Loss": "smooth_l1_loss", "HuberLoss": "huber_loss", "Flatten": "flatten",
    "MaxPool2d": "max_pool2d", "AvgPool2d": "avg_pool2d", "Dropout": "dropout",
}  # fmt: skip
_MODULE_OPTIONS = ("reduction", "label_smoothing")  # module attributes the op's name reads


def _module_name(module: Any, args: tuple, out: Any) -> str | None:
    name = type(module).__name__
    if name == "Linear":
        return _linear(getattr(module, "bias", None) is not None, out)
    if name == "Sequential" and len(module):  # what its last layer ends with
        return _module_name(module[len(module) - 1], args, out)
    op = _MODULE_OPS.get(name)
    if op is None:
        return None
    options = {k: getattr(module, k) for k in _MODULE_OPTIONS if hasattr(module, k)}
    return _op_name(op, args, options, out)


def _op_name(key: str, args: tuple, kwargs: dict, out: Any) -> str:
    """torch's name for the function or method ``key`` (lower case)."""
    if key in _FIXED:
        return _FIXED[key]
    if key in _COMPUTED:
        return _COMPUTED[key](args, kwargs, out)
    if key in _DIM_VARIANT:
        return f"{_DIM_VARIANT[key]}Backward{int(_dim_given(args, kwargs))}"
    if key in _NO_DIM_1:
        return f"{_NO_DIM_1[key]}Backward{int(not _dim_given(args, kwargs))}"
    return f"{_camel(key)}Backward0"


def torch_name(label: str, args: tuple, kwargs: dict, module: Any, out: Any) -> str:
    """torch's ``grad_fn.name()`` for a node recorded as ``label`` (a method, a function,
    or ``module``'s class) called with ``args``/``kwargs`` and giving ``out``."""
    if module is not None:
        found = _module_name(module, args, out)
        return found if found is not None else f"{label}Backward"
    key = label.lower()
    known = key in _FIXED or key in _COMPUTED or key in _DIM_VARIANT or key in _NO_DIM_1
    if not known and label[:1].isupper() and "_" not in label and label != label.capitalize():
        return f"{label}Backward"  # a class: a custom autograd.Function
    return _op_name(key, args, kwargs, out)
