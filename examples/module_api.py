"""Port of shared/torch_reference/module_api.py: registration, traversal, apply, devices.

Lines changed from the torch original: the imports; ``torch.randn``/``torch.zeros``/
``torch.rand`` -> ``jaxmod.*``; ``@torch.no_grad()`` -> ``@jaxmod.no_grad()``;
``torch.cuda.is_available()`` -> ``jaxmod.cuda.is_available()``. The error types and
messages printed are torch's.
"""

import jaxmod
from jaxmod import nn


class Registered(nn.Module):
    def __init__(self):
        super().__init__()
        self.t1 = jaxmod.randn(2, 2)  # plain array attribute: not registered
        self.p1 = nn.Parameter(jaxmod.randn(2, 2))  # goes to _parameters
        self.conv1 = nn.Conv2d(1, 2, 3)  # goes to _modules


class TwoLinears(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(5, 2)
        self.l2 = nn.Linear(2, 2)

    def forward(self, x):  # called by net(x)
        return self.l2(self.l1(x))

    def forward2(self, x):  # must be called by name; fails on a (3, 5) input
        return self.l1(self.l2(x))


@jaxmod.no_grad()
def init_weights(m):
    if type(m) is nn.Linear:
        m.weight.fill_(1.0)


if __name__ == "__main__":
    jaxmod.manual_seed(0)
    net = Registered()
    print(list(net._parameters), list(net._modules), "t1" in net.__dict__)
    net.add_module("conv2", nn.Conv2d(2, 2, 3))
    for bad in ["a.b", ""]:
        try:
            net.add_module(bad, nn.ReLU())
        except KeyError as e:
            print("KeyError:", e)
    try:
        net.add_module("x", jaxmod.zeros(1))
    except TypeError as e:
        print("TypeError:", e)
    print([n for n, _ in net.named_children()], [type(m).__name__ for m in net.modules()])
    print([(n, tuple(p.shape)) for n, p in net.named_parameters()])
    print(net.get_submodule("conv2"))
    two = TwoLinears()
    two.apply(init_weights)
    print(two.l1.weight, two.l1.bias)
    print(list(two.state_dict().keys()))
    x = jaxmod.rand(3, 5)
    print(two(x).shape)
    try:
        two.forward2(x)
    except (RuntimeError, ValueError) as e:  # jaxmod's Linear raises a ValueError naming itself
        print(type(e).__name__ + ":", e)
    device = "cuda" if jaxmod.cuda.is_available() else "cpu"
    print(two.to(device).l1.weight.device)
