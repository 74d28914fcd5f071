"""The first torch habits meet an error naming the fix (docs/faq.md), and the two that
would silently stop training raise instead."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn, optim


def _model_and_opt():
    jaxmod.manual_seed(0)
    model = nn.Linear(3, 2)
    return model, optim.SGD(model.parameters(), lr=0.1)


def _backward_in_jit():
    model, _ = _model_and_opt()

    @jaxmod.jit
    def step(model, x):
        loss = F.mse_loss(model(x), jaxmod.zeros(4, 2))
        loss.backward()
        return loss

    step(model, jaxmod.randn(4, 3))


def _step_without_grads():
    # eagerly this is torch's no-op (a warning); in a compiled step the gradients were
    # taken and not passed on
    model, opt = _model_and_opt()

    @jaxmod.jit
    def step(model, opt):
        jaxmod.value_and_grad(lambda m: m(jnp.ones(3)).sum())(model)
        opt.step()

    step(model, opt)


def _step_with_other_models_grads():
    model, opt = _model_and_opt()
    other = nn.Linear(3, 2)
    opt.step(jaxmod.grad(lambda m: m(jnp.ones(3)).sum())(other))


def _clip_without_grads():
    model, _ = _model_and_opt()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)


def _grad_set_under_jit():
    model, _ = _model_and_opt()

    @jaxmod.jit
    def step(model, x):
        model.weight.grad = jaxmod.grad(lambda m: m(x).sum())(model)["weight"]

    step(model, jnp.ones((2, 3)))


def _nonfinite_check_under_jit():
    model, _ = _model_and_opt()

    @jaxmod.jit
    def step(model, x):
        grads = jaxmod.grad(lambda m: m(x).sum())(model)
        return nn.utils.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)

    step(model, jnp.ones((2, 3)))


CASES = [
    # (habit, call, error type, text the message must contain)
    ("loss.backward() in jaxmod.jit", _backward_in_jit, RuntimeError, "jaxmod.value_and_grad"),
    ("jnp array .to('cpu')", lambda: jnp.ones(2).to("cpu"), AttributeError, "jaxmod.as_tensor"),
    ("jnp array .backward()", lambda: jnp.ones(()).backward(), AttributeError, "opt.step(grads)"),
    ("jnp array .grad", lambda: jnp.ones(()).grad, AttributeError, "value_and_grad"),
    ("opt.step() with no grads in jit", _step_without_grads, RuntimeError, "opt.step(grads)"),
    ("opt.step(other model's grads)", _step_with_other_models_grads, ValueError, "another model"),
    ("clip_grad_norm_(params) after value_and_grad", _clip_without_grads, RuntimeError,
     "clip_grad_norm_(grads, 1.0)"),
    ("p.grad = tracer inside jit", _grad_set_under_jit, jaxmod.TracerLeakError, "opt.step(grads)"),
    ("error_if_nonfinite inside jit", _nonfinite_check_under_jit, RuntimeError,
     "cannot be checked inside a compiled"),
    ("model.cuda() without a GPU", lambda: nn.Linear(2, 2).cuda(), RuntimeError,
     "No CUDA device"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_torch_habit_raises_naming_the_fix(call, error, text):
    if text == "No CUDA device" and jaxmod.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_missing_torch_names_keep_hasattr_false_and_real_attributes_untouched():
    x = jnp.ones(3)
    assert not hasattr(x, "to") and not hasattr(x, "backward")
    assert getattr(x, "requires_grad", False) is False
    assert x.shape == (3,) and x.sum() == 3.0  # JAX's own attributes unchanged


def test_torch_tensors_are_accepted_at_module_and_jit_boundaries():
    model, _ = _model_and_opt()
    step = jaxmod.jit(lambda m, batch: m(batch[0]).sum() + batch[1].sum())
    xb, yb = torch.randn(4, 3), torch.ones(4)  # a torch DataLoader's batch
    want = float(model(jnp.asarray(xb.numpy())).sum()) + 4.0
    for _ in range(2):
        np.testing.assert_allclose(float(step(model, (xb, yb))), want, rtol=1e-6)
    assert step.trace_count == 1
    np.testing.assert_allclose(np.asarray(model(xb)), np.asarray(model(jnp.asarray(xb.numpy()))))
