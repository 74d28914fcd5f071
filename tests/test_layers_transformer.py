"""Parity of jaxmod.nn's MultiheadAttention and Transformer layers with torch 2.13.

Weights are copied from torch; outputs, input gradients and parameter gradients of
``sum(out * cot)`` are compared in float32. Sizes are tiny and shared across cases;
a subset runs under ``jaxmod.jit``.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
import jaxmod.nn as jnn

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

E, NH, FF, L, S, B = 8, 2, 16, 4, 5, 2


def _leaves(out):
    if out is None:
        return []
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _leaves(o)]
    return [out]


def _to_jax(v):
    return jnp.asarray(v.detach().numpy()) if isinstance(v, torch.Tensor) else v


def parity(t_mod, j_mod, inputs, call, *, kwargs=None, jit=False, atol=1e-5, rtol=1e-4):
    """Compare ``call(mod, *inputs, **kwargs)`` and its gradients between torch and jaxmod."""
    kwargs = kwargs or {}
    j_mod.load_state_dict({k: v.detach().numpy() for k, v in t_mod.state_dict().items()})
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
    assert list(g_mod) == [n for n, _ in t_mod.named_parameters()]
    for n, p in t_mod.named_parameters():
        expected = np.zeros(tuple(p.shape), np.float32) if p.grad is None else p.grad.numpy()
        np.testing.assert_allclose(np.asarray(g_mod[n]), expected, atol=atol, rtol=rtol, err_msg=n)


def _pair(name, *args, **kw):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's enable_nested_tensor notice
        return getattr(torch.nn, name)(*args, **kw), getattr(jnn, name)(*args, **kw)


def _x(n, batch_first=False, batched=True, e=E):
    if not batched:
        return torch.randn(n, e)
    return torch.randn(B, n, e) if batch_first else torch.randn(n, B, e)


def _bool_mask(rows, cols):
    m = torch.rand(rows, cols) > 0.6
    m[..., 0] = False  # no fully masked row
    return m


def _kpm(batched=True):
    m = torch.zeros(B, S, dtype=torch.bool)
    m[0, 3:] = True
    return m if batched else m[0]


# ------------------------------------------------------------------ MultiheadAttention
def _self_call(m, x, **kw):
    return m(x, x, x, **kw)


def _cross_call(m, q, k, v, **kw):
    return m(q, k, v, **kw)


causal = torch.nn.Transformer.generate_square_subsequent_mask(L)
MHA_CASES = [
    # (ctor kwargs, self-attention, batched, forward kwargs, jit)
    ({}, False, True, {}, False),
    ({"batch_first": True}, True, True, {"attn_mask": _bool_mask(L, L)}, False),
    ({"kdim": 3, "vdim": 6}, False, True, {"key_padding_mask": _kpm()}, False),
    ({"add_bias_kv": True, "add_zero_attn": True}, False, True,
     {"attn_mask": torch.randn(L, S), "key_padding_mask": _kpm().float() * -1e4}, False),
    ({"bias": False}, False, True, {"need_weights": False, "key_padding_mask": _kpm()}, False),
    ({"batch_first": True}, False, True,
     {"average_attn_weights": False, "attn_mask": torch.randn(B * NH, L, S)}, False),
    ({"batch_first": True}, True, True,
     {"attn_mask": causal, "is_causal": True, "need_weights": False}, False),
    ({"kdim": 3, "vdim": 6}, False, False, {"key_padding_mask": _kpm(False)}, False),
    ({"batch_first": True}, True, False, {"attn_mask": _bool_mask(L, L), "need_weights": False},
     False),
    ({"kdim": 3, "vdim": 6, "add_bias_kv": True, "batch_first": True}, False, True,
     {"attn_mask": _bool_mask(L, S), "key_padding_mask": _kpm()}, True),
]  # fmt: skip


@pytest.mark.parametrize("ctor,self_attn,batched,fwd,jit", MHA_CASES)
def test_mha_parity(ctor, self_attn, batched, fwd, jit):
    t, j = _pair("MultiheadAttention", E, NH, **ctor)
    bf = ctor.get("batch_first", False)
    if self_attn:
        inputs, call = [_x(L, bf, batched)], _self_call
    else:
        inputs = [
            _x(L, bf, batched),
            _x(S, bf, batched, ctor.get("kdim", E)),
            _x(S, bf, batched, ctor.get("vdim", E)),
        ]
        call = _cross_call
    parity(t, j, inputs, call, kwargs=fwd, jit=jit)


def test_mha_errors():
    m = jnn.MultiheadAttention(E, NH)
    x = jnp.ones((L, B, E))
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(x, x, x, is_causal=True)
    with pytest.raises(RuntimeError, match="The shape of the 2D attn_mask"):
        m(x, x, x, attn_mask=jnp.zeros((L, L + 1)))
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        jnn.MultiheadAttention(E, 3)


def test_mha_dropout_only_in_training():
    m = jnn.MultiheadAttention(E, NH, dropout=0.5)
    x = jnp.asarray(_x(L).numpy())
    m.eval()
    a, _ = m(x, x, x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(m(x, x, x)[0]))
    m.train()
    b, w = m(x, x, x)
    assert not np.allclose(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------- encoder / decoder
LAYER_CASES = [
    # (ctor kwargs, batched, forward kwargs, train, jit)
    ({"norm_first": True, "activation": "gelu"}, True, {"src_mask": _bool_mask(L, L)}, True, False),
    ({"batch_first": True}, True, {"src_key_padding_mask": _kpm()[:, :L]}, False, False),
    ({"batch_first": True, "norm_first": True, "bias": False}, False,
     {"src_mask": causal, "is_causal": True}, False, False),
    ({"activation": "gelu", "batch_first": True}, True,
     {"src_mask": causal, "src_key_padding_mask": _kpm()[:, :L]}, True, True),
]  # fmt: skip


@pytest.mark.parametrize("ctor,batched,fwd,train,jit", LAYER_CASES)
def test_encoder_layer_parity(ctor, batched, fwd, train, jit):
    t, j = _pair("TransformerEncoderLayer", E, NH, FF, dropout=0.0, **ctor)
    t.train(train)
    j.train(train)
    x = _x(L, ctor.get("batch_first", False), batched)
    parity(t, j, [x], lambda m, x, **kw: m(x, **kw), kwargs=fwd, jit=jit)


DEC_CASES = [
    ({"norm_first": True, "activation": "gelu", "batch_first": True}, True,
     {"tgt_mask": causal, "tgt_is_causal": True, "memory_key_padding_mask": _kpm()}, True, False),
    ({"batch_first": True}, False, {"memory_mask": _bool_mask(L, S)}, False, False),
    ({"norm_first": True}, True,
     {"tgt_key_padding_mask": _kpm()[:, :L], "memory_mask": torch.randn(L, S)}, False, True),
]  # fmt: skip


@pytest.mark.parametrize("ctor,batched,fwd,train,jit", DEC_CASES)
def test_decoder_layer_parity(ctor, batched, fwd, train, jit):
    t, j = _pair("TransformerDecoderLayer", E, NH, FF, dropout=0.0, **ctor)
    t.train(train)
    j.train(train)
    bf = ctor.get("batch_first", False)
    inputs = [_x(L, bf, batched), _x(S, bf, batched)]
    parity(t, j, inputs, lambda m, x, mem, **kw: m(x, mem, **kw), kwargs=fwd, jit=jit)


def test_encoder_stack_parity():
    t_layer, j_layer = _pair("TransformerEncoderLayer", E, NH, FF, dropout=0.0)
    t_norm, j_norm = torch.nn.LayerNorm(E), j_layer.norm1.__class__(E)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.nn.TransformerEncoder(t_layer, 2, t_norm)
        j = jnn.TransformerEncoder(j_layer, 2, j_norm)
    assert repr(j) == repr(t)
    t.eval()
    j.eval()
    parity(t, j, [_x(L)], lambda m, x, **kw: m(x, **kw), kwargs={"mask": causal})


def test_decoder_stack_parity():
    t_layer, j_layer = _pair("TransformerDecoderLayer", E, NH, FF, dropout=0.0)
    t = torch.nn.TransformerDecoder(t_layer, 2)
    j = jnn.TransformerDecoder(j_layer, 2)
    assert repr(j) == repr(t)
    parity(
        t, j, [_x(L), _x(S)], lambda m, x, mem, **kw: m(x, mem, **kw), kwargs={"tgt_mask": causal}
    )


def test_transformer_parity():
    t, j = _pair("Transformer", E, NH, 1, 1, FF, dropout=0.0, batch_first=True)
    t.eval()
    j.eval()
    inputs = [_x(S, True), _x(L, True)]
    kw = {"tgt_mask": causal, "src_key_padding_mask": _kpm(), "memory_key_padding_mask": _kpm()}
    parity(t, j, inputs, lambda m, s, tg, **k: m(s, tg, **k), kwargs=kw, jit=True)


def test_encoder_layer_eval_fast_path_numbers():
    """torch's inference fast path (no autograd, batch_first, eval) gives the same numbers."""
    t, j = _pair("TransformerEncoderLayer", E, NH, FF, batch_first=True)
    j.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    t.eval()
    j.eval()
    x = _x(L, True)
    with torch.inference_mode():
        expected = t(x, src_mask=causal).numpy()
    got = j(jnp.asarray(x.numpy()), src_mask=jnp.asarray(causal.numpy()))
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- structure and repr
STRUCT = [
    ("MultiheadAttention", (E, NH), {}),
    ("MultiheadAttention", (E, NH), {"kdim": 3, "vdim": 5, "add_bias_kv": True, "bias": False}),
    ("MultiheadAttention", (E, NH), {"dropout": 0.1, "batch_first": True, "add_zero_attn": True}),
    ("TransformerEncoderLayer", (E, NH, FF), {"activation": "gelu", "norm_first": True}),
    ("TransformerEncoderLayer", (E, NH), {"bias": False, "layer_norm_eps": 1e-6}),
    ("TransformerDecoderLayer", (E, NH, FF), {"batch_first": True, "dropout": 0.2}),
    ("Transformer", (E, NH, 2, 1, FF), {}),
    ("Transformer", (E, NH, 1, 2, FF), {"bias": False, "norm_first": True}),
]


@pytest.mark.parametrize("name,args,kw", STRUCT)
def test_repr_and_state_dict(name, args, kw):
    t, j = _pair(name, *args, **kw)
    assert repr(j) == repr(t)
    ts, js = t.state_dict(), j.state_dict()
    assert list(js) == list(ts)
    for k in ts:
        assert tuple(js[k].shape) == tuple(ts[k].shape), k


def test_mha_default_init():
    m = jnn.MultiheadAttention(E, NH)
    a = np.sqrt(6 / (E + 3 * E))  # xavier_uniform_ on the (3E, E) in_proj_weight
    w = np.asarray(m.in_proj_weight.value)
    assert np.all(np.abs(w) <= a) and w.std() > a / 4
    assert not np.asarray(m.in_proj_bias.value).any()
    assert not np.asarray(m.out_proj.bias.value).any()


def test_generate_square_subsequent_mask_is_a_tensor_like_torchs():
    mask = jnn.Transformer.generate_square_subsequent_mask(5)
    np.testing.assert_array_equal(
        np.asarray(mask), torch.nn.Transformer.generate_square_subsequent_mask(5).numpy()
    )
    # the tutorial's spelling: nn.Transformer.generate_square_subsequent_mask(n).to(device)
    assert jaxmod.is_tensor(mask) and tuple(mask.to("cpu").size()) == (5, 5)


def test_nested_tensor_warning_like_torch():
    with pytest.warns(UserWarning, match="enable_nested_tensor is True"):
        jnn.TransformerEncoder(jnn.TransformerEncoderLayer(E, NH, FF), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = jnn.TransformerEncoderLayer(E, NH, FF, batch_first=True)
        jnn.TransformerEncoder(layer, 1)
