"""``torch.version``: what scripts print or check about the build (``torch.version.cuda``
is ``None`` on a CPU build, as here: JAX, not jaxmod, talks to CUDA).

``__version__`` (also ``jaxmod.__version__``) is the torch release whose API jaxmod
mirrors, with jaxmod's own version as the local part: ``2.13.0+jaxmod0.1.0``. Scripts
branch on ``torch.__version__`` (``>= "1.8"``, ``packaging.version.parse(...) >= "2.0"``,
``>= (2, 0)``) to choose torch-2 code paths, and that is the API jaxmod answers.
:data:`jaxmod_version` is the package's version alone.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["__version__", "cuda", "hip", "debug", "git_version", "jaxmod_version", "TorchVersion"]

jaxmod_version = "0.1.0"
TORCH_API = "2.13.0"


class TorchVersion(str):
    """A version string that also compares with tuples and version strings by release
    numbers, like ``torch.torch_version.TorchVersion``: ``torch.__version__ >= (2, 0)``."""

    __slots__ = ()

    @staticmethod
    def _release(v: Any) -> tuple[int, ...]:
        if isinstance(v, tuple):
            return tuple(int(x) for x in v)
        m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(v))
        if m is None:
            raise ValueError(f"cannot compare a version with {v!r}")
        return tuple(int(x) for x in m.group(1).split("."))

    def _cmp(self, other: Any) -> int:
        a, b = self._release(self), self._release(other)
        n = max(len(a), len(b))
        a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
        return (a > b) - (a < b)

    def __lt__(self, other: Any) -> bool:
        return self._cmp(other) < 0

    def __le__(self, other: Any) -> bool:
        return self._cmp(other) <= 0

    def __gt__(self, other: Any) -> bool:
        return self._cmp(other) > 0

    def __ge__(self, other: Any) -> bool:
        return self._cmp(other) >= 0

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, tuple):
            return self._cmp(other) == 0
        return str.__eq__(self, other)

    def __ne__(self, other: Any) -> bool:
        return not self == other

    __hash__ = str.__hash__


__version__ = TorchVersion(f"{TORCH_API}+jaxmod{jaxmod_version}")
cuda: str | None = None
hip: str | None = None
debug = False
git_version = "unknown"
