"""The :class:`Optimizer` base class and :func:`from_optax`.

An optimizer holds ``param_groups`` (mutable dicts, as in torch) and their state: a step
count and the state of the optax transformation that implements the update rule. While
every parameter of a group has been stepped at every step (the common case), the group's
state is *one* optax state over the group's list of parameters, in one
:class:`jaxmod.nn.Variable`: one step count, one moment array per parameter, exactly what
a hand-written optax step holds, so a jitted step passes XLA no more arrays than raw JAX.
Once a step skips some of a group's parameters (no gradient), the group switches to one
state per parameter, as torch keeps it. The state exists from construction so that
:func:`jaxmod.jit` sees every piece of it on the first call;
``state_dict()`` still reports only parameters that have been stepped, with torch's key
names and layout, so that it can be compared with (and loaded from) torch's.

Subclasses describe their update rule as an optax ``GradientTransformation`` built
*at every step* from the group's current hyper-parameters (Python floats eagerly,
traced scalars under ``jaxmod.jit``), so that changing ``group["lr"]`` takes effect on
the next step without recompiling.

The class keeps the interface and the hooks; the work is done beside it, one job per
private module: ``_hparams`` (param groups and the traced hyper-parameter cell),
``_state`` (state layouts and their torch-layout views), ``_step`` (``step()``: gradients
in, compiled updates, new state out) and ``_load`` (``load_state_dict()``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxmod._core import state
from jaxmod._tensor.base import TensorBase as _TensorBase
from jaxmod.nn.parameter import Parameter, Variable, tensor_parameter
from jaxmod.optim import _handwritten, _load, _state, _step
from jaxmod.optim._hparams import (
    _NOT_HPARAMS,
    _as_float,
    _HyperParams,
    _is_numeric,
    _maximize,
    _nonzero,
    _ParamGroup,
    _skipped,
    _weight_decay,
    _with_constants,
)
from jaxmod.optim._state import (
    _copied,
    _get_path,
    _Layout,
    _set_counts,
    _set_path,
    _StateBox,
    _StateView,
)

__all__ = ["Optimizer", "from_optax", "required"]


# Names the optimizer modules import from here.
_weight_decay, _maximize, _skipped = _weight_decay, _maximize, _skipped


class _RequiredParameter:
    """Singleton marking a hyper-parameter without default (torch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class of jaxmod optimizers, with torch's ``Optimizer`` interface.

    Args:
        params: ``model.parameters()``, a list of :class:`~jaxmod.nn.Parameter`, a list of
            ``(name, Parameter)`` pairs, or a list of param-group dicts
            (``[{"params": ..., "lr": ...}, ...]``) with per-group hyper-parameters.
        defaults: the default hyper-parameters of every group.

    Gradients are passed to :meth:`step` (see there); the update rule is an optax
    ``GradientTransformation`` returned by :meth:`_transform`, applied to every
    parameter separately so that, as in torch, each parameter has its own state and
    step count and a parameter without gradient is skipped entirely.

    Structural options (those that change which state arrays exist, e.g. ``amsgrad``,
    ``centered``, or whether SGD's ``momentum`` is non-zero) are fixed when a group is
    added or loaded; numeric hyper-parameters may change at any time.
    """

    # Hyper-parameters that shape the computation and are therefore never traced.
    _static_hparams: tuple[str, ...] = ()
    # Whether torch's state for this optimizer has a "step" entry.
    _torch_has_step: bool = True
    # Whether torch creates the state at construction (Adagrad) rather than lazily.
    _torch_eager_state: bool = False
    # Whether the update rule acts on each parameter independently, so that a group's
    # state may be one optax state over the group's parameter list (see ``_Layout``).
    _groupable: bool = True

    # Set per subclass: it writes its own ``step()`` in torch's style (see _handwritten).
    _handwritten: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handwritten = _handwritten.is_handwritten(cls, Optimizer)

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        # State of a group in lockstep (one optax state over its parameters), keyed by
        # id(group); otherwise one box per parameter, keyed by id(param).
        self._group_boxes: dict[int, _StateBox] = {}
        self._layouts: dict[int, _Layout] = {}
        self._state_boxes: dict[int, Variable] = {}
        self._split_cache: tuple[Any, list] | None = None
        self._hp: _HyperParams | None = None
        self._structures: dict[int, Hashable] = {}
        self._update_cache: dict[Hashable, Callable] = {}
        self._vars_cache: tuple[Hashable, list] | None = None
        # Per group: whether every parameter has been stepped at every step so far, so
        # that all their step counts are equal (see ``_with_scalars``).
        self._lockstep: dict[int, bool] = {}
        if isinstance(params, (Parameter, jax.Array)):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(dict(group))

    # -- construction ------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (torch semantics).

        Missing hyper-parameters take the optimizer's defaults. The new parameters' state
        is created immediately (so a jitted step sees it) and the module structure
        version is bumped so that :func:`jaxmod.jit` retraces.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, (Variable, _TensorBase)):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. Please use a "
                "list instead."
            )
        else:
            params = list(params)
        names = None
        if params and all(isinstance(x, tuple) and len(x) == 2 for x in params):
            names = [n for n, _ in params]
            params = [p for _, p in params]
        # plain leaf tensors (torch.optim.LBFGS([input_img])): one Parameter each, kept
        # for the optimizer's lifetime, reading and writing the tensor itself
        held = self.__dict__.setdefault("_tensor_params", {})
        params = [held.setdefault(id(p), (p, tensor_parameter(p)))[1]
                  if isinstance(p, _TensorBase) and not isinstance(p, Variable) else p
                  for p in params]  # fmt: skip
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(
                    "optimizer can only optimize Parameters, but one of the params is "
                    f"{type(p).__module__}.{type(p).__name__}"
                )
        param_group["params"] = params
        if names is not None:
            param_group["param_names"] = names
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            param_group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in "
                "future, this will cause an error; see "
                "github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(_ParamGroup(param_group))
        param_group = self.param_groups[-1]
        if not self._handwritten:
            self._init_group_state(param_group)
        state.bump()

    def _init_group_state(self, group: dict, keep: bool = False) -> None:
        """Create fresh state for every parameter of ``group`` (keeping existing if ``keep``).

        The state is one optax state over the group's parameters when the update rule
        allows it (``_groupable`` and a slot-wise layout), else one per parameter (see
        ``_state.init_group_state``).
        """
        _state.init_group_state(self, group, keep)

    # -- subclass hooks ----------------------------------------------------------------
    def _structure(self, group: dict) -> Hashable:
        """Options of ``group`` that decide the state's structure (fixed at group creation)."""
        return ()

    def _transform(
        self, structure: Hashable, static: dict[str, Any], hp: dict[str, Any]
    ) -> optax.GradientTransformation:
        """The optax transformation computing one parameter's update.

        ``hp`` holds the group's numeric hyper-parameters (floats or traced scalars),
        ``static`` its other options (booleans, strings, None).
        """
        raise NotImplementedError

    def _torch_paths(self, structure: Hashable) -> dict[str, tuple]:
        """torch state key -> path into the optax state (``"step"`` is handled apart)."""
        return {}

    # -- hyper-parameters --------------------------------------------------------------
    def _trace_hparams(self, *keys: str) -> None:
        """Kept for schedulers written against older jaxmod: every numeric
        hyper-parameter is a traced input already (see ``_hparams.py``)."""

    def _hparam_keys(self, group: dict) -> tuple[tuple[str, int | None], ...]:
        """The keys of ``group``'s numeric hyper-parameters (traced inputs of a jitted
        step), with tuple lengths."""
        return tuple(
            (k, len(v) if isinstance(v, (tuple, list)) else None)
            for k, v in group.items()
            if k not in _NOT_HPARAMS and k not in self._static_hparams and _is_numeric(v)
        )

    def _group_transform(self, group: dict, struct: Hashable) -> optax.GradientTransformation:
        """``group``'s optax transform, outside a compiled update (state init, layouts)."""
        static = self._static(group)
        return self._transform(struct, static, _with_constants(static, self._hparams(group)))

    def _hparams(self, group: dict) -> dict[str, Any]:
        """``group``'s traced hyper-parameters: traced scalars while jaxmod.jit traces a
        step, else Python floats (ints converted). The constants are in ``_static``."""
        hp = self._hp
        if hp is not None and hp.traced is not None:
            traced = hp.traced_values(group)
            if traced is not None:
                return traced
        return {k: _as_float(group[k]) for k, _ in self._hparam_keys(group)}

    def _static(self, group: dict) -> dict[str, Any]:
        """What of ``group`` a compiled step depends on besides traced values: options
        (booleans, strings, None) and a subclass's ``_static_hparams``."""
        traced = {k for k, _ in self._hparam_keys(group)}
        out = {}
        for k, v in group.items():
            if k not in _NOT_HPARAMS and k not in traced and isinstance(v, Hashable):
                out[k] = v
        if "weight_decay" in group and _is_numeric(group["weight_decay"]):
            out["weight_decay!=0"] = _nonzero(group["weight_decay"])
        return out

    # -- jaxmod.jit protocol -----------------------------------------------------------
    def _jaxmod_cells_(self) -> list:
        """Everything :func:`jaxmod.jit` lifts: parameters, state Variables, and one
        read-only vector of the traced hyper-parameters of every group.

        The same objects in the same order are returned until the module structure
        version changes (adding a numeric key to a group bumps it).
        """
        if self._handwritten:
            _handwritten.refuse_jit(self)
        sig = tuple((id(g), self._hparam_keys(g)) for g in self.param_groups)
        key = (state.version(), sig)
        if self._vars_cache is not None and self._vars_cache[0] == key:
            return self._vars_cache[1]
        if self._vars_cache is not None and self._vars_cache[0][1] != sig:
            state.bump()
            key = (state.version(), sig)
        out: list = [p for g in self.param_groups for p in g["params"]]
        for g in self.param_groups:
            box = self._group_boxes.get(id(g))
            out += [box] if box is not None else [self._state_boxes[id(p)] for p in g["params"]]
        spec = [(g, keys) for g, (_, keys) in zip(self.param_groups, sig) if keys]
        self._hp = _HyperParams(spec) if spec else None
        if self._hp is not None:
            out.append(self._hp)
        self._vars_cache = (key, out)
        return out

    def _jaxmod_static_(self) -> Hashable:
        """What shapes a jitted step besides values: options, structures, lockstep flags."""
        return (
            type(self),
            tuple(
                tuple(sorted((k, repr(v)) for k, v in self._static(g).items()))
                for g in self.param_groups
            ),  # fmt: skip
            tuple(
                (self._lockstep.get(id(g), True), id(g) in self._group_boxes)
                for g in self.param_groups
            ),
        )

    # -- gradients ---------------------------------------------------------------------
    def _flat_params(self) -> list[Parameter]:
        return [p for g in self.param_groups for p in g["params"]]

    def _resolve_grads(self, grads: Any) -> dict[int, Any]:
        """Map ``id(box) -> gradient`` from a grads mapping, a list, or ``p.grad``."""
        return _step.resolve_grads(self, grads)

    # -- stepping ----------------------------------------------------------------------
    # Whether the compiled update can be shared by all instances of the class (true when
    # ``_transform`` only depends on its arguments, not on the instance).
    _share_update_fn: bool = True
    _shared_update_cache: dict[Hashable, Callable] = {}

    def _update_fn(
        self, struct: Hashable, static: dict[str, Any], grouped: bool = False
    ) -> Callable:
        """The update of one group (jitted when called eagerly): ``grouped`` for one optax
        state over the group's parameter list, else one optax state per parameter."""
        key = (struct, tuple(sorted(static.items())), grouped)
        inline = state.ctx.jit_depth > 0
        if self._share_update_fn:
            cache, key = Optimizer._shared_update_cache, (type(self), *key)
            transform = functools.partial(type(self)._transform, None)
        else:
            cache, transform = self._update_cache, self._transform
        fn = cache.get(key)
        if fn is None:
            fn = cache[key] = _step.compile_update(transform, struct, static, grouped)
        # Inside a jaxmod.jit trace, run the update inline: a nested jit would only add a
        # call to lower and compile.
        return fn.__wrapped__ if inline else fn

    def step(self, grads: Any = None, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss if given.

        Args:
            grads: the gradients: a mapping from parameter name to array with a
                ``.params`` attribute mapping the same names to the boxes (what
                :func:`jaxmod.grad` returns), a list of arrays aligned with the optimizer's
                parameters (all groups concatenated; ``None`` entries are skipped), or
                ``None`` to use each parameter's ``.grad`` (torch style).
            closure: called first (torch semantics); its return value is returned.

        A parameter without gradient (absent, ``None`` or ``requires_grad=False``) is left
        untouched and its state does not change, like torch's ``p.grad is None``. An eager
        ``opt.step()`` with no ``.grad`` on any trainable parameter changes nothing, as
        torch's does (a learning-rate schedule stepped without training), and warns once;
        inside ``jaxmod.jit`` (``opt.step()`` after ``jaxmod.value_and_grad`` without
        the gradients) and for explicit gradients of another model it raises instead of
        silently leaving the model untrained.
        """
        if callable(grads) and closure is None and not hasattr(grads, "params"):
            grads, closure = None, grads  # torch's ``opt.step(closure)``
        loss = closure() if closure is not None else None
        gmap = self._resolve_grads(grads)
        if _step.check_matched(self, grads, gmap):
            _step.step_groups(self, gmap)
        return loss

    def _ungroup(self, group: dict) -> None:
        """Give every parameter of a grouped ``group`` its own state box."""
        box = self._group_boxes.get(id(group))
        if box is None:
            return
        self._own_boxes(group, self._layouts[id(group)].split(box._value))
        del self._group_boxes[id(group)]
        self._lockstep[id(group)] = False
        self._vars_cache = None
        state.bump()

    def _own_boxes(self, group: dict, states: list, split: bool = True) -> None:
        """Store ``states`` (one per parameter of ``group``) in per-parameter boxes.
        ``split``: they came from one group state and share its scalars, so all but the
        first get buffers of their own (jaxmod.jit donates each box's leaves)."""
        for i, (p, s) in enumerate(zip(group["params"], states)):
            self._state_boxes.setdefault(id(p), _StateBox()).state = (
                _copied(s) if split and i else s
            )

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear each parameter's ``.grad`` (to ``None``, or to zeros if not ``set_to_none``)."""
        for p in self._flat_params():
            if p.grad is None:
                continue
            p.grad = None if set_to_none else jnp.zeros_like(jnp.asarray(p.grad))

    # -- state -------------------------------------------------------------------------
    @property
    def state(self) -> Mapping:
        """Per-parameter state in torch's layout (a read-only view keyed by parameter box;
        for a hand-written optimizer, torch's ``defaultdict(dict)`` that its step fills)."""
        if self._handwritten:
            return _handwritten.state(self)
        return _StateView(self)

    def _has_state(self, p: Variable) -> bool:
        if id(p) in self._state_boxes:
            return True
        return any(
            id(g) in self._group_boxes and any(q is p for q in g["params"])
            for g in self.param_groups
        )

    def _stepped(self, p: Variable) -> bool:
        if not self._has_state(p):
            return False
        step = self._state_of(p)["step"]
        return not isinstance(step, jax.core.Tracer) and int(step) > 0

    def _state_of(self, p: Variable) -> dict:
        """``p``'s structured state; in a lockstep group the counts are the first param's."""
        return _state.state_of(self, p)

    def _reported(self, p: Variable) -> bool:
        """Whether torch would have state for ``p``: stepped (or eager state) and non-empty."""
        if not self._has_state(p):
            return False
        if not (self._torch_eager_state or self._stepped(p)):
            return False
        return bool(self._torch_state(p))

    def _group_of(self, p: Variable) -> dict:
        for g in self.param_groups:
            if any(q is p for q in g["params"]):
                return g
        raise KeyError("parameter is not optimized by this optimizer")

    def _torch_state(self, p: Variable) -> dict[str, Any]:
        s = self._state_of(p)
        struct = self._structures[id(self._group_of(p))]
        out: dict[str, Any] = {}
        if self._torch_has_step:
            out["step"] = jnp.asarray(s["step"], jnp.float32)
        for k, path in self._torch_paths(struct).items():
            out[k] = _get_path(s["opt"], path)
        return out

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``.

        The layout, key names and indices are torch's: only parameters that have been
        stepped appear in ``"state"``; values are Tensors (``step`` a float32 scalar).
        """
        if self._handwritten:
            return _handwritten.state_dict(self)
        return _state.state_dict(self)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state dict in torch's layout (from jaxmod or converted from torch).

        Values may be numpy arrays, jax arrays, Python scalars or torch tensors. Groups'
        hyper-parameters are replaced by the saved ones; parameters absent from
        ``"state"`` get fresh state. Everything is checked before anything changes
        (torch's checks with torch's messages, and what torch would only find at a later
        ``step()``: state shaped for other parameters, another optimizer's groups or
        state, a value that is not a number, an array a jitted step deleted); a load that
        raises leaves the optimizer as it was, and working.
        """
        if self._handwritten:
            return _handwritten.load_state_dict(self, state_dict)
        _load.load(self, state_dict)

    def _saved_layout(self, struct: Hashable, tx: Any, p: Parameter) -> dict[str, Any]:
        """What ``state_dict()["state"]`` holds for ``p``: key -> ``ShapeDtypeStruct`` tree."""
        return _load.saved_layout(self, struct, tx, p)

    def _apply_saved(self, struct: Hashable, opt: Any, entry: dict, step: int) -> Any:
        """``p``'s optax state ``opt`` with the checked, converted saved ``entry`` written in."""
        for key, path in self._torch_paths(struct).items():
            if key in entry:
                opt = _set_path(opt, path, entry[key])
        return _set_counts(opt, step)

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_update_cache"] = {}
        return d

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            if i:
                lines.append("")  # torch leaves a blank line between groups
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k not in _NOT_HPARAMS:
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


class _FromOptax(Optimizer):
    """Any optax ``GradientTransformation`` as a jaxmod optimizer (see :func:`from_optax`)."""

    _torch_has_step = True
    _groupable = False  # documented: applied to each parameter separately
    _share_update_fn = False

    def __init__(self, params: Iterable[Any], tx: optax.GradientTransformation) -> None:
        self._tx = tx
        super().__init__(params, {})

    def _transform(
        self, structure: Hashable, static: dict[str, Any], hp: dict[str, Any]
    ) -> optax.GradientTransformation:
        return self._tx

    def _torch_state(self, p: Variable) -> dict[str, Any]:
        s = self._state_of(p)
        return {"step": jnp.asarray(s["step"], jnp.float32), "optax_state": s["opt"]}

    def _saved_layout(self, struct: Hashable, tx: Any, p: Parameter) -> dict[str, Any]:
        init = jax.eval_shape(tx.init, jax.ShapeDtypeStruct(p.shape, p.dtype))
        return {"step": jax.ShapeDtypeStruct((), jnp.float32), "optax_state": init}

    def _apply_saved(self, struct: Hashable, opt: Any, entry: dict, step: int) -> Any:
        return entry.get("optax_state", _set_counts(opt, step))


def from_optax(params: Iterable[Any], tx: optax.GradientTransformation) -> Optimizer:
    """Wrap any optax ``GradientTransformation`` as a jaxmod :class:`Optimizer`.

    Args:
        params: parameters or param groups, as for any optimizer.
        tx: the transformation; its updates are *added* to the parameters (optax
            convention, so include the learning rate's sign, e.g. ``optax.adam(1e-3)``).

    The transformation is applied to each parameter separately (each has its own optax
    state). Its hyper-parameters are whatever ``tx`` closed over: use
    ``optax.inject_hyperparams`` to change them between steps. ``state_dict()["state"]``
    holds ``{"step", "optax_state"}`` per stepped parameter.
    """
    return _FromOptax(params, tx)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)
