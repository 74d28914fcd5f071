"""Stand-ins for known gaps, so that ``_port_report.py --probe`` can see past them.

Each stand-in pretends one gap listed in GAPS.md is closed, to find the *next* failure of
every program. Only the report script installs them (never a test): a probe result says
"after these gaps are closed, this is where the program stops". A stand-in is skipped when
jaxmod already has the feature, so the probe shrinks as the gaps close.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import jax

import jaxmod

INSTALLED: list[str] = []


def _module(name: str, **attrs: Any) -> ModuleType:
    mod = ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, mod)
    return mod


def _note(gap: str) -> None:
    INSTALLED.append(gap)


class _TensorDataset:
    def __init__(self, *tensors: Any) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: Any) -> tuple:
        return tuple(t[i] for t in self.tensors)


class _DataLoader:
    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, **kw: Any):
        self.dataset, self.batch_size = dataset, batch_size

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self) -> Any:
        for start in range(0, len(self.dataset), self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in self.dataset.tensors)


def install() -> list[str]:
    """Install every stand-in jaxmod still needs; returns the gaps papered over."""
    from jaxmod._tensor import TensorMethods, wrap, wrap_like
    from jaxmod.nn import module as module_mod
    from jaxmod.nn.parameter import Variable

    if "jaxmod.fx" not in sys.modules and not hasattr(jaxmod, "fx"):
        _module("jaxmod.fx", wrap=lambda name: None)
        _note("torch.fx.wrap (ops/stochastic_depth.py)")
    if not hasattr(jaxmod, "_assert"):

        def _assert(condition: Any, message: str) -> None:
            assert condition, message

        jaxmod._assert = _assert
        _note("torch._assert (vision_transformer.py)")
    if not hasattr(jaxmod.jit, "unused"):
        jit = jaxmod.jit

        class _Jit:
            unused = ignore = _overload_method = export = staticmethod(lambda f: f)
            is_scripting = is_tracing = staticmethod(lambda: False)

            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                return jit(*args, **kwargs)

        jaxmod.jit = _Jit()
        _note("torch.jit.unused / is_scripting / _overload_method on jaxmod.jit")
    if not hasattr(jaxmod, "utils"):
        _module("jaxmod.utils")
        _note("jaxmod.utils package")
    if not hasattr(jaxmod.utils, "checkpoint"):

        def checkpoint(fn: Any, *args: Any, use_reentrant: Any = None, **kw: Any) -> Any:
            return jaxmod.checkpoint(fn)(*args, **kw)

        _module("jaxmod.utils.checkpoint", checkpoint=checkpoint)
        _note("torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=...)")
    if not hasattr(jaxmod.utils, "data"):
        _module("jaxmod.utils.data", TensorDataset=_TensorDataset, DataLoader=_DataLoader)
        _note("torch.utils.data.TensorDataset / DataLoader")
    if not getattr(module_mod.Module.__call__, "_probe", False):
        call = module_mod.Module.__call__

        def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
            return wrap_like(call(self, *args, **kwargs), *args, *kwargs.values())

        __call__._probe = True  # type: ignore[attr-defined]
        module_mod.Module.__call__ = __call__
        _note("type rule for layers: Module.__call__ returns Tensors for Tensor inputs")
    try:
        module_mod.Module().register_buffer("b", jaxmod.ones(1))
    except TypeError:
        is_array = module_mod._is_array
        module_mod._is_array = lambda x: is_array(x) or isinstance(x, jaxmod.Tensor)
        _note("register_buffer / buffer assignment accepting jaxmod.Tensor")
    if not hasattr(Variable, "new_zeros"):
        getattr_ = Variable.__getattr__

        def __getattr__(self: Any, name: str) -> Any:
            if not name.startswith("_") and hasattr(TensorMethods, name):
                return getattr(wrap(jax.numpy.asarray(self._value)), name)
            return getattr_(self, name)

        Variable.__getattr__ = __getattr__
        _note("Parameter/Buffer boxes with Tensor methods (read-only stand-in)")
    return INSTALLED
