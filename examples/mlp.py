"""Port of shared/torch_reference/mlp.py: subclassing Module, two Linear layers.

Lines changed from the torch original (everything else is identical):
    import torch                      ->  import jaxmod
    from torch import nn              ->  from jaxmod import nn
    from torch.nn import functional   ->  from jaxmod.nn import functional
    torch.manual_seed / torch.rand    ->  jaxmod.manual_seed / jaxmod.rand
"""

import jaxmod
from jaxmod import nn
from jaxmod.nn import functional as F


class MLP(nn.Module):
    def __init__(self, input_size=784, hidden_size=256, output_size=10):
        super().__init__()
        self.hidden = nn.Linear(input_size, hidden_size)
        self.act = nn.ReLU()
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.output(self.act(self.hidden(x)))


class FunctionalMLP(nn.Module):
    """Same network, using the functional ReLU inside forward."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden = nn.Linear(input_size, hidden_size)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))


if __name__ == "__main__":
    jaxmod.manual_seed(0)
    net = MLP()
    print(net)
    print(net(jaxmod.rand(2, 784)).shape)
    net2 = FunctionalMLP(input_size=20, hidden_size=256, output_size=10)
    print(net2(jaxmod.rand(2, 20)))
    seq = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    print(seq, seq(jaxmod.rand(2, 20)).shape)
    print(jaxmod.jit(lambda m, x: m(x))(net, jaxmod.rand(2, 784)).shape)  # compiled
