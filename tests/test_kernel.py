"""What the state kernel guarantees: every piece of state a call reaches is lifted or the call
raises, and nothing a failed or concurrent call does leaves a box holding a tracer."""

from __future__ import annotations

import copy
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


HUGE = 2**48  # float32 elements: 1 PiB, more than any address space gives one allocation


def _sized_step(where: str, donate: bool = True):
    """A training step that also builds a float32 array of ``n`` elements, as an output or
    as a temporary. The model is tiny so the program stays under XLA:CPU's 1000-FLOP
    threshold for running inline: an async program whose *output* allocation fails never
    reports it (reading a result blocks forever), so the output case must fail inline."""

    @jaxmod.jit(static_argnums=4, donate=donate)
    def step(model, opt, x, y, n):
        loss, grads = jaxmod.value_and_grad(_loss)(model, x, y)
        opt.step(grads)
        big = jnp.zeros((n,), jnp.float32) + loss
        return (loss, big) if where == "output" else loss + jnp.cumsum(big)[-1]

    return step


def _small_pair() -> tuple[nn.Module, optim.Optimizer]:
    jaxmod.manual_seed(0)
    model = nn.Linear(4, 3)
    return model, optim.Adam(model.parameters(), lr=1e-2)


def _state_arrays(*objs) -> list[jax.Array]:
    return [x for o in objs for c in lifting.cells_of(o)
            for x in jax.tree_util.tree_leaves(c._value) if isinstance(x, jax.Array)]  # fmt: skip


def _trains_like_a_twin(step, model, opt) -> None:
    """``step`` at a small size gives ``model`` exactly what it gives an untouched twin."""
    twin, twin_opt = _small_pair()
    step(twin, twin_opt, X, Y, 1)
    step(model, opt, X, Y, 1)
    _same(_values(model, opt), _values(twin, twin_opt))


@pytest.mark.parametrize("where", ["output", "temporary"])
def test_step_too_big_for_memory_is_refused_before_it_runs(where):
    from jaxmod.transforms.jit import OutOfMemoryError

    model, opt = _small_pair()
    before = _values(model, opt)
    step = _sized_step(where)
    for _ in range(2):  # a refused structure is checked again, not run unchecked
        with pytest.raises(OutOfMemoryError, match=r"^RESOURCE_EXHAUSTED.*'step' needs \d\.00 PiB"):
            step(model, opt, X, Y, HUGE)
        assert not any(x.is_deleted() for x in _state_arrays(model, opt))
        _same(_values(model, opt), before)
    assert issubclass(OutOfMemoryError, jax.errors.JaxRuntimeError)
    _trains_like_a_twin(step, model, opt)


@pytest.fixture
def unchecked_memory(monkeypatch):
    """jaxmod's memory check out of the way (as on a device without memory statistics), so
    XLA:CPU itself fails to allocate a step's 2 PiB temporary buffer while running it."""
    if jax.default_backend() != "cpu":
        pytest.skip("XLA:CPU's allocation failure; other backends allocate differently")
    from jaxmod.transforms import _failures

    monkeypatch.setattr(_failures, "_capacity", lambda device: None)


def test_step_that_xla_fails_while_running_without_donation_keeps_every_array(
    unchecked_memory,
):
    from jaxmod.transforms.jit import OutOfMemoryError

    model, opt = _small_pair()
    before = _values(model, opt)
    step = _sized_step("temporary", donate=False)
    with pytest.raises(OutOfMemoryError, match="RESOURCE_EXHAUSTED: Out of memory alloc"):
        step(model, opt, X, Y, HUGE)
    _same(_values(model, opt), before)
    _trains_like_a_twin(step, model, opt)


def test_step_that_xla_fails_after_donation_names_the_state_it_lost(unchecked_memory):
    """XLA:CPU consumes donated buffers before it allocates: the arrays are gone, and the
    error says so, names them and how to avoid it; a deep-copied state_dict restores."""
    from jaxmod.transforms.jit import OutOfMemoryError, StateLostError

    model, opt = _small_pair()
    before = _values(model, opt)
    snapshot = [copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())]
    step = _sized_step("temporary")
    names = r"Parameter 'model.weight', Parameter 'model.bias', the state of 'opt'"
    with pytest.raises(StateLostError, match=rf"(?s)RESOURCE_EXHAUSTED.*{names}.*donate=False"):
        step(model, opt, X, Y, HUGE)
    assert all(x.is_deleted() for x in _state_arrays(model))  # so are Adam's moments (not
    assert any(x.is_deleted() for x in _state_arrays(opt))  # its lr: read-only, not donated)
    assert not issubclass(StateLostError, OutOfMemoryError)  # a retry loop must not go on
    with pytest.raises(StateLostError, match=rf"{names}. They were deleted before this call"):
        step(model, opt, X, Y, 1)
    model.load_state_dict(snapshot[0])
    opt.load_state_dict(snapshot[1])
    _same(_values(model, opt), before)
    _trains_like_a_twin(step, model, opt)


def test_nan_check_at_run_time_raises_the_nan_error_and_keeps_every_array():
    model, opt = _small_pair()
    before = _values(model, opt)

    @jaxmod.jit
    def step(model, opt, x, y):
        loss, grads = jaxmod.value_and_grad(_loss)(model, x, y)
        opt.step(grads)
        return jnp.log(loss - 1e9)  # NaN

    with jax.debug_nans(True), pytest.raises(FloatingPointError, match=r"nan.*log"):
        step(model, opt, X, Y)
    _same(_values(model, opt), before)
    assert step.trace_count == 1  # jax's eager re-run to find the NaN is no trace
    assert np.isnan(float(step(model, opt, X, Y)))


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


def test_plain_tensor_arguments_and_result_cross_the_compiled_call_as_arrays():
    """A plain Tensor argument goes in as its array and a Tensor result comes out as its
    array (rewrapped by the call, not rebuilt by jax.jit's Python flatten); Tensor and
    array arguments get one plan and one trace each, alternating or not."""
    from jaxmod._core import codegen

    model = _model()
    f = jaxmod.jit(lambda m, x: m(x).sum())
    t = jaxmod.as_tensor(X)
    got = [f(model, x) for x in (t, X, t, X, t)]
    assert [isinstance(g, jaxmod.Tensor) for g in got] == [True, False, True, False, True]
    assert f.trace_count == 2
    np.testing.assert_allclose(float(got[0]), float(got[1]), rtol=1e-6)
    src = codegen.source_of(f._plan.fast)
    assert "args[1]._value" in src and "return NT(out)" in src
    g = jaxmod.jit(lambda m, x: (m(x).sum(), m(x)))  # not one Tensor: left to jax.jit
    out = g(model, t)
    assert all(isinstance(o, jaxmod.Tensor) for o in out)
    assert "return NT(out)" not in codegen.source_of(g._plan.fast)


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
