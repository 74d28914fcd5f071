"""``torch.version``: what scripts print or check about the build (``torch.version.cuda``
is ``None`` on a CPU build, as here: JAX, not jaxmod, talks to CUDA)."""

from __future__ import annotations

__all__ = ["__version__", "cuda", "hip", "debug", "git_version"]

__version__ = "0.1.0"
cuda: str | None = None
hip: str | None = None
debug = False
git_version = "unknown"
