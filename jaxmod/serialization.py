"""Saving and loading checkpoints (the historical import path of :mod:`jaxmod.io`).

Everything lives in :mod:`jaxmod.io`; this module re-exports its public names so that
``jaxmod.serialization.save``, ``load``, ``CheckpointError``, ``UnsafeCheckpointError``,
``convert_state_dict`` and ``checkpoint_manager`` keep working.
"""

from jaxmod.io import (
    CheckpointError,
    UnsafeCheckpointError,
    checkpoint_manager,
    convert_state_dict,
    load,
    load_sharded,
    save,
    save_sharded,
)

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "save",
    "load",
    "save_sharded",
    "load_sharded",
    "convert_state_dict",
    "checkpoint_manager",
]
