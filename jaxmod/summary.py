"""``jaxmod.summary``: torchinfo's model table, with FLOPs and memory measured by XLA.

``summary(model, input_size=(16, 1, 28, 28))`` (or ``input_data=x``, or example inputs
positionally) prints torchinfo's layout -- ``Layer (type:depth-idx)``, ``Output Shape``,
``Param #``, ``Trainable`` (and optionally ``Input Shape``, ``Param %``, ``FLOPs``), then
the totals -- and returns the rows.

Shapes come from one :func:`jax.eval_shape` trace of the forward pass (nothing runs on the
device; output shapes are captured with temporary forward hooks). With ``cost=True`` (the
default) the forward pass is also lowered with :func:`jaxmod.jit` for XLA's cost analysis
(``Total FLOPs``), and a forward+backward pass (the gradient of the outputs' sum with
respect to the trainable parameters) is compiled for XLA's memory analysis: its temporary
buffers are the ``Forward/backward pass size`` -- the activations kept for the backward
pass and scratch space, as XLA will allocate them, not an estimate. Compiling costs time
for a big model; ``cost=False`` skips it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod import random as _random
from jaxmod._tensor.base import is_tensor
from jaxmod._tensor.base import new as new_tensor
from jaxmod.nn.module import Module
from jaxmod.transforms import grad, jit

__all__ = ["summary", "LayerSummary", "ModelSummary"]

COLUMNS = {
    "input_size": "Input Shape",
    "output_size": "Output Shape",
    "num_params": "Param #",
    "params_percent": "Param %",
    "flops": "FLOPs",
    "trainable": "Trainable",
}
DEFAULT_COLUMNS = ("output_size", "num_params", "trainable")


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
        input_shape: shapes of the first call's positional inputs (a tuple of shapes).
        total_params: parameters of the module and everything below it.
        total_trainable: those of ``total_params`` with ``requires_grad=True``.
        flops: XLA's FLOP count for one call of the module (with its children), when the
            ``"flops"`` column was asked for; else ``None``.
    """

    path: str
    type: str
    depth: int
    output_shape: Any
    num_params: int
    trainable_params: int
    num_calls: int
    input_shape: Any = None
    total_params: int = 0
    total_trainable: int = 0
    flops: float | None = None

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


class ModelSummary(list):
    """What :func:`summary` returns: the rows (a list of :class:`LayerSummary`, every
    module whatever ``depth``) with the totals as attributes; ``str()`` is the table.

    Attributes:
        total_params, trainable_params: parameter counts (shared parameters once).
        input_bytes, param_bytes, buffer_bytes: sizes of the inputs, parameters, buffers.
        flops: XLA's FLOP count of the forward pass (``None`` with ``cost=False``).
        activation_bytes: XLA's temporary allocation for the compiled forward+backward
            pass (``None`` with ``cost=False``).
        table: the printed table.
    """

    total_params: int
    trainable_params: int
    input_bytes: int
    param_bytes: int
    buffer_bytes: int
    flops: float | None
    activation_bytes: int | None
    table: str

    def __str__(self) -> str:
        return self.table


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(x))


def _shapes(out: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(out, is_leaf=is_tensor)  # a Tensor: one shape
    shapes = [_shape(x) for x in leaves]
    if treedef == jax.tree_util.tree_structure(0):  # a single array
        return shapes[0]
    return jax.tree_util.tree_unflatten(treedef, shapes)


def _nbytes(x: Any) -> int:
    return int(np.prod(np.shape(x), dtype=np.int64)) * np.dtype(x.dtype).itemsize


def _numel(p: Any) -> int:
    return int(np.prod(p.shape, dtype=np.int64))


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _is_size(x: Any) -> bool:
    """A shape (``(16, 1, 28, 28)``, ``torch.Size``) rather than an input."""
    return isinstance(x, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in x
    )


def _dtype(d: Any) -> Any:
    if d is None:
        return jnp.float32
    name = str(d).removeprefix("torch.") if type(d).__module__.startswith("torch") else d
    return jax.dtypes.canonicalize_dtype(jnp.dtype(name))


def _inputs(
    positional: tuple, input_size: Any, input_data: Any, dtypes: Sequence[Any] | None,
    kwargs: dict,
) -> tuple[tuple, dict]:  # fmt: skip
    """The forward pass's (args, kwargs) from torchinfo's ways of giving them."""
    if len(positional) == 1 and input_size is None and input_data is None:
        first = positional[0]
        if _is_size(first) or (
            isinstance(first, (list, tuple)) and first and all(_is_size(s) for s in first)
        ):
            input_size, positional = first, ()
    given = sum(x is not None for x in (input_size, input_data)) + bool(positional)
    if given > 1:
        raise ValueError("summary: give the inputs one way: input_size=, input_data= or "
                         "positionally")  # fmt: skip
    if input_size is not None:
        sizes = [input_size] if _is_size(input_size) else list(input_size)
        if not all(_is_size(s) for s in sizes):
            raise ValueError(
                f"summary: input_size must be a shape or a list of shapes, got {input_size!r}"
            )
        dts = list(dtypes) if dtypes is not None else [None] * len(sizes)
        if len(dts) != len(sizes):
            raise ValueError(f"summary: {len(dts)} dtypes for {len(sizes)} input sizes")
        specs = tuple(jax.ShapeDtypeStruct(tuple(s), _dtype(d)) for s, d in zip(sizes, dts))
        return specs, kwargs
    if input_data is not None:
        if isinstance(input_data, dict):
            return (), {**input_data, **kwargs}
        if isinstance(input_data, (list, tuple)):
            return tuple(input_data), kwargs
        return (input_data,), kwargs
    return positional, kwargs


class _TensorSlot:
    """Marks an input leaf given as a shape: its traced array is passed as a Tensor."""


def _fill(leaves: list, traced: list[int], arrays: Sequence[Any], treedef: Any) -> tuple:
    filled = list(leaves)
    for i, a in zip(traced, arrays):
        filled[i] = new_tensor(a) if isinstance(leaves[i], _TensorSlot) else a
    return jax.tree_util.tree_unflatten(treedef, filled)


def _spec(x: Any) -> Any:
    return jax.ShapeDtypeStruct(_shape(x), x.dtype)


def summary(
    model: Module,
    *inputs: Any,
    input_size: Any = None,
    input_data: Any = None,
    dtypes: Sequence[Any] | None = None,
    depth: int | None = 3,
    col_names: Sequence[str] | None = None,
    col_width: int = 25,
    row_settings: Sequence[str] | None = None,
    verbose: int | None = None,
    cost: bool = True,
    print_fn: Callable[[str], Any] | None = print,
    **kwargs: Any,
) -> ModelSummary:
    """Print torchinfo's table of ``model``: modules, output shapes, parameters, FLOPs.

    Like ``torchinfo.summary``. The forward pass ``model(*inputs, **kwargs)`` runs in eval
    mode on abstract values only (modes, values and the random state are restored).

    Args:
        model: the module to summarise.
        *inputs: example inputs (arrays or ``jax.ShapeDtypeStruct``), or one shape as
            torchinfo's positional ``input_size`` (``summary(model, (16, 1, 28, 28))``).
        input_size: a shape, or a list of shapes (one per positional input), fed to the
            model as jaxmod Tensors (as torchinfo feeds tensors).
        input_data: an input, a list of positional inputs, or a dict of keyword inputs.
        dtypes: the dtype of each ``input_size`` input (jnp, numpy or torch dtypes;
            default float32).
        depth: show modules nested at most this deep (the model is 0; ``None``: all);
            a row at the last shown depth counts the parameters below it.
        col_names: columns among ``"input_size"``, ``"output_size"``, ``"num_params"``,
            ``"params_percent"``, ``"flops"`` (XLA's count per module call; each module
            is lowered once more) and ``"trainable"``.
        col_width: width of each column.
        row_settings: ``"depth"`` (``:1-2`` after the type, default on), ``"var_names"``
            (the attribute name in parentheses), ``"ascii_only"``.
        verbose: ``0`` prints nothing (as ``print_fn=None``).
        cost: measure FLOPs and the forward/backward memory with XLA (lowers the forward
            pass and compiles a forward+backward pass).
        print_fn: called with the table; ``None`` prints nothing.
        **kwargs: keyword inputs of the forward pass.

    Returns:
        A :class:`ModelSummary`: the rows (every module, whatever ``depth``) with the
        totals as attributes.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxmod import nn
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> rows = summary(net, input_size=(3, 4), print_fn=None)
        >>> [r.output_shape for r in rows], rows.total_params
        ([(3, 2), (3, 8), (3, 8), (3, 2)], 58)
    """
    cols = tuple(DEFAULT_COLUMNS if col_names is None else col_names)
    bad = [c for c in cols if c not in COLUMNS]
    if bad:
        hint = ' ("mult_adds": use "flops", XLA\'s count)' if "mult_adds" in bad else ""
        raise ValueError(f"summary: unknown column(s) {bad}{hint}; choose from {list(COLUMNS)}")
    settings = set(("depth",) if row_settings is None else row_settings)
    if verbose == 0:
        print_fn = None
    args, kw = _inputs(inputs, input_size, input_data, dtypes, kwargs)
    named = list(model.named_modules(remove_duplicate=True))
    calls: dict[int, list[Any]] = {id(m): [] for _, m in named}
    ins: dict[int, Any] = {}
    modes = [(m, m.training) for _, m in named]
    params = list(model.parameters())
    buffers = list(model.buffers())
    gen = _random.default_generator
    boxes = [*params, *buffers, gen._key]
    saved = [b._value for b in boxes]
    # Array leaves of the inputs are traced; anything else (flags, None) stays static.
    leaves, treedef = jax.tree_util.tree_flatten((args, kw))
    traced = [i for i, x in enumerate(leaves) if _is_array(x)]
    specs = [_spec(leaves[i]) for i in traced]
    static_leaves = [None if i in traced else x for i, x in enumerate(leaves)]
    # a shape (input_size=, or a ShapeDtypeStruct) becomes a Tensor, as torchinfo feeds a
    # torch model tensors: torch-style forwards (x.view(x.size(0), -1)) need one
    shaped = [isinstance(leaves[i], jax.ShapeDtypeStruct) for i in traced]
    static_leaves = [_TensorSlot() if i in traced and shaped[traced.index(i)] else x
                     for i, x in enumerate(static_leaves)]  # fmt: skip

    def forward(vals: list, arrays: list) -> Any:
        for b, v in zip(boxes, vals):
            b._value = v
        try:
            a, k = _fill(static_leaves, traced, arrays, treedef)
            return model(*a, **k)
        finally:
            for b, v in zip(boxes, saved):
                b._value = v

    def record(mod: Module, a: Any, out: Any) -> None:
        calls[id(mod)].append(_shapes(out))

    def record_in(mod: Module, a: Any, k: Any) -> None:
        if id(mod) not in ins:
            leaves_in, tdef = jax.tree_util.tree_flatten((a, k))
            ins[id(mod)] = ([_spec(x) if _is_array(x) else x for x in leaves_in], tdef)

    handles = [m.register_forward_hook(record) for _, m in named]
    handles += [m.register_forward_pre_hook(record_in, with_kwargs=True) for _, m in named]
    try:
        model.eval()
        jax.eval_shape(forward, saved, specs)
        for h in handles:
            h.remove()
        handles = []
        flops = activation = None
        if cost:
            flops, activation = _costs(model, static_leaves, traced, treedef, specs)
        per_module = _module_flops(named, ins, calls) if "flops" in cols else {}
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            if m.training != mode:
                m.training = mode
        for b, v in zip(boxes, saved):
            b._value = v

    rows = ModelSummary(_rows(named, calls, ins, per_module))
    rows.total_params = sum(_numel(p) for p in params)
    rows.trainable_params = sum(_numel(p) for p in params if p.requires_grad)
    rows.input_bytes = sum(_nbytes(s) for s in specs)
    rows.param_bytes = sum(_nbytes(p._value) for p in params)
    rows.buffer_bytes = sum(_nbytes(b._value) for b in buffers)
    rows.flops, rows.activation_bytes = flops, activation
    rows.table = _table(rows, cols, col_width, depth, settings)
    if print_fn is not None:
        print_fn(rows.table)
    return rows


def _costs(model: Module, static_leaves: list, traced: list[int], treedef: Any,
           specs: list) -> tuple[float | None, int | None]:  # fmt: skip
    """XLA's FLOPs of the forward pass and temporary bytes of the forward+backward pass."""

    def fwd(m: Module, arrays: list) -> Any:
        a, k = _fill(static_leaves, traced, arrays, treedef)
        return m(*a, **k)

    def total(m: Module, arrays: list) -> Any:
        outs = [x for x in jax.tree_util.tree_leaves(fwd(m, arrays))
                if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]  # fmt: skip
        return sum((jnp.sum(x.real.astype(jnp.float32)) for x in outs), jnp.float32(0))

    analysis = jit(fwd, donate=False).lower(model, specs).cost_analysis()
    flops = analysis.get("flops") if isinstance(analysis, dict) else None
    compiled = jit(lambda m, arrays: grad(total)(m, arrays), donate=False).compile(model, specs)
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None
    return (None if flops is None else float(flops)), (None if temp is None else int(temp))


def _module_flops(named: list, ins: dict, calls: dict) -> dict[int, float | None]:
    """XLA's FLOPs of one call of each called module, lowered with its first call's
    input shapes."""
    out: dict[int, float | None] = {}
    for _, m in named:
        if id(m) not in ins or not calls[id(m)]:
            continue
        leaves, tdef = ins[id(m)]
        idx = [i for i, x in enumerate(leaves) if isinstance(x, jax.ShapeDtypeStruct)]
        rest = [None if i in idx else x for i, x in enumerate(leaves)]

        def call(mod: Module, arrays: list, rest: list = rest, idx: list = idx,
                 tdef: Any = tdef) -> Any:  # fmt: skip
            a, k = _fill(rest, idx, arrays, tdef)
            return mod(*a, **k)

        analysis = jit(call, donate=False).lower(m, [leaves[i] for i in idx]).cost_analysis()
        flops = analysis.get("flops") if isinstance(analysis, dict) else None
        out[id(m)] = None if flops is None else float(flops)
    return out


def _rows(named: list, calls: dict, ins: dict, per_module: dict) -> list[LayerSummary]:
    rows = []
    for path, m in named:
        own = list(m.parameters(recurse=False))
        every = list(m.parameters())
        shapes = calls[id(m)]
        first_in = None
        if id(m) in ins:
            leaves, tdef = ins[id(m)]
            a, _ = jax.tree_util.tree_unflatten(tdef, leaves)
            first_in = tuple(_shape(x) for x in jax.tree_util.tree_leaves(a) if _is_array(x))
        rows.append(
            LayerSummary(
                path=path,
                type=type(m).__name__,
                depth=0 if path == "" else path.count(".") + 1,
                output_shape=shapes[0] if shapes else None,
                num_params=sum(_numel(p) for p in own),
                trainable_params=sum(_numel(p) for p in own if p.requires_grad),
                num_calls=len(shapes),
                input_shape=first_in,
                total_params=sum(_numel(p) for p in every),
                total_trainable=sum(_numel(p) for p in every if p.requires_grad),
                flops=per_module.get(id(m)),
            )
        )
    return rows


def _fmt_shape(s: Any) -> str:
    if s is None:
        return "--"
    if isinstance(s, tuple) and all(isinstance(d, int) for d in s):
        return "[" + ", ".join(str(d) for d in s) + "]"
    if isinstance(s, tuple) and len(s) == 1:
        return _fmt_shape(s[0])
    return str(s)


def _readable(num: float) -> str:
    """``" (M): 0.48"`` -- torchinfo's automatic units for a count."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if num >= scale:
            return f" ({unit}): {num / scale:,.2f}"
    return f": {num:,.0f}"


def _mb(num: int) -> str:
    return f"{num / 1e6:,.2f}"


def _table(rows: ModelSummary, cols: tuple, width: int, depth: int | None,
           settings: set[str]) -> str:  # fmt: skip
    ascii_only = "ascii_only" in settings
    shown = [r for r in rows if depth is None or r.depth <= depth]
    counters: dict[int, int] = {}
    lines_body = []
    for r in shown:
        leaf_here = (
            depth is not None
            and r.depth == depth
            or not any(q.path.startswith(r.path + ".") if r.path else q.depth > 0 for q in shown)
        )
        n, n_train = (r.total_params, r.total_trainable) if leaf_here else (
            r.num_params, r.trainable_params)  # fmt: skip
        if n == 0:
            n_str, train_str = "--", "--"
        else:
            n_str = f"{n:,}" if n_train else f"({n:,})"
            train_str = "True" if n_train == n else "False" if n_train == 0 else "Partial"
        if r.depth == 0:
            name = r.type
        else:
            counters[r.depth] = counters.get(r.depth, 0) + 1
            lead = ("|    " if ascii_only else "│    ") * (r.depth - 1) + (
                ("+ " if ascii_only else "└─") if r.depth > 1 else ("+ " if ascii_only else "├─")
            )
            name = lead + r.type
            if "var_names" in settings:
                name += f" ({r.path.rsplit('.', 1)[-1]})"
            if "depth" in settings:
                name += f": {r.depth}-{counters[r.depth]}"
        shape = _fmt_shape(r.output_shape)
        if r.num_calls > 1:
            shape += f" x{r.num_calls}"
        flops = "--" if r.flops is None or not leaf_here else f"{r.flops:,.0f}"
        percent = f"{100 * n / rows.total_params:.2f}%" if n and rows.total_params else "--"
        values = {"input_size": _fmt_shape(r.input_shape), "output_size": shape,
                  "num_params": n_str, "params_percent": percent, "flops": flops,
                  "trainable": train_str}  # fmt: skip
        lines_body.append((name, [values[c] for c in cols]))
    name_width = 40
    longest = max((len(n) for n, _ in lines_body), default=0) + 1
    if longest >= name_width:
        name_width = -(-longest // 5) * 5
    divider = "=" * (name_width + width * len(cols))

    def row(name: str, cells: list[str]) -> str:
        return (f"{name:<{name_width}} " + "".join(f"{c:<{width}} " for c in cells)).rstrip()

    header = "Layer (type" + (" (var_name)" if "var_names" in settings else "")
    header += (":depth-idx" if "depth" in settings else "") + ")"
    out = [divider, row(header, [COLUMNS[c] for c in cols]), divider]
    out += [row(n, c) for n, c in lines_body]
    out += [
        divider,
        f"Total params: {rows.total_params:,}",
        f"Trainable params: {rows.trainable_params:,}",
        f"Non-trainable params: {rows.total_params - rows.trainable_params:,}",
    ]
    if rows.flops is not None:
        out.append("Total FLOPs" + _readable(rows.flops))
    out += [divider, f"Input size (MB): {_mb(rows.input_bytes)}"]
    if rows.activation_bytes is not None:
        out.append(f"Forward/backward pass size (MB): {_mb(rows.activation_bytes)}")
    out += [f"Params size (MB): {_mb(rows.param_bytes)}",
            f"Buffers size (MB): {_mb(rows.buffer_bytes)}"]  # fmt: skip
    total = rows.input_bytes + (rows.activation_bytes or 0) + rows.param_bytes + rows.buffer_bytes
    out += [f"Estimated Total Size (MB): {_mb(total)}", divider]
    return "\n".join(out)
