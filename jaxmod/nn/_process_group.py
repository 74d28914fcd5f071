"""torch.distributed's process-group calls for one process (``world_size == 1``).

Training scripts written for DDP call ``dist.is_available()``, ``is_initialized()``,
``get_rank()``, ``get_world_size()``, ``barrier()`` and ``all_reduce`` on every path, and
run single-process with ``init_process_group(..., world_size=1)`` or not at all. Here they
answer as torch does for one process: the collectives are identities and the errors are
torch's (``ValueError: Default process group has not been initialized ...``).

Several processes are not run through a process group: jaxmod spreads work over devices
and hosts with ``jax.distributed.initialize`` and a sharded mesh (see
``docs/distributed.md``), so ``init_process_group`` with ``world_size > 1`` raises and
says so.
"""

from __future__ import annotations

import enum
import os
from typing import Any

__all__ = [
    "is_available", "is_initialized", "init_process_group", "destroy_process_group",
    "get_rank", "get_world_size", "get_backend", "barrier", "all_reduce", "reduce",
    "broadcast", "all_gather", "all_gather_object", "broadcast_object_list", "ReduceOp",
    "is_torchelastic_launched",
]  # fmt: skip

_NOT_INIT = (
    "Default process group has not been initialized, please make sure to call init_process_group."
)
_PG: dict[str, Any] = {}


class ReduceOp(enum.Enum):
    """The reductions of ``all_reduce`` / ``reduce`` (one process: all are identities)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


def is_available() -> bool:
    """True: the process-group API is present (for one process)."""
    return True


def is_initialized() -> bool:
    """Whether :func:`init_process_group` was called (and not destroyed since)."""
    return bool(_PG)


def is_torchelastic_launched() -> bool:
    """Whether the script was started by ``torchrun`` (its ``TORCHELASTIC_RUN_ID``)."""
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(
            "Error initializing torch.distributed using env:// rendezvous: environment "
            f"variable {name} expected, but not set"
        )
    return int(value)


def init_process_group(backend: Any = None, init_method: Any = None, timeout: Any = None,
                       world_size: int = -1, rank: int = -1, store: Any = None,
                       group_name: str = "", pg_options: Any = None,
                       device_id: Any = None) -> None:  # fmt: skip
    """Start the (single-process) default group: ``world_size`` and ``rank`` come from the
    arguments or, as in torch's ``env://``, from ``WORLD_SIZE`` / ``RANK``."""
    if _PG:
        raise ValueError("trying to initialize the default process group twice!")
    if world_size == -1:
        world_size = _env_int("WORLD_SIZE") if init_method in (None, "env://") else 1
    if rank == -1:
        rank = _env_int("RANK") if init_method in (None, "env://") else 0
    if world_size != 1:
        raise RuntimeError(
            f"init_process_group(world_size={world_size}): jaxmod runs one process per "
            "process group. To train on several devices, shard the model and batch over a "
            "mesh (jaxmod.distributed.replicate / fully_shard and shard_batch); across "
            "hosts, call jax.distributed.initialize(coordinator_address, num_processes, "
            "process_id) in every process first (docs/distributed.md)."
        )
    if rank != 0:
        raise ValueError(f"rank {rank} is out of range for world_size 1")
    _PG.update(backend=str(backend or "gloo"), rank=0, world_size=1)


def destroy_process_group(group: Any = None) -> None:
    """End the default group (``is_initialized()`` is False again)."""
    _PG.clear()


def _check() -> None:
    if not _PG:
        raise ValueError(_NOT_INIT)


def get_rank(group: Any = None) -> int:
    """This process's rank: 0."""
    _check()
    return _PG["rank"]


def get_world_size(group: Any = None) -> int:
    """The number of processes: 1."""
    _check()
    return _PG["world_size"]


def get_backend(group: Any = None) -> str:
    """The backend name given to :func:`init_process_group` (``"gloo"`` by default)."""
    _check()
    return _PG["backend"]


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None) -> None:
    """Wait for every process: returns at once for one."""
    _check()


def all_reduce(tensor: Any, op: Any = ReduceOp.SUM, group: Any = None,
               async_op: bool = False) -> None:  # fmt: skip
    """Reduce ``tensor`` over the processes in place: unchanged for one process."""
    _check()


def reduce(tensor: Any, dst: int = 0, op: Any = ReduceOp.SUM, group: Any = None,
           async_op: bool = False) -> None:  # fmt: skip
    """Reduce onto rank ``dst``: unchanged for one process."""
    _check()


def broadcast(tensor: Any, src: int = 0, group: Any = None, async_op: bool = False) -> None:
    """Send rank ``src``'s ``tensor`` to all: unchanged for one process."""
    _check()


def all_gather(tensor_list: list, tensor: Any, group: Any = None, async_op: bool = False) -> None:
    """Fill ``tensor_list`` with every process's ``tensor``: one copy for one process."""
    _check()
    if len(tensor_list) != 1:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} entries, world_size is 1")
    tensor_list[0] = tensor.clone() if hasattr(tensor, "clone") else tensor


def all_gather_object(object_list: list, obj: Any, group: Any = None) -> None:
    """Fill ``object_list`` with every process's ``obj``: ``[obj]`` for one process."""
    _check()
    object_list[0] = obj


def broadcast_object_list(object_list: list, src: int = 0, group: Any = None,
                          device: Any = None) -> None:  # fmt: skip
    """Send rank ``src``'s objects to all: unchanged for one process."""
    _check()
