"""jaxmod: PyTorch-style ``nn.Module`` classes that run on JAX and compile with XLA."""

from jaxmod import random
from jaxmod.random import Generator, manual_seed, ones, rand, randint, randn, zeros

__version__ = "0.1.0"
