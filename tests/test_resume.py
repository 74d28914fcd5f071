"""A training run saved at step 50 and resumed gives the same losses as an uninterrupted one."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn, optim


def _setup(seed: int = 0):
    jaxmod.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=60)
    return model, opt, sched


@jaxmod.jit
def _step(model, opt, x, y):
    loss, grads = jaxmod.value_and_grad(lambda m: F.cross_entropy(m(x), y))(model)
    opt.step(grads)
    return loss


def _run(model, opt, sched, steps, start=0):
    rng = np.random.default_rng(123)
    data = [(rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8))
            for _ in range(60)]  # fmt: skip
    losses = []
    for i in range(start, start + steps):
        x, y = data[i]
        losses.append(float(_step(model, opt, jnp.asarray(x), jnp.asarray(y))))
        sched.step()
    return losses


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    model, opt, sched = _setup()
    full = _run(model, opt, sched, 60)

    model, opt, sched = _setup()
    first = _run(model, opt, sched, 50)
    path = tmp_path / "ckpt.safetensors"
    rng = jax.random.key_data(jaxmod.default_generator.get_state())
    jaxmod.save(
        {"model": model.state_dict(), "optim": opt.state_dict(),
         "sched": sched.state_dict(), "rng": rng,
         "step": 50},
        path,
    )  # fmt: skip

    model2, opt2, sched2 = _setup(seed=99)  # fresh objects, different initial weights
    ckpt = jaxmod.load(path)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optim"])
    sched2.load_state_dict(ckpt["sched"])
    jaxmod.default_generator.set_state(jnp.asarray(ckpt["rng"]))
    assert ckpt["step"] == 50
    rest = _run(model2, opt2, sched2, 10, start=50)
    np.testing.assert_allclose(first + rest, full, rtol=1e-5, atol=1e-6)
