"""Deep Q-learning in the style of the PyTorch tutorial "Reinforcement Learning (DQN)",
in plain PyTorch, on a small grid-walk task written in numpy below (no gym needed).

A ``namedtuple`` transition, a ``collections.deque`` replay memory sampled with
``random.sample``, epsilon-greedy action selection (``policy_net(state).max(1).indices``),
the TD target built from a target network (``non_final_mask`` from a tuple of booleans,
``next_state_values[non_final_mask] = target_net(...).max(1)[0]`` under ``no_grad``),
``gather(1, action_batch)``, ``SmoothL1Loss``, ``clip_grad_value_``, and both a soft
(Polyak) update through ``state_dict()`` and a hard update with ``copy.deepcopy``.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import copy
import math
import random
from collections import deque, namedtuple

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

Transition = namedtuple("Transition", ("state", "action", "next_state", "reward"))


class GridWalk:
    """A walker on a line of ``size`` cells; actions 0 (left) / 1 (stay) / 2 (right).
    Reaching the right end gives reward 1 and ends the episode; every step costs 0.01."""

    def __init__(self, size=6, max_steps=20, seed=0):
        self.size, self.max_steps = size, max_steps
        self.rng = np.random.default_rng(seed)

    def reset(self):
        self.pos, self.t = int(self.rng.integers(0, self.size // 2)), 0
        return self._obs()

    def _obs(self):
        obs = np.zeros(self.size + 1, dtype=np.float32)
        obs[self.pos] = 1.0
        obs[-1] = self.t / self.max_steps
        return obs

    def step(self, action):
        self.pos = min(max(self.pos + action - 1, 0), self.size - 1)
        self.t += 1
        reached = self.pos == self.size - 1
        reward = 1.0 if reached else -0.01
        terminated = reached
        truncated = self.t >= self.max_steps
        return self._obs(), reward, terminated, truncated


class ReplayMemory:
    def __init__(self, capacity):
        self.memory = deque([], maxlen=capacity)

    def push(self, *args):
        """Save a transition"""
        self.memory.append(Transition(*args))

    def sample(self, batch_size):
        return random.sample(self.memory, batch_size)

    def __len__(self):
        return len(self.memory)


class DQN(nn.Module):
    def __init__(self, n_observations, n_actions, hidden=128):
        super().__init__()
        self.layer1 = nn.Linear(n_observations, hidden)
        self.layer2 = nn.Linear(hidden, hidden)
        self.layer3 = nn.Linear(hidden, n_actions)

    def forward(self, x):
        x = torch.relu(self.layer1(x))
        x = torch.relu(self.layer2(x))
        return self.layer3(x)


BATCH_SIZE = 8
GAMMA = 0.99
EPS_START = 0.9
EPS_END = 0.05
EPS_DECAY = 1000
TAU = 0.005
LR = 1e-4


class Agent:
    def __init__(self, n_observations, n_actions, hidden=32, capacity=1000):
        self.n_actions = n_actions
        self.policy_net = DQN(n_observations, n_actions, hidden)
        self.target_net = DQN(n_observations, n_actions, hidden)
        self.target_net.load_state_dict(self.policy_net.state_dict())
        self.optimizer = optim.AdamW(self.policy_net.parameters(), lr=LR, amsgrad=True)
        self.memory = ReplayMemory(capacity)
        self.steps_done = 0

    def select_action(self, state):
        sample = random.random()
        eps_threshold = EPS_END + (EPS_START - EPS_END) * math.exp(
            -1.0 * self.steps_done / EPS_DECAY
        )
        self.steps_done += 1
        if sample > eps_threshold:
            with torch.no_grad():
                # t.max(1) will return the largest column value of each row.
                return self.policy_net(state).max(1).indices.view(1, 1)
        else:
            return torch.tensor([[random.randrange(self.n_actions)]], dtype=torch.long)

    def soft_update(self):
        target_net_state_dict = self.target_net.state_dict()
        policy_net_state_dict = self.policy_net.state_dict()
        for key in policy_net_state_dict:
            target_net_state_dict[key] = policy_net_state_dict[key] * TAU + target_net_state_dict[
                key
            ] * (1 - TAU)
        self.target_net.load_state_dict(target_net_state_dict)

    def hard_update(self):
        self.target_net.load_state_dict(copy.deepcopy(self.policy_net.state_dict()))


def compute_loss(policy_net, target_net, transitions):
    batch = Transition(*zip(*transitions))

    non_final_mask = torch.tensor(
        tuple(map(lambda s: s is not None, batch.next_state)), dtype=torch.bool
    )
    non_final_next_states = torch.cat([s for s in batch.next_state if s is not None])
    state_batch = torch.cat(batch.state)
    action_batch = torch.cat(batch.action)
    reward_batch = torch.cat(batch.reward)

    state_action_values = policy_net(state_batch).gather(1, action_batch)

    next_state_values = torch.zeros(len(transitions))
    with torch.no_grad():
        next_state_values[non_final_mask] = target_net(non_final_next_states).max(1)[0]
    expected_state_action_values = (next_state_values * GAMMA) + reward_batch

    criterion = nn.SmoothL1Loss()
    return criterion(state_action_values, expected_state_action_values.unsqueeze(1))


def optimize_model(agent):
    if len(agent.memory) < BATCH_SIZE:
        return None
    transitions = agent.memory.sample(BATCH_SIZE)
    loss = compute_loss(agent.policy_net, agent.target_net, transitions)

    agent.optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(agent.policy_net.parameters(), 100)
    agent.optimizer.step()
    return loss.item()


def play_episode(env, agent, learn=True):
    """One episode: every transition pushed to the replay memory (``next_state`` None at
    termination); the model optimised and the target soft-updated after each step."""
    state = torch.tensor(env.reset(), dtype=torch.float32).unsqueeze(0)
    total = 0.0
    while True:
        action = agent.select_action(state)
        observation, reward, terminated, truncated = env.step(action.item())
        total += reward
        reward = torch.tensor([reward])
        done = terminated or truncated
        if terminated:
            next_state = None
        else:
            next_state = torch.tensor(observation, dtype=torch.float32).unsqueeze(0)
        agent.memory.push(state, action, next_state, reward)
        state = next_state
        if learn:
            optimize_model(agent)
            agent.soft_update()
        if done:
            return total


def greedy_returns(env, policy_net, episodes=3):
    """Evaluation: the greedy policy's return per episode."""
    returns = []
    for _ in range(episodes):
        state, total, done = env.reset(), 0.0, False
        while not done:
            with torch.no_grad():
                q = policy_net(torch.from_numpy(state).unsqueeze(0))
            state, reward, terminated, truncated = env.step(int(q.argmax(dim=1)[0]))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return returns


def main(num_episodes=2, seed=0):
    random.seed(seed)
    torch.manual_seed(seed)
    env = GridWalk(seed=seed)
    agent = Agent(env.size + 1, 3)
    for _ in range(num_episodes):
        play_episode(env, agent)
    agent.hard_update()
    return greedy_returns(env, agent.policy_net)


if __name__ == "__main__":
    print(main())
