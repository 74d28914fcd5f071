"""L-BFGS (placeholder until the optax-based implementation lands)."""

from __future__ import annotations

__all__ = ["LBFGS"]


class LBFGS:
    """Not implemented yet."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("LBFGS is not implemented yet")
