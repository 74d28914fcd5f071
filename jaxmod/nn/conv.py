"""Convolution layers: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d`` (torch layouts, NCHW).

Weights use torch's layouts, ``(C_out, C_in/groups, *kernel)`` for convolutions and
``(C_in, C_out/groups, *kernel)`` for transposed ones, and torch's default
initialisation (``kaiming_uniform_(a=sqrt(5))``, bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``),
so ``load_state_dict`` of a torch state dict gives the same outputs.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import jax
import jax.numpy as jnp

from jaxmod._tensor.errors import ShapeError
from jaxmod.nn import _typerule, init
from jaxmod.nn import functional as F
from jaxmod.nn._checks import _ntuple, _reverse_repeat_tuple, check_ndim
from jaxmod.nn.lazy import LazyModuleMixin
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Parameter, UninitializedParameter, _materialize, _unwrap

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
]

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class _ConvNd(Module):
    """Shared constructor, initialisation and ``extra_repr`` of the convolution layers."""

    _n: int = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, ...],
        stride: tuple[int, ...],
        padding: str | tuple[int, ...],
        dilation: tuple[int, ...],
        transposed: bool,
        output_padding: tuple[int, ...],
        groups: int,
        bias: bool,
        padding_mode: PaddingMode,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        valid_padding_strings = {"same", "valid"}
        if isinstance(padding, str):
            if padding not in valid_padding_strings:
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {valid_padding_strings}"
                )
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        valid_padding_modes = {"zeros", "reflect", "replicate", "circular"}
        if padding_mode not in valid_padding_modes:
            raise ValueError(
                f"padding_mode must be one of {valid_padding_modes}, but got "
                f"padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        # The F.pad argument for non-zero padding modes (pads listed from the last dim).
        if isinstance(padding, str):
            rev = [0, 0] * len(kernel_size)
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(len(kernel_size) - 1, -1, -1)):
                    total = d * (k - 1)
                    rev[2 * i] = total // 2
                    rev[2 * i + 1] = total - total // 2
            self._reversed_padding_repeated_twice = rev
        else:
            self._reversed_padding_repeated_twice = list(_reverse_repeat_tuple(padding, 2))
        dtype = dtype or jnp.float32
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = Parameter(init._filled(shape, 0, dtype))
        if bias:
            self.bias = Parameter(init._filled(out_channels, 0, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias with torch's default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Any) -> None:
        n = self._n
        check_ndim(self, x, (n + 1, n + 2), " (unbatched or batched)")
        channels = self.in_channels
        if channels == 0:  # a lazy conv loaded from a state_dict keeps in_channels 0 (torch):
            # the weight says. Only then: reading a parametrized weight (spectral_norm)
            # runs its power iteration, which must happen once per forward, as in torch
            w = self.weight.shape
            channels = w[0] if self.transposed else w[1] * self.groups
        if x.shape[-n - 1] != channels:
            shape = list(x.shape) if x.ndim == n + 2 else [1, *x.shape]  # torch's batched view
            given = "transposed=1" if self.transposed else f"groups={self.groups}"
            raise ShapeError(  # torch's text, then which layer; a RuntimeError and ValueError
                f"Given {given}, weight of size {list(self.weight.shape)}, expected input"
                f"{shape} to have {channels} channels, but got {x.shape[-n - 1]} channels "
                f"instead (in {self!r})"
            )

    def extra_repr(self) -> str:
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)


class _Conv(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: str | Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        n = self._n
        super().__init__(
            in_channels,
            out_channels,
            _ntuple(kernel_size, n),
            _ntuple(stride, n),
            padding if isinstance(padding, str) else _ntuple(padding, n),
            _ntuple(dilation, n),
            False,
            (0,) * n,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def _conv_forward(self, input: Any, weight: Any, bias: Any) -> jax.Array:
        conv = _CONV[self._n]
        if self.padding_mode != "zeros":
            x = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(x, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: Any) -> jax.Array:
        x = _unwrap(input)
        self._check_input(x)
        return self._conv_forward(x, _unwrap(self.weight), _unwrap(self.bias))


class Conv1d(_Conv):
    """1-D convolution over ``(N, C_in, L)`` or unbatched ``(C_in, L)`` inputs.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel length (int or 1-tuple).
        stride: stride of the convolution.
        padding: int, tuple, ``'valid'`` or ``'same'`` (stride 1 only; extra padding on
            the right, as in torch).
        dilation: spacing between kernel elements.
        groups: blocked connections from input to output channels.
        bias: whether to learn a bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``; the
            non-zero modes pad with ``F.pad`` first, as torch does.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).
    """

    _n = 1


class Conv2d(_Conv):
    """2-D convolution over ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)`` inputs.

    Arguments as :class:`Conv1d`, with ints or pairs; weight ``(C_out, C_in/groups, kH, kW)``.
    """

    _n = 2


class Conv3d(_Conv):
    """3-D convolution over ``(N, C_in, D, H, W)`` or unbatched ``(C_in, D, H, W)`` inputs.

    Arguments as :class:`Conv1d`, with ints or triples.
    """

    _n = 3


class _ConvTranspose(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for {self.__class__.__name__}'
            )
        n = self._n
        super().__init__(
            in_channels,
            out_channels,
            _ntuple(kernel_size, n),
            _ntuple(stride, n),
            _ntuple(padding, n),
            _ntuple(dilation, n),
            True,
            _ntuple(output_padding, n),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def _output_padding(self, x: Any, output_size: Any) -> tuple[int, ...]:
        """The output padding giving ``output_size`` (torch's ``_output_padding``)."""
        n = self._n
        if output_size is None:
            return self.output_padding
        non_spatial = 2 if x.ndim == n + 2 else 1
        output_size = [int(s) for s in output_size]
        if len(output_size) == non_spatial + n:
            output_size = output_size[non_spatial:]
        if len(output_size) != n:
            raise ValueError(
                f"ConvTranspose{n}D: for {x.ndim}D input, output_size must have {n} "
                f"or {non_spatial + n} elements (got {len(output_size)})"
            )
        min_sizes = [
            (x.shape[d + non_spatial] - 1) * self.stride[d]
            - 2 * self.padding[d]
            + self.dilation[d] * (self.kernel_size[d] - 1)
            + 1
            for d in range(n)
        ]
        max_sizes = [m + s - 1 for m, s in zip(min_sizes, self.stride)]
        for size, lo, hi in zip(output_size, min_sizes, max_sizes):
            if size < lo or size > hi:
                raise ValueError(
                    f"requested an output size of {output_size}, but valid sizes range "
                    f"from {min_sizes} to {max_sizes} (for an input of "
                    f"{tuple(x.shape[non_spatial:])})"
                )
        return tuple(o - m for o, m in zip(output_size, min_sizes))

    def forward(self, input: Any, output_size: Any = None) -> jax.Array:
        x = _unwrap(input)
        self._check_input(x)
        output_padding = self._output_padding(x, output_size)
        return _CONV_T[self._n](
            x,
            _unwrap(self.weight),
            _unwrap(self.bias),
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
        )


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-D convolution ("deconvolution") over ``(N, C_in, L)`` or ``(C_in, L)``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel length.
        stride: stride (the input is dilated by it).
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added on both sides.
        output_padding: extra size added to one side of the output.
        groups: blocked connections from input to output channels.
        bias: whether to learn a bias.
        dilation: spacing between kernel elements.
        padding_mode: only ``'zeros'`` is supported (as in torch).
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    ``forward(input, output_size=None)`` accepts torch's ``output_size`` to pick the
    output padding.
    """

    _n = 1


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-D convolution; arguments as :class:`ConvTranspose1d`, ints or pairs.

    Weight layout ``(C_in, C_out/groups, kH, kW)``.
    """

    _n = 2


class ConvTranspose3d(_ConvTranspose):
    """Transposed 3-D convolution; arguments as :class:`ConvTranspose1d`, ints or triples."""

    _n = 3


class _LazyConvXdMixin(LazyModuleMixin):
    """``in_channels`` from the first input: dim 1 of a batched input, dim 0 of an
    unbatched one; weight and bias are materialised and drawn as the concrete class's."""

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Any) -> None:
        if not self.has_uninitialized_params():
            return
        x = _unwrap(input)
        n = self._n
        nd = len(jnp.shape(x))
        if nd not in (n + 1, n + 2):
            size = ", ".join(str(int(d)) for d in jnp.shape(x))
            raise RuntimeError(
                f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to "
                f"{type(self).__name__}, but got input of size: torch.Size([{size}])"
            )
        self.in_channels = int(x.shape[1] if nd == n + 2 else x.shape[0])
        if self.in_channels % self.groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if self.transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        _materialize(self.weight, shape, self._lazy_dtype)
        if self.bias is not None:
            _materialize(self.bias, (self.out_channels,), self._lazy_dtype)
        self.reset_parameters()

    def _lazy_boxes(self, out_channels: int, bias: bool, device: Any, dtype: Any) -> None:
        self._lazy_setup(device, dtype)
        self.weight = UninitializedParameter()
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter()


class _LazyConv(_LazyConvXdMixin):
    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: str | Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # in/out channels 0 until the first call, as torch (so out_channels % groups is
        # not checked here either)
        super().__init__(  # type: ignore[call-arg]
            0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode
        )
        self._lazy_boxes(out_channels, bias, device, dtype)


class _LazyConvTranspose(_LazyConvXdMixin):
    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: PaddingMode = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]
            0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation,
            padding_mode,
        )  # fmt: skip
        self._lazy_boxes(out_channels, bias, device, dtype)


class LazyConv1d(_LazyConv, Conv1d):
    """A :class:`Conv1d` whose ``in_channels`` is inferred from the first input.

    Arguments as :class:`Conv1d` without ``in_channels``; ``weight`` and ``bias`` are
    :class:`UninitializedParameter` until the first (eager) call, which turns the module
    into a :class:`Conv1d`.
    """

    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    """A :class:`Conv2d` whose ``in_channels`` is inferred from the first input.

    Arguments as :class:`Conv2d` without ``in_channels``; ``weight`` and ``bias`` are
    :class:`UninitializedParameter` until the first (eager) call, which turns the module
    into a :class:`Conv2d`.
    """

    cls_to_become = Conv2d


class LazyConv3d(_LazyConv, Conv3d):
    """A :class:`Conv3d` whose ``in_channels`` is inferred from the first input.

    Arguments as :class:`Conv3d` without ``in_channels``; ``weight`` and ``bias`` are
    :class:`UninitializedParameter` until the first (eager) call, which turns the module
    into a :class:`Conv3d`.
    """

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTranspose, ConvTranspose1d):
    """A :class:`ConvTranspose1d` whose ``in_channels`` is inferred from the first input.

    Arguments as :class:`ConvTranspose1d` without ``in_channels``; ``weight`` and ``bias`` are
    :class:`UninitializedParameter` until the first (eager) call, which turns the module
    into a :class:`ConvTranspose1d`.
    """

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTranspose, ConvTranspose2d):
    """A :class:`ConvTranspose2d` whose ``in_channels`` is inferred from the first input.

    Arguments as :class:`ConvTranspose2d` without ``in_channels``; ``weight`` and ``bias`` are
    :class:`UninitializedParameter` until the first (eager) call, which turns the module
    into a :class:`ConvTranspose2d`.
    """

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTranspose, ConvTranspose3d):
    """A :class:`ConvTranspose3d` whose ``in_channels`` is inferred from the first input.

    Arguments as :class:`ConvTranspose3d` without ``in_channels``; ``weight`` and ``bias`` are
    :class:`UninitializedParameter` until the first (eager) call, which turns the module
    into a :class:`ConvTranspose3d`.
    """

    cls_to_become = ConvTranspose3d


_typerule.tensor_forwards(globals())
