"""``jaxmod.summary``: a torchinfo-style table of a model, computed without FLOPs.

The forward pass runs once under :func:`jax.eval_shape`, so only shapes and dtypes are
propagated: nothing is computed on the device, and a model too big to run still gets a
summary. Output shapes are captured with temporary forward hooks during that trace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxmod import random as _random
from jaxmod.nn.module import Module

__all__ = ["summary", "LayerSummary"]


@dataclasses.dataclass
class LayerSummary:
    """One row of :func:`summary`: a module of the model.

    Attributes:
        path: qualified name of the module (``""`` for the model itself).
        type: the module's class name.
        depth: nesting depth (0 for the model itself).
        output_shape: shape of the output of the module's first call (a tuple, or a
            pytree of tuples for modules returning several arrays); ``None`` when the
            module was not called by the forward pass.
        num_params: parameters owned directly by this module (not its children).
        trainable_params: those of ``num_params`` with ``requires_grad=True``.
        num_calls: how many times the forward pass called this module.
    """

    path: str
    type: str
    depth: int
    output_shape: Any
    num_params: int
    trainable_params: int
    num_calls: int

    @property
    def trainable(self) -> bool | None:
        """``True``/``False`` when all/none of the module's own parameters train; ``None``
        when it owns none, or some train and some do not."""
        if self.num_params == 0 or 0 < self.trainable_params < self.num_params:
            return None
        return self.trainable_params == self.num_params

    def as_dict(self) -> dict[str, Any]:
        """The row as a plain dict (with ``trainable`` included)."""
        return {**dataclasses.asdict(self), "trainable": self.trainable}


def _shapes(out: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(out)
    shapes = [tuple(int(d) for d in np.shape(x)) for x in leaves]
    if treedef == jax.tree_util.tree_structure(0):  # a single array
        return shapes[0]
    return jax.tree_util.tree_unflatten(treedef, shapes)


def _nbytes(x: Any) -> int:
    return int(np.prod(np.shape(x), dtype=np.int64)) * np.dtype(x.dtype).itemsize


def _fmt_shape(s: Any) -> str:
    if s is None:
        return "--"
    if isinstance(s, tuple) and all(isinstance(d, int) for d in s):
        return "[" + ", ".join(str(d) for d in s) + "]"
    return str(s)


def summary(
    model: Module,
    *example_inputs: Any,
    depth: int | None = None,
    print_fn: Callable[[str], Any] | None = print,
    **kwargs: Any,
) -> list[LayerSummary]:
    """Print a table of ``model``'s modules, output shapes and parameter counts.

    Like ``torchinfo.summary(model, input_data=...)``: one row per module (qualified
    name, class, output shape, parameters owned, trainable or not) and totals (all
    parameters, trainable parameters, bytes of parameters and buffers). The forward
    pass ``model(*example_inputs, **kwargs)`` is traced with :func:`jax.eval_shape`,
    so no FLOPs are spent: ``example_inputs`` may be arrays or
    ``jax.ShapeDtypeStruct`` placeholders.

    The model runs in eval mode (dropout off, batch norm on its running statistics)
    and its modes are restored afterwards. Parameters, buffers and the global
    generator's key are lifted into the trace, as ``jaxmod.jit`` does, and restored,
    so the model is left exactly as it was.

    Args:
        model: the module to summarise.
        *example_inputs: positional inputs of the forward pass.
        depth: show only modules nested at most this deep (the model is depth 0);
            totals always cover the whole model.
        print_fn: called with the table text; ``None`` prints nothing.
        **kwargs: keyword inputs of the forward pass.

    Returns:
        The rows (all modules, whatever ``depth``), as :class:`LayerSummary` objects
        (``row.as_dict()`` gives a dict).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxmod import nn
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> rows = summary(net, jax.ShapeDtypeStruct((3, 4), jnp.float32), print_fn=None)
        >>> [r.output_shape for r in rows]
        [(3, 2), (3, 8), (3, 8), (3, 2)]
    """
    named = list(model.named_modules(remove_duplicate=True))
    calls: dict[int, list[Any]] = {id(m): [] for _, m in named}
    modes = [(m, m.training) for _, m in named]

    def hook(mod: Module, args: Any, out: Any) -> None:
        calls[id(mod)].append(_shapes(out))

    params = list(model.parameters())
    buffers = [b for b in model.buffers()]
    gen = _random.default_generator
    boxes = [*params, *buffers, gen._key]
    saved = [b._value for b in boxes]

    # Array leaves of the inputs are traced; anything else (flags, None) stays static.
    leaves, treedef = jax.tree_util.tree_flatten((example_inputs, kwargs))
    traced = [i for i, x in enumerate(leaves) if hasattr(x, "shape") and hasattr(x, "dtype")]

    def forward(vals: list, arrays: list) -> Any:
        for b, v in zip(boxes, vals):
            b._value = v
        filled = list(leaves)
        for i, a in zip(traced, arrays):
            filled[i] = a
        args, kw = jax.tree_util.tree_unflatten(treedef, filled)
        try:
            return model(*args, **kw)
        finally:
            for b, v in zip(boxes, saved):
                b._value = v

    handles = [m.register_forward_hook(hook) for _, m in named]
    try:
        model.eval()
        jax.eval_shape(forward, saved, [leaves[i] for i in traced])
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            if m.training != mode:
                m.training = mode
        for b, v in zip(boxes, saved):
            b._value = v

    rows = []
    for path, m in named:
        own = list(m.parameters(recurse=False))
        shapes = calls[id(m)]
        rows.append(
            LayerSummary(
                path=path,
                type=type(m).__name__,
                depth=0 if path == "" else path.count(".") + 1,
                output_shape=shapes[0] if shapes else None,
                num_params=sum(int(np.prod(p.shape, dtype=np.int64)) for p in own),
                trainable_params=sum(
                    int(np.prod(p.shape, dtype=np.int64)) for p in own if p.requires_grad
                ),
                num_calls=len(shapes),
            )
        )
    if print_fn is not None:
        print_fn(_table(rows, params, buffers, depth))
    return rows


def _table(rows: list[LayerSummary], params: list, buffers: list, depth: int | None) -> str:
    header = ("Layer (path)", "Type", "Output shape", "Param #", "Trainable")
    body = []
    for r in rows:
        if depth is not None and r.depth > depth:
            continue
        name = "  " * r.depth + (r.path.rsplit(".", 1)[-1] if r.path else "(model)")
        shape = _fmt_shape(r.output_shape)
        if r.num_calls > 1:
            shape += f" x{r.num_calls}"
        trainable = {True: "True", False: "False", None: "--" if not r.num_params else "Partial"}
        body.append(
            (name, r.type, shape, f"{r.num_params:,}" if r.num_params else "--",
             trainable[r.trainable])
        )  # fmt: skip
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    line = "=" * (sum(widths) + 2 * (len(widths) - 1))

    def fmt(cells: tuple) -> str:
        return "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    n_params = sum(int(np.prod(p.shape, dtype=np.int64)) for p in params)
    n_train = sum(int(np.prod(p.shape, dtype=np.int64)) for p in params if p.requires_grad)
    p_bytes = sum(_nbytes(p._value) for p in params)
    b_bytes = sum(_nbytes(b._value) for b in buffers)
    lines = [line, fmt(header), line, *(fmt(b) for b in body), line]
    lines += [
        f"Total params: {n_params:,}",
        f"Trainable params: {n_train:,}",
        f"Non-trainable params: {n_params - n_train:,}",
        f"Params size (bytes): {p_bytes:,}",
        f"Buffers size (bytes): {b_bytes:,}",
        f"Total size (bytes): {p_bytes + b_bytes:,}",
        line,
    ]
    return "\n".join(lines)
