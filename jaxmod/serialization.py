"""Saving and loading checkpoints (the historical import path of :mod:`jaxmod.io`).

Everything lives in :mod:`jaxmod.io`; this module re-exports its public names so that
``jaxmod.serialization.save``, ``load``, ``CheckpointError``, ``UnsafeCheckpointError``,
``convert_state_dict``, ``checkpoint_manager``, ``save_sharded`` and ``load_sharded`` keep
working.
"""

import jaxmod.io as _io
from jaxmod.io import *  # noqa: F403  (exactly jaxmod.io.__all__)

__all__ = list(_io.__all__)
