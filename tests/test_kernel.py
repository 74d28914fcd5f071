"""What the state kernel guarantees: every piece of state a call reaches is lifted or the call
raises, and nothing a failed or concurrent call does leaves a box holding a tracer."""

from __future__ import annotations

import dataclasses
import gc
import threading
import weakref
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn, optim
from jaxmod._core import lifting

X = jnp.asarray(np.random.default_rng(0).standard_normal((6, 4)), jnp.float32)
Y = jnp.asarray(np.random.default_rng(1).standard_normal((6, 3)), jnp.float32)


def _model() -> nn.Module:
    jaxmod.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _values(*objs) -> list[np.ndarray]:
    """Every cell value of ``objs`` (models and optimizers), as numpy copies."""
    out = []
    for o in objs:
        for c in lifting.cells_of(o):
            for leaf in jax.tree_util.tree_leaves(c._value):
                assert not isinstance(leaf, jax.core.Tracer), "a box holds a tracer"
                out.append(np.array(leaf))
    return out


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _loss(model: nn.Module, x: jax.Array, y: jax.Array) -> jax.Array:
    return F.mse_loss(model(x), y)


class Trainer:
    """The most common structure of a torch training script."""

    def __init__(self) -> None:
        self.model = _model()
        self.opt = optim.Adam(self.model.parameters(), lr=1e-2)

    def step(self, x, y):
        loss, grads = jaxmod.value_and_grad(_loss)(self.model, x, y)
        self.opt.step(grads)
        return loss


class JitTrainer(Trainer):
    step = jaxmod.jit(Trainer.step)


@dataclasses.dataclass
class Holder:
    model: nn.Module
    opt: optim.Optimizer


class Pair(NamedTuple):
    model: nn.Module
    opt: optim.Optimizer


def _eager_run(steps: int = 4) -> tuple[list[float], list[np.ndarray]]:
    t = Trainer()
    losses = [float(t.step(X, Y)) for _ in range(steps)]
    return losses, _values(t.model)


def _step_of(container):
    def step(c, x, y):
        loss, grads = jaxmod.value_and_grad(_loss)(c.model, x, y)
        c.opt.step(grads)
        return loss

    return step


def test_trainer_method_under_jit_trains_exactly_like_eager():
    losses, params = _eager_run()
    t = JitTrainer()
    jit_losses = [float(t.step(X, Y)) for _ in range(4)]
    np.testing.assert_allclose(jit_losses, losses, rtol=1e-5)
    for a, b in zip(_values(t.model), params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert t.step.trace_count == 1


@pytest.mark.parametrize("kind", ["dataclass", "namedtuple", "plain", "list", "dict", "cycle"])
def test_state_reached_through_plain_objects_is_lifted(kind):
    losses, params = _eager_run()
    t = Trainer()
    if kind == "dataclass":
        arg, step = Holder(t.model, t.opt), _step_of(None)
    elif kind == "namedtuple":
        arg, step = Pair(t.model, t.opt), _step_of(None)
    elif kind == "plain":
        arg, step = t, _step_of(None)
    elif kind == "cycle":
        t.me = t  # a cycle through a plain object
        arg, step = t, _step_of(None)
    elif kind == "list":
        arg = [Holder(t.model, t.opt)]

        def step(c, x, y):
            return _step_of(None)(c[0], x, y)
    else:
        arg = {"h": Holder(t.model, t.opt)}

        def step(c, x, y):
            return _step_of(None)(c["h"], x, y)

    jitted = jaxmod.jit(step)
    jit_losses = [float(jitted(arg, X, Y)) for _ in range(4)]
    np.testing.assert_allclose(jit_losses, losses, rtol=1e-5)
    for a, b in zip(_values(t.model), params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_replacing_an_attribute_of_a_plain_object_is_seen():
    t = JitTrainer()
    t.step(X, Y)
    other = _model()
    t.model = other
    t.opt = optim.SGD(other.parameters(), lr=0.1)
    before = _values(other)
    t.step(X, Y)
    assert any(not np.array_equal(a, b) for a, b in zip(_values(other), before))


def test_state_hidden_from_discovery_raises_naming_its_path():
    t = Trainer()
    hidden = lambda: None  # noqa: E731  (a function's attributes are never searched)
    hidden.model = t.model

    @jaxmod.jit
    def step(x):
        return hidden.model(x)

    with pytest.raises(jaxmod.StaleStateError, match=r"'hidden\.model\.0\.weight'"):
        step(X)
    assert isinstance(jaxmod.StaleStateError("x"), RuntimeError)  # old except clauses hold
    _values(t.model)  # nothing leaked


READS = {
    "matmul operator": lambda x, p: x @ p,
    "jnp.dot": lambda x, p: jnp.dot(x, p),
    "jnp.matmul": lambda x, p: jnp.matmul(x, p),
    "jnp.einsum": lambda x, p: jnp.einsum("ij,jk->ik", x, p),
    "jnp.asarray": lambda x, p: x @ jnp.asarray(p),
    "tree flatten": lambda x, p: x @ jax.tree_util.tree_leaves(p)[0],
    "jax.nn.relu": lambda x, p: x @ jax.nn.relu(p),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_every_read_of_an_unlifted_box_raises(read):
    box = nn.Parameter(jnp.ones((4, 2)))
    hidden = lambda: None  # noqa: E731
    hidden.box = box
    f = jaxmod.jit(lambda x: read(x, hidden.box))
    with pytest.raises(jaxmod.StaleStateError):
        f(X)
    # ... while the same read of a lifted box is fine, and follows changes of its value.
    g = jaxmod.jit(lambda x, b: read(x, b))
    np.testing.assert_allclose(g(X, box), read(X, box._value), rtol=1e-6)
    box.data = 2 * box._value
    np.testing.assert_allclose(g(X, box), read(X, box._value), rtol=1e-6)


def test_nested_transform_lifts_nothing_the_enclosing_jit_did_not():
    model = _model()
    hidden = lambda: None  # noqa: E731
    hidden.model = model
    before = _values(model)

    @jaxmod.jit
    def step(x, y):
        return jaxmod.value_and_grad(_loss)(hidden.model, x, y)[0]

    with pytest.raises(jaxmod.StaleStateError):
        step(X, Y)
    _same(_values(model), before)  # concrete and unchanged: no leaked tracers


class _Boom(Exception):
    pass


def _failing_steps():
    def python_error(model, opt, x, y):
        loss, grads = jaxmod.value_and_grad(_loss)(model, x, y)
        opt.step(grads)
        raise _Boom("after the update")

    def shape_error(model, opt, x, y):
        loss, grads = jaxmod.value_and_grad(_loss)(model, x, y)
        opt.step(grads)
        return model(jnp.ones((2, 5)))  # wrong input width

    def interrupt(model, opt, x, y):
        opt.step(jaxmod.grad(_loss)(model, x, y))
        raise KeyboardInterrupt

    return {"python error": (python_error, _Boom), "shape error": (shape_error, Exception),
            "KeyboardInterrupt": (interrupt, KeyboardInterrupt)}  # fmt: skip


@pytest.mark.parametrize("case", _failing_steps().items(), ids=_failing_steps().keys())
def test_exception_mid_trace_leaves_every_box_as_it_was(case):
    _, (fn, exc) = case
    model = _model()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    before = _values(model, opt)
    with pytest.raises(exc):
        jaxmod.jit(fn)(model, opt, X, Y)
    _same(_values(model, opt), before)
    # and both keep working, jitted and eagerly
    good = jaxmod.jit(_step_of(None))
    first = float(good(Holder(model, opt), X, Y))
    assert np.isfinite(first) and float(_loss(model, X, Y)) < first


def test_threads_on_separate_models_give_the_serial_results():
    losses, params = _eager_run(3)
    trainers = [JitTrainer() for _ in range(4)]
    errors: list[BaseException] = []

    def work(t):
        try:
            for _ in range(3):
                t.step(X, Y)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in trainers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for t in trainers:
        for a, b in zip(_values(t.model), params):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_threads_on_one_model_are_serialised():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.01)
    w0 = np.asarray(model.weight._value)

    @jaxmod.jit
    def step(model, opt):
        opt.step([jnp.ones(p.shape) for p in model.parameters()])  # constant gradient

    step(model, opt)
    threads = [threading.Thread(target=lambda: [step(model, opt) for _ in range(5)])
               for _ in range(4)]  # fmt: skip
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 21 steps applied one after another: none lost, no tracer left behind
    np.testing.assert_allclose(_values(model)[0], w0 - 21 * 0.01, rtol=1e-5)


def test_eager_inference_while_another_thread_compiles_raises_nothing():
    eager = _model()
    stop = threading.Event()
    errors: list[BaseException] = []

    def compile_loop():
        m = _model()
        try:
            for n in range(2, 6):  # new shapes: a trace each time
                jaxmod.jit(lambda m, x: m(x).sum())(m, jnp.ones((n, 4)))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            stop.set()

    def infer():
        try:
            while not stop.is_set():
                eager(X)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=compile_loop), threading.Thread(target=infer)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def test_jit_on_a_method_keeps_no_instance_alive():
    t = JitTrainer()
    t.step(X, Y)
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None


def test_learning_rate_set_every_step_compiles_once():
    compiles: list[str] = []

    def listen(name, duration, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        model = _model()
        opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        model.load_state_dict({k: np.asarray(v) for k, v in model.state_dict().items()})
        model.to("cpu")
        step = jaxmod.jit(_step_of(None))
        h = Holder(model, opt)
        step(h, X, Y)
        n = len(compiles)
        for i in range(5):  # nanoGPT's loop: a new lr (and weight decay) every step
            for g in opt.param_groups:
                g["lr"] = 1e-3 * (i + 2)
                g["weight_decay"] = 0.1 / (i + 2)
            step(h, X, Y)
        jax.block_until_ready(model[0].weight._value)
        assert len(compiles) == n and step.trace_count == 1
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def test_torch_module_layout_names_the_real_modules(torch):
    import jaxmod.nn.modules.module as mm
    from jaxmod.nn.modules.module import Module, register_module_forward_hook

    assert Module is nn.Module and register_module_forward_hook is mm.register_module_forward_hook
    pairs = {"linear": "Linear", "conv": "Conv2d", "container": "Sequential",
             "batchnorm": "BatchNorm2d", "activation": "ReLU", "pooling": "MaxPool2d",
             "dropout": "Dropout", "loss": "CrossEntropyLoss", "sparse": "Embedding",
             "rnn": "LSTM", "transformer": "TransformerEncoderLayer", "padding": "ZeroPad2d",
             "normalization": "LayerNorm", "flatten": "Flatten", "pixelshuffle": "PixelShuffle",
             "upsampling": "Upsample", "instancenorm": "InstanceNorm2d"}  # fmt: skip
    import importlib

    for sub, cls in pairs.items():
        assert hasattr(importlib.import_module(f"torch.nn.modules.{sub}"), cls)
        assert getattr(importlib.import_module(f"jaxmod.nn.modules.{sub}"), cls) is getattr(nn, cls)


def test_step_failing_at_run_time_keeps_every_array_and_plain_steps_still_donate():
    model = _model()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    before = _values(model, opt)
    fail = {"now": True}

    def check(loss):
        if fail["now"]:
            raise ValueError("a host-side check failed")

    @jaxmod.jit
    def checked(model, opt, x, y):
        loss, grads = jaxmod.value_and_grad(_loss)(model, x, y)
        opt.step(grads)
        jax.debug.callback(check, loss)  # runs on the host, after the update is computed
        return loss

    with pytest.raises(Exception, match="host-side check failed"):
        checked(model, opt, X, Y)
    _same(_values(model, opt), before)  # nothing donated, nothing written
    fail["now"] = False
    assert np.isfinite(float(checked(model, opt, X, Y))) and checked.trace_count == 1
    w = model[0].weight._value
    jaxmod.jit(_step_of(None))(Holder(model, opt), X, Y)
    assert w.is_deleted()  # a step without callbacks donates its state buffers


def test_generated_code_is_in_linecache_for_tracebacks():
    import linecache

    from jaxmod._core import codegen

    model = _model()
    f = jaxmod.jit(lambda m, x: m(x))
    f(model, X)
    src = codegen.source_of(f._plan.fast)
    assert src is not None and "def fast(args, kwargs):" in src
    filename = f._plan.fast.__code__.co_filename
    assert linecache.getline(filename, 2).strip() == "def fast(args, kwargs):"


def test_boxes_and_tensors_in_static_places_compare_by_identity():
    """Boxes and Tensors have torch's elementwise ``==``; as pytree metadata (a Grads'
    boxes, a module attribute list holding them) they must compare by identity, or a
    second trace raises 'Boolean value of Tensor ... is ambiguous'."""
    model = nn.Linear(3, 2)
    model.extra = [model.weight, jaxmod.ones(2)]  # static list holding a box and a Tensor
    step = jaxmod.jit(lambda m, x: jaxmod.value_and_grad(lambda m: m(x).sum())(m))
    for _ in range(2):
        loss, grads = step(model, jnp.ones((4, 3)))
    assert set(grads) == {"weight", "bias"}
    g1 = jax.tree_util.tree_structure(grads)
    g2 = jax.tree_util.tree_structure(
        jaxmod.value_and_grad(lambda m: m(jnp.ones(3)).sum())(model)[1]
    )
    assert g1 == g2
