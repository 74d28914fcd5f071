"""``torch.fx``'s names that model files use at import time.

torchvision's ops call ``torch.fx.wrap("stochastic_depth")`` when imported, to keep a
function a leaf under symbolic tracing. jaxmod traces with JAX, not torch.fx, so ``wrap``
is a no-op that returns its argument; symbolic tracing itself is not provided.
"""

from __future__ import annotations

from typing import Any

__all__ = ["wrap", "symbolic_trace"]


def wrap(fn_or_name: Any) -> Any:
    """Accepted and ignored (torch.fx's leaf marker): returns ``fn_or_name``."""
    return fn_or_name


def symbolic_trace(root: Any, *args: Any, **kwargs: Any) -> Any:
    """Not provided: jaxmod programs are traced by JAX (``jaxmod.jit(...).lower(...)``
    gives the program as StableHLO text)."""
    raise NotImplementedError(
        "torch.fx.symbolic_trace has no jaxmod equivalent: JAX traces the program instead; "
        "jaxmod.jit(fn).lower(*args).as_text() shows it, jaxmod.export(model, x) exports it"
    )
