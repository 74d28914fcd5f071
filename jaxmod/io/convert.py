"""Porting helpers: rename state_dict keys and transpose 2-D weights."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from jaxmod.io._common import unwrap


def convert_state_dict(
    sd: Mapping[str, Any],
    rename: Mapping[str, str] | None = None,
    transpose: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Rename keys and transpose 2-D weights of a state_dict, e.g. to port foreign weights.

    Args:
        sd: ``{name: array}``; values are numpy/JAX arrays or jaxmod boxes.
        rename: ``{pattern: replacement}``. Each pattern is a regular expression applied to
            every key with ``re.sub(pattern, replacement, key)``, in the dict's order, each on
            the result of the previous one. Anchor prefixes (``r"^encoder\\."``) and escape dots
            to avoid matching inside names; replacements may use groups (``r"\\1"``).
        transpose: key names or regular expressions; an array is transposed when a pattern
            equals, or ``re.fullmatch``-es, its original key or its renamed key (useful for
            Keras/Flax ``Dense`` kernels, which are ``(in, out)`` where torch's ``Linear``
            weight is ``(out, in)``). Matched arrays must be 2-D.

    Returns:
        A new dict in the same key order. Values not transposed are the same objects.

    Raises:
        ValueError: two keys are renamed to the same name, or a matched array is not 2-D.
        KeyError: a ``transpose`` pattern matches no key (likely a typo).
    """
    rules = [(re.compile(p), r) for p, r in (rename or {}).items()]
    patterns = [(p, re.compile(p)) for p in (transpose or ())]
    used = [False] * len(patterns)
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in sd.items():
        new = key
        for rx, repl in rules:
            new = rx.sub(repl, new)
        if new in out:
            raise ValueError(
                f"convert_state_dict: {key!r} and {origin[new]!r} are both renamed to {new!r}"
            )
        origin[new] = key
        hit = False
        for i, (p, rx) in enumerate(patterns):
            if p in (key, new) or rx.fullmatch(key) or rx.fullmatch(new):
                used[i] = hit = True
        if hit:
            a = unwrap(value)
            if np.ndim(a) != 2:
                raise ValueError(
                    f"convert_state_dict: cannot transpose {key!r}: shape {np.shape(a)} is not 2-D"
                )
            value = np.ascontiguousarray(a.T) if isinstance(a, np.ndarray) else a.T
        out[new] = value
    missing = [p for (p, _), u in zip(patterns, used) if not u]
    if missing:
        raise KeyError(f"convert_state_dict: transpose patterns matched no key: {missing}")
    return out
