"""Arrays for checkpoint tests: dtype tables, random bit patterns, bit-exact comparison."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from jaxmod.io import load as _load

DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
    "float64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "bool": np.bool_,
}
# dtypes torch's format stores beyond those (safetensors has no complex)
MORE_DTYPES = {
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2,
    "complex64": np.complex64,
}


def random_array(name: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Random bits of dtype ``name`` (floats include NaN payloads, infs and denormals)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype({**DTYPES, **MORE_DTYPES}[name])
    n = int(np.prod(shape))
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    return np.frombuffer(rng.bytes(n * dt.itemsize), dtype=dt).reshape(shape).copy()


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class Box:
    """Stands in for jaxmod's Parameter/Buffer boxes: an object holding ``_value``."""

    def __init__(self, value):
        self._value = value


def load_exact(path, **kwargs):
    """``jaxmod.io.load`` with every array as the file stores it (numpy, exact dtype), the
    view the format tests check bits in; the default (Tensors) is tested on its own."""
    return _load(path, map_location="numpy", **kwargs)
