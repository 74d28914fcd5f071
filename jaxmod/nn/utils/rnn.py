"""Variable-length sequences: ``PackedSequence`` and torch's ``nn.utils.rnn`` helpers.

``pad_sequence``, ``pack_padded_sequence``, ``pad_packed_sequence``, ``pack_sequence``,
``unpad_sequence``, ``unpack_sequence`` and ``invert_permutation`` follow
``torch.nn.utils.rnn`` (torch 2.13): the same packed layout (``data`` holds the time
steps one after another, each with the still-running sequences in decreasing-length
order), the same ``batch_sizes``, ``sorted_indices`` (a stable sort, so ties keep their
order) and ``unsorted_indices``, and the same errors.

A packed layout is a shape that depends on the *values* of ``lengths``. Eagerly (the
usual case), or with lengths given as Python ints / numpy values, the layout is torch's.
Inside ``jaxmod.jit`` with traced lengths (a Tensor argument of the compiled step),
``pack_padded_sequence`` returns a *masked* packed sequence instead: the padded batch
and its lengths, which ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` run with a per-sequence length
mask exactly as they run a packed one (the same outputs and final states), and which
``pad_packed_sequence(..., total_length=T)`` unpacks. What has no traced equivalent
raises :class:`PackedSequenceTraceError` saying what to do: reading ``.data`` /
``.batch_sizes`` (their shapes depend on the lengths) and ``pad_packed_sequence`` without
``total_length`` (its output length is ``max(lengths)``). A traced ``enforce_sorted=True``
cannot check the order (the masked form does not need it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core.state import TraceError, is_tracer
from jaxmod._tensor.base import _has_tensor, unwrap, wrap

__all__ = [
    "PackedSequence",
    "MaskedPackedSequence",
    "PackedSequenceTraceError",
    "invert_permutation",
    "pack_padded_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpad_sequence",
    "pack_sequence",
    "unpack_sequence",
]


class PackedSequenceTraceError(TraceError):
    """A packed layout was asked for while the lengths it depends on are traced."""


def _fix(what: str) -> str:
    return (
        f"{what}: this depends on the values of the sequence lengths (the packed layout, "
        "batch_sizes, the first dimension of data), but they are traced here (inside "
        "jaxmod.jit or a transform, where no value exists until the compiled function "
        "runs). Fixes: run this code eagerly; or give pack_padded_sequence the lengths as "
        "Python ints (a list or tuple, e.g. a static argument of jaxmod.jit: "
        "static_argnums=...), so the layout is known while tracing; or keep the traced "
        "lengths and only pass the packed sequence to nn.LSTM / nn.GRU / nn.RNN and "
        "pad_packed_sequence(..., total_length=T), which run them with a length mask."
    )


def _traced(x: Any) -> bool:
    v = unwrap(x)
    if isinstance(v, (list, tuple)):
        return any(isinstance(unwrap(e), jax.core.Tracer) for e in v)
    return is_tracer(v)


def _concrete_ints(x: Any, what: str) -> np.ndarray:
    """``x`` (a Tensor, array, list) as a 1-D numpy int64 array; a traced ``x`` raises."""
    v = unwrap(x)
    if is_tracer(v) or isinstance(v, jax.core.Tracer):
        raise PackedSequenceTraceError(_fix(what))
    if isinstance(v, (list, tuple)):
        v = [unwrap(e) for e in v]
        if any(isinstance(e, jax.core.Tracer) for e in v):
            raise PackedSequenceTraceError(_fix(what))
    return np.asarray(v).astype(np.int64).reshape(-1)


def _like(out: Any, *inputs: Any) -> Any:
    """``out`` as Tensors when any input is a Tensor (the type rule), else arrays."""
    return wrap(out) if _has_tensor(inputs) else out


def _int_tensor(values: np.ndarray, tensors: bool) -> Any:
    arr = jnp.asarray(values, dtype=jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
    return wrap(arr) if tensors else arr


class PackedSequence(NamedTuple):
    """Holds the data and the ``batch_sizes`` of a packed batch of sequences.

    As torch's: never built by hand; made by :func:`pack_padded_sequence` or
    :func:`pack_sequence`. ``data`` is ``(sum(lengths), *)``; ``batch_sizes[t]`` is how
    many sequences are still running at step ``t``; ``sorted_indices`` /
    ``unsorted_indices`` map between the caller's batch order and the decreasing-length
    order of ``data`` (``None`` when the input was already sorted).
    """

    data: Any
    batch_sizes: Any = None
    sorted_indices: Any = None
    unsorted_indices: Any = None

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data.to(...)`` (the index tensors stay as they are)."""
        data = self[0].to(*args, **kwargs)
        return self if data is self[0] else self._replace(data=data)

    def cpu(self) -> PackedSequence:
        """This sequence (jaxmod's arrays have no separate host copy to move)."""
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data.cuda(...)``."""
        return self._replace(data=self[0].cuda(*args, **kwargs))

    def _cast(self, name: str) -> PackedSequence:
        return self._replace(data=getattr(self[0], name)())

    def float(self) -> PackedSequence:
        return self._cast("float")

    def double(self) -> PackedSequence:
        return self._cast("double")

    def half(self) -> PackedSequence:
        return self._cast("half")

    def bfloat16(self) -> PackedSequence:
        return self._cast("bfloat16")

    def long(self) -> PackedSequence:
        return self._cast("long")

    def int(self) -> PackedSequence:
        return self._cast("int")

    @property
    def is_cuda(self) -> bool:
        """Whether ``data`` is on a GPU."""
        return bool(getattr(self[0], "is_cuda", False))

    def is_pinned(self) -> bool:
        """``False`` (no pinned host memory in JAX)."""
        return False


class MaskedPackedSequence(PackedSequence):
    """A packed sequence whose lengths are traced (inside ``jaxmod.jit``): it holds the
    padded batch, time-major ``(T, B, *)`` in the caller's order, and the lengths ``(B,)``.
    The recurrent layers and ``pad_packed_sequence(..., total_length=T)`` accept it; its
    ``data`` and ``batch_sizes`` (shapes that depend on the lengths' values) raise
    :class:`PackedSequenceTraceError`."""

    __slots__ = ()

    @property
    def data(self) -> Any:  # type: ignore[override]
        raise PackedSequenceTraceError(_fix("PackedSequence.data"))

    @property
    def batch_sizes(self) -> Any:  # type: ignore[override]
        raise PackedSequenceTraceError(_fix("PackedSequence.batch_sizes"))

    @property
    def padded(self) -> Any:
        """The time-major padded batch ``(T, B, *)``."""
        return self[0]

    @property
    def lengths(self) -> Any:
        """The traced lengths ``(B,)``."""
        return self[1]


def invert_permutation(permutation: Any) -> Any:
    """The inverse of a permutation tensor (``None`` stays ``None``)."""
    if permutation is None:
        return None
    p = jnp.asarray(unwrap(permutation))
    out = jnp.zeros_like(p).at[p].set(jnp.arange(p.shape[0], dtype=p.dtype))
    return _like(out, permutation)


def _layout(batch_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(t, b)`` of every row of a packed ``data``, in order."""
    t = np.repeat(np.arange(len(batch_sizes)), batch_sizes)
    b = np.concatenate([np.arange(n) for n in batch_sizes]) if len(batch_sizes) else t
    return t, b


def _batch_sizes(lengths: np.ndarray) -> np.ndarray:
    """``batch_sizes`` of decreasing ``lengths``."""
    steps = np.arange(int(lengths[0]) if len(lengths) else 0)
    return (lengths[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)


def pack_padded_sequence(
    input: Any, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) of
    variable-length sequences.

    Args:
        input: the padded batch.
        lengths: the length of every sequence (a list or a 1-D tensor; concrete values).
        batch_first: ``input`` is ``(B, T, *)``.
        enforce_sorted: ``lengths`` must be decreasing; with ``False`` the batch is
            sorted here and ``sorted_indices`` / ``unsorted_indices`` remember the order.

    Raises:
        RuntimeError: unsorted lengths with ``enforce_sorted``, a length ``<= 0``, or
            ``len(lengths)`` not the batch size (torch's messages); a length longer than
            the padded input.
        PackedSequenceTraceError: ``lengths`` is traced (see the module docstring).
    """
    x = jnp.asarray(unwrap(input))
    if batch_first:
        x = jnp.swapaxes(x, 0, 1)
    tensors = _has_tensor((input, lengths))
    if _traced(lengths):
        n = jnp.asarray(unwrap(lengths)).astype(jnp.int32).reshape(-1)
        if n.shape[0] != x.shape[1]:
            raise RuntimeError(
                f"Expected `len(lengths)` to be equal to batch_size, but got {n.shape[0]} "
                f"(batch_size={x.shape[1]})"
            )
        return MaskedPackedSequence(wrap(x) if tensors else x, _like(n, lengths), None, None)
    lengths_np = _concrete_ints(lengths, "pack_padded_sequence")
    B = x.shape[1] if x.ndim > 1 else 0
    if lengths_np.shape[0] != B:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {lengths_np.shape[0]} "
            f"(batch_size={B})"
        )
    if enforce_sorted:
        if np.any(np.diff(lengths_np) > 0):
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement if you do not need ONNX "
                "exportability."
            )
        sorted_np = None
    else:
        sorted_np = np.argsort(-lengths_np, kind="stable")
        lengths_np = lengths_np[sorted_np]
        x = x[:, jnp.asarray(sorted_np)]
    if B and lengths_np[-1] <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in "
            "'lengths' that is <= 0"
        )
    if B and lengths_np[0] > x.shape[0]:
        raise RuntimeError(
            f"pack_padded_sequence: a sequence length ({int(lengths_np[0])}) is longer than "
            f"the padded input's time dimension ({x.shape[0]})"
        )
    batch_sizes = _batch_sizes(lengths_np)
    t, b = _layout(batch_sizes)
    data = x[t, b]
    if sorted_np is None:
        sorted_idx = unsorted_idx = None
    else:
        sorted_idx = _int_tensor(sorted_np, tensors)
        unsorted_idx = _int_tensor(np.argsort(sorted_np, kind="stable"), tensors)
    return PackedSequence(
        wrap(data) if tensors else data,
        _int_tensor(batch_sizes, tensors),
        sorted_idx,
        unsorted_idx,
    )


def _lengths_of(batch_sizes: np.ndarray) -> np.ndarray:
    """The decreasing lengths behind ``batch_sizes``."""
    B = int(batch_sizes[0]) if len(batch_sizes) else 0
    return (batch_sizes[None, :] > np.arange(B)[:, None]).sum(axis=1).astype(np.int64)


def packed_to_padded(data: Any, batch_sizes: np.ndarray, total: int | None = None) -> Any:
    """``data`` of a packed sequence as a time-major padded array ``(T, B, *)`` (in the
    sorted order, zeros after each length). For the recurrent layers."""
    T = len(batch_sizes) if total is None else total
    B = int(batch_sizes[0]) if len(batch_sizes) else 0
    t, b = _layout(batch_sizes)
    return jnp.zeros((T, B) + data.shape[1:], data.dtype).at[t, b].set(data)


def padded_to_packed(x: Any, batch_sizes: np.ndarray) -> Any:
    """The inverse of :func:`packed_to_padded`."""
    t, b = _layout(batch_sizes)
    return x[t, b]


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Any, Any]:
    """Unpack a :class:`PackedSequence` to ``(padded, lengths)``.

    ``padded`` is ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) with
    ``T = total_length`` or the longest length, in the caller's original batch order;
    ``lengths`` is an integer tensor of the lengths in that order.
    """
    if isinstance(sequence, MaskedPackedSequence):
        return _pad_masked(sequence, batch_first, padding_value, total_length)
    batch_sizes = _concrete_ints(sequence.batch_sizes, "pad_packed_sequence")
    data = jnp.asarray(unwrap(sequence.data))
    max_len = len(batch_sizes)
    if total_length is not None:
        if total_length < max_len:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in "
                f"input, but got total_length={total_length} and max sequence length being "
                f"{max_len}"
            )
    T = max_len if total_length is None else int(total_length)
    B = int(batch_sizes[0]) if len(batch_sizes) else 0
    t, b = _layout(batch_sizes)
    full = jnp.full((T, B) + data.shape[1:], padding_value, data.dtype)
    padded = full.at[t, b].set(data)
    lengths = _lengths_of(batch_sizes)
    if sequence.unsorted_indices is not None:
        unsorted = np.asarray(unwrap(sequence.unsorted_indices))
        padded = padded[:, jnp.asarray(unsorted)]
        lengths = lengths[unsorted]
    if batch_first:
        padded = jnp.swapaxes(padded, 0, 1)
    tensors = _has_tensor((sequence.data,))
    return (wrap(padded) if tensors else padded), _int_tensor(lengths, tensors)


def _pad_masked(
    sequence: MaskedPackedSequence,
    batch_first: bool,
    padding_value: float,
    total_length: int | None,
) -> tuple[Any, Any]:
    """``pad_packed_sequence`` of a masked (traced-lengths) packed sequence."""
    x = jnp.asarray(unwrap(sequence.padded))
    T = x.shape[0]
    if total_length is None or total_length < T:
        raise PackedSequenceTraceError(
            "pad_packed_sequence: the padded length is max(lengths), which depends on the "
            "values of the lengths, and they are traced here (inside jaxmod.jit or a "
            "transform). Fixes: pass total_length= (at least the padded input's time "
            f"dimension, {T}; for example text.size(1)); or run this code eagerly; or give "
            "pack_padded_sequence the lengths as Python ints (a list or tuple, e.g. a "
            "static argument of jaxmod.jit: static_argnums=...)."
        )
    n = jnp.asarray(unwrap(sequence.lengths))
    valid = (jnp.arange(T)[:, None] < n[None, :]).reshape((T, -1) + (1,) * (x.ndim - 2))
    x = jnp.where(valid, x, jnp.asarray(padding_value, x.dtype))
    x = jnp.pad(x, [(0, int(total_length) - T)] + [(0, 0)] * (x.ndim - 1),
                constant_values=padding_value)  # fmt: skip
    if batch_first:
        x = jnp.swapaxes(x, 0, 1)
    tensors = _has_tensor((sequence.padded,))
    return (wrap(x) if tensors else x), _like(n, sequence.lengths)


def pad_sequence(
    sequences: Any,
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Any:
    """Stack tensors of different lengths ``(L_i, *)`` into ``(T, B, *)`` (``(B, T, *)``
    with ``batch_first``), padding with ``padding_value`` on ``padding_side``."""
    if padding_side not in ("left", "right"):
        raise ValueError(
            f"Expected padding_side to be one of left or right, but got {padding_side}."
        )
    if not isinstance(sequences, (list, tuple)):
        sequences = list(sequences.unbind(0)) if hasattr(sequences, "unbind") else list(sequences)
    tensors = _has_tensor((sequences,)) or _has_tensor(tuple(sequences))
    arrays = [jnp.asarray(unwrap(s)) for s in sequences]
    if not arrays:
        raise RuntimeError("received an empty list of sequences")
    T = max(a.shape[0] for a in arrays)
    dtype = jnp.result_type(*arrays)
    rows = []
    for a in arrays:
        pad = [(0, T - a.shape[0]) if padding_side == "right" else (T - a.shape[0], 0)]
        pad += [(0, 0)] * (a.ndim - 1)
        rows.append(jnp.pad(a.astype(dtype), pad, constant_values=padding_value))
    out = jnp.stack(rows, axis=0 if batch_first else 1)
    return wrap(out) if tensors else out


def unpad_sequence(padded_sequences: Any, lengths: Any, batch_first: bool = False) -> list:
    """The inverse of :func:`pad_sequence`: a list of the ``lengths[i]``-long sequences."""
    lengths_np = _concrete_ints(lengths, "unpad_sequence")
    x = jnp.asarray(unwrap(padded_sequences))
    if not batch_first:
        x = jnp.swapaxes(x, 0, 1)
    out = [x[i, : int(n)] for i, n in enumerate(lengths_np)]
    return _like(out, padded_sequences)


def pack_sequence(sequences: Sequence[Any], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of tensors of different lengths (``pad_sequence`` then
    ``pack_padded_sequence``)."""
    lengths = [int(unwrap(s).shape[0]) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The inverse of :func:`pack_sequence`: the list of sequences, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
