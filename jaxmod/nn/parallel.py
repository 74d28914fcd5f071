"""``torch.nn.parallel``: ``DataParallel`` and ``data_parallel`` as single-process calls.

torch's ``DataParallel`` copies the module to every GPU of one process, splits the batch
and gathers the outputs; on a machine without GPUs it just calls the module. jaxmod's
arrays are not tied to one device and XLA runs a batch across devices when it is sharded,
so here both always call the module on the inputs as given (torch's single-device
behaviour). To split batches across devices, shard them: ``jaxmod.distributed.replicate``
the model and ``shard_batch`` the inputs (see docs/distributed.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from jaxmod.nn import _process_group
from jaxmod.nn.module import Module

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]


class DataParallel(Module):
    """Wraps ``module`` as torch's ``DataParallel`` does: ``.module``, ``"module."``
    state_dict keys and repr; ``forward`` calls ``module(*inputs, **kwargs)``.

    ``device_ids``, ``output_device`` and ``dim`` are accepted; ``device_ids`` is ``[]``
    as in torch on a machine without GPUs (no replicas are made).
    """

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[Any] | None = None,
        output_device: Any = None,
        dim: int = 0,
    ) -> None:
        super().__init__()
        self.module = module
        self.device_ids: list[Any] = []

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)


class DistributedDataParallel(DataParallel):
    """torch's DDP for one process: needs ``init_process_group`` first (torch's error
    otherwise), then wraps ``module`` like :class:`DataParallel` (``.module``, the
    ``"module."`` state_dict prefix, ``no_sync()``). Gradients need no all-reduce with one
    process; for several devices shard instead (``jaxmod.distributed.replicate``)."""

    def __init__(self, module: Module, device_ids: Sequence[Any] | None = None,
                 output_device: Any = None, dim: int = 0, **kwargs: Any) -> None:  # fmt: skip
        if not _process_group.is_initialized():
            raise ValueError(_process_group._NOT_INIT)
        super().__init__(module, device_ids, output_device, dim)

    def no_sync(self) -> contextlib.AbstractContextManager:
        """Skip the gradient all-reduce inside (nothing to skip with one process)."""
        return contextlib.nullcontext()


def data_parallel(
    module: Module,
    inputs: Any,
    device_ids: Sequence[Any] | None = None,
    output_device: Any = None,
    dim: int = 0,
    module_kwargs: dict[str, Any] | None = None,
) -> Any:
    """``module(*inputs, **module_kwargs)`` (``inputs`` may be one input or a tuple).

    torch runs this on its GPUs, and on a single device calls the module the same way.
    """
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    return module(*inputs, **(module_kwargs or {}))
