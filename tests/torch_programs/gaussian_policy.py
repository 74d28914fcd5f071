"""A continuous-action policy in plain PyTorch, in the style of common PPO / SAC
tutorials: a Gaussian policy ``Independent(Normal(mu, std), 1)`` with a learned
log-std, a clipped-surrogate (PPO) loss with a KL penalty against the old policy, and a
tanh-squashed reparameterised action (SAC style) scored by a small Q network.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Independent, Normal, kl_divergence


class GaussianPolicy(nn.Module):
    def __init__(self, obs_dim=3, act_dim=2, hidden=32, log_std_init=-0.5):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
        )
        self.mu = nn.Linear(hidden, act_dim)
        self.log_std = nn.Parameter(log_std_init * torch.ones(act_dim))

    def forward(self, obs):
        mu = self.mu(self.net(obs))
        std = torch.exp(self.log_std)
        return Independent(Normal(mu, std), 1)

    def act(self, obs):
        with torch.no_grad():
            dist = self(obs)
            action = dist.sample()
        return action, dist.log_prob(action)


class QNetwork(nn.Module):
    def __init__(self, obs_dim=3, act_dim=2, hidden=32):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim + act_dim, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, obs, action):
        x = torch.cat([obs, action], dim=-1)
        return self.fc2(F.relu(self.fc1(x))).squeeze(-1)


def ppo_loss(
    policy,
    old_dist,
    obs,
    actions,
    old_log_probs,
    advantages,
    clip_ratio=0.2,
    kl_coef=0.1,
    ent_coef=0.01,
):
    dist = policy(obs)
    log_probs = dist.log_prob(actions)
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = torch.clamp(ratio, 1 - clip_ratio, 1 + clip_ratio) * advantages
    surrogate = torch.min(ratio * advantages, clipped).mean()
    kl = kl_divergence(old_dist, dist).mean()
    entropy = dist.entropy().mean()
    return -surrogate + kl_coef * kl - ent_coef * entropy


def squashed_sample(policy, obs):
    dist = policy(obs)
    u = dist.rsample()
    action = torch.tanh(u)
    log_prob = dist.base_dist.log_prob(u).sum(-1)
    log_prob = log_prob - torch.log(1 - action.pow(2) + 1e-6).sum(-1)
    return action, log_prob


def squashed_log_prob(policy, obs, u):
    dist = policy(obs)
    action = torch.tanh(u)
    log_prob = Normal(dist.mean, dist.stddev).log_prob(u).sum(dim=-1)
    return action, log_prob - torch.log(1 - action.pow(2) + 1e-6).sum(-1)


def actor_loss(policy, qnet, obs, alpha=0.2):
    action, log_prob = squashed_sample(policy, obs)
    return (alpha * log_prob - qnet(obs, action)).mean()


def gae(rewards, values, gamma=0.99, lam=0.95):
    advantages = torch.zeros_like(rewards)
    last = 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(values) else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        last = delta + gamma * lam * last
        advantages[t] = last
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def main(steps=3, batch=16, seed=0):
    torch.manual_seed(seed)
    policy = GaussianPolicy()
    qnet = QNetwork()
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-4)
    obs = torch.randn(batch, 3)
    for _ in range(steps):
        actions, old_log_probs = policy.act(obs)
        with torch.no_grad():
            old = policy(obs)
            old_dist = Independent(Normal(old.mean.clone(), old.stddev.clone()), 1)
        rewards = -(actions**2).sum(-1)
        advantages = gae(rewards, torch.zeros(batch))
        loss = ppo_loss(policy, old_dist, obs, actions, old_log_probs, advantages)
        loss = loss + actor_loss(policy, qnet, obs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item(), math.exp(policy.log_std.mean().item())


if __name__ == "__main__":
    print(main())
