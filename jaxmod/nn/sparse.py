"""Embedding layers: ``Embedding`` and ``EmbeddingBag`` (torch's arguments and initialisation).

Differences from torch that follow from JAX arrays:

* ``sparse=True`` is accepted and shown in ``repr`` but gradients are always dense;
* ``max_norm`` renormalises the looked-up rows of ``weight`` like torch (the gradient
  passes through the renormalisation unscaled, as in torch) and writes the renormalised
  rows back into ``weight`` when that is possible: eagerly and inside ``jaxmod.jit``
  (where the write is kept as state), not inside ``jaxmod.grad`` (whose parameter
  values are restored afterwards) nor inside a plain JAX transform.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core import state
from jaxmod.nn import _typerule, init
from jaxmod.nn import functional as F
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Parameter, _unwrap

__all__ = ["Embedding", "EmbeddingBag"]


def _check_padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError("Padding_idx must be within num_embeddings")
    return padding_idx % num_embeddings


def _indices(module: Module, input: Any) -> jax.Array:
    idx = jnp.asarray(_unwrap(input))
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise TypeError(
            f"{module!r} expects integer indices, got an input of dtype {idx.dtype} and "
            f"shape {tuple(idx.shape)}"
        )
    return idx


def _weight(module: Any, idx: jax.Array) -> jax.Array:
    """``module.weight``, with the rows ``idx`` renormalised to ``max_norm`` if it is set."""
    w = _unwrap(module.weight)
    if module.max_norm is None:
        return w
    frozen = jax.lax.stop_gradient(w)
    used = jnp.zeros((w.shape[0],), bool).at[idx.reshape(-1)].set(True)
    norm = jnp.linalg.norm(frozen, ord=module.norm_type, axis=1, keepdims=True)
    scale = jnp.where(used[:, None] & (norm > module.max_norm), module.max_norm / (norm + 1e-7), 1)
    renormed = (frozen * scale).astype(w.dtype)
    if not isinstance(renormed, jax.core.Tracer) or state.ctx.lift_depth:
        module.weight._value = renormed  # torch renormalises the weight in place
    return w + jax.lax.stop_gradient(renormed - w)


class Embedding(Module):
    """A lookup table: integer indices of any shape ``(*)`` give rows ``(*, embedding_dim)``.

    Args:
        num_embeddings: size of the table.
        embedding_dim: size of each row.
        padding_idx: a row that is initialised to zero and gets no gradient.
        max_norm: rows looked up with a larger ``norm_type``-norm are rescaled to it.
        norm_type: the norm of ``max_norm``.
        scale_grad_by_freq: divide gradients by each index's count in the batch.
        sparse: accepted for compatibility; gradients are dense.
        _weight: an initial table of shape ``(num_embeddings, embedding_dim)``.
        _freeze: make ``weight`` not require gradients.
        device: where to place the parameter.
        dtype: parameter dtype (default float32).

    ``weight`` is drawn from ``N(0, 1)``, with the ``padding_idx`` row zero.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _check_padding_idx(padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        if _weight is None:
            shape = (num_embeddings, embedding_dim)
            self.weight = Parameter(init._filled(shape, 0, dtype), not _freeze)
            self.reset_parameters()
        else:
            if list(np.shape(_unwrap(_weight))) != [num_embeddings, embedding_dim]:
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight, requires_grad=not _freeze)
        self.sparse = sparse
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw ``weight`` from ``N(0, 1)`` and zero the ``padding_idx`` row."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            self.weight._value = self.weight._value.at[self.padding_idx].set(0)

    def forward(self, input: Any) -> jax.Array:
        idx = _indices(self, input)
        return F.embedding(
            idx, _weight(self, idx), self.padding_idx, None, self.norm_type,
            self.scale_grad_by_freq, self.sparse,
        )  # fmt: skip

    def extra_repr(self) -> str:
        s = "{num_embeddings}, {embedding_dim}"
        if self.padding_idx is not None:
            s += ", padding_idx={padding_idx}"
        if self.max_norm is not None:
            s += ", max_norm={max_norm}"
        if self.norm_type != 2:
            s += ", norm_type={norm_type}"
        if self.scale_grad_by_freq is not False:
            s += ", scale_grad_by_freq={scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s.format(**self.__dict__)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding holding ``embeddings`` (2-D); ``freeze`` sets ``requires_grad=False``.

        The ``padding_idx`` row is used as given (not zeroed), as in torch.
        """
        shape = np.shape(_unwrap(embeddings))
        if len(shape) != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = shape
        return cls(
            num_embeddings=rows,
            embedding_dim=cols,
            _weight=embeddings,
            _freeze=freeze,
            padding_idx=padding_idx,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
        )


class EmbeddingBag(Module):
    """Sums, means or maxes of bags of embeddings, without materialising the rows per bag.

    Args:
        num_embeddings: size of the table.
        embedding_dim: size of each row.
        max_norm: rows looked up with a larger ``norm_type``-norm are rescaled to it.
        norm_type: the norm of ``max_norm``.
        scale_grad_by_freq: divide gradients by each index's count in the batch.
        mode: ``'sum'``, ``'mean'`` or ``'max'``.
        sparse: accepted for compatibility; gradients are dense.
        _weight: an initial table of shape ``(num_embeddings, embedding_dim)``.
        include_last_offset: ``offsets`` has one extra final entry (CSR style).
        padding_idx: a row initialised to zero and left out of every bag.
        device: where to place the parameter.
        dtype: parameter dtype (default float32).

    With ``scale_grad_by_freq`` each row's gradient is divided by that index's count in
    the batch, as documented; torch 2.13's CPU kernel divides by other counts in some
    batches (e.g. ``[[3, 3, 3, 3, 1, 2, 2]]`` gives row 3 the gradient 2, not 1).

    ``forward(input, offsets=None, per_sample_weights=None)`` takes ``(B, N)`` indices
    (one bag per row), or 1-D indices with ``offsets`` giving each bag's start.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: Any = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = _check_padding_idx(padding_idx, num_embeddings)
        if _weight is None:
            shape = (num_embeddings, embedding_dim)
            self.weight = Parameter(init._filled(shape, 0, dtype))
            self.reset_parameters()
        else:
            if list(np.shape(_unwrap(_weight))) != [num_embeddings, embedding_dim]:
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight)
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw ``weight`` from ``N(0, 1)`` and zero the ``padding_idx`` row."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._value = self.weight._value.at[self.padding_idx].set(0)

    def forward(self, input: Any, offsets: Any = None, per_sample_weights: Any = None) -> jax.Array:
        idx = _indices(self, input)
        if idx.ndim not in (1, 2):
            raise ValueError(
                f"{self!r} expects 1D (with offsets) or 2D indices, got an input of shape "
                f"{tuple(idx.shape)}"
            )
        if idx.ndim == 1 and offsets is None:
            raise ValueError(f"{self!r}: 1D indices need offsets")
        if idx.ndim == 2 and offsets is not None:
            raise ValueError(f"{self!r}: with 2D indices, offsets has to be None")
        return F.embedding_bag(
            idx,
            _weight(self, idx),
            offsets,
            None,
            self.norm_type,
            self.scale_grad_by_freq,
            self.mode,
            self.sparse,
            per_sample_weights,
            self.include_last_offset,
            self.padding_idx,
        )

    def extra_repr(self) -> str:
        s = "{num_embeddings}, {embedding_dim}"
        if self.max_norm is not None:
            s += ", max_norm={max_norm}"
        if self.norm_type != 2:
            s += ", norm_type={norm_type}"
        if self.scale_grad_by_freq is not False:
            s += ", scale_grad_by_freq={scale_grad_by_freq}"
        s += ", mode={mode}"
        if self.padding_idx is not None:
            s += ", padding_idx={padding_idx}"
        return s.format(**{k: repr(v) for k, v in self.__dict__.items()})

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
    ) -> EmbeddingBag:
        """An EmbeddingBag holding ``embeddings`` (2-D); ``freeze`` sets ``requires_grad=False``."""
        shape = np.shape(_unwrap(embeddings))
        if len(shape) != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = shape
        bag = cls(
            num_embeddings=rows,
            embedding_dim=cols,
            _weight=embeddings,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            mode=mode,
            sparse=sparse,
            include_last_offset=include_last_offset,
            padding_idx=padding_idx,
        )
        bag.weight.requires_grad = not freeze
        return bag


_typerule.tensor_forwards(globals())
