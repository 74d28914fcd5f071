"""``torch.autograd.functional``: Jacobians, Hessians and vector products of a function of
Tensors, on ``jax.jacrev`` / ``jax.jacfwd`` / ``jax.vjp`` / ``jax.jvp``.

The function is traced once with Tensors holding JAX tracers, so it may use any Tensor
method, ``torch.*`` function or module call. Results have torch's structure: a Tensor where
torch gives one (a Tensor input and a Tensor output), tuples where the inputs or outputs
were tuples. They are plain Tensors (torch detaches them); with ``create_graph=True`` and
inputs that require grad the whole computation is one node of the autograd tape, so the
result can be differentiated again with ``backward()`` / ``torch.autograd.grad``.

Not torch's: ``vectorize`` changes nothing (JAX always vectorises), and ``strict=True`` looks
at the traced computation: an output that does not depend on an input raises torch's error.
Tensors the function reads from outside (closed-over parameters) are constants here: with
``create_graph=True`` gradients reach the ``inputs`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod._tensor import base as _b
from jaxmod._tensor import tape as _tape

__all__ = ["jacobian", "hessian", "vjp", "jvp", "vhp", "hvp"]

_STRATEGIES = ("forward-mode", "reverse-mode")


def _as_tuple(inp: Any, arg_name: str, fn_name: str) -> tuple[bool, tuple]:
    """``(was_tuple, inp as a tuple)``, with torch's TypeError for a non-Tensor element."""
    is_tuple = isinstance(inp, tuple)
    items = inp if is_tuple else (inp,)
    for i, el in enumerate(items):
        if not isinstance(el, _b.TensorBase):
            where = f"value at index {i}" if is_tuple else f"given {arg_name}"
            raise TypeError(
                f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of "
                f"Tensors but the {where} has type {type(el)}."
            )
    return is_tuple, items


def _unpack(res: Any, to_unpack: bool | tuple[bool, bool]) -> Any:
    """torch's ``_tuple_postprocess``: drop the tuple levels the caller did not use."""
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            res = tuple(el[0] for el in res)
        if not to_unpack[0]:
            res = res[0]
    elif not to_unpack:
        res = res[0]
    return res


def _wrap(tree: Any) -> Any:
    return jax.tree_util.tree_map(_b.new, tree)


def _arrays(ts: tuple) -> tuple:
    return tuple(jnp.asarray(_b.unwrap(t)) for t in ts)


class _Pure:
    """``func`` as a function of arrays returning a tuple of arrays; remembers whether
    ``func`` returned a tuple (``is_tuple``) once traced."""

    def __init__(self, func: Callable, fn_name: str, single: str | None = None) -> None:
        self.func, self.fn_name, self.single = func, fn_name, single
        self.is_tuple = False

    def __call__(self, *arrays: Any) -> tuple:
        out = self.func(*[_b.new(a) for a in arrays])
        self.is_tuple, outs = _as_tuple(out, "outputs of the user-provided function",
                                        self.fn_name)  # fmt: skip
        if self.single is not None:
            if self.is_tuple:
                raise RuntimeError(f"The function given to {self.single} should return a "
                                   "single Tensor")  # fmt: skip
            if int(np.size(_b.unwrap(outs[0]))) != 1:
                raise RuntimeError(f"The Tensor returned by the function given to "
                                   f"{self.single} should contain a single element")  # fmt: skip
        return tuple(_b.unwrap(o) for o in outs)

    def scalar(self, *arrays: Any) -> Any:
        return self(*arrays)[0].reshape(())


def _check_v(v: Any, other: tuple, is_other_tuple: bool, fn_name: str) -> tuple:
    _, vs = _as_tuple(v, "v", fn_name)
    if len(vs) != len(other):
        if is_other_tuple:
            raise RuntimeError(
                f"v is a tuple of invalid length: should be {len(other)} but got {len(vs)}."
            )
        raise RuntimeError("The given v should contain a single Tensor.")
    out = []
    for i, (el, ref) in enumerate(zip(vs, other)):
        a = jnp.asarray(_b.unwrap(el))
        if tuple(a.shape) != tuple(np.shape(ref)):
            prepend = f"Entry {i} in " if is_other_tuple else ""
            raise RuntimeError(
                f"{prepend}v has invalid size: should be {_size(ref)} but got {_size(a)}."
            )
        out.append(a.astype(jnp.result_type(ref)))
    return tuple(out)


def _size(a: Any) -> str:
    return f"torch.Size({list(np.shape(a))})"


def _ones_v(refs: tuple, what: str) -> tuple:
    if len(refs) != 1 or int(np.size(refs[0])) != 1:
        raise RuntimeError(f"The vector v can only be None if {what}.")
    return (jnp.ones_like(refs[0]),)


_V_OUT = "the user-provided function returns a single Tensor with a single element"
_V_IN = "the input to the user-provided function is a single Tensor with a single element"


# ---------------------------------------------------------------------------- strict mode
def _depends(f: Callable, arrays: tuple) -> list[list[bool]]:
    """``dep[i][j]``: whether output ``i`` of ``f`` depends on input ``j`` (from its jaxpr)."""
    closed = jax.make_jaxpr(f)(*arrays)
    jaxpr = closed.jaxpr
    deps: dict[Any, frozenset] = {v: frozenset({j}) for j, v in enumerate(jaxpr.invars)}
    for eqn in jaxpr.eqns:
        got: frozenset = frozenset()
        for v in eqn.invars:
            if not isinstance(v, jax.extend.core.Literal):
                got |= deps.get(v, frozenset())
        for v in eqn.outvars:
            deps[v] = got
    out = []
    for v in jaxpr.outvars:
        d = frozenset() if isinstance(v, jax.extend.core.Literal) else deps.get(v, frozenset())
        out.append([j in d for j in range(len(arrays))])
    return out


def _strict(pure: _Pure, arrays: tuple, pairs: bool = False) -> None:
    """torch's strict-mode errors: an output that depends on no input, and an input no
    output depends on (``pairs``: the first output-input pair without a dependence, as
    torch's ``jacobian`` reports it)."""
    dep = _depends(pure, arrays)
    for i, row in enumerate(dep):
        if not any(row):
            raise RuntimeError(
                f"Output {i} of the user-provided function does not require gradients. The "
                "outputs must be computed in a differentiable manner from the input when "
                "running in strict mode."
            )
    for i, row in enumerate(dep):
        for j, d in enumerate(row):
            if pairs and not d:
                raise RuntimeError(
                    f"Output {i} of the user-provided function is independent of input {j}. "
                    "This is not allowed in strict mode."
                )
    for j in range(len(arrays)):
        if not any(row[j] for row in dep):
            raise RuntimeError(
                f"The output of the user-provided function is independent of input {j}. "
                "This is not allowed in strict mode."
            )


# ----------------------------------------------------------------------------- recording
def _run(compute: Callable, label: str, tensors: tuple, create_graph: bool) -> Any:
    """``compute(*tensors)``; recorded on the autograd tape with ``create_graph``."""
    if create_graph and _tape.marked(tensors, {}) and _tape.recording():
        return _tape.record(compute, label, tensors, {})
    return compute(*tensors)


def jacobian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Any:  # fmt: skip
    """The Jacobian of ``func`` at ``inputs`` (``torch.autograd.functional.jacobian``).

    A Tensor input and a Tensor output give one Tensor of shape ``output.shape +
    input.shape``; a tuple of inputs (outputs) gives a tuple over them, and both a tuple of
    tuples ``[output][input]``. ``strategy="forward-mode"`` uses ``jax.jacfwd`` and, as
    torch's, gives lists where the input was a tuple.
    """
    if strategy not in _STRATEGIES:
        raise AssertionError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
            'function has more outputs than inputs, "forward-mode" tends to be more '
            'performant. Otherwise, prefer to use "reverse-mode".'
        )
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(
                "torch.autograd.functional.jacobian: `create_graph=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either '
                'set `create_graph=False` or `strategy="reverse-mode"`.'
            )
        if strict:
            raise RuntimeError(
                "torch.autograd.functional.jacobian: `strict=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either '
                'set `strict=False` or `strategy="reverse-mode"`.'
            )
        if not vectorize:
            raise NotImplementedError(
                "Computing Jacobian using forward-AD or forward-over-reverse Hessian is"
                "only implemented for `vectorize=True`."
            )
    if strict and vectorize:
        raise RuntimeError(
            "torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
            "supported together. Please either set `strict=False` or `vectorize=False`."
        )
    is_inputs_tuple, ins = _as_tuple(inputs, "inputs", "jacobian")
    transform = jax.jacfwd if strategy == "forward-mode" else jax.jacrev

    def compute(*tensors: Any) -> Any:
        arrays = _arrays(tensors)
        pure = _Pure(func, "jacobian")
        if strict:
            _strict(pure, arrays, pairs=True)
        jac = _wrap(transform(pure, argnums=tuple(range(len(arrays))))(*arrays))
        if strategy == "forward-mode":  # torch's forward-mode path builds lists
            jac = [list(row) for row in jac]
        return _unpack(jac, (pure.is_tuple, is_inputs_tuple))

    return _run(compute, "Jacobian", ins, create_graph)


def hessian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode") -> Any:  # fmt: skip
    """The Hessian of a function returning one element (``torch.autograd.functional.hessian``):
    a Tensor of shape ``input.shape * 2`` for a Tensor input, a tuple of tuples
    ``[i][j]`` for a tuple of inputs."""
    if outer_jacobian_strategy not in _STRATEGIES:
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    is_inputs_tuple, ins = _as_tuple(inputs, "inputs", "hessian")
    outer = jax.jacfwd if outer_jacobian_strategy == "forward-mode" else jax.jacrev

    def compute(*tensors: Any) -> Any:
        arrays = _arrays(tensors)
        pure = _Pure(func, "hessian", single="hessian")
        if strict:
            _strict(pure, arrays)
        argnums = tuple(range(len(arrays)))
        hess = _wrap(outer(jax.jacrev(pure.scalar, argnums=argnums), argnums=argnums)(*arrays))
        if outer_jacobian_strategy == "forward-mode":  # lists, as torch's forward mode
            hess = [list(row) for row in hess]
        return _unpack(hess, (is_inputs_tuple, is_inputs_tuple))

    return _run(compute, "Hessian", ins, create_graph)


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:  # fmt: skip
    """``(func(*inputs), v^T J)`` (``torch.autograd.functional.vjp``): the product has the
    inputs' structure; ``v`` has the outputs' (it may be left out for one element)."""
    is_inputs_tuple, ins = _as_tuple(inputs, "inputs", "vjp")
    n = len(ins)

    def compute(*tensors: Any) -> Any:
        arrays = _arrays(tensors[:n])
        pure = _Pure(func, "vjp")
        if strict:
            _strict(pure, arrays)
        outs, pullback = jax.vjp(pure, *arrays)
        vs = _check_v(tensors[n], outs, pure.is_tuple, "vjp") if v is not None else (
            _ones_v(outs, _V_OUT))  # fmt: skip
        grads = pullback(vs)
        return _unpack(_wrap(outs), pure.is_tuple), _unpack(_wrap(grads), is_inputs_tuple)

    return _run(compute, "Vjp", ins + ((v,) if v is not None else ()), create_graph)


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:  # fmt: skip
    """``(func(*inputs), J v)`` (``torch.autograd.functional.jvp``): the product has the
    outputs' structure; ``v`` has the inputs' (it may be left out for one element)."""
    is_inputs_tuple, ins = _as_tuple(inputs, "inputs", "jvp")
    n = len(ins)

    def compute(*tensors: Any) -> Any:
        arrays = _arrays(tensors[:n])
        vs = _check_v(tensors[n], arrays, is_inputs_tuple, "jvp") if v is not None else (
            _ones_v(arrays, _V_IN))  # fmt: skip
        pure = _Pure(func, "jvp")
        if strict:
            _strict(pure, arrays)
        outs, tangents = jax.jvp(pure, arrays, vs)
        return _unpack(_wrap(outs), pure.is_tuple), _unpack(_wrap(tangents), pure.is_tuple)

    return _run(compute, "Jvp", ins + ((v,) if v is not None else ()), create_graph)


def _second_order(name: str, func: Callable, inputs: Any, v: Any, create_graph: bool,
                  strict: bool, forward_over_reverse: bool) -> tuple:  # fmt: skip
    is_inputs_tuple, ins = _as_tuple(inputs, "inputs", name)
    n = len(ins)

    def compute(*tensors: Any) -> Any:
        arrays = _arrays(tensors[:n])
        vs = _check_v(tensors[n], arrays, is_inputs_tuple, name) if v is not None else (
            _ones_v(arrays, _V_IN))  # fmt: skip
        pure = _Pure(func, name, single=name)
        if strict:
            _strict(pure, arrays)
        out = pure(*arrays)[0]
        g = jax.grad(pure.scalar, argnums=tuple(range(n)))
        if forward_over_reverse:
            prod = jax.jvp(g, arrays, vs)[1]
        else:
            prod = jax.vjp(g, *arrays)[1](vs)
        return _b.new(out), _unpack(_wrap(tuple(prod)), is_inputs_tuple)

    return _run(compute, name.capitalize(), ins + ((v,) if v is not None else ()),
                create_graph)  # fmt: skip


def vhp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:  # fmt: skip
    """``(func(*inputs), v^T H)`` for a function returning one element
    (``torch.autograd.functional.vhp``)."""
    return _second_order("vhp", func, inputs, v, create_graph, strict, False)


def hvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:  # fmt: skip
    """``(func(*inputs), H v)`` for a function returning one element
    (``torch.autograd.functional.hvp``)."""
    return _second_order("hvp", func, inputs, v, create_graph, strict, True)
