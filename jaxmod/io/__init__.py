"""Checkpoint files: safetensors, PyTorch ``torch.save`` files, sharded safetensors, orbax.

* :func:`save` writes a state_dict or a nested training checkpoint, atomically, in the
  format its name says: ``*.safetensors`` as safetensors (on the ``safetensors`` library),
  any other name (``.pt``, ``.pth``, ``.bin``) in ``torch.save``'s zip format, which
  ``torch.load(path, weights_only=True)`` reads. Torch is never imported.
* :func:`load` reads those files, any other safetensors file, PyTorch checkpoints (the zip
  format and the legacy pre-1.6 format) and Hugging Face sharded safetensors, **without
  importing torch**. Torch pickles go through a restricted unpickler that only rebuilds
  tensors, Parameters, ``OrderedDict`` and a few builtins; anything else raises
  :class:`UnsafeCheckpointError` before it can run.
* :func:`save_sharded` / :func:`load_sharded` write and read Hugging Face-style sharded
  safetensors (``model.safetensors.index.json`` plus shards), one shard at a time.
* :func:`convert_state_dict` renames keys and transposes 2-D weights when porting weights.
* :func:`checkpoint_manager` returns an ``orbax.checkpoint.CheckpointManager`` for large or
  sharded models (orbax is an optional dependency, imported lazily).

:func:`load` gives :class:`jaxmod.Tensor` values, as ``torch.load`` gives tensors (with x64
off float64 becomes float32 and an int64 that does not fit int32 raises); with
``map_location="numpy"`` it gives numpy arrays with every stored dtype, and ``map_location``
or ``sharding`` place the Tensors on a device.

Modules: ``safetensors`` (safetensors files and the JSON skeleton of nested checkpoints),
``torch_pickle`` (the restricted reader of torch files), ``torch_writer`` (the torch zip
writer), ``sharded``, ``convert``, ``orbax``, ``checkpoint`` (format dispatch).
"""

from jaxmod.io._common import CheckpointError, UnsafeCheckpointError
from jaxmod.io.checkpoint import load, save
from jaxmod.io.convert import convert_state_dict
from jaxmod.io.orbax import checkpoint_manager
from jaxmod.io.sharded import load_sharded, save_sharded

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
