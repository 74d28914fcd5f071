"""The type rule on the built-in layers: a ``jaxmod.Tensor`` input gives ``jaxmod.Tensor``
outputs (so torch code after a layer has torch's methods), a ``jax.Array`` input gives
``jax.Array`` outputs (jnp code is unchanged), with the same values, eagerly and under
``jaxmod.jit``. Containers hand Tensors on to their children unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmod
from jaxmod import nn

R = np.random.default_rng(0)


def _f(*shape: int) -> np.ndarray:
    return R.standard_normal(shape).astype(np.float32)


def _i(high: int, *shape: int) -> np.ndarray:
    return R.integers(0, high, shape).astype(np.int32)


# layer factory, inputs: one case per layer file (and per output structure)
CASES: dict[str, tuple[Callable[[], Any], tuple[np.ndarray, ...]]] = {
    "conv": (lambda: nn.Conv2d(3, 4, 3), (_f(2, 3, 8, 8),)),
    "conv_transpose": (lambda: nn.ConvTranspose2d(3, 4, 4, 2, 1), (_f(2, 3, 4, 4),)),
    "linear": (lambda: nn.Linear(5, 3), (_f(2, 5),)),
    "bilinear": (lambda: nn.Bilinear(5, 4, 3), (_f(2, 5), _f(2, 4))),
    "flatten": (lambda: nn.Flatten(), (_f(2, 3, 4),)),
    "batchnorm_train": (lambda: nn.BatchNorm2d(3), (_f(2, 3, 4, 4),)),
    "layernorm": (lambda: nn.LayerNorm(5), (_f(2, 5),)),
    "maxpool_indices": (lambda: nn.MaxPool2d(2, return_indices=True), (_f(1, 2, 4, 4),)),
    "adaptive_avgpool": (lambda: nn.AdaptiveAvgPool2d(1), (_f(2, 3, 4, 4),)),
    "relu6": (lambda: nn.ReLU6(inplace=True), (_f(2, 5),)),
    "prelu": (lambda: nn.PReLU(), (_f(2, 5),)),
    "softmax": (lambda: nn.Softmax(dim=-1), (_f(2, 5),)),
    "dropout_eval": (lambda: nn.Dropout(0.5).eval(), (_f(2, 5),)),
    "pixel_shuffle": (lambda: nn.PixelShuffle(2), (_f(1, 4, 2, 2),)),
    "zero_pad": (lambda: nn.ZeroPad2d(1), (_f(1, 1, 2, 2),)),
    "embedding": (lambda: nn.Embedding(10, 4), (_i(10, 2, 3),)),
    "attention": (
        lambda: nn.MultiheadAttention(4, 2, batch_first=True),
        (_f(2, 3, 4), _f(2, 3, 4), _f(2, 3, 4)),
    ),  # fmt: skip
    "encoder_layer": (
        lambda: nn.TransformerEncoderLayer(4, 2, 8, 0.0, batch_first=True),
        (_f(2, 3, 4),),
    ),  # fmt: skip
    "lstm": (lambda: nn.LSTM(4, 5, 2), (_f(3, 2, 4),)),
    "gru_cell": (lambda: nn.GRUCell(4, 5), (_f(2, 4),)),
    "cross_entropy": (lambda: nn.CrossEntropyLoss(), (_f(4, 3), _i(3, 4))),
}


def _leaves(out: Any) -> list[Any]:
    return jax.tree_util.tree_leaves(out, is_leaf=lambda x: isinstance(x, jaxmod.Tensor))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_layer_returns_tensors_for_tensor_inputs_and_arrays_for_arrays(name: str, jit: bool):
    factory, inputs = CASES[name]
    layer = factory()
    call = (lambda m, *xs: m(*xs)) if not jit else jaxmod.jit(lambda m, *xs: m(*xs))
    state = {k: np.asarray(v._value) for k, v in layer.state_dict(keep_vars=True).items()}
    from_arrays = _leaves(call(layer, *[jnp.asarray(x) for x in inputs]))
    layer.load_state_dict(state)  # the same BatchNorm statistics for the second call
    from_tensors = _leaves(call(layer, *[jaxmod.from_numpy(x) for x in inputs]))
    assert from_arrays and len(from_arrays) == len(from_tensors)
    for a, t in zip(from_arrays, from_tensors):
        assert isinstance(a, jax.Array) and not isinstance(a, jaxmod.Tensor)
        assert isinstance(t, jaxmod.Tensor)
        np.testing.assert_array_equal(np.asarray(t), np.asarray(a))


def test_sequential_hands_tensors_to_user_children():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(type(x))
            return x.view(x.size(0), -1)  # torch methods on what the container passed

    model = nn.Sequential(nn.Conv2d(1, 2, 3), Probe(), nn.Linear(2 * 4 * 4, 3))
    out = model(jaxmod.from_numpy(_f(2, 1, 6, 6)))
    assert seen == [jaxmod.Tensor] and isinstance(out, jaxmod.Tensor)
    assert tuple(out.size()) == (2, 3)


def test_a_buffer_passed_to_a_layer_gives_a_tensor():
    # Swin V2 runs an MLP on its relative_coords_table buffer, then .view(-1, heads)
    class Bias(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3))
            self.register_buffer("table", jaxmod.from_numpy(_f(5, 2)))

        def forward(self, x):
            return x + self.mlp(self.table).view(-1, 3)  # .view needs a Tensor

    out = Bias()(jaxmod.from_numpy(_f(5, 3)))
    assert isinstance(out, jaxmod.Tensor) and tuple(out.size()) == (5, 3)


def test_wrapped_forward_keeps_signature_and_error_messages():
    import inspect

    assert list(inspect.signature(nn.Linear.forward).parameters) == ["self", "input"]
    with pytest.raises(RuntimeError, match="to have 3 channels, but got 2 channels instead"):
        nn.Conv2d(3, 4, 3)(jaxmod.from_numpy(_f(1, 2, 8, 8)))
