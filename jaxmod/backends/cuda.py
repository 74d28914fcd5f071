"""``torch.backends.cuda`` flags (accepted, no effect on XLA)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from jaxmod import cuda as _cuda


class _Matmul:
    """``torch.backends.cuda.matmul``: ``allow_tf32`` and the reduced-precision flags."""

    allow_tf32 = False
    allow_bf16_reduced_precision_reduction = True
    allow_fp16_reduced_precision_reduction = True


matmul = _Matmul()
_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def is_built() -> bool:
    """Whether a GPU is available to JAX."""
    return _cuda.is_available()


def flash_sdp_enabled() -> bool:
    """Recorded flag."""
    return _sdp["flash"]


def enable_flash_sdp(enabled: bool) -> None:
    """Recorded flag (XLA picks the attention kernel)."""
    _sdp["flash"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    """Recorded flag."""
    return _sdp["mem_efficient"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    """Recorded flag."""
    _sdp["mem_efficient"] = bool(enabled)


def math_sdp_enabled() -> bool:
    """Recorded flag."""
    return _sdp["math"]


def enable_math_sdp(enabled: bool) -> None:
    """Recorded flag."""
    _sdp["math"] = bool(enabled)


@contextlib.contextmanager
def sdp_kernel(**flags: bool) -> Iterator[None]:
    """Context manager accepting torch's kernel flags (no effect)."""
    yield
