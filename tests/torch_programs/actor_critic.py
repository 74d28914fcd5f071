"""Advantage actor-critic in the style of pytorch/examples' reinforcement_learning/
actor_critic.py, in plain PyTorch: one shared body with an action head and a value head,
a smooth-L1 value loss and an entropy bonus, on a small corridor task written in numpy.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

from collections import namedtuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical

SavedAction = namedtuple("SavedAction", ["log_prob", "value", "entropy"])


class CorridorEnv:
    """Walk a corridor of ``n`` cells: actions are left / stay / right, the goal is the
    right end (reward 1), every other step costs 0.01."""

    def __init__(self, n=6, max_steps=20):
        self.n, self.max_steps = n, max_steps

    def reset(self):
        self.pos, self.t = 0, 0
        return self._obs()

    def _obs(self):
        obs = np.zeros(self.n, dtype=np.float32)
        obs[self.pos] = 1.0
        return obs

    def step(self, action):
        self.pos = int(np.clip(self.pos + action - 1, 0, self.n - 1))
        self.t += 1
        if self.pos == self.n - 1:
            return self._obs(), 1.0, True
        return self._obs(), -0.01, self.t >= self.max_steps


class ActorCritic(nn.Module):
    """implements both actor and critic in one model"""

    def __init__(self, n_obs=6, n_actions=3, hidden=16):
        super().__init__()
        self.affine1 = nn.Linear(n_obs, hidden)

        # actor's layer
        self.action_head = nn.Linear(hidden, n_actions)

        # critic's layer
        self.value_head = nn.Linear(hidden, 1)

        # action & reward buffer
        self.saved_actions = []
        self.rewards = []

    def forward(self, x):
        x = F.relu(self.affine1(x))
        action_prob = F.softmax(self.action_head(x), dim=-1)
        state_values = self.value_head(x)
        return action_prob, state_values


def select_action(model, state):
    state = torch.from_numpy(state).float()
    probs, state_value = model(state)
    m = Categorical(probs)
    action = m.sample()
    model.saved_actions.append(SavedAction(m.log_prob(action), state_value, m.entropy()))
    return action.item()


def compute_loss(model, gamma=0.99, entropy_coef=0.01):
    R = 0
    saved_actions = model.saved_actions
    policy_losses = []
    value_losses = []
    returns = []
    for r in model.rewards[::-1]:
        R = r + gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + 1e-8)

    for (log_prob, value, entropy), R in zip(saved_actions, returns):
        advantage = R - value.detach().squeeze()
        policy_losses.append(-log_prob * advantage - entropy_coef * entropy)
        value_losses.append(F.smooth_l1_loss(value, torch.tensor([R])))

    return torch.stack(policy_losses).sum() + torch.stack(value_losses).sum()


def finish_episode(model, optimizer, gamma=0.99):
    optimizer.zero_grad()
    loss = compute_loss(model, gamma)
    loss.backward()
    optimizer.step()
    del model.rewards[:]
    del model.saved_actions[:]
    return loss.item()


def main(episodes=5, seed=1):
    torch.manual_seed(seed)
    env = CorridorEnv()
    model = ActorCritic()
    optimizer = optim.Adam(model.parameters(), lr=3e-2)
    total = 0.0
    for _ in range(episodes):
        state, ep_reward, done = env.reset(), 0.0, False
        while not done:
            action = select_action(model, state)
            state, reward, done = env.step(action)
            model.rewards.append(reward)
            ep_reward += reward
        finish_episode(model, optimizer)
        total += ep_reward
    return total / episodes


if __name__ == "__main__":
    print(main())
