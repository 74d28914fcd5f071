"""REINFORCE (Monte-Carlo policy gradient) in the style of pytorch/examples'
reinforcement_learning/reinforce.py, in plain PyTorch, on a small balancing task
written in numpy below (no gym needed).

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical


class BalanceEnv:
    """A point on a line that drifts away from the centre; action 0 pushes it left,
    action 1 right. The reward is 1 per step while it stays inside [-1, 1]."""

    def __init__(self, max_steps=50, seed=0):
        self.max_steps = max_steps
        self.rng = np.random.default_rng(seed)

    def reset(self):
        self.x, self.v, self.t = self.rng.uniform(-0.1, 0.1), 0.0, 0
        return self._obs()

    def _obs(self):
        return np.array([self.x, self.v, self.x * self.v, np.sign(self.x)], dtype=np.float32)

    def step(self, action):
        push = 0.05 if action == 1 else -0.05
        self.v = 0.9 * self.v + push + 0.02 * self.x
        self.x = self.x + self.v
        self.t += 1
        done = abs(self.x) > 1.0 or self.t >= self.max_steps
        return self._obs(), 1.0, done


class Policy(nn.Module):
    def __init__(self, n_obs=4, n_actions=2, hidden=32):
        super().__init__()
        self.affine1 = nn.Linear(n_obs, hidden)
        self.dropout = nn.Dropout(p=0.6)
        self.affine2 = nn.Linear(hidden, n_actions)

        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = self.affine1(x)
        x = self.dropout(x)
        x = F.relu(x)
        action_scores = self.affine2(x)
        return F.softmax(action_scores, dim=1)


eps = np.finfo(np.float32).eps.item()


def select_action(policy, state):
    state = torch.from_numpy(state).float().unsqueeze(0)
    probs = policy(state)
    m = Categorical(probs)
    action = m.sample()
    policy.saved_log_probs.append(m.log_prob(action))
    return action.item()


def discounted_returns(rewards, gamma):
    R = 0
    returns = []
    for r in rewards[::-1]:
        R = r + gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    return (returns - returns.mean()) / (returns.std() + eps)


def policy_loss(policy, gamma):
    returns = discounted_returns(policy.rewards, gamma)
    policy_loss = []
    for log_prob, R in zip(policy.saved_log_probs, returns):
        policy_loss.append(-log_prob * R)
    return torch.cat(policy_loss).sum()


def finish_episode(policy, optimizer, gamma):
    optimizer.zero_grad()
    loss = policy_loss(policy, gamma)
    loss.backward()
    optimizer.step()
    del policy.rewards[:]
    del policy.saved_log_probs[:]
    return loss.item()


def run_episode(env, policy):
    state, ep_reward = env.reset(), 0
    states, actions = [], []
    done = False
    while not done:
        action = select_action(policy, state)
        states.append(state)
        actions.append(action)
        state, reward, done = env.step(action)
        policy.rewards.append(reward)
        ep_reward += reward
    return ep_reward, np.stack(states), np.array(actions)


def main(argv=None):
    parser = argparse.ArgumentParser(description="PyTorch REINFORCE example")
    parser.add_argument("--gamma", type=float, default=0.99, metavar="G")
    parser.add_argument("--seed", type=int, default=543, metavar="N")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--log-interval", type=int, default=1, metavar="N")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    env = BalanceEnv(seed=args.seed)
    policy = Policy()
    optimizer = optim.Adam(policy.parameters(), lr=1e-2)
    running_reward = 10
    for i_episode in range(1, args.episodes + 1):
        ep_reward, _, _ = run_episode(env, policy)
        running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
        finish_episode(policy, optimizer, args.gamma)
        if i_episode % args.log_interval == 0:
            print(
                f"Episode {i_episode}\tLast reward: {ep_reward:.2f}"
                f"\tAverage reward: {running_reward:.2f}"
            )
    return running_reward


if __name__ == "__main__":
    main()
