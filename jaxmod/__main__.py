"""``python -m jaxmod``: versions, devices, and a quick self-check of the install.

The self-check builds a small model, compiles a training step with ``jaxmod.jit``, takes
Adam steps, saves and reloads the state_dict through a temporary directory and compares
outputs. It prints ``self-check: PASS`` and exits 0, or ``self-check: FAIL (reason)``
and exits 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn


def _self_check() -> list[str]:
    done = []
    jaxmod.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = jaxmod.optim.Adam(model.parameters(), lr=1e-2)
    x = jaxmod.randn(64, 8)
    y = jnp.argmax(x[:, :4], axis=1)  # a learnable rule

    @jaxmod.jit
    def train_step(model, opt, x, y):
        loss, grads = jaxmod.value_and_grad(lambda m: F.cross_entropy(m(x), y))(model)
        opt.step(grads)
        return loss

    first = float(train_step(model, opt, x, y))
    for _ in range(20):
        loss = float(train_step(model, opt, x, y))
    if not np.isfinite(loss) or not loss < first:
        raise AssertionError(f"loss did not decrease under jit: {first:.4f} -> {loss:.4f}")
    if train_step.trace_count != 1:
        raise AssertionError(f"the training step traced {train_step.trace_count} times")
    done.append(f"jit + Adam: loss {first:.3f} -> {loss:.3f} in 21 steps, traced once")

    eager = jaxmod.grad(lambda m: F.cross_entropy(m(x), y))(model)
    jitted = jaxmod.jit(jaxmod.grad(lambda m: F.cross_entropy(m(x), y)))(model)
    for name in eager:
        if not np.allclose(eager[name], jitted[name], rtol=1e-4, atol=1e-6):
            raise AssertionError(f"eager and jitted gradients differ for {name}")
    done.append("eager and jitted gradients agree")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.safetensors")
        jaxmod.save(model.state_dict(), path)
        clone = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
        clone.load_state_dict(jaxmod.load(path))
    a, b = np.asarray(model(x)), np.asarray(clone(x))
    if not np.array_equal(a, b):
        raise AssertionError("outputs differ after a save/load round trip")
    done.append("save/load round trip: outputs bit-identical")

    ens = jaxmod.stack_modules([nn.Linear(8, 2) for _ in range(3)])
    out = jaxmod.vmap(lambda m, x: m(x), in_axes=(0, None))(ens, x)
    if out.shape != (3, 64, 2):
        raise AssertionError(f"vmap over an ensemble gave shape {out.shape}")
    done.append("vmap over a stacked ensemble")
    jax.block_until_ready(out)
    return done


def main(argv: list[str] | None = None) -> int:
    """Print the environment and run the self-check; return the exit code."""
    print(f"jaxmod {jaxmod.version.jaxmod_version} (torch API {jaxmod.version.TORCH_API})")
    print(f"jax {jax.__version__} (jaxlib {getattr(jax.lib, '__version__', '?')})")
    print(f"python {sys.version.split()[0]}")
    print(f"backend: {jax.default_backend()}")
    for d in jax.devices():
        print(f"  device {d.id}: {d} ({d.device_kind})")
    start = time.perf_counter()
    try:
        for line in _self_check():
            print(f"  ok: {line}")
    except Exception as e:  # report every failure the same way
        print(f"self-check: FAIL ({type(e).__name__}: {e})")
        return 1
    print(f"self-check: PASS ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
