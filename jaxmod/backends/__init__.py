"""``torch.backends``: the flags torch programs commonly set.

They are accepted and remembered but change nothing: XLA chooses its own convolution
algorithms (``cudnn.benchmark``), runs deterministically on CPU and GPU except for some
scatter-adds, and takes float32 matmul precision from
``jaxmod.set_float32_matmul_precision`` (or ``jax_default_matmul_precision``).
"""

from jaxmod.backends import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
