"""Removable handles for hooks, with torch's ids and ordering rules."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

from jaxmod._core import state

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """A handle that removes a hook from the dictionaries it was registered in.

    Ids come from one counter shared by every hook (module and global), so hooks
    registered later always sort after earlier ones, as in torch.

    Args:
        hooks_dict: the ordered dict holding the hook under ``self.id``.
        extra_dict: one dict or a list of dicts that also hold ``self.id`` (flags such
            as "called with kwargs") and must forget it on removal.
    """

    id: int
    next_id: int = 0

    def __init__(self, hooks_dict: OrderedDict, *, extra_dict: Any = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        extras = [extra_dict] if isinstance(extra_dict, dict) else (extra_dict or [])
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extras)

    def remove(self) -> None:
        """Remove the hook; removing twice is harmless."""
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None and self.id in d:
                del d[self.id]
        state.bump()

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()
