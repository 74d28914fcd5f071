"""``torch.backends.cudnn`` flags (accepted, no effect on XLA)."""

from __future__ import annotations

from jaxmod import cuda as _cuda

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """Whether a GPU is available to JAX."""
    return _cuda.is_available()


def version() -> None:
    """No cuDNN version is exposed through JAX: None."""
    return None
