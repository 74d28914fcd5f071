"""``torch.utils.tensorboard`` on jaxmod: ``SummaryWriter`` logs scalars, histograms,
images, text, hparams, PR curves, audio, meshes and embeddings into TensorBoard event
files, the same files torch writes (both build on the ``tensorboard`` package's protos and
``EventFileWriter``). Values may be ``jaxmod.Tensor``s, jax arrays, numpy arrays or Python
numbers. Like torch's module it needs ``tensorboard`` (``pip install jaxmod-nn[tensorboard]``).
"""

try:
    import tensorboard as _tb
except ImportError as e:  # torch's message, plus how to get it
    raise ImportError(
        "TensorBoard logging requires TensorBoard version 1.15 or above (pip install tensorboard)"
    ) from e


def _version(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        out.append(int(digits))
    return tuple(out)


if _version(getattr(_tb, "__version__", "0")) < (1, 15):
    raise ImportError("TensorBoard logging requires TensorBoard version 1.15 or above")

from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: E402

from jaxmod.utils.tensorboard import summary  # noqa: E402
from jaxmod.utils.tensorboard.writer import FileWriter, SummaryWriter  # noqa: E402

__all__ = ["FileWriter", "RecordWriter", "SummaryWriter", "summary"]
