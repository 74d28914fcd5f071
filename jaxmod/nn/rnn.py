"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their single-step cells.

Parameter names, shapes, gate orders and default initialisation follow
``torch.nn.modules.rnn`` (torch 2.13): ``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}`` (``_reverse`` for the backward direction) and
``weight_hr_l{k}`` for LSTM projections; LSTM gates are ``i, f, g, o``, GRU gates
``r, z, n`` with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

The time loop is a ``jax.lax.scan`` (compile time does not grow with the sequence
length). Input projections of the whole sequence are one matmul before the scan, and
both directions of a bidirectional layer advance in the same scan step.

A ``PackedSequence`` input (``nn.utils.rnn.pack_padded_sequence``) runs as a padded batch
in its sorted order with a per-sequence length mask: each sequence's state stops at its
last valid step (that is ``h_n``) and the backward direction starts there, as torch's
packed kernels do. The output is a ``PackedSequence`` with the input's ``batch_sizes``
and indices; ``hx`` and ``h_n`` are in the caller's batch order (``sorted_indices``).
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jaxmod._tensor.base import _has_tensor, wrap
from jaxmod.amp._state import S as _amp
from jaxmod.nn import _typerule, init
from jaxmod.nn import functional as F
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Parameter, _unwrap
from jaxmod.nn.utils import rnn as _packing

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

Array = jax.Array
_NUM_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


# ----------------------------------------------------------------------------------------
# one time step (shared by the cells and the scanned layers)
# ----------------------------------------------------------------------------------------
def _hmm(h: Array, w: Array) -> Array:
    """``h @ w.T``; with a leading direction dim on both (``(D,B,H)``, ``(D,G,H)``)."""
    if _amp.policy is not None:
        h, w = _amp.policy.low(h, w)
    if w.ndim == 3:
        return jnp.einsum("dbh,dgh->dbg", h, w)
    return h @ w.T


def _lstm_step(xg: Array, h: Array, c: Array, w_hh: Array, w_hr: Array | None):
    """One LSTM step; ``xg`` already holds ``W_ih x + b_ih + b_hh``."""
    gates = xg + _hmm(h, w_hh)
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    if w_hr is not None:
        h = _hmm(h, w_hr)
    return h, c


def _gru_step(xg: Array, h: Array, w_hh: Array, b_hh: Array | None) -> Array:
    """One GRU step; ``xg`` holds ``W_ih x + b_ih``, ``b_hh`` stays inside ``r * (.)``."""
    hg = _hmm(h, w_hh)
    if b_hh is not None:
        hg = hg + b_hh
    xr, xz, xn = jnp.split(xg, 3, axis=-1)
    hr, hz, hn = jnp.split(hg, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1.0 - z) * n + z * h


def _rnn_step(xg: Array, h: Array, w_hh: Array, relu: bool) -> Array:
    pre = xg + _hmm(h, w_hh)
    return jax.nn.relu(pre) if relu else jnp.tanh(pre)


def _scan_layer(
    mode: str,
    xg: Array,
    h0: Array,
    c0: Array | None,
    w: dict[str, Any],
    mask: Array | None = None,
) -> tuple[Array, Array, Array | None]:
    """Run one layer over time: ``xg`` is ``(T, [D,] B, G)``; returns ``(ys, hT, cT)``.

    ``mask`` (``(T, [1,] B, 1)`` booleans, packed sequences only): where it is false the
    state is carried unchanged and the output is zero, so each sequence stops at its
    length and ``hT`` / ``cT`` are the states at the last valid step."""

    def keep(m, new, old):
        return new if m is None else jnp.where(m, new, old)

    def out(m, h):
        return h if m is None else jnp.where(m, h, 0)

    xs = xg if mask is None else (xg, mask)

    def split(x_t):
        return (x_t, None) if mask is None else x_t

    if mode == "LSTM":

        def step(carry, x_t):
            x_t, m = split(x_t)
            h, c = _lstm_step(x_t, carry[0], carry[1], w["w_hh"], w.get("w_hr"))
            h, c = keep(m, h, carry[0]), keep(m, c, carry[1])
            return (h, c), out(m, h)

        (h, c), ys = jax.lax.scan(step, (h0, c0), xs)
        return ys, h, c
    if mode == "GRU":

        def step(h, x_t):
            x_t, m = split(x_t)
            h = keep(m, _gru_step(x_t, h, w["w_hh"], w.get("b_hh")), h)
            return h, out(m, h)
    else:
        relu = mode == "RNN_RELU"

        def step(h, x_t):
            x_t, m = split(x_t)
            h = keep(m, _rnn_step(x_t, h, w["w_hh"], relu), h)
            return h, out(m, h)

    h, ys = jax.lax.scan(step, h0, xs)
    return ys, h, None


def _reverse_within(x: Array, lengths: Array | None) -> Array:
    """``x`` ``(T, B, ...)`` with each sequence's first ``lengths[b]`` steps reversed (the
    padding after them stays in place); the whole time axis without ``lengths``. Its own
    inverse."""
    if lengths is None:
        return x[::-1]
    T = x.shape[0]
    t = jnp.arange(T)[:, None]
    idx = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return jnp.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=0)


@functools.partial(jax.jit, static_argnums=0, static_argnames="amp")
def _layer(
    mode: str,
    x: Array,
    h0: Array,
    c0: Array | None,
    params: tuple[dict[str, Array], ...],
    lengths: Array | None = None,
    amp: Any = None,
) -> tuple[Array, Array, Array | None]:
    """One (uni- or bidirectional) layer over time-major ``x`` ``(T, B, I)``.

    ``params`` holds one dict per direction (``weight_ih``, ``weight_hh``, optional
    ``bias_ih``/``bias_hh``/``weight_hr``); ``h0``/``c0`` are ``(D, B, .)``; ``lengths``
    (``(B,)``, packed sequences) stops each sequence at its length, and the backward
    direction starts at each sequence's last valid step. Compiled once per configuration
    and shape, so eager calls reuse it and ``jax.grad`` differentiates it as a whole;
    under an outer ``jit`` it is inlined. ``amp`` (the autocast policy, read while
    tracing) is only part of the cache key.
    """
    fold_hh = mode != "GRU"  # GRU keeps b_hn inside r * (W_hn h + b_hn)
    xgs = []
    for d, p in enumerate(params):
        bias = p.get("bias_ih")
        if bias is not None and fold_hh:
            bias = bias + p["bias_hh"]
        xgs.append(F.linear(x if d == 0 else _reverse_within(x, lengths), p["weight_ih"], bias))
    mask = None
    if lengths is not None:
        mask = (jnp.arange(x.shape[0])[:, None] < lengths[None, :])[..., None]  # (T, B, 1)
    w = {"w_hh": jnp.stack([p["weight_hh"] for p in params])}
    if "weight_hr" in params[0]:
        w["w_hr"] = jnp.stack([p["weight_hr"] for p in params])
    if "bias_hh" in params[0] and not fold_hh:
        w["b_hh"] = jnp.stack([p["bias_hh"] for p in params])[:, None]
    if len(params) == 1:  # no direction axis inside the scan
        w = {k: v[0] for k, v in w.items()}
        ys, h, c = _scan_layer(mode, xgs[0], h0[0], None if c0 is None else c0[0], w, mask)
        return ys, h[None], (None if c is None else c[None])
    ys, h, c = _scan_layer(
        mode, jnp.stack(xgs, axis=1), h0, c0, w, None if mask is None else mask[:, None]
    )  # xs: (T, D, B, G)
    return jnp.concatenate([ys[:, 0], _reverse_within(ys[:, 1], lengths)], axis=-1), h, c


# ----------------------------------------------------------------------------------------
# multi-layer modules
# ----------------------------------------------------------------------------------------
class RNNBase(Module):
    """Base class of :class:`RNN`, :class:`LSTM` and :class:`GRU` (torch's ``RNNBase``).

    Args:
        mode: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``.
        input_size: features of the input.
        hidden_size: features of the hidden state.
        num_layers: stacked recurrent layers.
        bias: whether the layers have ``b_ih`` and ``b_hh``.
        batch_first: inputs and outputs are ``(batch, seq, feature)``.
        dropout: dropout on the outputs of every layer but the last (training only).
        bidirectional: run a second, time-reversed direction per layer.
        proj_size: LSTM only: project the hidden state to this size (``weight_hr``).
        device: where to place the parameters.
        dtype: parameter dtype (default float32).
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1

        if (
            not isinstance(dropout, numbers.Number)
            or not 0 <= dropout <= 1
            or isinstance(dropout, bool)
        ):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of "
                "an element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                "dropout expects num_layers greater than 1, but got "
                f"dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(
                f"batch_first should be of type bool, got: {type(batch_first).__name__}"
            )
        if not isinstance(input_size, int):
            raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _NUM_GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)

        gate_size = _NUM_GATES[mode] * hidden_size
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        dtype = dtype or jnp.float32
        flat_names: list[str] = []
        all_weights: list[list[str]] = []
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
            for direction in range(num_directions):
                suffix = "_reverse" if direction == 1 else ""
                shapes = [
                    ("weight_ih_l{}{}", (gate_size, layer_input_size)),
                    ("weight_hh_l{}{}", (gate_size, real_hidden_size)),
                ]
                if bias:
                    shapes += [("bias_ih_l{}{}", (gate_size,)), ("bias_hh_l{}{}", (gate_size,))]
                if proj_size > 0:
                    shapes += [("weight_hr_l{}{}", (proj_size, hidden_size))]
                names = []
                for fmt, shape in shapes:
                    name = fmt.format(layer, suffix)
                    setattr(self, name, Parameter(init._filled(shape, 0, dtype)))
                    names.append(name)
                flat_names.extend(names)
                all_weights.append(names)
        self._flat_weights_names = flat_names
        self._all_weights = all_weights
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Draw every parameter from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """No-op (cuDNN weight compaction has no JAX counterpart)."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters grouped per layer and direction, as torch's ``all_weights``."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # ------------------------------------------------------------------ forward
    def _prepare(self, input: Any) -> tuple[Array, bool, Any]:
        """The input as time-major ``(T, B, I)``, whether it was batched, and for a
        ``PackedSequence`` (unpacked to its padded form, in its sorted order)
        ``(sequence, batch_sizes, lengths)``, else ``None``."""
        name = "RNN" if self.mode.startswith("RNN") else self.mode
        pk = None
        if isinstance(input, _packing.MaskedPackedSequence):  # traced lengths (under jit)
            x = jnp.asarray(_unwrap(input.padded))
            if x.ndim != 3:
                raise RuntimeError(f"input must have 2 dimensions, got {x.ndim - 1}")
            pk = (input, None, jnp.asarray(_unwrap(input.lengths)).astype(jnp.int32))
        elif isinstance(input, _packing.PackedSequence):
            batch_sizes = _packing._concrete_ints(input.batch_sizes, f"{name} on a PackedSequence")
            data = jnp.asarray(_unwrap(input.data))
            if data.ndim != 2:
                raise RuntimeError(f"input must have 2 dimensions, got {data.ndim}")
            lengths = jnp.asarray(_packing._lengths_of(batch_sizes), jnp.int32)
            pk = (input, batch_sizes, lengths)
            x = _packing.packed_to_padded(data, batch_sizes)
        else:
            x = jnp.asarray(_unwrap(input))
            if x.ndim not in (2, 3):
                raise ValueError(
                    f"{name}: Expected input to be 2D or 3D, got {x.ndim}D tensor instead"
                )
        w0 = getattr(self, self._flat_weights_names[0])
        if x.dtype != w0.dtype:
            raise ValueError(
                f"RNN input dtype ({x.dtype}) does not match weight dtype ({w0.dtype}). "
                f"Convert input: input.astype({w0.dtype}), or convert model: model.to({x.dtype})"
            )
        if x.shape[-1] != self.input_size:
            raise RuntimeError(
                "input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {x.shape[-1]}"
            )
        batched = x.ndim == 3
        if not batched:
            x = x[:, None]
        elif self.batch_first and pk is None:
            x = jnp.swapaxes(x, 0, 1)
        return x, batched, pk

    @staticmethod
    def _permute(h: Array, pk: Any, which: str) -> Array:
        """A hidden state ``(L*D, B, H)`` moved between the caller's batch order and a
        packed input's sorted order (``which``: ``"sorted_indices"`` on the way in,
        ``"unsorted_indices"`` on the way out)."""
        if pk is None or getattr(pk[0], which) is None:
            return h
        return h[:, jnp.asarray(_unwrap(getattr(pk[0], which)))]

    def _check_hidden(
        self, h: Any, expected: tuple[int, ...], batched: bool, msg: str, pk: Any = None
    ) -> Array:
        h = jnp.asarray(_unwrap(h))
        if batched and h.ndim != 3:
            raise RuntimeError(
                f"For batched 3-D input, hx should also be 3-D but got {h.ndim}-D tensor"
            )
        if not batched:
            if h.ndim != 2:
                raise RuntimeError(
                    f"For unbatched 2-D input, hx should also be 2-D but got {h.ndim}-D tensor"
                )
            h = h[:, None]
        if tuple(h.shape) != expected:
            raise RuntimeError(msg.format(expected, list(h.shape)))
        return self._permute(h, pk, "sorted_indices")

    def _run(
        self, x: Array, h0: Array, c0: Array | None, pk: Any = None
    ) -> tuple[Array, Array, Array | None]:
        """All layers over time-major ``x``; returns ``(output, h_n, c_n)``."""
        D = 2 if self.bidirectional else 1
        hs, cs = [], []
        for layer in range(self.num_layers):
            params = tuple(
                {n.split("_l")[0]: _unwrap(getattr(self, n)) for n in names}
                for names in self._all_weights[layer * D : layer * D + D]
            )
            sl = slice(layer * D, layer * D + D)
            x, h, c = _layer(
                self.mode,
                x,
                h0[sl],
                None if c0 is None else c0[sl],
                params,
                None if pk is None else pk[2],
                amp=_amp.policy,
            )
            hs.append(h)
            if c is not None:
                cs.append(c)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = self._permute(jnp.concatenate(hs, axis=0), pk, "unsorted_indices")
        c_n = self._permute(jnp.concatenate(cs, axis=0), pk, "unsorted_indices") if cs else None
        return x, h_n, c_n

    def _finish(self, out: Array, batched: bool, pk: Any = None) -> Any:
        if pk is not None:
            seq, batch_sizes, _ = pk
            if batch_sizes is not None:
                out = _packing.padded_to_packed(out, batch_sizes)
            return seq._replace(data=wrap(out) if _has_tensor((seq[0],)) else out)
        if not batched:
            return out[:, 0]
        return jnp.swapaxes(out, 0, 1) if self.batch_first else out

    @staticmethod
    def _hidden_out(h: Array, pk: Any) -> Any:
        """``h_n`` (or ``c_n``) as a Tensor when the packed input held Tensors (the type
        rule does not look inside a ``PackedSequence``)."""
        return wrap(h) if pk is not None and _has_tensor((pk[0][0],)) else h


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or ``relu``).

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None)``.
    ``forward(input, hx=None)`` returns ``(output, h_n)``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> tuple[Array, Array]:
        """Run the sequence; ``hx`` is ``(num_layers * D, B, H)`` (``(L*D, H)`` unbatched)."""
        x, batched, pk = self._prepare(input)
        D = 2 if self.bidirectional else 1
        expected = (self.num_layers * D, x.shape[1], self.hidden_size)
        if hx is None:
            h0 = jnp.zeros(expected, x.dtype)
        else:
            h0 = self._check_hidden(hx, expected, batched, "Expected hidden size {}, got {}", pk)
        out, h_n, _ = self._run(x, h0, None, pk)
        return self._finish(out, batched, pk), self._hidden_out(h_n if batched else h_n[:, 0], pk)


class LSTM(RNNBase):
    """Long short-term memory (gates ``i, f, g, o``), optionally with projections.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None)``.
    ``forward(input, hx=None)`` with ``hx = (h_0, c_0)`` returns
    ``(output, (h_n, c_n))``; ``h`` has ``proj_size`` features when it is set.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def forward(self, input: Any, hx: Any = None) -> tuple[Array, tuple[Array, Array]]:
        """Run the sequence; returns ``(output, (h_n, c_n))``."""
        x, batched, pk = self._prepare(input)
        D = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        h_shape = (self.num_layers * D, x.shape[1], real_hidden)
        c_shape = (self.num_layers * D, x.shape[1], self.hidden_size)
        if hx is None:
            h0 = jnp.zeros(h_shape, x.dtype)
            c0 = jnp.zeros(c_shape, x.dtype)
        else:
            h0 = self._check_hidden(
                hx[0], h_shape, batched, "Expected hidden[0] size {}, got {}", pk
            )
            c0 = self._check_hidden(
                hx[1], c_shape, batched, "Expected hidden[1] size {}, got {}", pk
            )
        out, h_n, c_n = self._run(x, h0, c0, pk)
        if not batched:
            h_n, c_n = h_n[:, 0], c_n[:, 0]
        h_n, c_n = self._hidden_out(h_n, pk), self._hidden_out(c_n, pk)
        return self._finish(out, batched, pk), (h_n, c_n)


class GRU(RNNBase):
    """Gated recurrent unit (gates ``r, z, n``; ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``).

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None)``.
    ``forward(input, hx=None)`` returns ``(output, h_n)``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    forward = RNN.forward


@functools.partial(jax.jit, static_argnums=0, static_argnames="amp")
def _cell(
    mode: str, x: Array, h: Array, c: Array | None, p: dict[str, Array], amp: Any = None
) -> tuple[Array, Array | None]:
    """One step of a cell, compiled once per configuration and shape (and autocast
    policy ``amp``)."""
    fold_hh = mode != "GRU"
    bias = p.get("bias_ih")
    if bias is not None and fold_hh:
        bias = bias + p["bias_hh"]
    xg = F.linear(x, p["weight_ih"], bias)
    if mode == "LSTM":
        return _lstm_step(xg, h, c, p["weight_hh"], None)
    if mode == "GRU":
        return _gru_step(xg, h, p["weight_hh"], p.get("bias_hh")), None
    return _rnn_step(xg, h, p["weight_hh"], mode == "RNN_RELU"), None


# ----------------------------------------------------------------------------------------
# cells
# ----------------------------------------------------------------------------------------
class RNNCellBase(Module):
    """Base class of the single-step cells (torch's ``RNNCellBase``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        dtype = dtype or jnp.float32
        self.weight_ih = Parameter(init._filled((num_chunks * hidden_size, input_size), 0, dtype))
        self.weight_hh = Parameter(init._filled((num_chunks * hidden_size, hidden_size), 0, dtype))
        if bias:
            self.bias_ih = Parameter(init._filled(num_chunks * hidden_size, 0, dtype))
            self.bias_hh = Parameter(init._filled(num_chunks * hidden_size, 0, dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def reset_parameters(self) -> None:
        """Draw every parameter from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _input(self, input: Any, name: str) -> tuple[Array, bool]:
        x = jnp.asarray(_unwrap(input))
        if x.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {x.ndim}D instead")
        return (x, True) if x.ndim == 2 else (x[None], False)

    def _hidden(self, h: Any, x: Array, batched: bool, what: str, name: str) -> Array:
        if h is None:
            return jnp.zeros((x.shape[0], self.hidden_size), x.dtype)
        h = jnp.asarray(_unwrap(h))
        if h.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {h.ndim}D instead")
        return h if batched else h[None]

    def _params(self) -> dict[str, Array]:
        p = {"weight_ih": _unwrap(self.weight_ih), "weight_hh": _unwrap(self.weight_hh)}
        if self.bias_ih is not None:
            p["bias_ih"] = _unwrap(self.bias_ih)
            p["bias_hh"] = _unwrap(self.bias_hh)
        return p


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or ``relu``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> Array:
        """``input`` ``(B, I)`` or ``(I,)``; returns ``h'`` of the same batchedness."""
        x, batched = self._input(input, "RNNCell")
        h = self._hidden(hx, x, batched, "hidden", "RNNCell")
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        mode = "RNN_RELU" if self.nonlinearity == "relu" else "RNN_TANH"
        h, _ = _cell(mode, x, h, None, self._params(), amp=_amp.policy)
        return h if batched else h[0]


class LSTMCell(RNNCellBase):
    """One LSTM step (gates ``i, f, g, o``); ``forward(input, (h, c))`` returns ``(h', c')``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Any, hx: Any = None) -> tuple[Array, Array]:
        """``input`` ``(B, I)`` or ``(I,)``; ``hx`` a pair ``(h, c)`` or ``None`` (zeros)."""
        x, batched = self._input(input, "LSTMCell")
        if hx is None:
            h = c = self._hidden(None, x, batched, "", "LSTMCell")
        else:
            h = self._hidden(hx[0], x, batched, "hx[0]", "LSTMCell")
            c = self._hidden(hx[1], x, batched, "hx[1]", "LSTMCell")
        h, c = _cell("LSTM", x, h, c, self._params(), amp=_amp.policy)
        return (h, c) if batched else (h[0], c[0])


class GRUCell(RNNCellBase):
    """One GRU step (gates ``r, z, n``); ``forward(input, hx)`` returns ``h'``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Any, hx: Any = None) -> Array:
        """``input`` ``(B, I)`` or ``(I,)``; returns ``h'`` of the same batchedness."""
        x, batched = self._input(input, "GRUCell")
        h = self._hidden(hx, x, batched, "hidden", "GRUCell")
        h, _ = _cell("GRU", x, h, None, self._params(), amp=_amp.policy)
        return h if batched else h[0]


_typerule.tensor_forwards(globals())
