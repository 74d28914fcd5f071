"""``jaxmod.grad`` and ``value_and_grad``: differentiate with respect to a Module in place.

For a Module argument the gradient is a :class:`Grads` mapping over its trainable
parameters, keyed as ``named_parameters()``; other state the function changes (BatchNorm
statistics, RNG keys) is written back, as in eager torch code. Built on the kernel's
``discover``/``lift``: the differentiated parameters are the first lifted values, every
other cell rides along undifferentiated.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax

from jaxmod._core import lifting, rng
from jaxmod._core.cells import Variable, to_array
from jaxmod._core.graph import ById
from jaxmod._core.lifting import discover, enclosed, lift, require_lifted
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Parameter

__all__ = ["Grads", "grad", "value_and_grad"]


class Grads(Mapping):
    """Gradients of a Module's trainable parameters, keyed by qualified name.

    Ordered as ``named_parameters()``; ``grads.params`` maps the same names to the
    Parameter boxes, which is how ``opt.step(grads)`` finds the right parameters (also
    with parameter groups and tied weights). A pytree: ``jax.tree_util.tree_map`` and
    optax work on it directly.
    """

    __slots__ = ("_data", "params")

    def __init__(self, data: Mapping[str, Any], params: Mapping[str, Parameter]) -> None:
        self._data = OrderedDict(data)
        self.params = dict(params)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._data:
            raise KeyError(f"{key!r} is not a parameter with a gradient here")
        self._data[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        lines = [
            f"  {k}: {getattr(v, 'dtype', '')}{list(getattr(v, 'shape', ()))}"
            for k, v in self._data.items()
        ]
        return "Grads(\n" + "\n".join(lines) + "\n)" if lines else "Grads()"


def _grads_flatten(g: Grads) -> Any:
    keys = tuple(g._data)
    return (
        [(jax.tree_util.DictKey(k), v) for k, v in g._data.items()],
        # boxes compare elementwise, as torch tensors do: in pytree metadata, by identity
        (keys, tuple(ById(g.params[k]) for k in keys)),
    )


def _grads_unflatten(aux: Any, leaves: Any) -> Grads:
    keys, boxes = aux
    return Grads(zip(keys, leaves), ((k, b.obj) for k, b in zip(keys, boxes)))


jax.tree_util.register_pytree_with_keys(
    Grads,
    _grads_flatten,
    _grads_unflatten,
    flatten_func=lambda g: (list(g._data.values()), _grads_flatten(g)[1]),
)


def _as_loss(x: Any) -> Any:
    """A loss returned as a box or Tensor, as the array JAX differentiates."""
    return to_array(x) if isinstance(x, Variable) or hasattr(type(x), "_jaxmod_wrap_") else x


def value_and_grad(
    fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable:
    """Like ``jax.value_and_grad``, with Module arguments differentiated in place.

    For a Module argument the gradient is a :class:`Grads` mapping over its trainable
    parameters (``requires_grad=True``); frozen parameters get no gradient. Other
    arguments are differentiated as ``jax.grad`` does. State the function mutates
    (BatchNorm statistics, RNG keys) is written back, as in eager torch code. Inside
    :func:`jaxmod.jit` only state the enclosing jit lifted is touched.
    """
    argnums_t = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        specs: list[tuple[str, Any]] = []
        diff_inputs: list[Any] = []
        diff_boxes: list[Any] = []
        for i in argnums_t:
            a = args[i]
            if isinstance(a, Module):
                named = [(n, p) for n, p in a.named_parameters() if p.requires_grad]
                specs.append(("module", named))
                diff_boxes += [p for _, p in named]
                diff_inputs.append([p._value for _, p in named])
            elif isinstance(a, Parameter):
                specs.append(("param", a))
                diff_boxes.append(a)
                diff_inputs.append(a._value)
            else:
                specs.append(("plain", None))
                diff_inputs.append(a)
        require_lifted(diff_boxes)
        roots = [*lifting.call_roots(fn, args, kwargs), ("generator", rng.default_generator)]
        found = discover(roots, lifting.reachable_names(fn))
        diff_ids = {id(b) for b in diff_boxes}
        side = enclosed([c for c in found.cells if id(c) not in diff_ids])
        ro = enclosed(found.ro)
        run = lift(fn, [*diff_boxes, *side], ro)
        n_diff = len(diff_boxes)
        was_tensor: list[Any] = []

        def inner(diff_vals: list, side_vals: list, ro_vals: list) -> Any:
            call_args = list(args)
            values: list[Any] = []
            for (kind, _), val, i in zip(specs, diff_vals, argnums_t):
                if kind == "module":
                    values += list(val)
                elif kind == "param":
                    values.append(val)
                else:
                    call_args[i] = val
            out, new = run([*values, *side_vals], ro_vals, *call_args, **kwargs)
            loss, aux = out if has_aux else (out, None)
            wrap = getattr(type(loss), "_jaxmod_wrap_", None)
            if wrap is not None:
                was_tensor.append(wrap)
            return _as_loss(loss), (aux, [jax.lax.stop_gradient(x) for x in new[n_diff:]])

        (value, (aux, new_side)), raw = jax.value_and_grad(inner, has_aux=True)(
            diff_inputs, [c._value for c in side], [c._value for c in ro]
        )
        for c, val in zip(side, new_side):
            c._value = val
        if was_tensor:
            value = was_tensor[0](value)
        grads = []
        for (kind, spec), g in zip(specs, raw):
            grads.append(Grads(((n, gi) for (n, _), gi in zip(spec, g)), spec) if kind == "module"
                         else g)  # fmt: skip
        g_out = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((value, aux), g_out) if has_aux else (value, g_out)

    return wrapper


def grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """Like ``jax.grad``; a Module argument's gradient is a :class:`Grads` mapping.

    Example:
        >>> grads = jaxmod.grad(lambda m: F.mse_loss(m(x), y))(model)
        >>> grads["hidden.weight"].shape
    """
    vg = value_and_grad(fn, argnums, has_aux)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        (value_aux, g) = vg(*args, **kwargs)
        return (g, value_aux[1]) if has_aux else g

    return wrapper
