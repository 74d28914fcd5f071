"""jaxmod: PyTorch-style ``nn.Module`` classes that run on JAX and compile with XLA."""

from jaxmod import cuda, distributed, func, nn, optim, random
from jaxmod._autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from jaxmod._core.state import StaleStateError, TracerLeakError
from jaxmod.export import export
from jaxmod.random import (
    Generator,
    default_generator,
    full,
    get_rng_state,
    initial_seed,
    manual_seed,
    ones,
    rand,
    randint,
    randn,
    seed,
    set_rng_state,
    zeros,
)
from jaxmod.serialization import load, save
from jaxmod.summary import summary
from jaxmod.transforms import (
    Grads,
    Jit,
    TraceError,
    checkpoint,
    compile,
    grad,
    jit,
    scan_layers,
    stack_modules,
    value_and_grad,
    vmap,
)

__version__ = "0.1.0"

__all__ = [
    "cuda",
    "func",
    "nn",
    "distributed",
    "optim",
    "random",
    "Generator",
    "default_generator",
    "manual_seed",
    "initial_seed",
    "seed",
    "rand",
    "randn",
    "randint",
    "zeros",
    "ones",
    "full",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "jit",
    "Jit",
    "grad",
    "value_and_grad",
    "vmap",
    "checkpoint",
    "compile",
    "scan_layers",
    "stack_modules",
    "Grads",
    "TraceError",
    "StaleStateError",
    "TracerLeakError",
    "get_rng_state",
    "set_rng_state",
    "save",
    "load",
    "summary",
    "export",
]
