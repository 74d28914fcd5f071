"""Gradient clipping and parameter/vector conversion against torch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn
from jaxmod.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_, get_total_norm
from jaxmod.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
SHAPES = [(3, 4), (4,), (2, 2, 2)]
GRADS = [rng.normal(size=s).astype(np.float32) for s in SHAPES]


class Grads(dict):
    params: dict


def _torch_params():
    ps = [torch.nn.Parameter(torch.zeros(s)) for s in SHAPES]
    for p, g in zip(ps, GRADS):
        p.grad = torch.tensor(g)
    return ps


def _jax_params():
    ps = [nn.Parameter(jnp.zeros(s)) for s in SHAPES]
    for p, g in zip(ps, GRADS):
        p.grad = jnp.asarray(g)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_params_and_mapping(norm_type, max_norm) -> None:
    tp = _torch_params()
    t_total = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
    jp = _jax_params()
    j_total = clip_grad_norm_(jp, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(float(j_total), float(t_total), rtol=1e-6)
    for a, b in zip(jp, tp):
        np.testing.assert_allclose(np.asarray(a.grad), b.grad.numpy(), rtol=1e-6, atol=1e-7)
    g = Grads({f"p{i}": jnp.asarray(x) for i, x in enumerate(GRADS)})
    m_total = clip_grad_norm_(g, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(float(m_total), float(t_total), rtol=1e-6)
    for i, b in enumerate(tp):
        np.testing.assert_allclose(np.asarray(g[f"p{i}"]), b.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        float(get_total_norm(GRADS_J(), norm_type)),
        float(torch.nn.utils.get_total_norm([torch.tensor(x) for x in GRADS], norm_type)),
        rtol=1e-6,
    )


def GRADS_J():
    return [jnp.asarray(x) for x in GRADS]


def test_clip_grad_value() -> None:
    tp = _torch_params()
    torch.nn.utils.clip_grad_value_(tp, 0.3)
    jp = _jax_params()
    assert clip_grad_value_(jp, 0.3) is None
    g = {f"p{i}": jnp.asarray(x) for i, x in enumerate(GRADS)}
    assert clip_grad_value_(g, 0.3) is g
    for i, (a, b) in enumerate(zip(jp, tp)):
        np.testing.assert_array_equal(np.asarray(a.grad), b.grad.numpy())
        np.testing.assert_array_equal(np.asarray(g[f"p{i}"]), b.grad.numpy())


def test_nonfinite_error_and_empty() -> None:
    p = nn.Parameter(jnp.zeros(2))
    p.grad = jnp.array([jnp.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert float(clip_grad_norm_([], 1.0)) == 0.0  # torch: nothing to clip, norm 0
    frozen = nn.Parameter(jnp.zeros(2), requires_grad=False)
    assert float(clip_grad_norm_([frozen], 1.0)) == 0.0
    # torch returns 0 here too, but in jaxmod no .grad means the gradients were returned
    # (jaxmod.value_and_grad) and would go unclipped: tests/test_teaching_errors.py
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_\(grads, 1.0\)"):
        clip_grad_norm_([nn.Parameter(jnp.zeros(2))], 1.0)


def test_parameters_to_vector_roundtrip() -> None:
    jm = nn.Linear(3, 2)
    tm = torch.nn.Linear(3, 2)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(np.asarray(jm.weight._value)))
        tm.bias.copy_(torch.tensor(np.asarray(jm.bias._value)))
    v = parameters_to_vector(jm.parameters())
    np.testing.assert_array_equal(
        np.asarray(v), torch.nn.utils.parameters_to_vector(tm.parameters()).detach().numpy()
    )
    vector_to_parameters(v * 2, jm.parameters())
    np.testing.assert_array_equal(np.asarray(jm.bias._value), 2 * tm.bias.detach().numpy())
    assert jm.weight.shape == (2, 3)
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        vector_to_parameters([1.0] * 8, jm.parameters())
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        torch.nn.utils.vector_to_parameters([1.0] * 8, tm.parameters())
    vector_to_parameters(jaxmod.zeros(8), jm.parameters())  # a Tensor, as torch code passes
    assert float(np.abs(np.asarray(jm.weight._value)).sum()) == 0.0
