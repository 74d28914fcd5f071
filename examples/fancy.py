"""Port of shared/torch_reference/fancy.py: constants, parameter reuse, control flow, nesting.

Lines changed from the torch original: the imports and ``torch.*`` -> ``jaxmod.*``
(``jaxmod.rand((20, 20), requires_grad=False)``, ``jaxmod.mm``); the rest (``x.norm().item()``,
``X.abs().sum()``) is torch's.

The data-dependent ``while`` loops run eagerly. Under ``jaxmod.jit`` they raise a
``jaxmod.TraceError`` naming the module; ``FancyMLPJit`` shows the compiled form with
``jax.lax.while_loop`` / ``jaxmod.where``.
"""

import jax
import jax.numpy as jnp

import jaxmod
from jaxmod import nn
from jaxmod.nn import functional as F


class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        # A constant: a plain tensor attribute, not a Parameter, not trained.
        self.rand_weight = jaxmod.rand((20, 20), requires_grad=False)
        self.linear = nn.Linear(20, 20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(jaxmod.mm(X, self.rand_weight) + 1)
        X = self.linear(X)  # the same layer again: shared parameters
        while X.abs().sum() > 1:  # data-dependent Python control flow
            X /= 2
        return X.sum()


class FancyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.rand_weight = jaxmod.rand((20, 20), requires_grad=False)
        self.linear = nn.Linear(20, 20)

    def forward(self, x):
        x = self.linear(x)
        x = F.relu(jaxmod.mm(x, self.rand_weight) + 1)
        x = self.linear(x)
        while x.norm().item() > 1:
            x /= 2
        if x.norm().item() < 0.8:
            x *= 10
        return x.sum()


class FancyMLPJit(FancyMLP):
    """FancyMLP with its control flow written for XLA: same numbers, compiles."""

    def forward(self, x):
        x = self.linear(x)
        x = F.relu(jaxmod.mm(x, self.rand_weight) + 1)
        x = self.linear(x)
        # lax.while_loop's condition must return a jax.Array (a Tensor is refused): jnp here
        x = jax.lax.while_loop(lambda x: jnp.linalg.norm(x) > 1, lambda x: x / 2, x)
        x = jaxmod.where(x.norm() < 0.8, x * 10, x)
        return x.sum()


class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.linear = nn.Linear(32, 16)

    def forward(self, X):
        return self.linear(self.net(X))


class NestMLP40(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 30), nn.ReLU())

    def forward(self, x):
        return self.net(x)


if __name__ == "__main__":
    jaxmod.manual_seed(0)
    X = jaxmod.rand(2, 20)
    print(FixedHiddenMLP()(X), FancyMLP()(X))
    chimera = nn.Sequential(NestMLP(), nn.Linear(16, 20), FixedHiddenMLP())
    print(chimera, chimera(X))
    net = nn.Sequential(NestMLP40(), nn.Linear(30, 20), FancyMLP())
    print(net, net(jaxmod.rand(2, 40)))
    print(jaxmod.jit(lambda m, x: m(x))(FancyMLPJit(), X))
