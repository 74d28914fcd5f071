"""``torch.utils.checkpoint`` on :func:`jaxmod.checkpoint` (``jax.checkpoint`` underneath).

``checkpoint(fn, *args, use_reentrant=False)`` runs ``fn(*args)`` and recomputes its
activations in the backward pass instead of storing them; ``checkpoint_sequential`` does
that for all but the last of ``segments`` chunks of a Sequential. Values and gradients
equal the plain call's. State is lifted as :func:`jaxmod.checkpoint` lifts it (the Module,
a bound method's ``self``, modules in the function's closure or globals).

Differences from torch, all documented in docs/porting.md:

* ``use_reentrant`` only picks torch's warnings and argument checks: both variants are
  the same ``jax.checkpoint`` here.
* The forward is traced once and replayed by JAX, so state changed inside (BatchNorm
  running statistics) is updated once per call; torch's replay in backward updates it a
  second time.
* The replay always uses the forward's random numbers (``preserve_rng_state=True``
  behaviour, also when ``False`` is passed).
* Arguments without arrays (``None``, bools, ints, strings) reach ``fn`` as the Python
  values they are, as in torch, instead of being traced.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxmod.nn.containers import Sequential
from jaxmod.nn.module import Module
from jaxmod.transforms import checkpoint as _checkpoint

__all__ = ["checkpoint", "checkpoint_sequential"]

_REENTRANT_WARNING = (
    "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
    "Starting in PyTorch 2.9, calling checkpoint without use_reentrant will raise an "
    "exception. use_reentrant=False is recommended, but if you need to preserve the "
    "current default behavior, you can pass use_reentrant=True. Refer to docs for more "
    "details on the differences between the two variants."
)
_SEQUENTIAL_WARNING = (
    "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be "
    "passed explicitly. In version 2.9 we will raise an exception if use_reentrant is not "
    "passed. use_reentrant=False is recommended, but if you need to preserve the current "
    "default behavior, you can pass use_reentrant=True. Refer to docs for more details on "
    "the differences between the two variants."
)


def _has_array(x: Any) -> bool:
    return any(isinstance(leaf, (jax.Array, np.ndarray, np.generic)) for leaf in jax.tree.leaves(x))


def _call_with_static(function: Callable, args: tuple, kwargs: dict) -> Any:
    """``jaxmod.checkpoint(function)(*args, **kwargs)``, with array-free arguments kept out
    of the trace and given to ``function`` as they are."""
    dyn = [i for i, a in enumerate(args) if _has_array(a)]
    dyn_kw = [k for k, v in kwargs.items() if _has_array(v)]
    if len(dyn) == len(args) and len(dyn_kw) == len(kwargs):
        return _checkpoint(function)(*args, **kwargs)

    def runner(*dyn_args: Any, **dyn_kwargs: Any) -> Any:
        full = list(args)
        for i, a in zip(dyn, dyn_args):
            full[i] = a
        return function(*full, **{**kwargs, **dyn_kwargs})

    # jaxmod.checkpoint finds state through ``__wrapped__`` and ``__self__``: point both
    # at ``function`` so its Module, bound ``self``, closure and globals are still lifted.
    functools.update_wrapper(runner, function, assigned=(), updated=())
    if getattr(function, "__self__", None) is not None:
        runner.__self__ = function.__self__  # type: ignore[attr-defined]
    return _checkpoint(runner)(*(args[i] for i in dyn), **{k: kwargs[k] for k in dyn_kw})


def checkpoint(
    function: Callable,
    *args: Any,
    use_reentrant: bool | None = None,
    context_fn: Callable | None = None,
    determinism_check: str = "default",
    debug: bool = False,
    early_stop: bool = True,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)`` with its activations recomputed in the backward pass.

    Args:
        function: a Module, a bound method or any function of arrays and Modules.
        *args: its positional arguments.
        use_reentrant: torch's variant flag (both run the same way here); omitting it
            warns as torch 2.13 does, and ``True`` rejects keyword arguments as torch does.
        context_fn: not supported (raises ``NotImplementedError``): choose what to save
            with ``jaxmod.checkpoint(fn, policy=jax.checkpoint_policies...)``.
        determinism_check, debug, early_stop: accepted for torch compatibility.
        **kwargs: keyword arguments of ``function``; ``preserve_rng_state`` is accepted
            (the replay always reuses the forward's random numbers).
    """
    if use_reentrant is None:
        warnings.warn(_REENTRANT_WARNING, stacklevel=2)
        use_reentrant = True
    kwargs.pop("preserve_rng_state", True)
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if use_reentrant and (context_fn is not None or debug is not False):
        raise ValueError(
            "Passing `context_fn` or `debug` is only supported when use_reentrant=False."
        )
    if context_fn is not None:
        raise NotImplementedError(
            "checkpoint(context_fn=...) selects saved tensors with torch's dispatch modes, "
            "which jaxmod does not have; pass a JAX policy instead: "
            "jaxmod.checkpoint(fn, policy=jax.checkpoint_policies.dots_saveable)(*args)"
        )
    return _call_with_static(function, args, kwargs)


def checkpoint_sequential(
    functions: Sequential | Sequence[Any],
    segments: int,
    input: Any,
    use_reentrant: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``functions`` in order, checkpointing each of the first ``segments - 1`` chunks.

    ``functions`` is a :class:`~jaxmod.nn.Sequential` or a list of Modules; chunks have
    ``len(functions) // segments`` elements and the rest run normally, as in torch.
    """
    if use_reentrant is None:
        warnings.warn(_SEQUENTIAL_WARNING, stacklevel=2)
        use_reentrant = True
    kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if isinstance(functions, Sequential):
        functions = list(functions.children())
    functions = list(functions)
    for i, f in enumerate(functions):
        if not isinstance(f, Module):
            raise TypeError(
                f"checkpoint_sequential: element {i} is a {type(f).__name__}, not a Module; "
                "jaxmod lifts the state of Modules only. Wrap plain functions in a Module "
                "(or checkpoint them with jaxmod.utils.checkpoint.checkpoint)."
            )
    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = _checkpoint(Sequential(*functions[start : end + 1]))(input)
    for f in functions[end + 1 :]:
        input = f(input)
    return input
