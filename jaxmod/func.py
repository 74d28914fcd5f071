"""``jaxmod.func``: ``torch.func``'s functional API over jaxmod modules.

:func:`functional_call` runs a module with some (or all) of its parameters and buffers
replaced by values from a dict, the way ``torch.func.functional_call`` does, so that a
loss can be written as a function of a plain ``{name: array}`` dict and differentiated
(``jax.grad``), vectorised (``jax.vmap``) or compiled (``jax.jit``) over it. The module is
unchanged afterwards. :func:`grad`, :func:`grad_and_value`, :func:`vmap` and
:func:`stack_module_state` follow ``torch.func``'s signatures on top of jaxmod's
transforms; :func:`jacrev`, :func:`jacfwd`, :func:`hessian`, :func:`vjp`, :func:`jvp` and
:func:`linearize` on ``jax.jacrev`` / ``jacfwd`` / ``vjp`` / ``jvp`` / ``linearize``, with
Tensors (also inside dicts, lists and tuples) in and Tensors out.

Under a plain ``jax.jit`` trace, a parameter or buffer left out of the dict would be
compiled into the function as a constant and go stale when the module changes later;
jaxmod raises :class:`~jaxmod.StaleStateError` for it instead (pass it in the dict, or use
:func:`jaxmod.jit`, which lifts the module's state).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmod import random as _random
from jaxmod._core import state
from jaxmod._core.cells import Variable, box_aux, box_new, is_value, to_array
from jaxmod._core.state import StaleStateError, Tracer, TracerLeakError
from jaxmod._tensor import base as _b
from jaxmod.nn.module import Module
from jaxmod.nn.parameter import Buffer, Parameter
from jaxmod.transforms import grad as _grad
from jaxmod.transforms import value_and_grad as _value_and_grad
from jaxmod.transforms import vmap as _vmap

__all__ = [
    "functional_call", "grad", "grad_and_value", "vmap", "stack_module_state", "jacrev",
    "jacfwd", "hessian", "vjp", "jvp", "linearize",
]  # fmt: skip

_MISSING = object()


def _merge(dicts: Any) -> dict[str, Any]:
    """One dict from ``functional_call``'s argument (torch's checks and messages)."""
    if isinstance(dicts, Mapping):
        return dicts  # type: ignore[return-value]  # the user's own dict: updated after
    if isinstance(dicts, Sequence) and not isinstance(dicts, str):
        if not all(isinstance(d, Mapping) for d in dicts):
            raise ValueError(
                "Expected all elements of parameter_and_buffer_dicts to be dictionaries"
            )
        counts: dict[str, int] = {}
        for d in dicts:
            for k in d:
                counts[k] = counts.get(k, 0) + 1
        repeated = [k for k, n in counts.items() if n > 1]
        if repeated:
            raise ValueError(
                f"{repeated} appeared in multiple dictionaries; behavior of functional call is "
                "ambiguous"
            )
        return {k: v for d in dicts for k, v in d.items()}
    raise ValueError(
        "Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
        f"{type(dicts)}"
    )


def _tensors(module: Module) -> dict[str, Any]:
    """Every parameter and buffer name (tied and shared ones under each name) -> its box."""
    out: dict[str, Any] = dict(module.named_parameters(remove_duplicate=False))
    out.update(module.named_buffers(remove_duplicate=False))
    return out


def _untie(given: Mapping[str, Any], named: dict[str, Any]) -> dict[str, Any]:
    """``given`` with every name tied to a given one added (torch's ``tie_weights=True``)."""
    groups: dict[int, list[str]] = {}
    for name, box in named.items():
        groups.setdefault(id(box), []).append(name)
    tied = {n: g for g in groups.values() if len(g) > 1 for n in g}
    out = dict(given)
    for name in given:
        if name not in tied:
            continue
        names = tied[name]
        values = {id(given[n]) for n in names if n in given}
        if len(values) > 1:
            raise ValueError(
                f"functional_call got multiple values for keys {sorted(names)}, which are "
                "tied. Consider using tie_weights=False"
            )
        for n in names:
            out[n] = given[name]
    return out


def _submodule(module: Module, path: str) -> Module:
    mod = module
    for attr in path.split(".") if path else ():
        try:
            sub = getattr(mod, attr)
        except AttributeError as e:
            raise AttributeError(f"{mod._get_name()} has no attribute `{attr}`") from e
        if not isinstance(sub, Module):
            raise TypeError(f"{sub!r} is not an instance of jaxmod.nn.Module")
        mod = sub
    return mod


def _as_value(name: str, v: Any) -> Any:
    if isinstance(v, Variable):
        return v.value  # read-checked: an unlifted box inside jaxmod.jit raises
    if v is None or is_value(v):
        return v
    try:
        return to_array(v)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"functional_call: the value for '{name}' is a {type(v).__name__}, not an array"
        ) from e


class _Slot:
    """Where one name of the dict lives in the module, and how to swap a value in."""

    __slots__ = ("name", "owner", "attr", "kind", "box", "old")

    def __init__(self, module: Module, name: str) -> None:
        prefix, _, attr = name.rpartition(".")
        self.name, self.attr = name, attr
        self.owner = owner = _submodule(module, prefix)
        d = owner.__dict__
        if attr in d["_parameters"] or attr in d["_buffers"]:
            self.kind = "_parameters" if attr in d["_parameters"] else "_buffers"
            self.box = d[self.kind][attr]
        elif attr in d and is_value(d[attr]):
            self.kind, self.box = "attr", None
        elif attr in d or hasattr(type(owner), attr):
            raise TypeError(
                f"functional_call: '{name}' names {type(getattr(owner, attr)).__name__!r} "
                f"attribute '{attr}' of {owner._get_name()}, which is not a parameter, buffer "
                "or array attribute"
            )
        else:
            self.kind, self.box = "missing", None  # torch sets it for the call (strict=False)

    def current(self) -> Any:
        if self.kind == "attr" or self.kind == "missing":
            return self.owner.__dict__.get(self.attr, _MISSING)
        box = self.owner.__dict__[self.kind][self.attr]
        return None if box is None else box._value


def _staging() -> bool:
    """Whether a plain JAX staging trace (``jax.jit``, ``lax.scan``...) is active, where a
    concrete array read by the function is compiled in as a constant. Under ``jax.grad``
    or ``jax.vmap`` alone an operation on constants stays concrete; under a jit it does
    not."""
    if state.trace_is_top_level() or state.ctx.jit_depth:
        return False
    return isinstance(jax.lax.add(np.float32(0), np.float32(0)), Tracer)


def functional_call(
    module: Module,
    parameter_and_buffer_dicts: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """Call ``module`` with parameters and buffers replaced (``torch.func.functional_call``).

    Args:
        module: the module to call.
        parameter_and_buffer_dicts: ``{name: array}`` (names as ``named_parameters()`` /
            ``named_buffers()`` give them), or a tuple of such dicts with distinct keys.
            Values may be arrays, tracers, numpy arrays or boxes (``Parameter``).
            Names not given keep the module's own values.
        args: the positional argument(s) of the call (a non-tuple is one argument).
        kwargs: keyword arguments of the call.
        tie_weights: weights tied in the module (one box under two names) stay tied: a
            value given for one name is used for all of them, and different values for
            tied names raise. With ``False`` each name is replaced on its own.
        strict: the dict must name exactly the module's parameters and buffers (missing or
            unexpected keys raise ``RuntimeError``, as in torch).

    Returns:
        What ``module(*args, **kwargs)`` returns.

    The module is unchanged afterwards. As in torch, a buffer the call updates in place
    (BatchNorm running statistics in train mode) is written back into the dict you passed
    (into the box, when the value you passed was one), and a buffer not in the dict is
    updated in the module. Under a JAX transform, a value that would leave the trace that
    way raises :class:`~jaxmod.TracerLeakError`; under a plain ``jax.jit``, a parameter or
    buffer left out of the dict raises :class:`~jaxmod.StaleStateError` (it would be
    compiled in as a constant).

    Example:
        >>> params = {k: v.value for k, v in model.named_parameters()}
        >>> loss = lambda p, x, y: F.mse_loss(functional_call(model, p, (x,)), y)
        >>> grads = jax.grad(loss)(params, x, y)   # a dict like params
    """
    given = _merge(parameter_and_buffer_dicts)
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    named = _tensors(module)
    values = _untie(given, named) if tie_weights else dict(given)
    if strict:
        missing = sorted(set(named) - set(values))
        unexpected = sorted(set(values) - set(named))
        msgs = []
        if unexpected:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if msgs:
            raise RuntimeError(
                f"Error(s) in reparametrizing for {module._get_name()}:\n\t" + "\n\t".join(msgs)
            )
    slots = [_Slot(module, n) for n in values]
    arrays = [_as_value(s.name, values[s.name]) for s in slots]
    by_box: dict[int, list[int]] = {}
    for i, s in enumerate(slots):
        if s.box is not None:
            by_box.setdefault(id(s.box), []).append(i)
    # A box shared with a name that gets another value (or none) needs a box of its own for
    # the call (tie_weights=False, or a box reached as a buffer and as a parameter).
    names_of: dict[int, int] = {}
    for b in named.values():
        names_of[id(b)] = names_of.get(id(b), 0) + 1
    untie = set()
    for i, s in enumerate(slots):
        if s.box is None:
            continue
        same = by_box[id(s.box)]
        if names_of[id(s.box)] > len(same) or len({id(arrays[j]) for j in same}) > 1:
            untie.add(i)
    if _staging():
        stale = [n for n, b in named.items() if n not in values and b._value is not None
                 and not isinstance(b._value, Tracer)]  # fmt: skip
        if stale:
            raise StaleStateError(
                f"functional_call inside a plain jax.jit: {', '.join(map(repr, stale))} of "
                f"{module._get_name()} {'is' if len(stale) == 1 else 'are'} not in the dict, "
                "so the current value would be compiled in as a constant and go stale when "
                "the module changes. Pass every parameter and buffer, e.g. "
                "functional_call(model, (params, buffers), args) with params = "
                "{k: v.value for k, v in model.named_parameters()} and buffers likewise, as "
                "arguments of the jitted function; or use jaxmod.jit, which lifts the module."
            )
    return _run(module, slots, arrays, untie, given, args, kwargs)


def _run(module: Module, slots: list[_Slot], arrays: list[Any], untie: set[int],
         given: Mapping[str, Any], args: tuple, kwargs: dict) -> Any:  # fmt: skip
    swapped = {id(s.box) for s in slots}
    others = [(n, b, b._value) for n, b in _tensors(module).items()
              if b is not None and id(b) not in swapped]  # fmt: skip
    restore: list[Callable[[], None]] = []
    structural = bool(untie) or any(s.kind == "missing" or s.box is None and s.kind != "attr"
                                    for s in slots)  # fmt: skip
    if structural:
        state.bump()
    try:
        for i, (s, v) in enumerate(zip(slots, arrays)):
            d = s.owner.__dict__
            if s.kind in ("attr", "missing"):
                old = d.get(s.attr, _MISSING)
                d[s.attr] = v
                restore.append(functools.partial(_put_attr, d, s.attr, old))
            elif i in untie or s.box is None:
                # a box of its own (None: torch fills a registered-None slot for the call)
                fresh = (box_new(type(s.box), box_aux(s.box), v) if s.box is not None
                         else (Parameter if s.kind == "_parameters" else Buffer)(v))  # fmt: skip
                d[s.kind][s.attr] = fresh
                restore.append(functools.partial(d[s.kind].__setitem__, s.attr, s.box))
            else:
                old_v = s.box._value
                s.box._value = v
                restore.append(functools.partial(setattr, s.box, "_value", old_v))
        out = module(*args, **kwargs)
        new = [s.current() for s in slots]
    finally:
        for undo in reversed(restore):
            undo()
        if structural:
            state.bump()
    _leaks_of_module(module, others)
    _write_back(slots, arrays, new, given)
    return out


def _put_attr(d: dict, attr: str, old: Any) -> None:
    if old is _MISSING:
        d.pop(attr, None)
    else:
        d[attr] = old


def _leaks_of_module(module: Module, others: list[tuple[str, Any, Any]]) -> None:
    """Buffers not in the dict that the call set to tracers (from concrete values) would
    leak out of the JAX transform: restore them all and raise."""
    leaked = [name for name, box, old in others
              if isinstance(box._value, Tracer) and not isinstance(old, Tracer)]  # fmt: skip
    if leaked:
        for _, box, old in others:  # the call fails whole: no update is kept
            box._value = old
        raise TracerLeakError(
            f"functional_call: the call updated {', '.join(map(repr, leaked))} of "
            f"{module._get_name()}, which {'is' if len(leaked) == 1 else 'are'} not in the "
            "dict, with traced values inside a JAX transform; they would leak out of the "
            "trace. Pass them in the dict (and return the updated dict), or call the module "
            "in eval() mode."
        )


def _write_back(slots: list[_Slot], arrays: list[Any], new: list[Any],
                given: Mapping[str, Any]) -> None:  # fmt: skip
    """Values the call changed go back into the user's dict (torch's in-place semantics)."""
    for s, before, after in zip(slots, arrays, new):
        if after is before or s.name not in given or after is _MISSING:
            continue
        if isinstance(after, Tracer) and not isinstance(before, Tracer):
            raise TracerLeakError(
                f"functional_call: the call updated '{s.name}' with a traced value, but the "
                "value came from a dict made outside the JAX transform, so writing it back "
                "would leak a tracer. Pass the dict as an argument of the transformed "
                "function (and return what you need), or call the module in eval() mode."
            )
        target = given[s.name]
        if isinstance(target, Variable):
            target._value = after
        elif isinstance(given, dict):
            given[s.name] = after


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``torch.func.grad``: the gradient of ``func`` with respect to argument ``argnums``.

    The same as :func:`jaxmod.grad` (a dict of arrays gets a dict of gradients, a Module a
    :class:`~jaxmod.Grads` mapping); with ``has_aux`` it returns ``(grad, aux)``.
    """
    return _grad(func, argnums, has_aux)


def grad_and_value(
    func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable:
    """``torch.func.grad_and_value``: ``(grad, value)`` (``(grad, (value, aux))`` with
    ``has_aux``) -- :func:`jaxmod.value_and_grad` with torch's order."""
    vg = _value_and_grad(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value, g = vg(*args, **kwargs)
        return g, value

    return wrapper


def vmap(
    func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
    chunk_size: int | None = None,
) -> Callable:  # fmt: skip
    """``torch.func.vmap`` on :func:`jaxmod.vmap` (``in_dims``/``out_dims`` are
    ``in_axes``/``out_axes``).

    ``randomness`` is torch's: ``"error"`` (the default) raises if ``func`` draws random
    numbers (dropout in train mode, ``jaxmod.rand``), ``"different"`` gives each lane its
    own, ``"same"`` one for all. ``chunk_size`` is not supported (``jax.lax.map`` with
    ``batch_size=`` computes in chunks).
    """
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(
            f"Only allowed values for randomness are 'error', 'different', or 'same'. Got "
            f"{randomness}"
        )
    if chunk_size is not None:
        raise ValueError(
            "jaxmod.func.vmap: chunk_size is not supported; jax.lax.map(f, xs, batch_size=n) "
            "maps in chunks of n"
        )
    if randomness != "error":
        return _vmap(func, in_dims, out_dims, randomness=randomness)

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        key = _random.default_generator._key._value
        out = func(*args, **kwargs)
        if _random.default_generator._key._value is not key:
            raise RuntimeError(
                "vmap: called random operation while in randomness error mode. Please either "
                "use the 'same' or 'different' randomness flags on vmap or perform the "
                "randomness operation out of vmap"
            )
        return out

    return _vmap(checked, in_dims, out_dims, randomness="same")


def stack_module_state(models: Sequence[Module]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``torch.func.stack_module_state``: ``(params, buffers)`` dicts whose arrays stack the
    models' values on a new leading axis, for ``vmap`` over :func:`functional_call`."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or not any(m.training for m in models)):
        raise RuntimeError(
            "stack_module_state: Expected all models to have the same training/eval mode."
        )
    first = type(models[0])
    if not all(type(m) is first for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stack(items: Callable[[Module], Any]) -> dict[str, Any]:
        per = [dict(items(m)) for m in models]
        return {k: jnp.stack([p[k].value for p in per]) for k in per[0]}

    return stack(lambda m: m.named_parameters()), stack(lambda m: m.named_buffers())


# ------------------------------------------------------------ Jacobians and products
_JVP = "jvp(f, primals, tangents)"


def _is_t(x: Any) -> bool:
    return isinstance(x, (_b.TensorBase, Variable))


def _split(args: tuple) -> tuple[tuple, Any, list[bool]]:
    """``args`` with every Tensor replaced by its array, the tree, and which leaves were
    Tensors (so that the traced function gets Tensors back in the same places)."""
    leaves, tree = jax.tree_util.tree_flatten(args, is_leaf=_is_t)
    flags = [_is_t(x) for x in leaves]
    arrays = [jnp.asarray(_b.unwrap(x)) if f else x for x, f in zip(leaves, flags)]
    return jax.tree_util.tree_unflatten(tree, arrays), tree, flags


def _join(arrays: tuple, tree: Any, flags: list[bool]) -> tuple:
    leaves = tree.flatten_up_to(arrays)
    return jax.tree_util.tree_unflatten(
        tree, [_b.new(x) if f else x for x, f in zip(leaves, flags)]
    )


def _plain(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: _b.unwrap(x) if _is_t(x) else x, tree,
                                  is_leaf=_is_t)  # fmt: skip


def _as_tensors(tree: Any, wrap: bool) -> Any:
    if not wrap:
        return tree
    return jax.tree_util.tree_map(lambda x: _b.new(x) if is_value(x) else x, tree)


def _check_argnums(argnums: Any, n: int) -> tuple[int, ...]:
    if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple)) or (
        isinstance(argnums, tuple) and not all(isinstance(a, int) for a in argnums)
    ):  # fmt: skip
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if isinstance(argnums, tuple):
        if not nums:
            raise RuntimeError("argnums must be non-empty")
        if len(set(nums)) != len(nums):
            raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    for a in nums:
        if not -n <= a < n:
            raise RuntimeError(f"Got argnum={a}, but only {n} positional inputs")
    return tuple(a % n for a in nums)


def _pure(func: Callable, tree: Any, flags: list[bool], has_aux: bool,
          api: str = "vjp(f, *primals)") -> Callable:  # fmt: skip
    """``func`` as a function of arrays: Tensors where the caller passed Tensors."""

    def f(*arrays: Any) -> Any:
        out = func(*_join(arrays, tree, flags))
        if has_aux and not (isinstance(out, tuple) and len(out) == 2):
            raise RuntimeError(
                f"{api}: output of function f should be a tuple: (output, aux) if has_aux is True"
            )
        return _plain(out)

    return f


def _jacobian(transform: Callable, func: Callable, argnums: Any, has_aux: bool,
              api: str) -> Callable:  # fmt: skip
    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        nums = _check_argnums(argnums, len(args))
        arrays, tree, flags = _split(args)
        f = _pure(func, tree, flags, has_aux, api)
        out = transform(f, argnums=nums[0] if isinstance(argnums, int) else nums,
                        has_aux=has_aux)(*arrays)  # fmt: skip
        return _as_tensors(out, any(flags))

    return wrapper


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None,
           _preallocate_and_copy: bool = False) -> Callable:  # fmt: skip
    """``torch.func.jacrev``: the Jacobian of ``func`` with respect to argument(s)
    ``argnums`` by reverse mode (``jax.jacrev``). For each output the Jacobian has shape
    ``output.shape + input.shape``; a tuple ``argnums`` gives a tuple per output, pytree
    arguments (dicts of Tensors) give the same pytree. With ``has_aux`` ``func`` returns
    ``(output, aux)`` and the result is ``(jacobian, aux)``. ``chunk_size`` changes
    nothing (JAX computes all rows at once)."""
    return _jacobian(jax.jacrev, func, argnums, has_aux, "vjp(f, *primals)")


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:  # fmt: skip
    """``torch.func.jacfwd``: :func:`jacrev` by forward mode (``jax.jacfwd``)."""
    return _jacobian(jax.jacfwd, func, argnums, has_aux, _JVP)


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """``torch.func.hessian``: ``jacfwd(jacrev(func, argnums), argnums)``."""

    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        nums = _check_argnums(argnums, len(args))
        arrays, tree, flags = _split(args)
        nums_arg = nums[0] if isinstance(argnums, int) else nums
        f = _pure(func, tree, flags, False)
        out = jax.jacfwd(jax.jacrev(f, argnums=nums_arg), argnums=nums_arg)(*arrays)
        return _as_tensors(out, any(flags))

    return wrapper


def vjp(func: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``torch.func.vjp``: ``(output, vjp_fn)`` (``(output, vjp_fn, aux)`` with
    ``has_aux``); ``vjp_fn(cotangents)`` takes the output's structure and returns a tuple
    with one entry per primal."""
    arrays, tree, flags = _split(primals)
    wrap = any(flags)
    res = jax.vjp(_pure(func, tree, flags, has_aux, "vjp(f, *primals)"), *arrays,
                  has_aux=has_aux)  # fmt: skip
    out, pullback = res[0], res[1]
    out_tree = jax.tree_util.tree_structure(out)

    def vjp_fn(cotangents: Any, retain_graph: bool = True, create_graph: Any = None) -> tuple:
        ct = _plain(cotangents)
        ct_tree = jax.tree_util.tree_structure(ct)
        if ct_tree != out_tree:
            raise RuntimeError(
                "Expected pytree structure of cotangents to be the same as pytree structure "
                f"of outputs to the function. cotangents: {ct_tree}, primal output: {out_tree}"
            )
        ct = jax.tree_util.tree_map(lambda c, o: jnp.asarray(c, jnp.result_type(o)), ct, out)
        return _as_tensors(tuple(pullback(ct)), wrap)

    if has_aux:
        return _as_tensors(out, wrap), vjp_fn, _as_tensors(res[2], wrap)
    return _as_tensors(out, wrap), vjp_fn


def _check_primals(primals: Any, tangents: Any) -> tuple[tuple, tuple, Any, list[bool]]:
    if not isinstance(primals, tuple):
        raise RuntimeError(
            f"{_JVP}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals)."
        )
    arrays, tree, flags = _split(primals)
    t_arrays = _plain(tangents)
    if not isinstance(tangents, tuple) or jax.tree_util.tree_structure(
        t_arrays) != jax.tree_util.tree_structure(arrays):  # fmt: skip
        raise RuntimeError(
            f"{_JVP}: Expected primals and tangents to have the same python structure. For "
            "example, if primals is a tuple of 3 tensors, tangents also must be. Got "
            f"primals with structure {jax.tree_util.tree_structure(arrays)} and tangents "
            f"with structure {jax.tree_util.tree_structure(t_arrays)}"
        )
    t_arrays = jax.tree_util.tree_map(lambda t, p: jnp.asarray(t, jnp.result_type(p)),
                                      t_arrays, arrays)  # fmt: skip
    return arrays, t_arrays, tree, flags


def jvp(func: Callable, primals: Any, tangents: Any, *, strict: bool = False,
        has_aux: bool = False) -> tuple:  # fmt: skip
    """``torch.func.jvp``: ``(func(*primals), J @ tangents)`` (and ``aux`` with
    ``has_aux``); ``primals`` and ``tangents`` are tuples of the same structure."""
    arrays, t_arrays, tree, flags = _check_primals(primals, tangents)
    wrap = any(flags)
    f = _pure(func, tree, flags, has_aux, _JVP)
    if has_aux:
        out, jv, aux = jax.jvp(f, arrays, t_arrays, has_aux=True)
        return _as_tensors(out, wrap), _as_tensors(jv, wrap), _as_tensors(aux, wrap)
    out, jv = jax.jvp(f, arrays, t_arrays)
    return _as_tensors(out, wrap), _as_tensors(jv, wrap)


def linearize(func: Callable, *primals: Any) -> tuple:
    """``torch.func.linearize``: ``(func(*primals), jvp_fn)`` where ``jvp_fn(*tangents)``
    is the JVP at ``primals`` (``jax.linearize``: evaluated once, applied many times)."""
    arrays, tree, flags = _split(primals)
    wrap = any(flags)
    out, lin = jax.linearize(_pure(func, tree, flags, False), *arrays)

    def jvp_fn(*tangents: Any) -> Any:
        _, t_arrays, _, _ = _check_primals(primals, tangents)
        return _as_tensors(lin(*t_arrays), wrap)

    return _as_tensors(out, wrap), jvp_fn
