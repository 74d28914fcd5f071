"""``torch._dynamo``: what scripts touch of torch's graph capturer (``config``,
``reset()``, ``disable``, ``optimize``, ``is_compiling``); see :mod:`jaxmod.compiler`."""

from __future__ import annotations

from jaxmod.compiler import (  # noqa: F401  (re-exported as torch._dynamo's names)
    allow_in_graph,
    assume_constant_result,
    config,
    disable,
    is_compiling,
    list_backends,
    mark_dynamic,
    mark_static,
    optimize,
    reset,
)

__all__ = ["allow_in_graph", "assume_constant_result", "config", "disable", "is_compiling",
           "list_backends", "mark_dynamic", "mark_static", "optimize", "reset"]  # fmt: skip
