"""torch's auxiliary namespaces that model files touch, on ``import jaxmod as torch``.

``torch.jit`` helpers on :func:`jaxmod.jit`, ``torch.utils.checkpoint``,
``torch.accelerator``, ``nn.DataParallel`` / ``nn.parallel.data_parallel``,
``torch.compile``, and the ``torch.backends`` / ``torch.cuda`` / threading knobs, each
compared with what torch 2.13 does on the same code.
"""

from __future__ import annotations

import copy
import typing
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from _layer_parity import close, copy_weights, rand

import jaxmod

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- torch.jit
def test_jaxmod_jit_is_still_the_compiling_function():
    assert jaxmod.jit is jaxmod.transforms.jit
    f = jaxmod.jit(lambda x: x * 2)
    np.testing.assert_array_equal(np.asarray(f(jnp.ones(3))), [2.0, 2.0, 2.0])
    g = jaxmod.jit(donate=False)(lambda x: x + 1)
    np.testing.assert_array_equal(np.asarray(g(jnp.zeros(2))), [1.0, 1.0])


@pytest.mark.parametrize("name", ["unused", "export", "ignore", "_overload", "_overload_method"])
def test_jit_decorators_return_the_function_as_torch_does(name):
    def fn(x):  # a stub body is what torch's _overload* accept
        ...

    assert getattr(torch.jit, name)(fn) is fn
    assert getattr(jaxmod.jit, name)(fn) is fn


@pytest.mark.filterwarnings("ignore:ignore\\(True\\) has been deprecated:FutureWarning")
def test_jit_ignore_with_arguments_returns_a_decorator_as_torch():
    def fn(x):
        return x

    assert torch.jit.ignore(drop=True)(fn) is fn
    assert jaxmod.jit.ignore(drop=True)(fn) is fn


def test_jit_predicates_final_and_annotate_match_eager_torch():
    assert jaxmod.jit.is_scripting() is torch.jit.is_scripting() is False
    assert jaxmod.jit.is_tracing() is torch.jit.is_tracing() is False
    assert jaxmod.jit.Final is torch.jit.Final is typing.Final
    assert jaxmod.jit.annotate(list[int], [1]) == torch.jit.annotate(list[int], [1]) == [1]
    seen = []

    @jaxmod.jit
    def f(x):
        seen.append((jaxmod.jit.is_scripting(), jaxmod.jit.is_tracing()))
        return x

    f(jnp.ones(1))
    assert seen == [(False, False)]  # the eager branch is the right one under jaxmod.jit


def _scripted_block(torch):
    """A TorchScript-annotated block in the style of torchvision's DenseNet/Inception."""
    nn = torch.nn

    class Block(nn.Module):
        __constants__ = ["scale"]
        scale: torch.jit.Final[float]

        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)
            self.scale = 2.0

        @torch.jit.unused
        def call_checkpoint(self, x):
            return self.lin(x)

        @torch.jit.ignore
        def debug_name(self) -> str:
            return "block"

        @torch.jit.export
        def half(self, x):
            return self.forward(x) / 2

        @torch.jit._overload_method
        def forward(self, x: list) -> typing.Any: ...

        @torch.jit._overload_method
        def forward(self, x: typing.Any) -> typing.Any: ...  # noqa: F811

        def forward(self, x):  # noqa: F811
            if isinstance(x, list):
                x = x[0]
            if torch.jit.is_scripting() or torch.jit.is_tracing():
                raise AssertionError("the eager branch must run")
            y = torch.jit.annotate(typing.Any, self.lin(x))
            return y * self.scale

    return Block()


def test_torchscript_annotated_module_runs_unchanged_and_matches_torch():
    t_block, j_block = _scripted_block(torch), _scripted_block(jaxmod)
    copy_weights(t_block, j_block)
    x = rand(4, 3)
    close(j_block(jnp.asarray(x)), t_block(torch.tensor(x)))
    close(j_block([jnp.asarray(x)]), t_block([torch.tensor(x)]))
    close(j_block.half(jnp.asarray(x)), t_block.half(torch.tensor(x)))
    assert j_block.debug_name() == t_block.debug_name() == "block"
    assert jaxmod.jit.script(j_block) is j_block
    assert not isinstance(j_block, jaxmod.jit.ScriptModule)
    close(jaxmod.jit(lambda m, v: m(v))(j_block, jnp.asarray(x)), t_block(torch.tensor(x)))


@pytest.mark.parametrize("name,fix", [("trace", "jaxmod.jit"), ("save", "jaxmod.save"),
                                      ("load", "jaxmod.load")])  # fmt: skip
def test_torchscript_programs_raise_a_named_error_with_the_jaxmod_tool(name, fix):
    with pytest.raises(NotImplementedError, match=f"torch.jit.{name} .*{fix}"):
        getattr(jaxmod.jit, name)(lambda x: x, jnp.ones(1))


# ---------------------------------------------------------------- torch.utils.checkpoint
def _mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))


def _pair():
    t, j = _mlp(torch), _mlp(jaxmod)
    copy_weights(t, j)
    return t, j


def _torch_grads(t, out):
    out.pow(2).sum().backward()
    return {n: p.grad for n, p in t.named_parameters()}


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_values_and_gradients_match_torch(use_reentrant):
    t, j = _pair()
    x = rand(6, 3)
    xt = torch.tensor(x, requires_grad=True)
    t_out = torch.utils.checkpoint.checkpoint(t, xt, use_reentrant=use_reentrant)
    t_grads = _torch_grads(t, t_out)

    def loss(m, v):
        out = jaxmod.utils.checkpoint.checkpoint(m, v, use_reentrant=use_reentrant)
        return jnp.sum(out**2), out

    (_, out), grads = jaxmod.value_and_grad(loss, has_aux=True)(j, jnp.asarray(x))
    close(out, t_out)
    for n, g in t_grads.items():
        close(grads[n], g)


def test_checkpoint_without_use_reentrant_warns_like_torch():
    t, j = _pair()
    x = rand(2, 3)
    with pytest.warns(UserWarning) as t_rec:
        torch.utils.checkpoint.checkpoint(t, torch.tensor(x, requires_grad=True))
    with pytest.warns(UserWarning) as j_rec:
        jaxmod.utils.checkpoint.checkpoint(j, jnp.asarray(x))
    assert str(j_rec[0].message) == str(t_rec[0].message)
    with pytest.warns(UserWarning) as t_rec:
        torch.utils.checkpoint.checkpoint_sequential(t, 2, torch.tensor(x, requires_grad=True))
    with pytest.warns(UserWarning) as j_rec:
        jaxmod.utils.checkpoint.checkpoint_sequential(j, 2, jnp.asarray(x))
    assert str(j_rec[0].message) == str(t_rec[0].message)


def test_checkpoint_argument_errors_match_torch():
    t, j = _pair()
    x = rand(2, 3)
    for lib, m, v in ((torch, t, torch.tensor(x)), (jaxmod, j, jnp.asarray(x))):
        cp = lib.utils.checkpoint
        with pytest.raises(ValueError, match="^Unexpected keyword arguments: scale$"):
            cp.checkpoint(m, v, use_reentrant=True, scale=2)
        with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
            cp.checkpoint(m, v, use_reentrant=True, debug=True)
        with pytest.raises(ValueError, match="^Unexpected keyword arguments: scale$"):
            cp.checkpoint_sequential(m, 2, v, use_reentrant=False, scale=2)
    with pytest.raises(NotImplementedError, match="policy=jax.checkpoint_policies"):
        jaxmod.utils.checkpoint.checkpoint(j, jnp.asarray(x), use_reentrant=False,
                                           context_fn=lambda: None)  # fmt: skip


def test_checkpoint_passes_python_arguments_through_untraced_as_torch():
    """``None``, bools and numbers reach the function as Python values (HF-style calls)."""

    def block(lib, lin, x, mask, scale, relu):
        y = lin(x) * scale
        if mask is not None:
            y = y * mask
        return lib.nn.functional.relu(y) if relu else y

    t_lin, j_lin = torch.nn.Linear(3, 2), jaxmod.nn.Linear(3, 2)
    copy_weights(t_lin, j_lin)
    x = rand(4, 3)
    xt = torch.tensor(x, requires_grad=True)
    t_out = torch.utils.checkpoint.checkpoint(
        block, torch, t_lin, xt, None, 3.0, True, use_reentrant=False
    )
    t_out.sum().backward()

    def loss(v):
        out = jaxmod.utils.checkpoint.checkpoint(
            block, jaxmod, j_lin, v, None, 3.0, True, use_reentrant=False
        )
        return jnp.sum(out), out

    (_, out), gx = jax.value_and_grad(loss, has_aux=True)(jnp.asarray(x))
    close(out, t_out)
    close(gx, xt.grad)


class _Net(jaxmod.nn.Module):
    """Checkpoints its stateful block through a Module, a bound method and a closure."""

    def __init__(self, how: str) -> None:
        super().__init__()
        nn = jaxmod.nn
        self.how = how
        self.block = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def _scaled(self, x, scale, flag):
        return self.block(x) * scale if flag else self.block(x)

    def forward(self, x, checkpointed=True):
        cp = jaxmod.utils.checkpoint.checkpoint
        if not checkpointed:
            y = self.block(x)
        elif self.how == "module":
            y = cp(self.block, x, use_reentrant=False)
        elif self.how == "bound":
            y = cp(self._scaled, x, 1.0, True, use_reentrant=False)
        else:
            block = self.block
            y = cp(lambda v, flag: block(v) if flag else v, x, True, use_reentrant=False)
        return self.head(y)


@pytest.mark.parametrize("how", ["module", "bound", "closure"])
def test_checkpointed_training_under_jit_equals_the_plain_run(how):
    """BatchNorm statistics and parameters after jitted checkpointed steps equal those of
    un-checkpointed steps: state inside is lifted, never leaked as a tracer."""
    x = jnp.asarray(rand(6, 3))
    ref = _Net(how)
    net = copy.deepcopy(ref)

    def loss(m, v, checkpointed):
        return jnp.mean(m(v, checkpointed) ** 2)

    def train(model, steps, jit, checkpointed):
        opt = jaxmod.optim.SGD(model.parameters(), lr=0.1)

        def step(v):
            grads = jaxmod.grad(loss)(model, v, checkpointed)
            opt.step(grads)

        run = jaxmod.jit(step) if jit else step
        for _ in range(steps):
            run(x)

    train(ref, 2, jit=True, checkpointed=False)
    train(net, 2, jit=True, checkpointed=True)
    for (n, a), (_, b) in zip(ref.state_dict().items(), net.state_dict().items()):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6, err_msg=n)
    assert int(net.block[1].num_batches_tracked.value) == 2


@pytest.mark.parametrize("segments", [1, 2, 3])
def test_checkpoint_sequential_matches_torch(segments):
    t, j = _pair()
    x = rand(6, 3)
    xt = torch.tensor(x, requires_grad=True)
    t_out = torch.utils.checkpoint.checkpoint_sequential(t, segments, xt, use_reentrant=False)
    t_grads = _torch_grads(t, t_out)

    def loss(m, v):
        out = jaxmod.utils.checkpoint.checkpoint_sequential(m, segments, v, use_reentrant=False)
        return jnp.sum(out**2), out

    (_, out), grads = jaxmod.value_and_grad(loss, has_aux=True)(j, jnp.asarray(x))
    close(out, t_out)
    for n, g in t_grads.items():
        close(grads[n], g)
    lst = jaxmod.utils.checkpoint.checkpoint_sequential(list(j), segments, jnp.asarray(x),
                                                        use_reentrant=False)  # fmt: skip
    close(lst, t_out)


def _double(x):
    return 2 * x


def test_checkpoint_sequential_rejects_plain_functions_with_the_fix():
    with pytest.raises(TypeError, match="element 1 is a function, not a Module"):
        jaxmod.utils.checkpoint.checkpoint_sequential(
            [jaxmod.nn.Linear(2, 2), _double], 2, jnp.ones((1, 2)), use_reentrant=False
        )


def test_batchnorm_inside_checkpoint_updates_once_where_torch_updates_twice():
    """torch replays the forward in backward, so BatchNorm's running statistics move twice
    per step (``num_batches_tracked`` +2, effective momentum 1-(1-m)^2 = 0.19); jaxmod's
    replay is JAX's, so they move once and equal torch's un-checkpointed run. Numbers are
    in docs/porting.md."""
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    j = jaxmod.nn.Sequential(jaxmod.nn.Linear(3, 4), jaxmod.nn.BatchNorm1d(4))
    copy_weights(t, j)
    plain = copy.deepcopy(t)
    for step in range(3):
        x = rand(8, 3, seed=step)
        out = torch.utils.checkpoint.checkpoint(t, torch.tensor(x), use_reentrant=False)
        out.sum().backward()
        plain(torch.tensor(x)).sum().backward()
        jaxmod.grad(lambda m, v: jaxmod.utils.checkpoint.checkpoint(
            m, v, use_reentrant=False).sum())(j, jnp.asarray(x))  # fmt: skip
    assert t[1].num_batches_tracked.item() == 6
    assert plain[1].num_batches_tracked.item() == int(j[1].num_batches_tracked.value) == 3
    close(j[1].running_mean, plain[1].running_mean)
    close(j[1].running_var, plain[1].running_var)
    # torch's checkpointed statistics drift: measurably different from the plain run
    gap = np.abs(t[1].running_var.numpy() - plain[1].running_var.numpy()).max()
    assert gap > 1e-2


# ----------------------------------------------------------------------- torch.accelerator
def test_accelerator_queries_follow_jax_and_match_torch_without_an_accelerator():
    on_cpu = jax.default_backend() == "cpu"
    acc = jaxmod.accelerator
    assert acc.is_available() is (not on_cpu)
    assert acc.device_count() == (0 if on_cpu else len(jax.devices()))
    assert acc.current_device_index() == acc.current_device_idx() == 0
    acc.synchronize()
    acc.empty_cache()
    acc.set_device_index(0)
    with acc.device_index(0):
        pass
    if on_cpu and not torch.accelerator.is_available():  # torch's CPU-only answers
        assert acc.current_accelerator() is torch.accelerator.current_accelerator() is None
        assert acc.device_count() == torch.accelerator.device_count() == 0
    else:
        assert str(getattr(acc.current_accelerator(), "type", acc.current_accelerator())) in (
            "cuda", "tpu"
        )  # fmt: skip


# ------------------------------------------------------------------ nn.DataParallel & co.
def test_data_parallel_wrapper_has_torchs_structure_and_calls_the_module():
    t_lin, j_lin = torch.nn.Linear(3, 2), jaxmod.nn.Linear(3, 2)
    copy_weights(t_lin, j_lin)
    t_dp, j_dp = torch.nn.DataParallel(t_lin), jaxmod.nn.DataParallel(j_lin)
    assert repr(j_dp) == repr(t_dp)
    assert list(j_dp.state_dict()) == list(t_dp.state_dict()) == ["module.weight", "module.bias"]
    assert j_dp.module is j_lin and j_dp.device_ids == t_dp.device_ids == []
    x = rand(4, 3)
    close(j_dp(jnp.asarray(x)), t_dp(torch.tensor(x)))
    grads = jaxmod.grad(lambda m, v: m(v).sum())(j_dp, jnp.asarray(x))
    assert sorted(grads) == ["module.bias", "module.weight"]
    j_lin.load_state_dict({k[len("module.") :]: v for k, v in j_dp.state_dict().items()})


def test_data_parallel_function_calls_the_module_on_one_device():
    """torch calls the module like this on a single GPU (and raises without any GPU)."""
    lin = jaxmod.nn.Linear(3, 2)
    x = jnp.asarray(rand(4, 3))
    data_parallel = jaxmod.nn.parallel.data_parallel
    np.testing.assert_array_equal(np.asarray(data_parallel(lin, x)), np.asarray(lin(x)))
    np.testing.assert_array_equal(np.asarray(data_parallel(lin, (x,))), np.asarray(lin(x)))
    bil = jaxmod.nn.Bilinear(3, 3, 2)
    np.testing.assert_array_equal(
        np.asarray(data_parallel(bil, (x, x), device_ids=[0], output_device=0)),
        np.asarray(bil(x, x)),
    )


def test_torch_compile_compiles_a_module_or_a_function():
    t_lin, j_lin = torch.nn.Linear(3, 2), jaxmod.nn.Linear(3, 2)
    copy_weights(t_lin, j_lin)
    x = rand(4, 3)
    compiled = jaxmod.compile(j_lin, mode="max-autotune", fullgraph=True, dynamic=False)
    close(compiled(jnp.asarray(x)), t_lin(torch.tensor(x)))
    f = jaxmod.compile(lambda v: v * 2)
    np.testing.assert_array_equal(np.asarray(f(jnp.ones(2))), [2.0, 2.0])


# ------------------------------------- torch.backends / torch.cuda / precision / threads
def _needs(path: str):
    obj = jaxmod
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            pytest.skip(f"jaxmod.{path} lands with the tensor branch")
    return obj


def test_backend_flags_have_torchs_defaults_and_are_settable():
    cudnn, cuda_b, mps = _needs("backends.cudnn"), _needs("backends.cuda"), _needs("backends.mps")
    tb = torch.backends
    assert (cudnn.benchmark, cudnn.deterministic, cudnn.enabled) == (
        tb.cudnn.benchmark, tb.cudnn.deterministic, tb.cudnn.enabled
    )  # fmt: skip
    assert cuda_b.matmul.allow_tf32 == tb.cuda.matmul.allow_tf32
    assert mps.is_available() is tb.mps.is_available() is False
    old = cudnn.benchmark
    try:
        cudnn.benchmark = True
        assert cudnn.benchmark is True
    finally:
        cudnn.benchmark = old


def test_cuda_queries_and_no_op_calls():
    cuda = jaxmod.cuda
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    assert cuda.is_available() is bool(gpus)
    assert cuda.device_count() == len(gpus)
    for name in ("manual_seed", "manual_seed_all"):
        _needs(f"cuda.{name}")(0)
    _needs("cuda.empty_cache")()
    if gpus:
        _needs("cuda.synchronize")()
        assert _needs("cuda.current_device")() == 0


def test_matmul_precision_and_thread_knobs():
    set_p, get_p = _needs("set_float32_matmul_precision"), _needs("get_float32_matmul_precision")
    assert get_p() == torch.get_float32_matmul_precision() == "highest"
    try:
        set_p("high")
        assert get_p() == "high"
    finally:
        set_p("highest")
    assert isinstance(_needs("get_num_threads")(), int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _needs("set_num_threads")(1)


# -------------------------------------------------------------------- torch.special
_X = np.linspace(0.1, 3.0, 7).astype(np.float32)
_P = np.linspace(0.05, 0.95, 7).astype(np.float32)
SPECIAL_ARGS = {  # name -> arguments (arrays become tensors); default (_X,)
    "xlogy": (_X, _P), "xlog1py": (_X, _P), "zeta": (_X + 1, _P), "gammainc": (_X, _P),
    "gammaincc": (_X, _P), "polygamma": (2, _X), "multigammaln": (_X + 2, 3),
    "logsumexp": (_X, 0), "softmax": (_X, 0), "log_softmax": (_X, 0), "logit": (_P,),
    "ndtri": (_P,), "erfinv": (_P - 0.5,),
}  # fmt: skip


@pytest.mark.parametrize("name", jaxmod.special.__all__)
def test_special_functions_match_torch(name):
    args = SPECIAL_ARGS.get(name, (_X,))
    t = getattr(torch.special, name)(*[torch.from_numpy(a) if isinstance(a, np.ndarray)
                                       else a for a in args])  # fmt: skip
    j = getattr(jaxmod.special, name)(*[jaxmod.from_numpy(a) if isinstance(a, np.ndarray)
                                        else a for a in args])  # fmt: skip
    assert isinstance(j, jaxmod.Tensor)
    close(j, t, atol=2e-6, rtol=2e-5)


def test_special_promotes_integers_and_keeps_arrays_arrays():
    assert jaxmod.special.expit(jaxmod.tensor([1, 2])).dtype == jaxmod.float32
    assert torch.special.expit(torch.tensor([1, 2])).dtype == torch.float32
    assert isinstance(jaxmod.special.erf(jnp.ones(2)), jax.Array)
    assert jaxmod.special is jaxmod.special  # ``import torch.special`` -> jaxmod.special


# -------------------------------------------------------------------- torch.testing
def _close_cases(L):
    t = L.tensor
    return {
        "values": lambda: L.testing.assert_close(t([1.0, 2.0, 3.0]), t([1.0, 2.5, 3.0])),
        "shape": lambda: L.testing.assert_close(t([1.0, 2.0]), t([1.0, 2.0, 3.0])),
        "dtype": lambda: L.testing.assert_close(t([1, 2], dtype=L.long), t([1.0, 2.0])),
        "nan": lambda: L.testing.assert_close(t([1.0, float("nan")]), t([1.0, float("nan")])),
        "equal_nan": lambda: L.testing.assert_close(
            t([float("nan")]), t([float("nan")]), equal_nan=True
        ),
        "given_tolerances": lambda: L.testing.assert_close(
            t([1.0, 2.0]), t([1.0, 2.01]), rtol=0, atol=0.1
        ),
        "scalars": lambda: L.testing.assert_close(1.0, 1.1),
        "msg": lambda: L.testing.assert_close(t([1.0]), t([1.1]), msg="custom"),
        "one_tolerance": lambda: L.testing.assert_close(t([1.0]), t([1.1]), rtol=1e-3),
        "mapping": lambda: L.testing.assert_close({"a": t([1.0])}, {"a": t([1.1])}),
        "sequence": lambda: L.testing.assert_close([t([1.0]), t([2.0])], [t([1.0]), t([2.5])]),
        "infinities": lambda: L.testing.assert_close(t([float("inf")]), t([float("inf")])),
        "near_zero": lambda: L.testing.assert_close(t([1.0, 0.0]), t([1.0, 1e-3])),
    }


@pytest.mark.parametrize("case", list(_close_cases(torch)))
def test_testing_assert_close_matches_torch(case):
    def outcome(L):
        try:
            _close_cases(L)[case]()
        except (AssertionError, ValueError) as e:
            return type(e).__name__, str(e)
        return "ok"

    assert outcome(jaxmod) == outcome(torch)


# ---------------------------------------------------------- default device, GradScaler
def test_default_device_follows_jax_and_matches_torch():
    assert repr(jaxmod.get_default_device()) == repr(torch.get_default_device())
    jaxmod.set_default_device("cpu")
    try:
        assert jaxmod.ones(2).device == jaxmod.device("cpu")
        assert jax.config.jax_default_device == jax.devices("cpu")[0]
    finally:
        jaxmod.set_default_device(None)
    assert jax.config.jax_default_device is None
    if not jaxmod.cuda.is_available():
        with pytest.raises(RuntimeError, match="JAX sees no GPU"):
            jaxmod.set_default_device("cuda")


def test_top_level_grad_scaler_is_amps():
    assert jaxmod.GradScaler is jaxmod.amp.GradScaler
    assert torch.GradScaler is torch.amp.GradScaler


def test_version_namespace_answers_as_a_cpu_build_of_torch():
    # scripts print torch.version.cuda (None on a CPU build) beside torch.__version__
    assert torch.version.cuda is None and jaxmod.version.cuda is None
    assert jaxmod.version.__version__ == jaxmod.__version__
    assert isinstance(jaxmod.version.git_version, str) and jaxmod.version.hip is None


@pytest.mark.parametrize("check", [
    lambda v: v >= "1.8", lambda v: v >= (2, 0), lambda v: v > "2.0.1", lambda v: v < "3",
    lambda v: int(v.split(".")[0]) >= 2, lambda v: v.startswith("2."), lambda v: v != "1.13",
])  # fmt: skip
def test_version_checks_scripts_make_answer_as_torch_2_13(check):
    assert check(torch.__version__) and check(jaxmod.__version__)
    assert jaxmod.__version__.split("+")[0] == torch.__version__.split("+")[0]
    assert jaxmod.__version__.endswith("+jaxmod" + jaxmod.version.jaxmod_version)


def _dist_calls(lib: Any) -> list:
    """What a DDP-ready script asks torch.distributed, in one process; each entry is a
    value or the (type, message) of the error raised."""
    dist, out = lib.distributed, []

    def ask(f: Any) -> None:
        try:
            out.append(f())
        except (ValueError, RuntimeError) as e:
            out.append((type(e).__name__, str(e)))

    ask(dist.is_available)
    ask(dist.is_initialized)
    for f in (dist.get_rank, dist.get_world_size, dist.barrier):
        ask(f)
    ask(lambda: lib.nn.parallel.DistributedDataParallel(lib.nn.Linear(2, 2)))
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29517", rank=0, world_size=1)
    try:
        ask(lambda: (dist.get_rank(), dist.get_world_size(), dist.is_initialized()))
        ask(dist.get_backend)
        m = lib.nn.parallel.DistributedDataParallel(lib.nn.Linear(2, 2))
        out.append((repr(m), list(m.state_dict())))
        t = lib.ones(2)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        dist.broadcast(t, 0)
        out.append(t.tolist())
        out.append(
            type(m) in (lib.nn.parallel.DataParallel, lib.nn.parallel.DistributedDataParallel)
        )
    finally:
        dist.destroy_process_group()
    ask(dist.is_initialized)
    return out


def test_single_process_torch_distributed_calls_answer_like_torch():
    assert _dist_calls(jaxmod) == _dist_calls(torch)


def test_init_process_group_for_several_processes_names_the_mesh_way():
    with pytest.raises(RuntimeError, match="jax.distributed.initialize"):
        jaxmod.distributed.init_process_group("nccl", world_size=2, rank=0)
    assert not jaxmod.distributed.is_initialized()


# name -> f(lib) giving what a script reads; compared with torch's
MISC_CASES: dict[str, Any] = {
    "finfo_repr": lambda L: [repr(L.finfo(d)) for d in (L.float32, L.float16, L.bfloat16)],
    "finfo_values_are_floats": lambda L: [
        (type(v).__name__, v) for v in vars_of(L.finfo(L.float16), "eps", "max", "min", "tiny",
                                               "resolution", "smallest_normal", "bits", "dtype")
    ],
    "finfo_default_and_eq": lambda L: (repr(L.finfo()), L.finfo(L.float32) == L.finfo()),
    "finfo_eps_keeps_half": lambda L: str(
        (L.ones(2, dtype=L.float16) * L.finfo(L.float32).eps).dtype
    ),
    "iinfo": lambda L: (
        repr(L.iinfo(L.uint8)), L.iinfo(L.int32).max, type(L.iinfo(L.int8).min).__name__
    ),
    "finfo_of_int_raises": lambda L: _error(lambda: L.finfo(L.int32)),
    "iinfo_of_float_raises": lambda L: _error(lambda: L.iinfo(L.float32)),
    "module_to_channels_last": lambda L: type(
        L.nn.Conv2d(3, 4, 3).to("cpu", memory_format=L.channels_last)
    ).__name__,
    "clip_grad_norm_returns_a_tensor": lambda L: _clip_norm_type(L),
    "num_threads_round_trip": lambda L: (L.set_num_threads(1), L.get_num_threads())[1],
    "compiled_orig_mod": lambda L: (lambda m: L.compile(m)._orig_mod is m)(L.nn.Linear(2, 2)),
    "map_and_apply": lambda L: (
        L.tensor([1.0, 2.0]).map_(L.tensor([3.0, 4.0]), lambda a, b: a * b + 1).tolist(),
        L.tensor([1.0, -2.0]).apply_(lambda v: v * 10).tolist(),
    ),
    "dynamo_and_compiler": lambda L: (
        L._dynamo.disable(len)([1, 2]), L.compiler.disable(len)([1]),
        L.compiler.is_compiling(), L._dynamo.config.suppress_errors,
    ),
    "multiprocessing_names": lambda L: (
        L.multiprocessing.cpu_count() > 0, callable(L.multiprocessing.spawn),
        L.multiprocessing.get_sharing_strategy() in L.multiprocessing.get_all_sharing_strategies(),
    ),
}  # fmt: skip


def vars_of(obj: Any, *names: str) -> list:
    return [getattr(obj, n) for n in names]


def _error(f: Any) -> tuple[str, str]:
    try:
        f()
    except Exception as e:  # noqa: BLE001  (the type and text are what is compared)
        return type(e).__name__, str(e)
    return ("no error", "")


def _clip_norm_type(L: Any) -> tuple:
    m = L.nn.Linear(2, 2)
    m(L.ones(1, 2)).sum().backward()
    n = L.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    return type(n).__name__, str(n.dtype), tuple(n.shape)


@pytest.mark.parametrize("name", MISC_CASES)
def test_small_torch_calls_scripts_make_answer_like_torch(name):
    f = MISC_CASES[name]
    try:
        assert f(jaxmod) == f(torch)
    finally:
        torch.set_num_threads(1)


def test_hub_downloads_once_checks_the_hash_and_loads(tmp_path):
    src = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), src)
    digest = __import__("hashlib").sha256(src.read_bytes()).hexdigest()
    named = tmp_path / f"linear-{digest[:8]}.pth"
    named.write_bytes(src.read_bytes())
    cache = tmp_path / "cache"
    sd = jaxmod.hub.load_state_dict_from_url(named.as_uri(), model_dir=str(cache), check_hash=True)
    m = jaxmod.nn.Linear(3, 2)
    m.load_state_dict(sd)
    assert (cache / named.name).exists() and list(sd) == ["weight", "bias"]
    bad = tmp_path / "linear-deadbeef.pth"
    bad.write_bytes(src.read_bytes())
    with pytest.raises(RuntimeError, match="invalid hash value"):
        jaxmod.hub.load_state_dict_from_url(bad.as_uri(), model_dir=str(cache), check_hash=True)
    assert not (cache / bad.name).exists()  # a failed download leaves nothing
    jaxmod.hub.set_dir(tmp_path / "hub")
    try:
        assert jaxmod.hub.get_dir() == str(tmp_path / "hub")
    finally:
        jaxmod.hub._DIR.clear()
    with pytest.raises(NotImplementedError, match="hubconf.py"):
        jaxmod.hub.load("pytorch/vision", "resnet18")


def test_onnx_export_refuses_and_names_jaxmod_export():
    with pytest.raises(NotImplementedError, match="jaxmod.export"):
        jaxmod.onnx.export(jaxmod.nn.Linear(2, 2), (jaxmod.ones(1, 2),), "m.onnx")
