"""einops on jaxmod Tensors: ``rearrange`` / ``reduce`` / ``repeat`` / ``einsum`` in torch
model code give Tensors with torch's values, eagerly and under ``jaxmod.jit``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxmod

einops = pytest.importorskip("einops")

X = np.random.default_rng(0).standard_normal((2, 6, 4)).astype(np.float32)

# name -> f(einops, x) written as torch code writes it
CASES = {
    "rearrange_split": lambda e, x: e.rearrange(x, "b (h d) n -> b h n d", h=2),
    "rearrange_merge": lambda e, x: e.rearrange(x, "b c n -> (b n) c"),
    "reduce_mean": lambda e, x: e.reduce(x, "b c n -> b n", "mean"),
    "reduce_max_pool": lambda e, x: e.reduce(x, "b (c k) n -> b c n", "max", k=2),
    "repeat": lambda e, x: e.repeat(x[0], "c n -> r c n", r=3),
    "einsum": lambda e, x: e.einsum(x, x, "b c n, b d n -> b c d"),
    "pack_list": lambda e, x: e.rearrange([x[0], x[1]], "l c n -> c (l n)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_einops_on_tensors_matches_torch(case):
    fn = CASES[case]
    want = fn(einops, torch.from_numpy(X)).numpy()
    got = fn(einops, jaxmod.from_numpy(X))
    assert isinstance(got, jaxmod.Tensor)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    jitted = jaxmod.jit(lambda x: fn(einops, x))(jaxmod.from_numpy(X))
    assert isinstance(jitted, jaxmod.Tensor)
    np.testing.assert_allclose(jitted.numpy(), want, rtol=1e-5, atol=1e-6)


def test_einops_keeps_jax_arrays_arrays():
    out = einops.rearrange(jnp.asarray(X), "b c n -> b n c")
    assert isinstance(out, jax.Array) and out.shape == (2, 4, 6)
