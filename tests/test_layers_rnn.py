"""Parity of jaxmod.nn's recurrent layers (RNN, LSTM, GRU and cells) with torch 2.13.

Weights are copied from torch; outputs, input gradients and parameter gradients of
``sum(out * cot)`` are compared in float32. Sizes are tiny and shared across cases so
that eager kernels are compiled once; only a few cases also run under ``jaxmod.jit``.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
import jaxmod.nn as jnn

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

I, H, P, T, B = 3, 4, 2, 5, 2


def _leaves(out):
    if out is None:
        return []
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _leaves(o)]
    return [out]


def _copy(t_mod, j_mod):
    j_mod.load_state_dict({k: v.detach().numpy() for k, v in t_mod.state_dict().items()})


def _to_jax(v):
    if isinstance(v, torch.Tensor):
        return jnp.asarray(v.detach().numpy())
    if isinstance(v, tuple):
        return tuple(_to_jax(x) for x in v)
    return v


def parity(t_mod, j_mod, inputs, call, *, kwargs=None, jit=False, atol=1e-5, rtol=1e-4):
    """Compare ``call(mod, *inputs, **kwargs)`` and its gradients between torch and jaxmod."""
    kwargs = kwargs or {}
    _copy(t_mod, j_mod)
    tx = [x.clone().requires_grad_(True) for x in inputs]
    t_out = _leaves(call(t_mod, *tx, **kwargs))
    rng = np.random.default_rng(0)
    cots = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in t_out]
    sum((o * torch.from_numpy(c)).sum() for o, c in zip(t_out, cots)).backward()

    j_kwargs = {k: _to_jax(v) for k, v in kwargs.items()}

    def loss(m, xs):
        out = _leaves(call(m, *xs, **j_kwargs))
        return sum((o * c).sum() for o, c in zip(out, cots)), out

    vg = jaxmod.value_and_grad(loss, argnums=(0, 1), has_aux=True)
    if jit:
        vg = jaxmod.jit(vg)
    (_, j_out), (g_mod, g_x) = vg(j_mod, [jnp.asarray(x.numpy()) for x in inputs])

    assert len(j_out) == len(t_out)
    for a, b in zip(t_out, j_out):
        np.testing.assert_allclose(np.asarray(b), a.detach().numpy(), atol=atol, rtol=rtol)
    for a, b in zip(tx, g_x):
        np.testing.assert_allclose(np.asarray(b), a.grad.numpy(), atol=atol, rtol=rtol)
    names = [n for n, _ in t_mod.named_parameters()]
    assert list(g_mod) == names
    for n, p in t_mod.named_parameters():
        expected = np.zeros(tuple(p.shape), np.float32) if p.grad is None else p.grad.numpy()
        np.testing.assert_allclose(np.asarray(g_mod[n]), expected, atol=atol, rtol=rtol, err_msg=n)


def _pair(name, *args, **kw):
    torch.manual_seed(0)
    return getattr(torch.nn, name)(*args, **kw), getattr(jnn, name)(*args, **kw)


def _seq(batch_first=False, batched=True, features=I):
    if not batched:
        return torch.randn(T, features)
    return torch.randn(B, T, features) if batch_first else torch.randn(T, B, features)


# ----------------------------------------------------------------------------- layers
CASES = [
    # (class, kwargs, batch_first, batched, with h0, train, jit); multi-layer cases run
    # under jaxmod.jit (one compile is cheaper than eager kernels for each layer)
    ("LSTM", {"num_layers": 2, "bidirectional": True}, False, True, False, False, True),
    ("LSTM", {"num_layers": 2, "batch_first": True, "proj_size": P}, True, True, True, True, True),
    ("LSTM", {"bidirectional": True, "proj_size": P}, False, False, True, False, False),
    ("LSTM", {"bias": False}, False, True, True, True, False),
    ("LSTM", {"batch_first": True}, True, True, False, False, False),
    ("GRU", {"num_layers": 2, "bidirectional": True}, False, True, True, False, True),
    ("GRU", {"batch_first": True}, True, False, False, True, False),
    ("GRU", {"bias": False, "bidirectional": True}, False, True, True, False, False),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}, False, True, True, True, True),
    ("RNN", {"bidirectional": True, "bias": False}, False, False, False, False, False),
    ("RNN", {"batch_first": True}, True, True, False, False, False),
]


def _h0(name, kw, batched):
    D = 2 if kw.get("bidirectional") else 1
    L = kw.get("num_layers", 1)
    shape = (L * D, B) if batched else (L * D,)
    hout = kw.get("proj_size") or H
    if name == "LSTM":
        return (torch.randn(*shape, hout), torch.randn(*shape, H))
    return torch.randn(*shape, H)


@pytest.mark.parametrize("name,kw,batch_first,batched,with_h0,train,jit", CASES)
def test_layer_parity(name, kw, batch_first, batched, with_h0, train, jit):
    t, j = _pair(name, I, H, **kw)
    t.train(train)
    j.train(train)
    x = _seq(batch_first, batched)
    if with_h0:
        h0 = _h0(name, kw, batched)
        inputs = [x, *(h0 if isinstance(h0, tuple) else (h0,))]
        if name == "LSTM":

            def call(m, x, h, c):
                return m(x, (h, c))
        else:

            def call(m, x, h):
                return m(x, h)
    else:
        inputs = [x]

        def call(m, x):
            return m(x)

    parity(t, j, inputs, call, jit=jit)


CELL_CASES = [
    ("LSTMCell", {}, True, True),
    ("LSTMCell", {"bias": False}, False, False),
    ("GRUCell", {}, True, True),
    ("GRUCell", {}, False, False),
    ("RNNCell", {"nonlinearity": "relu"}, True, True),
    ("RNNCell", {"bias": False}, False, True),
]


@pytest.mark.parametrize("name,kw,batched,with_h", CELL_CASES)
def test_cell_parity(name, kw, batched, with_h):
    t, j = _pair(name, I, H, **kw)
    x = torch.randn(B, I) if batched else torch.randn(I)
    hshape = (B, H) if batched else (H,)
    if not with_h:
        inputs, call = [x], (lambda m, x: m(x))
    elif name == "LSTMCell":
        inputs = [x, torch.randn(*hshape), torch.randn(*hshape)]

        def call(m, x, h, c):
            return m(x, (h, c))
    else:
        inputs, call = [x, torch.randn(*hshape)], (lambda m, x, h: m(x, h))
    parity(t, j, inputs, call)


def test_cell_parity_jit():
    t, j = _pair("LSTMCell", I, H)
    parity(t, j, [torch.randn(B, I)], lambda m, x: m(x), jit=True)


# ----------------------------------------------------------------- structure and repr
STRUCT = [
    ("LSTM", (I, H), {}),
    ("LSTM", (I, H, 2), {"bidirectional": True, "proj_size": P, "batch_first": True}),
    ("LSTM", (I, H), {"num_layers": 3, "dropout": 0.25, "bias": False}),
    ("GRU", (I, H), {"bidirectional": True, "num_layers": 2}),
    ("RNN", (I, H, 2, "relu"), {}),
    ("RNN", (I, H), {"nonlinearity": "tanh", "bias": False}),
    ("LSTMCell", (I, H), {}),
    ("GRUCell", (I, H), {"bias": False}),
    ("RNNCell", (I, H), {"nonlinearity": "relu"}),
    ("RNNCell", (I, H, False, "tanh"), {}),
]


@pytest.mark.parametrize("name,args,kw", STRUCT)
def test_repr_and_state_dict(name, args, kw):
    t, j = _pair(name, *args, **kw)
    assert repr(j) == repr(t)
    ts, js = t.state_dict(), j.state_dict()
    assert list(js) == list(ts)
    for k in ts:
        assert tuple(js[k].shape) == tuple(ts[k].shape), k


def test_default_init_range():
    bound = 1 / np.sqrt(H)
    for m in (jnn.LSTM(I, H, num_layers=2), jnn.GRUCell(I, H)):
        for n, p in m.named_parameters():
            v = np.asarray(p.value)
            assert v.dtype == np.float32
            assert np.all(np.abs(v) <= bound), n
            assert v.std() > bound / 4, n  # drawn, not constant


def test_lstm_time_loop_is_a_scan():
    m = jnn.LSTM(I, H, num_layers=2, bidirectional=True)

    def jaxpr(steps):
        return jax.make_jaxpr(lambda x: m(x))(jnp.ones((steps, B, I)))

    short, long = jaxpr(4), jaxpr(64)
    assert "scan" in str(short)

    def count(jp):
        """Equations, nested jaxprs (pjit, scan bodies) included."""
        n = 0
        for eqn in jp.eqns:
            n += 1
            for v in eqn.params.values():
                for sub in v if isinstance(v, (tuple, list)) else (v,):
                    if hasattr(sub, "jaxpr") and hasattr(sub, "consts"):  # ClosedJaxpr
                        n += count(sub.jaxpr)
                    elif hasattr(sub, "eqns"):
                        n += count(sub)
        return n

    # the time loop does not unroll: the program size does not depend on the length
    assert count(short.jaxpr) == count(long.jaxpr)


def test_dropout_between_layers():
    m = jnn.LSTM(I, H, num_layers=2, dropout=0.5)
    x = jnp.asarray(_seq().numpy())
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    m.train()
    jaxmod.manual_seed(1)
    c, _ = m(x)
    jaxmod.manual_seed(2)
    d, _ = m(x)
    assert not np.allclose(np.asarray(c), np.asarray(d))
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        jnn.GRU(I, H, dropout=0.5)


def test_errors_match_torch():
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        jnn.GRU(I, H, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        jnn.LSTM(I, H, proj_size=H)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        jnn.RNN(I, H, nonlinearity="gelu")
    m = jnn.GRU(I, H)
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]"):
        m(jnp.ones((T, B, I)), jnp.zeros((1, 3, H)))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        m(jnp.ones((T, B, I + 1)))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D"):
        m(jnp.ones((T,)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jnn.LSTM(I, H, num_layers=2, dropout=0.5)  # no warning with several layers
