"""``nn.utils.weight_norm`` / ``spectral_norm`` (torch's hook-based reparametrisations)
against torch 2.13: structure, forward, gradients, the power iteration's buffers, and
one SGD step eagerly and under ``jaxmod.jit``; then a small spectral-norm discriminator
trained for three jitted steps against torch's eager ones."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxmod
from jaxmod import nn

torch.set_num_threads(1)

ATOL, RTOL = 1e-5, 1e-4

# (name, builder over a namespace with torch's layer names, input shape, float input)
LAYERS = [
    ("Linear", lambda M: M.Linear(4, 3), (2, 4), True),
    ("Conv2d", lambda M: M.Conv2d(2, 3, 3), (2, 2, 5, 5), True),
    ("ConvTranspose2d", lambda M: M.ConvTranspose2d(2, 3, 3), (2, 2, 4, 4), True),
    ("Embedding", lambda M: M.Embedding(6, 3), (2, 4), False),
]
WN_DIMS = [0, 1, None]


def _input(shape, is_float, seed=0):
    rs = np.random.RandomState(seed)
    return rs.randn(*shape).astype(np.float32) if is_float else rs.randint(0, 6, shape)


def _state(tm):
    return {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}


def _close(a, b, msg="", atol=ATOL):
    if isinstance(b, torch.Tensor):
        b = b.detach().numpy()
    b = np.asarray(b)
    scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0  # float32 cancellation
    np.testing.assert_allclose(np.asarray(a), b, atol=atol * scale, rtol=RTOL, err_msg=msg)


def _wrap(kind, dim):
    """The torch and jaxmod wrappers for ``kind`` ('weight_norm' or 'spectral_norm')."""
    if kind == "weight_norm":
        return (
            lambda m: torch.nn.utils.weight_norm(m, dim=dim),
            lambda m: nn.utils.weight_norm(m, dim=dim),
        )
    return torch.nn.utils.spectral_norm, nn.utils.spectral_norm


def _pair(build, kind, dim):
    wt, wj = _wrap(kind, dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.manual_seed(0)
        tm = wt(build(torch.nn))
        jm = wj(build(nn))
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        assert tuple(jm.state_dict()[k].shape) == tuple(v.shape), k
    jm.load_state_dict(_state(tm))  # spectral_norm's random u/v: torch's
    return tm, jm


def _loss(m, x):
    return jnp.sum(m(x) ** 2)


def _run_steps(tm, jm, x, *, jit, steps, lr=0.1, grad_atol=ATOL):
    """``steps`` SGD steps on both; compare loss, grads and the whole state each step."""
    opt = jaxmod.optim.SGD(jm.parameters(), lr=lr)
    topt = torch.optim.SGD(tm.parameters(), lr=lr)

    def step(m, opt, x):
        loss, grads = jaxmod.value_and_grad(_loss)(m, x)
        opt.step(grads)
        return loss, grads

    fn = jaxmod.jit(step) if jit else step
    for s in range(steps):
        topt.zero_grad()
        tl = (tm(torch.tensor(x)) ** 2).sum()
        tl.backward()
        loss, grads = fn(jm, opt, jnp.asarray(x))
        _close(loss, tl, f"loss at step {s}")
        tp = dict(tm.named_parameters())
        assert set(grads) == set(tp)
        for k, g in grads.items():
            _close(g, tp[k].grad, f"grad of {k} at step {s}", atol=grad_atol)
        topt.step()
        for k, v in tm.state_dict().items():
            _close(jm.state_dict()[k]._value, v, f"{k} after step {s}")
    if jit:
        assert fn.trace_count == 1
    # the computed weight is a concrete array (no tracer left behind) and an eager forward
    # after the steps uses the updated parameters
    # (read from __dict__: reading a parametrized weight in training mode would run the
    # power iteration once more)
    if "weight" in jm.__dict__:
        assert isinstance(jm.__dict__["weight"], jaxmod.Tensor)
        assert not isinstance(jm.__dict__["weight"]._jx(), jax.core.Tracer)
    _close(jm(jnp.asarray(x)), tm(torch.tensor(x)), "eager forward after the steps")


# every (layer, dim) under jaxmod.jit; eagerly (slow op by op) one dim per layer
WN_CASES = [(*c, d, jit) for c in LAYERS for d in WN_DIMS for jit in (True, False) if jit or d == 0]


@pytest.mark.parametrize(
    "name,build,shape,is_float,dim,jit",
    WN_CASES,
    ids=[f"{c[0]}-dim{c[4]}-{'jit' if c[5] else 'eager'}" for c in WN_CASES],
)
def test_weight_norm_matches_torch(name, build, shape, is_float, dim, jit):
    tm, jm = _pair(build, "weight_norm", dim)
    assert list(jm.state_dict())[-2:] == ["weight_g", "weight_v"]
    _close(jm.weight_g, tm.weight_g, "weight_g")  # the initial g: the norm except dim
    _run_steps(tm, jm, _input(shape, is_float), jit=jit, steps=2 if jit else 1)
    torch.nn.utils.remove_weight_norm(tm)
    nn.utils.remove_weight_norm(jm)
    assert isinstance(jm._parameters["weight"], nn.Parameter)
    assert list(jm.state_dict()) == list(tm.state_dict())
    _close(jm.weight._value, tm.weight, "weight after remove")
    assert not jm._forward_pre_hooks


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name,build,shape,is_float", LAYERS, ids=[c[0] for c in LAYERS])
def test_spectral_norm_matches_torch(name, build, shape, is_float, jit):
    tm, jm = _pair(build, "spectral_norm", None)
    dim = 1 if name == "ConvTranspose2d" else 0
    assert tm.weight_u.shape[0] == tm.weight_orig.shape[dim]
    x = _input(shape, is_float)
    _run_steps(
        tm, jm, x, jit=jit, steps=2 if jit else 1
    )  # training: the power iteration moves u, v
    # eval: no power iteration, u and v stay as they are, in both
    tm.eval()
    jm.eval()
    u, v = np.asarray(jm.weight_u._value), np.asarray(jm.weight_v._value)
    f = jaxmod.jit(lambda m, x: m(x)) if jit else (lambda m, x: m(x))
    _close(f(jm, jnp.asarray(x)), tm(torch.tensor(x)), "eval forward")
    np.testing.assert_array_equal(np.asarray(jm.weight_u._value), u)
    np.testing.assert_array_equal(np.asarray(jm.weight_v._value), v)
    _close(jm.weight_u._value, tm.weight_u, "weight_u after eval")
    torch.nn.utils.remove_spectral_norm(tm)
    nn.utils.remove_spectral_norm(jm)
    assert isinstance(jm._parameters["weight"], nn.Parameter)
    assert list(jm.state_dict()) == list(tm.state_dict())
    _close(jm.weight._value, tm.weight, "weight after remove")


def test_spectral_norm_draws_unit_u_v_from_jaxmods_generator():
    jaxmod.manual_seed(3)
    a = nn.utils.spectral_norm(nn.Linear(5, 4))
    jaxmod.manual_seed(3)
    b = nn.utils.spectral_norm(nn.Linear(5, 4))
    np.testing.assert_allclose(np.linalg.norm(np.asarray(a.weight_u._value)), 1, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(a.weight_v._value)), 1, rtol=1e-6)
    assert a.weight_u._value.shape == (4,) and a.weight_v._value.shape == (5,)
    np.testing.assert_array_equal(np.asarray(b.weight_u._value), np.asarray(a.weight_u._value))
    assert isinstance(a._buffers["weight_u"], nn.Buffer)


def test_errors_match_torch():
    m = nn.utils.spectral_norm(nn.Linear(3, 3))
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        nn.utils.spectral_norm(m)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        nn.utils.remove_weight_norm(m)
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive"):
        nn.utils.spectral_norm(nn.Linear(3, 3), n_power_iterations=0)
    with pytest.warns(FutureWarning, match="deprecated"):
        w = nn.utils.weight_norm(nn.Linear(3, 3))
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
        with pytest.warns(FutureWarning):
            nn.utils.weight_norm(w)
    nn.utils.remove_weight_norm(w)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(w)


def test_deprecated_weight_norm_warns_once_per_process_like_torch():
    # a TCN wraps every conv in weight_norm: torch attributes the FutureWarning to its own
    # line, so the default filter shows it once, not once per call site of the model file
    counts = {}
    for lib in (torch, jaxmod):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("default")
            lib.nn.utils.weight_norm(lib.nn.Conv1d(2, 2, 2))
            lib.nn.utils.weight_norm(lib.nn.Conv1d(2, 2, 2))
        counts[lib] = sum(issubclass(w.category, FutureWarning) for w in seen)
    assert counts[jaxmod] == counts[torch] == 1


def _discriminator(M):
    sn = M.utils.spectral_norm
    return M.Sequential(
        sn(M.Conv2d(3, 8, 4, 2, 1)),
        M.LeakyReLU(0.2),
        sn(M.Conv2d(8, 16, 4, 2, 1)),
        M.LeakyReLU(0.2),
        M.Flatten(),
        sn(M.Linear(16 * 2 * 2, 1)),
    )


def test_dcgan_discriminator_trains_three_jitted_steps_like_torch():
    torch.manual_seed(1)
    tm = _discriminator(torch.nn)
    jm = _discriminator(nn)
    assert repr(jm) == repr(tm)
    assert list(jm.state_dict()) == list(tm.state_dict())
    jm.load_state_dict(_state(tm))
    topt = torch.optim.Adam(tm.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt = jaxmod.optim.Adam(jm.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rs = np.random.RandomState(0)
    xs = [rs.randn(4, 3, 8, 8).astype(np.float32) for _ in range(3)]
    ys = np.asarray([[1.0], [0.0], [1.0], [0.0]], np.float32)
    bce = nn.BCEWithLogitsLoss()

    @jaxmod.jit
    def step(m, opt, x, y):
        loss, grads = jaxmod.value_and_grad(lambda m: bce(m(x), y))(m)
        opt.step(grads)
        return loss

    for x in xs:
        topt.zero_grad()
        tl = torch.nn.functional.binary_cross_entropy_with_logits(
            tm(torch.tensor(x)), torch.tensor(ys)
        )
        tl.backward()
        topt.step()
        _close(step(jm, opt, jnp.asarray(x), jnp.asarray(ys)), tl, "loss")
        for k, v in tm.state_dict().items():
            _close(jm.state_dict()[k]._value, v, k)
    assert step.trace_count == 1
    _close(jm(jnp.asarray(xs[0])), tm(torch.tensor(xs[0])), "eager forward after training")
