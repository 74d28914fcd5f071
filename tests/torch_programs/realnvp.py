"""A RealNVP normalizing flow on two moons, in the style of the widely shared minimal
RealNVP notebook, in plain PyTorch.

Affine coupling layers alternate checkerboard masks held in a frozen parameter
(``nn.Parameter(masks, requires_grad=False)``); the scale and translation nets are
``nn.ModuleList``s of MLPs. ``f`` maps data to latent and accumulates the log-determinant
(``log_det_J -= s.sum(dim=1)`` from ``x.new_zeros``), ``g`` inverts it; the prior is a
``torch.distributions.MultivariateNormal``; ``log_prob`` adds the two and the loss is
``-flow.log_prob(x).mean()``. A second flow stacks ``torch.distributions`` transforms
(``TransformedDistribution`` over a ``Normal`` base with ``AffineTransform`` /
``SigmoidTransform``) to score data the same way.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import numpy as np
import torch
from torch import distributions, nn


def make_moons(n_samples=100, noise=0.05, seed=0):
    """Two interleaving half circles (scikit-learn's make_moons, written in numpy)."""
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))])
    inner = np.stack([1 - np.cos(np.linspace(0, np.pi, n_in)),
                      1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5])  # fmt: skip
    X = np.concatenate([outer, inner], axis=1).T
    X += rng.normal(scale=noise, size=X.shape)
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)]).astype(np.int64)
    return X.astype(np.float32), y


class RealNVP(nn.Module):
    def __init__(self, nets, nett, mask, prior):
        super().__init__()

        self.prior = prior
        self.mask = nn.Parameter(mask, requires_grad=False)
        self.t = torch.nn.ModuleList([nett() for _ in range(len(mask))])
        self.s = torch.nn.ModuleList([nets() for _ in range(len(mask))])

    def g(self, z):
        x = z
        for i in range(len(self.t)):
            x_ = x * self.mask[i]
            s = self.s[i](x_) * (1 - self.mask[i])
            t = self.t[i](x_) * (1 - self.mask[i])
            x = x_ + (1 - self.mask[i]) * (x * torch.exp(s) + t)
        return x

    def f(self, x):
        log_det_J, z = x.new_zeros(x.shape[0]), x
        for i in reversed(range(len(self.t))):
            z_ = self.mask[i] * z
            s = self.s[i](z_) * (1 - self.mask[i])
            t = self.t[i](z_) * (1 - self.mask[i])
            z = (1 - self.mask[i]) * (z - t) * torch.exp(-s) + z_
            log_det_J -= s.sum(dim=1)
        return z, log_det_J

    def log_prob(self, x):
        z, logp = self.f(x)
        return self.prior.log_prob(z) + logp

    def sample(self, batchSize):
        z = self.prior.sample((batchSize,))
        x = self.g(z)
        return x


def build(hidden=32, n_couplings=3):
    nets = lambda: nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden),  # noqa: E731
                                 nn.LeakyReLU(), nn.Linear(hidden, 2), nn.Tanh())  # fmt: skip
    nett = lambda: nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden),  # noqa: E731
                                 nn.LeakyReLU(), nn.Linear(hidden, 2))  # fmt: skip
    masks = torch.from_numpy(np.array([[0, 1], [1, 0]] * n_couplings).astype(np.float32))
    prior = distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    return RealNVP(nets, nett, masks, prior)


def flow_loss(flow, x):
    return -flow.log_prob(x).mean()


def train(flow, X, steps=3, batch=32):
    optimizer = torch.optim.Adam([p for p in flow.parameters() if p.requires_grad == True], lr=1e-4)  # noqa: E712
    for t in range(steps):
        idx = np.random.choice(len(X), batch, replace=False)
        loss = flow_loss(flow, torch.from_numpy(X[idx]))

        optimizer.zero_grad()
        loss.backward(retain_graph=True)
        optimizer.step()

        if t % 500 == 0:
            print("iter %s:" % t, "loss = %.3f" % loss)  # noqa: UP031
    return loss.item()


def roundtrip_error(flow, x):
    """max |g(f(x)) - x|: the coupling layers invert exactly."""
    with torch.no_grad():
        z, _ = flow.f(x)
        return (flow.g(z) - x).abs().max().item()


def bits_per_dim(flow, x):
    with torch.no_grad():
        return (-flow.log_prob(x).mean() / (x.shape[1] * np.log(2))).item()


class LogitFlow(nn.Module):
    """An elementwise affine + sigmoid flow through torch.distributions transforms."""

    def __init__(self):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(2))
        self.log_scale = nn.Parameter(torch.zeros(2))

    def dist(self):
        base = distributions.Normal(torch.zeros(2), torch.ones(2))
        transforms = [distributions.transforms.AffineTransform(self.loc, self.log_scale.exp()),
                      distributions.transforms.SigmoidTransform()]  # fmt: skip
        return distributions.Independent(distributions.TransformedDistribution(base, transforms), 1)

    def log_prob(self, y):
        return self.dist().log_prob(y)


def main(steps=3):
    torch.manual_seed(0)
    np.random.seed(0)
    X, _ = make_moons(200)
    flow = build()
    loss = train(flow, X, steps)
    samples = flow.sample(100).detach().numpy()
    return loss, samples, roundtrip_error(flow, torch.from_numpy(X))


if __name__ == "__main__":
    main()
