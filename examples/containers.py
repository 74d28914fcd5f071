"""Port of shared/torch_reference/containers.py: Sequential, ModuleList, ModuleDict.

Lines changed from the torch original: the imports, ``torch.manual_seed``/``torch.rand``/
``torch.randn``/``torch.zeros`` -> ``jaxmod.*`` (same signatures). Nothing else.
"""

from collections import OrderedDict

import jaxmod
from jaxmod import nn


class RepeatedLinears(nn.Module):
    """ModuleList used as an iterable and by index inside forward."""

    def __init__(self):
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(10, 10) for _ in range(10)])

    def forward(self, x):
        for i, layer in enumerate(self.linears):
            x = self.linears[i // 2](x) + layer(x)
        return x


class WithModuleList(nn.Module):
    def __init__(self):
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(10, 10)])


class WithPlainList(nn.Module):
    """A plain Python list does not register its modules: no parameters."""

    def __init__(self):
        super().__init__()
        self.linears = [nn.Linear(10, 10)]


class Choices(nn.Module):
    """ModuleDict picks a layer by name at call time."""

    def __init__(self):
        super().__init__()
        self.choices = nn.ModuleDict({"conv": nn.Conv2d(10, 10, 3), "pool": nn.MaxPool2d(3)})
        self.activations = nn.ModuleDict([["lrelu", nn.LeakyReLU()], ["prelu", nn.PReLU()]])

    def forward(self, x, choice, act):
        return self.activations[act](self.choices[choice](x))


def sequential_models():
    plain = nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.Conv2d(20, 64, 5), nn.ReLU())
    named = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 20, 5)),
                ("relu1", nn.ReLU()),
                ("conv2", nn.Conv2d(20, 64, 5)),
                ("relu2", nn.ReLU()),
            ]
        )
    )
    return plain, named


if __name__ == "__main__":
    jaxmod.manual_seed(0)
    net = nn.ModuleList([nn.Linear(784, 256), nn.ReLU()])
    net.append(nn.Linear(256, 10))
    print(net[-1])
    print(net)
    try:
        net(jaxmod.zeros(1, 784))
    except NotImplementedError as e:
        print("NotImplementedError:", e)
    d = nn.ModuleDict({"linear": nn.Linear(784, 256), "act": nn.ReLU()})
    d["output"] = nn.Linear(256, 10)
    print(d["linear"], d.output, d, sep="\n")
    print([p.shape for p in WithModuleList().parameters()], list(WithPlainList().parameters()))
    print(RepeatedLinears()(jaxmod.rand(2, 10)).shape)
    # `choice` and `act` pick Python branches: static arguments under jit.
    choose = jaxmod.jit(lambda m, x, c, a: m(x, c, a), static_argnums=(2, 3))
    print(choose(Choices(), jaxmod.randn(4, 10, 32, 32), "conv", "lrelu").shape)
    for m in sequential_models():
        print(m, m(jaxmod.rand(1, 1, 28, 28)).shape)
