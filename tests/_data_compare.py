"""Comparing batches of jaxmod.utils.data with torch.utils.data's (tests/test_data*.py)."""

from __future__ import annotations

import jax
import numpy as np


def canon(dtype) -> str:
    """A dtype (numpy, JAX or torch) as JAX would store it (float64 -> float32 without x64)."""
    name = str(dtype).removeprefix("torch.")
    return str(jax.dtypes.canonicalize_dtype(np.dtype(name)))


def plain(x):
    """A collated batch (torch's or ours) as comparable Python values: arrays become
    ("array", canonical dtype, nested lists); containers keep their type name and order."""
    if hasattr(x, "dtype") and hasattr(x, "shape"):  # numpy (scalars too), JAX, torch
        return ("array", canon(x.dtype), np.asarray(x).tolist())
    if isinstance(x, dict):
        return (type(x).__name__, [(k, plain(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [plain(v) for v in x])
    return x
