"""jaxmod.amp against torch.amp on CPU: autocast's op policy (output dtypes and values,
eagerly and inside jaxmod.jit), jit programs per autocast state, the bf16-model dtype
error, and GradScaler's scale sequence, skipped steps and state_dict."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn
from jaxmod.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 8)).astype(np.float32)
W = rng.standard_normal((6, 8)).astype(np.float32)
B = rng.standard_normal(6).astype(np.float32)
IMG = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
CW = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
Q = rng.standard_normal((2, 3, 4, 8)).astype(np.float32)
T = np.array([0, 3, 5, 1])
P = (1 / (1 + np.exp(-X))).astype(np.float32)


def _bf(a):  # a bfloat16 input: what a low-precision op hands the next op
    return ("bf", a)


# name: (jaxmod op, torch op, args); ("bf", a) args are fed as bfloat16 to both.
OPS = {
    "linear": (F.linear, TF.linear, (X, W, B)),
    "matmul": (lambda a, b: jaxmod.tensor(a) @ jaxmod.tensor(b).T, lambda a, b: a @ b.T, (X, W)),
    "mm": (lambda a, b: jaxmod.mm(a, b.T), lambda a, b: torch.mm(a, b.T), (X, W)),
    "bmm": (lambda q: jaxmod.bmm(q[0], q[0].transpose(0, 2, 1)),
            lambda q: torch.bmm(q[0], q[0].transpose(1, 2)), (Q,)),
    "baddbmm": (lambda c, q: jaxmod.baddbmm(c, q[0], q[0].transpose(0, 2, 1)),
                lambda c, q: torch.baddbmm(c, q[0], q[0].transpose(1, 2)), (Q[0, :, :, :4], Q)),
    "addmm": (lambda b, a, w: jaxmod.addmm(b, a, w.T), lambda b, a, w: torch.addmm(b, a, w.T),
              (B, X, W)),
    "einsum": (lambda a, b: jaxmod.einsum("ij,kj->ik", a, b),
               lambda a, b: torch.einsum("ij,kj->ik", a, b), (X, W)),
    "conv2d": (F.conv2d, TF.conv2d, (IMG, CW)),
    "conv_transpose2d": (F.conv_transpose2d, TF.conv_transpose2d, (IMG, CW.transpose(1, 0, 2, 3))),
    "sdpa": (F.scaled_dot_product_attention, TF.scaled_dot_product_attention, (Q, Q, Q)),
    "prelu": (F.prelu, TF.prelu, (X, np.array([0.1], np.float32))),
    "softmax_f32": (lambda a: F.softmax(a, -1), lambda a: TF.softmax(a, -1), (X,)),
    "softmax_bf16": (lambda a: F.softmax(a, -1), lambda a: TF.softmax(a, -1), (_bf(X),)),
    "log_softmax_bf16": (lambda a: F.log_softmax(a, -1), lambda a: TF.log_softmax(a, -1),
                         (_bf(X),)),
    "layer_norm_bf16": (lambda a: F.layer_norm(a, (8,)), lambda a: TF.layer_norm(a, (8,)),
                        (_bf(X),)),
    "group_norm_bf16": (lambda a: F.group_norm(a, 3), lambda a: TF.group_norm(a, 3), (_bf(IMG),)),
    "cross_entropy_bf16": (F.cross_entropy, TF.cross_entropy, (_bf(X[:, :6]), T)),
    "nll_loss_bf16": (F.nll_loss, TF.nll_loss, (_bf(X[:, :6]), T)),
    "mse_loss_bf16": (F.mse_loss, TF.mse_loss, (_bf(X), P)),
    "l1_loss_bf16": (F.l1_loss, TF.l1_loss, (_bf(X), _bf(P))),
    "bce_bf16": (F.binary_cross_entropy, TF.binary_cross_entropy, (_bf(P), P)),
    "bce_logits_bf16": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                        (_bf(X), P)),
    "kl_div_bf16": (lambda a, b: F.kl_div(a, b, reduction="batchmean"),
                    lambda a, b: TF.kl_div(a, b, reduction="batchmean"), (_bf(X), P)),
    "smooth_l1_bf16": (F.smooth_l1_loss, TF.smooth_l1_loss, (_bf(X), P)),
    "huber_bf16": (F.huber_loss, TF.huber_loss, (_bf(X), P)),
    "triplet_bf16": (F.triplet_margin_loss, TF.triplet_margin_loss, (_bf(X), _bf(P), _bf(X))),
    "sum_bf16": (lambda a: jaxmod.sum(a), lambda a: torch.sum(a), (_bf(X),)),
    "prod_bf16": (lambda a: jaxmod.prod(a[0]), lambda a: torch.prod(a[0]), (_bf(X),)),
    "cumsum_bf16": (lambda a: jaxmod.cumsum(a, 0), lambda a: torch.cumsum(a, 0), (_bf(X),)),
    "avg_pool3d_bf16": (lambda a: F.avg_pool3d(a, 2), lambda a: TF.avg_pool3d(a, 2),
                        (_bf(IMG[None]),)),
    "relu_bf16": (F.relu, TF.relu, (_bf(X),)),
    "add_mixed": (lambda a, b: jaxmod.tensor(a) + jaxmod.tensor(b), lambda a, b: a + b,
                  (X, _bf(X))),
}  # fmt: skip


def _args(args, lib):
    out = []
    for a in args:
        bf = isinstance(a, tuple)
        a = a[1] if bf else a
        if lib == "torch":
            t = torch.from_numpy(np.array(a))
            out.append(t.bfloat16() if bf else t)
        else:
            out.append(jnp.asarray(a, jnp.bfloat16 if bf else None))
    return out


def _np(y):
    if isinstance(y, torch.Tensor):
        return y.float().numpy()
    return np.asarray(jnp.asarray(y, jnp.float32))


def _dt(y):
    return str(y.dtype).replace("torch.", "")


@pytest.mark.parametrize("name", list(OPS))
def test_autocast_cpu_output_dtypes_and_values_match_torch(name):
    jfn, tfn, args = OPS[name]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = tfn(*_args(args, "torch"))
    with jaxmod.autocast("cpu", dtype=jnp.bfloat16):
        got = jfn(*_args(args, "jax"))
    assert _dt(got) == _dt(want), name
    low = "bfloat16" in (_dt(got), *(str(a.dtype) for a in _args(args, "jax")))
    np.testing.assert_allclose(_np(got), _np(want), rtol=3e-2 if low else 1e-5, atol=3e-2)


JIT_OPS = ["linear", "matmul", "conv2d", "softmax_bf16", "layer_norm_bf16",
           "cross_entropy_bf16"]  # fmt: skip


@pytest.mark.parametrize("name", JIT_OPS)
def test_autocast_inside_jit_gives_torchs_dtypes(name):
    jfn, tfn, args = OPS[name]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = tfn(*_args(args, "torch"))

    @jaxmod.jit
    def step(*a):
        with jaxmod.autocast("cpu"):
            return jfn(*a)

    got = step(*_args(args, "jax"))
    assert _dt(got) == _dt(want)
    np.testing.assert_allclose(_np(got), _np(want), rtol=3e-2, atol=3e-2)


def test_autocast_modules_compute_low_but_keep_float32_parameters_and_grads():
    jaxmod.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 3))
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    tmha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    x = jnp.asarray(X)

    @jaxmod.jit
    def step(x, y):
        with jaxmod.autocast("cpu"):
            out = model(x)
            attn = mha(x[None], x[None], x[None])
            loss, grads = jaxmod.value_and_grad(lambda m: F.cross_entropy(m(x), y))(model)
        return out, attn, loss, grads

    y, (out, w), loss, grads = step(x, jnp.asarray(T[:4] % 3))
    assert y.dtype == jnp.bfloat16
    with torch.autocast("cpu"):
        tq = torch.from_numpy(X)[None]
        tout, tw = tmha(tq, tq, tq)
    assert (out.dtype, w.dtype) == (jnp.bfloat16, jnp.bfloat16) == (
        jnp.dtype(_dt(tout)), jnp.dtype(_dt(tw)))  # fmt: skip
    assert loss.dtype == jnp.float32  # losses run in float32 (torch's CPU list)
    assert all(p.dtype == jnp.float32 for p in model.parameters())
    assert all(g.dtype == jnp.float32 for g in grads.values())


def test_jit_compiles_one_program_per_autocast_state_and_never_reuses_stale():
    model = nn.Linear(8, 6)
    x = jnp.asarray(X)

    @jaxmod.jit
    def fwd(x):
        return model(x)

    seen = []
    for on in [False, True, False, True, True, False]:
        with jaxmod.autocast("cpu", enabled=on):
            seen.append(fwd(x).dtype)
    assert seen == [jnp.float32, jnp.bfloat16, jnp.float32, jnp.bfloat16, jnp.bfloat16,
                    jnp.float32]  # fmt: skip
    assert fwd.trace_count == 2
    with jaxmod.autocast("cpu", dtype=jnp.float16):
        assert fwd(x).dtype == jnp.float16  # another dtype: a third program
    assert fwd.trace_count == 3


def test_autocast_state_queries_nesting_and_decorator_match_torch():
    def state(lib):
        # the dtype as torch prints it (torch.bfloat16, not numpy's bfloat16)
        return (lib.is_autocast_enabled("cpu"), str(lib.get_autocast_dtype("cpu")))

    results = []
    for lib in (torch, jaxmod):
        r = [state(lib)]
        with lib.autocast("cpu"):
            r.append(state(lib))
            with lib.autocast("cpu", enabled=False):
                r.append(state(lib))
            with lib.autocast("cpu", dtype=lib.float16):
                r.append(state(lib))
            r.append(state(lib))
        r.append(state(lib))
        results.append(r)
    assert results[0] == results[1]

    @jaxmod.autocast("cpu")
    def f(a, b):
        return jaxmod.matmul(a, b)

    assert f(jnp.ones((2, 2)), jnp.ones((2, 2))).dtype == jnp.bfloat16
    assert jaxmod.amp.autocast is jaxmod.autocast
    with pytest.warns(UserWarning, match="Disabling autocast"):
        ctx = jaxmod.autocast("cpu", dtype=jnp.float64)
    with ctx:
        assert not jaxmod.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="unsupported device_type 'xpu'"):
        jaxmod.autocast("xpu")


def test_cuda_policy_keeps_softmax_norms_and_sums_in_float32():
    x = jnp.asarray(X, jnp.bfloat16)
    with jaxmod.autocast("cuda", dtype=jnp.bfloat16):
        assert F.linear(jnp.asarray(X), jnp.asarray(W)).dtype == jnp.bfloat16
        for y in (F.softmax(x, -1), F.layer_norm(x, (8,)), jaxmod.sum(x), F.mse_loss(x, x)):
            assert y.dtype == jnp.float32
    with jaxmod.autocast("cpu"):
        assert F.softmax(x, -1).dtype == jnp.bfloat16  # not on torch's CPU list


@pytest.mark.parametrize(
    "make, shape",
    [(lambda: nn.Linear(8, 6), (4, 8)), (lambda: nn.Conv2d(3, 4, 3), (2, 3, 5, 5))],
    ids=["linear", "conv2d"],
)
def test_float32_batch_into_bfloat16_model_raises_like_torch_naming_module(make, shape):
    tmake = {(4, 8): lambda: torch.nn.Linear(8, 6), (2, 3, 5, 5): lambda: torch.nn.Conv2d(3, 4, 3)}
    with pytest.raises(RuntimeError):
        torch.nn.Sequential(tmake[shape]()).bfloat16()(torch.zeros(shape))
    model = nn.Sequential(nn.Identity(), make()).bfloat16()
    with pytest.raises(RuntimeError, match="Float.*BFloat16") as e:
        model(jnp.zeros(shape))
    assert "x.to(jaxmod.bfloat16)" in str(e.value)
    assert any("module '1'" in n for n in e.value.__notes__)
    with jaxmod.autocast("cpu"):  # autocast casts both: no error, as in torch
        assert model(jnp.zeros(shape)).dtype == jnp.bfloat16


# -- GradScaler ---------------------------------------------------------------------------
BAD = {2, 3, 7}  # steps whose gradients are inf (2, 7) or nan (3)


def _torch_run(n):
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
    scales, ws = [], []
    for i in range(n):
        bad = float("nan") if i == 3 else float("inf") if i in BAD else 1.0
        loss = (w * torch.tensor([1.0, 2.0, bad])).sum()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        ws.append(w.detach().numpy().copy())
    return scales, ws, scaler.state_dict()


class _Lin(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(jnp.ones(3))

    def forward(self, c):
        return (self.w * c).sum()


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_grad_scaler_sequence_skips_and_growth_match_torch(jit):
    n = 9
    want_scales, want_ws, want_sd = _torch_run(n)
    model = _Lin()
    opt = jaxmod.optim.Adam(model.parameters(), lr=0.1)
    scaler = jaxmod.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)

    def step(c):
        _, grads = jaxmod.value_and_grad(lambda m: scaler.scale(m(c)))(model)
        scaler.step(opt, grads)
        scaler.update()

    run = jaxmod.jit(step) if jit else step
    scales, ws = [], []
    for i in range(n):
        bad = np.nan if i == 3 else np.inf if i in BAD else 1.0
        run(jnp.asarray([1.0, 2.0, bad], jnp.float32))
        scales.append(scaler.get_scale())
        ws.append(np.asarray(model.w.value))
    assert scales == want_scales
    np.testing.assert_allclose(np.stack(ws), np.stack(want_ws), rtol=1e-6)
    assert scaler.state_dict() == want_sd
    if jit:
        assert run.trace_count == 1


def test_grad_scaler_unscale_then_clip_and_stage_errors_match_torch():
    model = _Lin()
    opt = jaxmod.optim.SGD(model.parameters(), lr=1.0)
    scaler = jaxmod.amp.GradScaler(init_scale=4.0)
    _, grads = jaxmod.value_and_grad(lambda m: scaler.scale(m(jnp.asarray([3.0, 0.0, 4.0]))))(model)
    assert scaler.unscale_(opt, grads) is grads
    np.testing.assert_allclose(grads["w"], [3.0, 0.0, 4.0])
    norm = nn.utils.clip_grad_norm_(grads, 1.0)
    assert float(norm) == pytest.approx(5.0)
    with pytest.raises(RuntimeError, match="already been called on this optimizer"):
        scaler.unscale_(opt, grads)
    scaler.step(opt, grads)  # uses the unscaled, clipped grads
    np.testing.assert_allclose(model.w.value, [1 - 0.6, 1.0, 1 - 0.8], rtol=1e-5)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt, grads)
    scaler.update()
    with pytest.raises(AssertionError, match="No inf checks"):
        scaler.update()
    with pytest.raises(AssertionError, match="No inf checks were recorded for this optimizer"):
        scaler.step(opt)  # no .grad anywhere: torch's scaler refuses the step too


def test_grad_scaler_torch_loop_on_backward_grads_matches_torch():
    """torch's eager loop as written: scale(loss).backward(); unscale_(opt); clip the
    parameters' .grad; step(opt); update() -- two steps, the second with an inf gradient
    (skipped, scale backed off)."""
    got = {}
    for lib in (torch, jaxmod):
        lib.manual_seed(0)
        model = lib.nn.Linear(3, 2)
        with lib.no_grad():
            model.weight.copy_(lib.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]))
            model.bias.zero_()
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        scaler = lib.amp.GradScaler("cpu", init_scale=8.0)
        for x in ([[1.0, 2.0, 3.0]], [[float("inf"), 0.0, 1.0]]):
            opt.zero_grad()
            loss = model(lib.tensor(x)).pow(2).sum()
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
        got[lib] = (model.weight.detach().numpy(), model.bias.detach().numpy(),
                    scaler.get_scale())  # fmt: skip
    np.testing.assert_allclose(got[jaxmod][0], got[torch][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[jaxmod][1], got[torch][1], rtol=1e-5, atol=1e-6)
    assert got[jaxmod][2] == got[torch][2] == 4.0


def test_grad_scaler_state_dict_loads_torchs_and_disabled_is_pass_through():
    t = torch.amp.GradScaler("cpu", init_scale=32.0, growth_interval=7)
    t._lazy_init_scale_growth_tracker(torch.device("cpu"))
    s = jaxmod.amp.GradScaler("cpu")
    s.load_state_dict(t.state_dict())
    assert s.state_dict() == t.state_dict()
    assert s.get_scale() == 32.0 and s.get_growth_interval() == 7
    off = jaxmod.amp.GradScaler(enabled=False)
    loss = jnp.asarray(2.0)
    assert off.scale(loss) is loss and off.state_dict() == {} and off.get_scale() == 1.0
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        s.load_state_dict({})


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.cuda.amp.GradScaler(2.0**8, 2.0, 0.5, 3, enabled=False),
        lambda lib: lib.cuda.amp.autocast(enabled=False, dtype=lib.bfloat16),
    ],
    ids=["GradScaler", "autocast"],
)
def test_torch_cuda_amp_spelling_builds_the_same_objects_and_warning(make):
    # nanoGPT: scaler = torch.cuda.amp.GradScaler(enabled=(dtype == 'float16'))
    with pytest.warns(FutureWarning) as theirs:
        t = make(torch)
    with pytest.warns(FutureWarning) as ours:
        j = make(jaxmod)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    if hasattr(t, "get_scale"):
        assert j.get_scale() == t.get_scale() and j.is_enabled() == t.is_enabled() is False
    else:
        assert j.device == t.device == "cuda"
        assert str(j.fast_dtype) == str(t.fast_dtype).removeprefix("torch.")


def test_torch_cuda_amp_grad_scaler_scales_like_torch_amp_grad_scaler():
    # torch disables an enabled scaler without CUDA; jaxmod scales wherever it runs
    with pytest.warns(FutureWarning, match="torch.cuda.amp.GradScaler"):
        s = jaxmod.cuda.amp.GradScaler(2.0**8, growth_interval=3)
    assert s.get_scale() == 256.0 and s.get_growth_interval() == 3
    assert float(s.scale(jnp.asarray(2.0))) == 512.0


def test_grad_scaler_held_by_trainer_is_lifted_by_jit():
    class Trainer:
        def __init__(self):
            self.model = _Lin()
            self.opt = jaxmod.optim.SGD(self.model.parameters(), lr=0.5)
            self.scaler = jaxmod.amp.GradScaler(init_scale=2.0, growth_interval=1)

        @jaxmod.jit
        def step(self, c):
            with jaxmod.autocast("cpu"):
                loss, grads = jaxmod.value_and_grad(lambda m: self.scaler.scale(m(c)))(self.model)
            self.scaler.step(self.opt, grads)
            self.scaler.update()
            return loss

    tr = Trainer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            tr.step(jnp.ones(3))
    assert tr.scaler.get_scale() == 16.0  # grew every finite step
    assert isinstance(tr.scaler._scale.value, jax.Array)
    np.testing.assert_allclose(tr.model.w.value, [1 - 1.5] * 3, rtol=1e-6)
