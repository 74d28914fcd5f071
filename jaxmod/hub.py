"""``torch.hub``: downloading checkpoints by URL into a local cache.

``load_state_dict_from_url(url)`` downloads once into ``get_dir()/checkpoints`` (the
``TORCH_HOME`` / ``XDG_CACHE_HOME`` rules of torch, so files torch already cached are
found) and returns :func:`jaxmod.load` of the file, ready for ``load_state_dict``.
``check_hash=True`` checks the SHA-256 prefix torch's file names carry
(``resnet18-f37072fd.pth``). ``torch.hub.load("owner/repo", "model")`` runs a repository's
``hubconf.py``, which is torch code: that raises and says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
from typing import Any

from jaxmod.serialization import load as _load

__all__ = ["load_state_dict_from_url", "download_url_to_file", "get_dir", "set_dir", "load",
           "list", "help"]  # fmt: skip

_DIR: list[str] = []
_HASH = re.compile(r"-([a-f0-9]*)\.")


def get_dir() -> str:
    """The hub cache directory: ``set_dir``'s, else ``$TORCH_HOME/hub``, else
    ``$XDG_CACHE_HOME/torch/hub`` (``~/.cache/torch/hub``), as torch resolves it."""
    if _DIR:
        return _DIR[0]
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return os.path.join(home, "hub")


def set_dir(d: str | os.PathLike) -> None:
    """Use ``d`` as the hub cache directory."""
    _DIR[:] = [os.path.expanduser(os.fspath(d))]


def download_url_to_file(url: str, dst: str, hash_prefix: str | None = None,
                         progress: bool = True) -> None:  # fmt: skip
    """Download ``url`` to ``dst`` (through a temporary file, so a failed download leaves
    nothing); with ``hash_prefix``, the file's SHA-256 must start with it."""
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url) as src:  # noqa: S310
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if hash_prefix is not None and not digest.hexdigest().startswith(hash_prefix):
            raise RuntimeError(
                f'invalid hash value (expected "{hash_prefix}", got "{digest.hexdigest()}")'
            )
        shutil.move(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_state_dict_from_url(url: str, model_dir: str | None = None, map_location: Any = None,
                             progress: bool = True, check_hash: bool = False,
                             file_name: str | None = None,
                             weights_only: bool = False) -> dict[str, Any]:  # fmt: skip
    """Download a checkpoint (once) and load it with :func:`jaxmod.load`."""
    model_dir = model_dir or os.path.join(get_dir(), "checkpoints")
    name = file_name or os.path.basename(urllib.parse.urlparse(url).path)
    cached = os.path.join(model_dir, name)
    if not os.path.exists(cached):
        match = _HASH.search(name) if check_hash else None
        download_url_to_file(url, cached, match.group(1) if match else None, progress)
    return _load(cached, map_location=map_location, weights_only=weights_only)


def _repo_code(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(
        "torch.hub.load / list / help run a repository's hubconf.py, which is torch code "
        "jaxmod cannot run. Build the model from its source file with jaxmod (import "
        "jaxmod as torch) and load its weights with torch.hub.load_state_dict_from_url(url)."
    )


load = list = help = _repo_code  # noqa: A001  (torch's names)
