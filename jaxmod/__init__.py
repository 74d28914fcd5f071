"""jaxmod: PyTorch-style ``nn.Module`` classes that run on JAX and compile with XLA."""

from jaxmod import (  # noqa: F401  (subpackages, and torch.* namespaces model files touch)
    _dynamo,
    _hints,
    amp,
    compiler,
    cuda,
    distributed,
    func,
    hub,
    multiprocessing,
    nn,
    onnx,
    optim,
    random,
    version,
)
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
    OutOfMemoryError,
    StateLostError,
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

__version__ = version.__version__

__all__ = [
    "amp",
    "cuda",
    "version",
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
    "OutOfMemoryError",
    "StateLostError",
    "get_rng_state",
    "set_rng_state",
    "save",
    "load",
    "summary",
    "export",
]

# -- torch's auxiliary namespaces that model files touch (issue 18): ``torch.jit.unused``,
# ``is_scripting()`` & co. as attributes of the jaxmod.jit function (still callable as
# before), ``torch.utils.checkpoint`` and ``torch.accelerator``.
from jaxmod import _torch_jit, accelerator, fx, utils  # noqa: E402

_torch_jit.attach(jit)
cuda.OutOfMemoryError = OutOfMemoryError  # ``except torch.cuda.OutOfMemoryError:`` ports
__all__ += ["accelerator", "fx", "utils"]

# -- The torch tensor API (jaxmod._tensor): ``jaxmod.Tensor``, dtypes, ``Size``, ``device``,
# factories and the ``torch.*`` functions. Its ``zeros/ones/full/rand/randn/randint`` (torch
# signatures, returning Tensors) replace jaxmod.random's. ``jaxmod.long`` / ``int64`` /
# ``float64`` / ``double`` resolve on access (32-bit unless x64 is on): module __getattr__.
from jaxmod import _tensor as _tensor_api  # noqa: E402
from jaxmod import backends, fft, linalg, special, testing  # noqa: E402
from jaxmod._tensor import module_getattr as __getattr__  # noqa: E402, F401

globals().update({_n: getattr(_tensor_api, _n) for _n in _tensor_api.NAMES})
globals().update({_n: getattr(nn.functional, _n) for _n in _tensor_api.F_ALIASES
                  if hasattr(nn.functional, _n)})  # fmt: skip
__all__ += [_n for _n in _tensor_api.NAMES + list(_tensor_api.F_ALIASES) if _n not in __all__]
GradScaler = amp.GradScaler  # torch.GradScaler (torch.amp.GradScaler)
__all__ += ["backends", "fft", "linalg", "special", "testing", "GradScaler"]

# -- torch.autograd (Function on jax.custom_vjp, Variable) and torch.distributions
from jaxmod import autograd, distributions  # noqa: E402

__all__ += ["autograd", "distributions"]

# -- torch.sparse (COO tensors stored dense, see jaxmod/sparse.py)
from jaxmod import sparse  # noqa: E402

__all__ += ["sparse"]

# -- einops on jaxmod Tensors (``rearrange`` / ``reduce`` / ``repeat`` / ``einsum`` in model
# files), registered only when einops is installed
import importlib.util as _importlib_util  # noqa: E402

if _importlib_util.find_spec("einops") is not None:
    from jaxmod import _einops  # noqa: F401
