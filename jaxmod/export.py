"""``jaxmod.export``: a model (or a function of models) as a ``jax.export`` StableHLO artifact.

The artifact (a :class:`jax.export.Exported`) serialises to bytes
(``exported.serialize()``) and runs anywhere JAX runs, without jaxmod or the model's Python
code: ``jax.export.deserialize(data).call(x)``. It is what ``torch.export`` plus
``torch.export.save`` are for a torch model.

Decisions, and why:

- **Weights are constants of the exported function** by default (``weights="constants"``):
  an export is a self-contained program, called with the model's inputs only. For models
  whose weights should travel separately (large ones, or weights that change without
  re-exporting), ``weights="argument"`` makes the first argument a ``{name: array}`` dict
  with the keys of ``model.state_dict()``: a safetensors checkpoint read with
  ``safetensors.numpy.load_file`` is such a dict.
- **Eval mode by default** (``eval_mode=True``): every module is switched to ``eval()`` for
  the export and back afterwards, because an exported program has no random state
  (dropout in train mode would repeat one mask forever) and no state updates (BatchNorm
  statistics). ``torch.export`` keeps the mode the module is in; ``eval_mode=False`` does
  that here, and a function that then draws random numbers or changes state raises
  instead of being exported wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from jaxmod import random as _random
from jaxmod._core import lifting
from jaxmod._tensor.base import is_tensor, unwrap_tree
from jaxmod._tensor.base import new as new_tensor
from jaxmod.nn.module import Module
from jaxmod.transforms.jit import describe, unbox

__all__ = ["export", "ExportError"]


class ExportError(ValueError):
    """The function cannot be exported as a pure StableHLO program (it draws random
    numbers, changes state, or takes arguments an export cannot)."""


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _like(example: Any, arrays: Any) -> Any:
    """``arrays`` (an argument's traced values) as Tensors where ``example`` had Tensors."""
    return jax.tree_util.tree_map(
        lambda e, a: new_tensor(a) if is_tensor(e) else a, example, arrays, is_leaf=is_tensor
    )


def _split_args(args: tuple, kwargs: dict) -> tuple[list[int], list[str]]:
    """Which positional/keyword arguments are traced inputs (pytrees of arrays); the others
    (flags, None, strings) are baked into the export."""

    def traced(a: Any) -> bool:
        leaves = jax.tree_util.tree_leaves(a)
        arrays = [_is_array(x) for x in leaves]
        if any(arrays) and not all(arrays):
            raise ExportError(
                "export: an argument mixes arrays with other values "
                f"({type(a).__name__}); pass arrays and static values as separate arguments"
            )
        return bool(leaves) and all(arrays)

    return ([i for i, a in enumerate(args) if traced(a)],
            [k for k, v in kwargs.items() if traced(v)])  # fmt: skip


def _weight_names(model: Module, cells: Sequence[Any]) -> dict[str, int]:
    """state_dict key -> index of its cell (tied names share one cell)."""
    index = {id(c): i for i, c in enumerate(cells)}
    out: dict[str, int] = {}
    for name, box in model.state_dict(keep_vars=True).items():
        if id(box) not in index:
            raise ExportError(f"export: state_dict entry '{name}' is not part of the model's state")
        out[name] = index[id(box)]
    return out


def export(
    model_or_fn: Module | Callable,
    *example_args: Any,
    kwargs: dict[str, Any] | None = None,
    weights: str = "constants",
    eval_mode: bool = True,
    platforms: Sequence[str] | None = None,
) -> jax.export.Exported:
    """Export ``model_or_fn(*example_args, **kwargs)`` as a serialisable StableHLO program.

    Args:
        model_or_fn: a Module, or a function that calls modules (reached through its
            arguments, closure or globals, as :func:`jaxmod.jit` finds them).
        *example_args: the inputs: arrays or ``jax.ShapeDtypeStruct`` placeholders (give a
            dimension as ``jax.export.symbolic_shape("b")[0]`` to export for every batch
            size). Arguments that hold no array (flags, ``None``) are baked in and are not
            arguments of the exported function.
        kwargs: keyword inputs, treated the same way.
        weights: ``"constants"`` (default): parameters and buffers are compiled into the
            program; ``"argument"``: the exported function takes a ``{name: array}`` dict
            with the keys of ``model.state_dict()`` first (a Module only; non-persistent
            buffers and array attributes stay constants).
        eval_mode: run every module in ``eval()`` mode for the export (restored after);
            ``False`` keeps their current modes, as ``torch.export`` does.
        platforms: the platforms to export for (``["cpu", "cuda"]``); default: the
            current backend.

    Returns:
        A :class:`jax.export.Exported`: ``.call(*args)`` runs it,
        ``.serialize()`` gives bytes that ``jax.export.deserialize`` reads back, and
        ``.mlir_module()`` is its StableHLO text.

    Raises:
        ExportError: the function draws random numbers or changes state (which an export
            cannot carry), or ``weights="argument"`` is used with a plain function.

    The model is left exactly as it was (values, modes, random state).
    """
    kwargs = dict(kwargs or {})
    if weights not in ("constants", "argument"):
        raise ValueError(f"weights must be 'constants' or 'argument', got {weights!r}")
    is_module = isinstance(model_or_fn, Module)
    if weights == "argument" and not is_module:
        raise ExportError(
            "export(weights='argument') needs a Module (its state_dict keys name the weights); "
            "export the model itself, or use weights='constants'"
        )
    fn: Callable = model_or_fn
    gen = ("generator", _random.default_generator)
    roots = ([("model", model_or_fn), gen] if is_module
             else [*lifting.call_roots(fn, example_args, kwargs), gen])  # fmt: skip
    found = lifting.discover(roots, None if is_module else lifting.reachable_names(fn))
    cells = [*found.cells, *found.ro]
    key_ids = {id(c) for o in found.objs if isinstance(o, _random.Generator)
               for c in lifting.cells_of(o)}  # fmt: skip
    keys = [i for i, c in enumerate(cells) if id(c) in key_ids]
    modules = [m for o in found.objs if isinstance(o, Module) for _, m in o.named_modules()]
    modes = [(m, m.training) for m in modules]
    pos, kw_names = _split_args(example_args, kwargs)
    names = _weight_names(model_or_fn, cells) if weights == "argument" else {}
    current = [c._value for c in cells]

    def pure(weight_dict: dict | None, arrays: list, kw_arrays: dict) -> Any:
        vals = list(current)
        for i in keys:  # a fresh traced key: a draw changes it (detected below), no guard trips
            vals[i] = jax.random.clone(vals[i])
        for name, i in names.items():  # tied names share a cell: the last one's value wins
            vals[i] = weight_dict[name]  # type: ignore[index]
        call_args = list(example_args)
        for i, a in zip(pos, arrays):
            call_args[i] = _like(example_args[i], a)
        call_kw = {**kwargs, **{k: _like(kwargs[k], v) for k, v in kw_arrays.items()}}
        for c, v in zip(cells, vals):
            c._value = v
        try:
            out = unwrap_tree(unbox(fn(*call_args, **call_kw)))  # plain arrays out
            changed = [c for c, v in zip(cells, vals) if c._value is not v]
        finally:
            for c, v in zip(cells, current):
                c._value = v
        if changed:
            drew = any(id(c) in key_ids for c in changed)
            what = ", ".join(describe(c, roots) or type(c).__name__ for c in changed[:4])
            raise ExportError(
                "export: the function draws random numbers (dropout in train mode, "
                "jaxmod.rand...), which an exported program cannot: it has no random state. "
                "Export in eval mode (eval_mode=True, the default), or pass a jax.random key "
                "as an input and draw from it."
                if drew
                else f"export: the function changes state ({what}), which an exported "
                "program cannot carry: it is a pure function of its inputs. Export the "
                "forward pass in eval mode (eval_mode=True, the default)."
            )
        return out

    name = getattr(fn, "__name__", None) or type(fn).__name__
    if weights == "argument":

        def run(weight_dict: dict, *arrays: Any, **kw_arrays: Any) -> Any:
            return pure(weight_dict, list(arrays), kw_arrays)

        example = ({n: jax.ShapeDtypeStruct(current[i].shape, current[i].dtype)
                    for n, i in names.items()},)  # fmt: skip
    else:

        def run(*arrays: Any, **kw_arrays: Any) -> Any:
            return pure(None, list(arrays), kw_arrays)

        example = ()
    run.__name__ = run.__qualname__ = name
    try:
        if eval_mode:
            for m in modules:
                if m.training:
                    m.training = False
        # the exported program takes and returns plain arrays (it runs without jaxmod);
        # the model still sees Tensors where the examples were Tensors
        exported = jax.export.export(jax.jit(run), platforms=platforms)(
            *example, *(unwrap_tree(example_args[i]) for i in pos),
            **{k: unwrap_tree(kwargs[k]) for k in kw_names},
        )  # fmt: skip
    finally:
        for m, mode in modes:
            if m.training != mode:
                m.training = mode
    return exported
