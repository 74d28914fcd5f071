"""Big, sharded or asynchronous checkpoints with orbax (an optional dependency)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from jaxmod._tensor.base import unwrap_tree
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

    A tree saved through it goes to orbax with its ``jaxmod.Tensor`` values as their
    arrays (``model.state_dict()`` values are detached Tensors, as torch's are), so a restore
    against a tree of arrays or ``jax.ShapeDtypeStruct`` matches. With orbax's own
    checkpointers, pass the arrays:
    ``jax.tree_util.tree_map(jnp.asarray, model.state_dict(), is_leaf=jaxmod.is_tensor)``.

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
    return _manager_class(ocp)(
        os.path.abspath(os.fspath(directory)),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=options,
    )


def _manager_class(ocp: Any) -> type:
    """orbax's ``CheckpointManager`` whose ``save`` passes Tensors as their arrays."""

    class CheckpointManager(ocp.CheckpointManager):
        def save(self, step: int, *args: Any, **kwargs: Any) -> bool:
            item_args = kwargs.get("args")
            if isinstance(item_args, ocp.args.StandardSave):
                kwargs["args"] = dataclasses.replace(item_args, item=unwrap_tree(item_args.item))
            if args and kwargs.get("args") is None:  # the older save(step, items) form
                args = (unwrap_tree(args[0]), *args[1:])
            return super().save(step, *args, **kwargs)

    return CheckpointManager
