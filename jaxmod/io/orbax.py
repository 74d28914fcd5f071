"""Big, sharded or asynchronous checkpoints with orbax (an optional dependency)."""

from __future__ import annotations

import os
from typing import Any

from jaxmod.io._common import PathLike


def checkpoint_manager(
    directory: PathLike, max_to_keep: int | None = 3, async_save: bool = True
) -> Any:
    """An ``orbax.checkpoint.CheckpointManager`` for pytrees of arrays, e.g. state_dicts.

    Use orbax for large or sharded models: each host writes its own shards, restores can
    target a sharding, and saves can run in the background. Save with
    ``mngr.save(step, args=ocp.args.StandardSave(state))``; with ``async_save=True`` the call
    returns once arrays are copied off the device, and ``mngr.wait_until_finished()`` blocks
    until the checkpoint is durable (call it before exiting or reading the files). Restore
    with ``mngr.restore(step)`` or ``mngr.restore(step, args=ocp.args.StandardRestore(like))``
    where ``like`` is a pytree of arrays or ``jax.ShapeDtypeStruct`` with shardings.

    Args:
        directory: where step subdirectories go (created if missing; made absolute).
        max_to_keep: how many recent steps to keep (``None`` keeps all).
        async_save: save in a background thread.

    Raises:
        ImportError: ``orbax-checkpoint`` is not installed (it is an optional dependency).
    """
    try:
        import orbax.checkpoint as ocp
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "jaxmod.serialization.checkpoint_manager needs orbax: pip install orbax-checkpoint"
        ) from e
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True
    )
    return ocp.CheckpointManager(
        os.path.abspath(os.fspath(directory)),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=options,
    )
