"""Collation: a list of samples -> one batch, as ``torch.utils.data.default_collate``.

Batches are stacked on the host with numpy (JAX-array samples are stacked on their
device), then turned into JAX arrays by one function, :func:`_to_batch`, the single place
that decides what a batch's arrays are. Dtypes follow torch (Python floats are float64,
ints int64) and then JAX's canonical dtypes: without ``jax_enable_x64`` those become
float32 and int32, as every JAX array does.
"""

from __future__ import annotations

import collections.abc as abc
import copy
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._core.cells import is_torch_tensor
from jaxmod._tensor import base as _tb
from jaxmod.nn.parameter import _torch_to_numpy

__all__ = ["collate", "default_collate", "default_collate_fn_map", "default_convert"]

_STR_OR_OBJECT = re.compile(r"[SaUO]")  # numpy dtype kinds that are not numbers
_ERR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)
CollateFnMap = dict[type | tuple[type, ...], Callable[..., Any]]


def _rebuild_mapping(elem: Any, items: dict[Any, Any]) -> Any:
    """``items`` in the mapping type of ``elem`` (a copy of it), or a dict if that fails."""
    try:
        if isinstance(elem, abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(items)
            return clone
        return type(elem)(items)
    except TypeError:
        return items


def _rebuild_sequence(elem: Any, items: list[Any]) -> Any:
    """``items`` in the sequence type of ``elem`` (a copy of it), or a list if that fails."""
    try:
        if isinstance(elem, abc.MutableSequence):
            clone = copy.copy(elem)
            for i, v in enumerate(items):
                clone[i] = v
            return clone
        return type(elem)(items)
    except TypeError:
        return items


def _walk(data: Any, leaf: Callable[[Any], Any], tuples_as_lists: bool) -> Any:
    """Apply ``leaf`` through mappings, namedtuples and sequences, keeping their types and
    key order (``jax.tree_util`` would sort dict keys). Strings and bytes are leaves."""
    if isinstance(data, abc.Mapping):
        return _rebuild_mapping(data, {k: _walk(data[k], leaf, tuples_as_lists) for k in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(_walk(d, leaf, tuples_as_lists) for d in data))
    if isinstance(data, tuple):
        items = [_walk(d, leaf, tuples_as_lists) for d in data]
        return items if tuples_as_lists else tuple(items)
    if isinstance(data, abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild_sequence(data, [_walk(d, leaf, tuples_as_lists) for d in data])
    return leaf(data)


def _is_numeric_numpy(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return _STR_OR_OBJECT.search(x.dtype.str) is None
    return isinstance(x, np.generic) and not isinstance(x, (np.str_, np.bytes_, np.object_))


class _Slot:
    """Where the ``i``-th array of a batch goes back after one batched ``device_put``."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


def _to_batch(data: Any, sharding: Any = None) -> Any:
    """The arrays of a collated batch on the device: numpy arrays and torch tensors become
    ``jaxmod.Tensor`` objects (as torch's collate makes tensors) on ``sharding`` (a
    ``jax.sharding.Sharding`` or device; ``None``: the default device, uncommitted); JAX
    arrays stay JAX arrays and Tensors stay Tensors, moved there when ``sharding`` is given;
    anything else (strings, numbers, None) is left alone. The one place that decides a
    batch's type.

    All arrays of the batch go in one ``jax.device_put`` call (one dispatch, not one each).
    """
    arrays: list[Any] = []
    as_tensor: list[bool] = []

    def take(x: Any) -> Any:
        tensor = True  # numpy and torch data become Tensors, as torch's collate makes tensors
        if is_torch_tensor(x):
            x = _torch_to_numpy(x)
        elif isinstance(x, _tb.TensorBase):
            if sharding is None:
                return x
            x = _tb.unwrap(x)
        elif isinstance(x, jax.Array):
            if sharding is None:
                return x
            tensor = False  # a dataset of JAX arrays gives JAX arrays (the type rule)
        elif not _is_numeric_numpy(x):
            return x
        arrays.append(x)
        as_tensor.append(tensor)
        return _Slot(len(arrays) - 1)

    skeleton = _walk(data, take, tuples_as_lists=False)
    if not arrays:
        return skeleton
    if sharding is None:
        placed = jax.device_put(arrays)
    else:
        targets = [_leaf_sharding(a, sharding) for a in arrays]
        if all(getattr(t, "is_fully_addressable", True) for t in targets):
            placed = jax.device_put(arrays, targets)
        else:  # several processes: each gives its part of the global batch
            placed = [jax.make_array_from_process_local_data(t, np.asarray(a))
                      for a, t in zip(arrays, targets)]  # fmt: skip
    placed = [_tb.new(a) if t else a for a, t in zip(placed, as_tensor)]
    return _walk(skeleton, lambda s: placed[s.i] if isinstance(s, _Slot) else s, False)


def _leaf_sharding(x: Any, sharding: Any) -> Any:
    """``sharding`` for one array: a spec for the batch's images, ``P("data", None, ...)``,
    splits its labels (fewer dimensions) over the same leading axes and replicates its
    scalars."""
    if isinstance(sharding, jax.sharding.NamedSharding) and np.ndim(x) < len(sharding.spec):
        spec = jax.sharding.PartitionSpec(*sharding.spec[: np.ndim(x)])
        return jax.sharding.NamedSharding(sharding.mesh, spec)
    return sharding


# ---------------------------------------------------------------- collate functions (host)
def _stack(batch: list[Any], stack: Callable[[list[Any]], Any]) -> Any:
    shape = np.shape(batch[0])
    for i, b in enumerate(batch):
        if np.shape(b) != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 "
                f"and {list(np.shape(b))} at entry {i}"
            )
    return stack(batch)


def collate_jax_array_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """JAX arrays: stacked on their device (one op), not copied through the host."""
    return _stack(batch, jnp.stack)


def collate_tensor_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """``jaxmod.Tensor``s (a ``TensorDataset`` over Tensors yields them): stacked into one
    Tensor, as torch's default_collate stacks tensors."""
    return _tb.wrap(_stack([_tb.unwrap(t) for t in batch], jnp.stack))


def collate_numpy_array_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """Numeric numpy arrays: ``np.stack``; string and object arrays are refused (as torch)."""
    elem = batch[0]
    if _STR_OR_OBJECT.search(elem.dtype.str) is not None:
        raise TypeError(_ERR.format(elem.dtype))
    return _stack(batch, np.stack)


def collate_numpy_scalar_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """Numpy scalars: a 1-D array of their dtype."""
    return np.asarray(batch)


def collate_float_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """Python floats: float64, as torch (float32 once on a device without x64)."""
    return np.asarray(batch, dtype=np.float64)


def collate_int_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """Python ints (and bools): int64 (bool for bools), as torch."""
    return np.asarray(batch)


def collate_str_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """Strings and bytes stay a list."""
    return batch


def collate_torch_tensor_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """torch tensors (from a torch dataset or transform): stacked as numpy on the host."""
    return _stack([_torch_to_numpy(t) for t in batch], np.stack)


default_collate_fn_map: CollateFnMap = {
    _tb.TensorBase: collate_tensor_fn,
    jax.Array: collate_jax_array_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def collate(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """Collate ``batch`` with the functions of ``collate_fn_map``, through containers.

    ``collate_fn_map`` maps a type (or tuple of types) to ``fn(batch, *, collate_fn_map)``;
    the first sample's exact type is looked up, then each key in order with
    ``isinstance``. Mappings, namedtuples and sequences are collated field by field (a
    tuple becomes a list, as in torch). The result's arrays are numpy (host) or JAX arrays;
    :func:`default_collate` then makes them JAX arrays.

    Example:
        >>> def pad_strings(batch, *, collate_fn_map):
        ...     return [s.ljust(8) for s in batch]
        >>> collate(["a", "bc"], collate_fn_map={**default_collate_fn_map, str: pad_strings})
        ['a       ', 'bc      ']
    """
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for key, fn in collate_fn_map.items():
            if isinstance(elem, key):
                return fn(batch, collate_fn_map=collate_fn_map)
        if is_torch_tensor(elem):
            return collate_torch_tensor_fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, abc.Mapping):
        items = {k: collate([d[k] for d in batch], collate_fn_map=collate_fn_map) for k in elem}
        return _rebuild_mapping(elem, items)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)))
    if isinstance(elem, abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)]
        return fields if isinstance(elem, tuple) else _rebuild_sequence(elem, fields)
    raise TypeError(_ERR.format(elem_type))


def _collate_host(batch: list[Any]) -> Any:
    return collate(batch, collate_fn_map=default_collate_fn_map)


def _convert_host(data: Any) -> Any:
    return _walk(data, lambda x: x, tuples_as_lists=True)


def default_collate(batch: list[Any]) -> Any:
    """Stack a list of samples into a batch, with torch's rules.

    Arrays and numbers gain a leading batch dimension and become JAX arrays; strings and
    bytes stay lists; dicts, namedtuples, tuples (returned as lists) and lists are
    collated field by field, keeping key order.

    Example:
        >>> default_collate([{"x": np.zeros(3), "y": 1}, {"x": np.ones(3), "y": 2}])
        {'x': Array([[0., 0., 0.], [1., 1., 1.]], dtype=float32), 'y': Array([1, 2], dtype=int32)}
        >>> default_collate([(0, "a"), (1, "b")])  # as torch: the strings' tuple from zip
        [Array([0, 1], dtype=int32), ('a', 'b')]
    """
    return _to_batch(_collate_host(batch))


def default_convert(data: Any) -> Any:
    """Turn the numpy arrays (and torch tensors) in one sample into JAX arrays, as torch's
    ``default_convert`` (the DataLoader's collate_fn when ``batch_size=None``).

    Python numbers, strings and string arrays are left alone; tuples become lists.
    """
    return _to_batch(_convert_host(data))
