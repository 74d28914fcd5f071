"""Reinforcement-learning and custom-autograd programs written in plain torch
(``tests/torch_programs/``) run on jaxmod with only their import lines rewritten, and
match torch.

Programs: ``reinforce`` (REINFORCE with a ``Categorical`` policy on a numpy balancing
task), ``actor_critic`` (a shared body with action and value heads, smooth-L1 value loss,
entropy bonus), ``gaussian_policy`` (``Independent(Normal(mu, std), 1)`` with a learned
log-std: PPO's clipped surrogate with a ``kl_divergence`` penalty, a tanh-squashed
``rsample`` scored by a Q network, GAE) and ``grad_reverse`` (DANN with
``torch.autograd.Function`` subclasses ``GradReverse``, ``BinarizeSTE``, ``ScaledSquare``
and ``Variable``-wrapped inputs).

Aspects per program, as in ``test_ports_sequence.py``: ``structure``, ``eval`` (torch's
weights loaded), ``train`` (one optimizer step, ``_port_checks.check_step``; each says
which program lines it stands in for), program functions run unmodified (``select_action``,
episodes, ``discounted_returns``, ``gae``, ``squashed_log_prob``) and ``as_written``
(the program's own training function, ``loss.backward(); optimizer.step()`` on jaxmod's
autograd tape, runs to the end).

Samples come from different generators, so every loss that depends on a draw is fed the
same draw on both sides: fixed actions / log-probabilities, the actions jaxmod sampled
replayed on torch, or the normal noise of jaxmod's ``rsample`` given to torch's. The
``autograd.Function`` gradients are also compared with torch's autograd directly, eagerly
and under ``jaxmod.jit``, and so are the distributions' ``log_prob`` / ``entropy`` / KL and
their gradients under ``jaxmod.jit`` (eagerly they run in the program aspects).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from _port_checks import (
    adam,
    assert_close,
    assert_tree_close,
    case_params,
    check_eval,
    check_step,
    check_structure,
    load_torch_weights,
    program_pair,
    report_unmodified,
    rng_inputs,
    runs_as_written,
    to_numpy,
    unmodified,
)
from _torch_port import program

import jaxmod

TOL = 2e-4


# ---------------------------------------------------------------------------- REINFORCE
def _balance_states(m: Any, actions: Any, seed: int, max_steps: int = 50) -> np.ndarray:
    """The states the program's numpy ``BalanceEnv`` visits under ``actions``."""
    env = m.BalanceEnv(max_steps=max_steps, seed=seed)
    states = [env.reset()]
    for a in actions[:-1]:
        states.append(env.step(int(a))[0])
    return np.stack(states)


ACTIONS = [1, 0, 0, 1]


def _reinforce_replay(lib: Any, mods: dict, policy: Any, states: Any, actions: Any,
                      rewards: list[float]) -> Any:  # fmt: skip
    """``select_action``'s lines with the action given instead of sampled, then the
    program's ``policy_loss``."""
    del policy.saved_log_probs[:]
    policy.rewards[:] = rewards
    for i in range(len(rewards)):
        probs = policy(states[i].unsqueeze(0))
        m = mods[lib].Categorical(probs)
        policy.saved_log_probs.append(m.log_prob(actions[i].view(1)))
    loss = mods[lib].policy_loss(policy, 0.99)
    del policy.saved_log_probs[:]
    del policy.rewards[:]
    return loss


def _reinforce(aspect: str) -> None:
    mods, tm, jm = program_pair("reinforce", lambda m, lib: m.Policy(hidden=16))
    states = _balance_states(mods[torch], ACTIONS, seed=3)
    actions = np.array(ACTIONS, np.int64)
    rewards = [1.0, 1.0, 0.5, 0.0]
    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "eval":
        check_eval(tm, jm, [states], TOL)  # softmax over the action scores
    elif aspect == "train":
        # stands in for select_action()'s `probs = policy(state); m = Categorical(probs);
        # policy.saved_log_probs.append(m.log_prob(action))` per step (the action given, not
        # m.sample()) and finish_episode()'s `loss = policy_loss(policy, gamma);
        # loss.backward(); optimizer.step()`
        def loss_of(lib: Any, model: Any, s: Any, a: Any) -> Any:
            return _reinforce_replay(lib, mods, model, s, a, rewards), None

        check_step(tm, jm, [states, actions], loss_of, TOL, make_opt=adam)
    elif aspect == "returns":
        # discounted_returns(): the reversed loop, torch.tensor(list), (R - mean) / (std + eps)
        out = {lib: mods[lib].discounted_returns(rewards, 0.9) for lib in (torch, jaxmod)}
        assert isinstance(out[jaxmod], jaxmod.Tensor)
        assert_close(out[jaxmod], out[torch], 1e-6, "discounted_returns")
    elif aspect == "episode":
        # run_episode() as written on jaxmod (its own draws), through select_action()
        # (from_numpy(state).float().unsqueeze(0), Categorical(probs).sample(), the
        # m.log_prob(action) it keeps, action.item()); torch replays the actions jaxmod
        # chose: the same trajectory, saved log-probabilities and policy_loss value
        load_torch_weights(tm, jm)
        jm.eval()
        tm.eval()
        jaxmod.manual_seed(4)
        env = mods[jaxmod].BalanceEnv(max_steps=8, seed=5)
        ep_reward, j_states, j_actions = mods[jaxmod].run_episode(env, jm)
        assert ep_reward == len(j_actions) == len(jm.rewards)
        assert j_states.dtype == np.float32 and set(j_actions.tolist()) <= {0, 1}
        np.testing.assert_array_equal(j_states, _balance_states(mods[torch], j_actions, 5, 8))
        for lp in jm.saved_log_probs:
            assert isinstance(lp, jaxmod.Tensor) and tuple(lp.shape) == (1,)
            assert lp.dtype == jaxmod.float32
        with torch.no_grad():
            t_probs = tm(torch.from_numpy(j_states))
            t_lp = torch.log(t_probs.gather(1, torch.from_numpy(j_actions)[:, None])).view(-1)
        assert_close(jaxmod.cat(jm.saved_log_probs), t_lp, TOL, "saved log_probs")
        j_loss = mods[jaxmod].policy_loss(jm, 0.99)
        with torch.no_grad():
            t_loss = _reinforce_replay(torch, mods, tm, torch.from_numpy(j_states),
                                       torch.from_numpy(j_actions), list(jm.rewards))  # fmt: skip
        assert_close(j_loss, t_loss, TOL, "policy_loss of jaxmod's episode")
        assert type(mods[jaxmod].select_action(jm, j_states[0])) is int
    elif aspect == "as_written":
        # finish_episode() as written, after select_action() on two states
        def run(m: Any) -> Any:
            policy = m.Policy(hidden=16)
            for s in states[:2]:
                m.select_action(policy, s)
                policy.rewards.append(1.0)
            m.finish_episode(policy, m.optim.Adam(policy.parameters(), lr=1e-2), 0.99)

        runs_as_written(run, "reinforce")


# ---------------------------------------------------------------------------- actor-critic
CORRIDOR_ACTIONS = [2, 1, 0, 2, 2]


def _corridor_states(m: Any, actions: list[int]) -> tuple[np.ndarray, list[float]]:
    env = m.CorridorEnv()
    states, rewards = [env.reset()], []
    for a in actions:
        s, r, _ = env.step(a)
        states.append(s)
        rewards.append(r)
    return np.stack(states[:-1]), rewards


def _ac_replay(lib: Any, mods: dict, model: Any, states: Any, actions: Any,
               rewards: list[float]) -> Any:  # fmt: skip
    """``select_action``'s lines with the action given, then ``compute_loss``."""
    m = mods[lib]
    del model.saved_actions[:]
    model.rewards[:] = rewards
    for i in range(len(rewards)):
        probs, state_value = model(states[i])
        dist = m.Categorical(probs)
        model.saved_actions.append(
            m.SavedAction(dist.log_prob(actions[i]), state_value, dist.entropy())
        )
    loss = m.compute_loss(model)
    del model.saved_actions[:]
    del model.rewards[:]
    return loss


def _actor_critic(aspect: str) -> None:
    mods, tm, jm = program_pair("actor_critic", lambda m, lib: m.ActorCritic())
    states, rewards = _corridor_states(mods[torch], CORRIDOR_ACTIONS)
    actions = np.array(CORRIDOR_ACTIONS, np.int64)
    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "eval":
        check_eval(tm, jm, [states], TOL)  # (action_prob, state_values), batched
        check_eval(tm, jm, [states[2]], TOL)  # one state, as select_action calls it
    elif aspect == "train":
        # stands in for select_action()'s `probs, state_value = model(state);
        # m = Categorical(probs); model.saved_actions.append(SavedAction(m.log_prob(action),
        # state_value, m.entropy()))` (the action given) and finish_episode()'s
        # `loss = compute_loss(model, gamma); loss.backward(); optimizer.step()`
        def loss_of(lib: Any, model: Any, s: Any, a: Any) -> Any:
            return _ac_replay(lib, mods, model, s, a, rewards), None

        check_step(tm, jm, [states, actions], loss_of, TOL, make_opt=adam)
    elif aspect == "rollout":
        # main()'s episode loop with select_action() as written on jaxmod; torch replays
        # the actions jaxmod sampled: compute_loss() equal
        load_torch_weights(tm, jm)
        jaxmod.manual_seed(2)
        env, m = mods[jaxmod].CorridorEnv(max_steps=4), mods[jaxmod]
        state, done, j_actions, j_states = env.reset(), False, [], []
        while not done:
            action = m.select_action(jm, state)
            assert type(action) is int and action in (0, 1, 2)
            j_states.append(state)
            j_actions.append(action)
            state, reward, done = env.step(action)
            jm.rewards.append(reward)
        log_prob, value, entropy = jm.saved_actions[0]
        for t in (log_prob, value, entropy):
            assert isinstance(t, jaxmod.Tensor)
        assert tuple(log_prob.shape) == () and tuple(value.shape) == (1,)
        j_loss = m.compute_loss(jm)
        assert isinstance(j_loss, jaxmod.Tensor) and tuple(j_loss.shape) == ()
        with torch.no_grad():
            t_loss = _ac_replay(torch, mods, tm, torch.from_numpy(np.stack(j_states)),
                                torch.tensor(j_actions), list(jm.rewards))  # fmt: skip
        assert_close(j_loss, t_loss, TOL, "compute_loss of jaxmod's episode")
    elif aspect == "as_written":
        # finish_episode() as written, after select_action() on two states
        def run(m: Any) -> Any:
            model = m.ActorCritic()
            for s in states[:2]:
                m.select_action(model, s)
                model.rewards.append(-0.01)
            m.finish_episode(model, m.optim.Adam(model.parameters(), lr=3e-2))

        runs_as_written(run, "actor_critic")


# ---------------------------------------------------------------------------- Gaussian policy
def _gaussian_data(tm: Any) -> list[np.ndarray]:
    """obs, actions, the old policy's mean / std (torch's policy moved a little, so the
    ratio is clipped for some samples and the KL is not zero), old log-probabilities,
    advantages and pre-tanh actions ``u``."""
    obs, noise, act_noise, adv, u = rng_inputs((6, 3), (6, 2), (6, 2), (6,), (6, 2), seed=3)
    with torch.no_grad():
        d = tm(torch.from_numpy(obs))
        old_mu = (d.mean + 0.3 * torch.from_numpy(noise)).numpy()
        old_std = (d.stddev * 1.2).numpy()
        actions = (d.mean + d.stddev * torch.from_numpy(act_noise)).numpy()
        old = torch.distributions.Independent(
            torch.distributions.Normal(torch.from_numpy(old_mu), torch.from_numpy(old_std)), 1
        )
        old_log_probs = old.log_prob(torch.from_numpy(actions)).numpy()
    return [obs, actions, old_mu, old_std, old_log_probs, adv, u]


def _gaussian(aspect: str) -> None:
    def build(m: Any, lib: Any) -> Any:
        return lib.nn.ModuleList([m.GaussianPolicy(hidden=16), m.QNetwork(hidden=16)])

    mods, tm, jm = program_pair("gaussian_policy", build)
    data = _gaussian_data(tm[0])
    obs, actions, old_mu, old_std, old_log_probs, adv, u = data

    def dist_values(lib: Any, model: Any, obs: Any, act: Any, mu: Any, std: Any,
                    u: Any) -> Any:  # fmt: skip
        D = lib.distributions
        dist = model[0](obs)
        old = D.Independent(D.Normal(mu, std), 1)
        return (dist.mean, dist.stddev, dist.variance, dist.log_prob(act), dist.entropy(),
                D.kl_divergence(old, dist), dist.base_dist.log_prob(act),
                mods[lib].squashed_log_prob(model[0], obs, u))  # fmt: skip

    def loss_of(lib: Any, model: Any, obs: Any, act: Any, mu: Any, std: Any, old_lp: Any,
                adv: Any, u: Any) -> Any:  # fmt: skip
        m, D = mods[lib], lib.distributions
        policy, qnet = model
        old_dist = D.Independent(D.Normal(mu, std), 1)
        loss = m.ppo_loss(policy, old_dist, obs, act, old_lp, adv)
        action, log_prob = m.squashed_log_prob(policy, obs, u)
        # actor_loss()'s `(alpha * log_prob - qnet(obs, action)).mean()` with the
        # pre-tanh sample given
        loss = loss + (0.2 * log_prob - qnet(obs, action)).mean()
        return loss, (action, log_prob)

    if aspect == "structure":
        check_structure(tm, jm)
        assert tuple(jm[0].log_std.shape) == (2,)
    elif aspect == "eval":
        # Independent(Normal(mu, exp(log_std)), 1) (the learned std broadcast against the
        # batched mean): mean, stddev, variance, log_prob, base_dist.log_prob,
        # entropy, KL(old || new); squashed_log_prob() as written
        check_eval(tm, jm, [*data[:4], u], TOL, call=dist_values)
    elif aspect == "train":
        # stands in for main()'s `loss = ppo_loss(policy, old_dist, obs, actions,
        # old_log_probs, advantages); loss = loss + actor_loss(policy, qnet, obs);
        # loss.backward(); optimizer.step()` with the actions and the squashed sample given
        check_step(tm, jm, data, loss_of, TOL, make_opt=adam)
    elif aspect == "actor_loss_rsample":
        # actor_loss() as written (squashed_sample's dist.rsample()) under
        # jaxmod.value_and_grad in jaxmod.jit; torch's rsample gets the normal noise jaxmod
        # drew (read back from an eager draw on the same seed: the compiled draw is the
        # same), so loss and gradients are comparable
        load_torch_weights(tm, jm)
        j_obs = jaxmod.from_numpy(obs)
        jaxmod.manual_seed(7)
        with jaxmod.no_grad():
            d = jm[0](j_obs)
            eps = (to_numpy(d.rsample()) - to_numpy(d.mean)) / to_numpy(d.stddev)
        jaxmod.manual_seed(7)
        j_loss, j_grads = jaxmod.jit(lambda model, obs: jaxmod.value_and_grad(
            lambda mm: mods[jaxmod].actor_loss(mm[0], mm[1], obs))(model))(jm, j_obs)  # fmt: skip
        normal_mod = torch.distributions.normal
        original = normal_mod._standard_normal
        normal_mod._standard_normal = lambda shape, dtype, device: torch.from_numpy(eps)
        try:
            t_loss = mods[torch].actor_loss(tm[0], tm[1], torch.from_numpy(obs))
        finally:
            normal_mod._standard_normal = original
        t_loss.backward()
        assert_close(j_loss, t_loss, TOL, "actor_loss")
        t_grads = {n: p.grad for n, p in tm.named_parameters()}
        scale = max(float(g.abs().max()) for g in t_grads.values()) * 1e-2
        for n, g in t_grads.items():
            assert_close(j_grads[n], g, TOL, f"grad of {n}", scale)
        assert float(t_grads["0.log_std"].abs().max()) > 0  # the noise's path to log_std
    elif aspect == "act":
        # GaussianPolicy.act as written: no_grad sample and its log_prob
        load_torch_weights(tm, jm)
        action, log_prob = jm[0].act(jaxmod.from_numpy(obs))
        assert isinstance(action, jaxmod.Tensor) and tuple(action.shape) == (6, 2)
        assert isinstance(log_prob, jaxmod.Tensor) and tuple(log_prob.shape) == (6,)
        with torch.no_grad():
            expected = tm[0](torch.from_numpy(obs)).log_prob(torch.tensor(to_numpy(action)))
        assert_close(log_prob, expected, TOL, "act log_prob")
    elif aspect == "gae":
        # gae() as written: the reversed loop with `advantages[t] = last` item assignment
        rewards, values = rng_inputs((6,), (6,), seed=5)
        out = {lib: mods[lib].gae(lib.from_numpy(rewards), lib.from_numpy(values))
               for lib in (torch, jaxmod)}  # fmt: skip
        assert isinstance(out[jaxmod], jaxmod.Tensor)
        assert_close(out[jaxmod], out[torch], 1e-5, "gae")
        jitted = jaxmod.jit(mods[jaxmod].gae)(jaxmod.from_numpy(rewards), jaxmod.from_numpy(values))
        assert_close(jitted, out[torch], 1e-5, "gae under jaxmod.jit")
    elif aspect == "as_written":
        runs_as_written(lambda m: m.main(steps=1, batch=6), "gaussian_policy")


# ---------------------------------------------------------------------------- DANN
def _dann(aspect: str) -> None:
    binary = "binary" in aspect
    mods, tm, jm = program_pair("grad_reverse", lambda m, lib: m.DANN(binary_features=binary))
    s_img, t_img = rng_inputs((6, 8), (6, 8), seed=2)
    t_img = t_img + 1.0
    s_label = np.array([0, 2, 1, 1, 0, 2], np.int64)
    alpha = 0.7

    def loss_of(lib: Any, model: Any, s: Any, y: Any, t: Any) -> Any:
        return mods[lib].dann_loss(model, s, y, t, alpha)

    kind = aspect.removesuffix("_binary")
    if kind == "structure":
        check_structure(tm, jm)
    elif kind == "eval":
        check_eval(tm, jm, [s_img], TOL, call=lambda lib, m, x: m(x, alpha))
    elif kind == "train":
        # stands in for train_step()'s `model.zero_grad(); err, _ = dann_loss(model, s_img,
        # s_label, t_img, alpha); err.backward(); optimizer.step()` (BatchNorm in train mode)
        check_step(tm, jm, [s_img, s_label, t_img], loss_of, TOL,
                   make_opt=lambda lib, m: lib.optim.Adam(m.parameters(), lr=1e-3))  # fmt: skip
    elif kind == "as_written":
        # train_step() as written
        def run(m: Any) -> Any:
            model = m.DANN()
            opt = m.torch.optim.Adam(model.parameters(), lr=1e-3)
            xs = [m.torch.from_numpy(v) for v in (s_img, s_label, t_img)]
            m.train_step(model, opt, *xs, alpha)

        runs_as_written(run, "grad_reverse")


CASES: dict[str, tuple[Callable[[str], None], tuple[str, ...]]] = {
    "reinforce": (_reinforce, ("structure", "eval", "train", "returns", "episode",
                               "as_written")),
    "actor_critic": (_actor_critic, ("structure", "eval", "train", "rollout", "as_written")),
    "gaussian_policy": (_gaussian, ("structure", "eval", "train", "actor_loss_rsample", "act",
                                    "gae", "as_written")),
    "grad_reverse": (_dann, ("structure", "structure_binary", "eval", "eval_binary", "train",
                             "train_binary", "as_written")),
}  # fmt: skip

# (program, aspect) -> the error it stops at today
XFAIL: dict[tuple[str, str], str] = {}

_ASPECTS = {name: CASES[name][1] for name in CASES}
UNMODIFIED = unmodified(_ASPECTS, XFAIL)
_report_count = report_unmodified("RL / autograd programs", UNMODIFIED, len(CASES))


@pytest.mark.parametrize("name, aspect", case_params(_ASPECTS, XFAIL))
def test_rl_autograd_program_matches_torch(name: str, aspect: str) -> None:
    CASES[name][0](aspect)


# ---------------------------------------------------------------------------- autograd.Function
_RNG = np.random.default_rng(11)
# |x| > 1 in places (BinarizeSTE zeroes those gradients), an exact 0 (sign(0) = 0)
_X = (_RNG.standard_normal((3, 4)) * 1.5).astype(np.float32)
_X[0, 0] = 0.0
_Y = _RNG.standard_normal((3, 4)).astype(np.float32)

# name -> (f(program module, *tensors) -> tensor, inputs, argnums differentiated)
FUNCTIONS: dict[str, tuple[Callable[..., Any], list[np.ndarray], tuple[int, ...]]] = {
    "grad_reverse_alpha": (lambda m, x: m.GradReverse.apply(x, 0.3), [_X], (0,)),
    "grad_reverse_twice": (lambda m, x: m.grad_reverse(m.grad_reverse(x, 2.0), 0.5), [_X], (0,)),
    "binarize_ste": (lambda m, x: m.BinarizeSTE.apply(x), [_X], (0,)),
    "binarize_ste_chained": (lambda m, x: m.BinarizeSTE.apply(x * 0.5) * x, [_X], (0,)),
    "scaled_square_both": (lambda m, x, y: m.ScaledSquare.apply(x, y), [_X, _Y], (0, 1)),
    "scaled_square_y_only": (lambda m, x, y: m.ScaledSquare.apply(x, y), [_X, _Y], (1,)),
    # backward returns [3, 4] gradients for [3, 1] / [1, 4] inputs: summed to their shapes
    "scaled_square_broadcast": (
        lambda m, x, y: m.ScaledSquare.apply(x, y), [_X[:, :1], _Y[:1]], (0, 1)
    ),
    "reverse_of_binarized": (
        lambda m, x, y: m.GradReverse.apply(m.BinarizeSTE.apply(x) * y, 0.5) ** 2,
        [_X, _Y], (0, 1),
    ),
}  # fmt: skip


@pytest.mark.parametrize("mode", ["eager", "jit", "backward"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_autograd_function_gradients_match_torch_autograd(name: str, mode: str) -> None:
    """The program's ``Function.apply`` under ``jaxmod.grad`` (its ``backward`` through
    ``jax.custom_vjp``) equals torch's autograd: output and the gradient of each input;
    ``backward``: torch's own loop on jaxmod's tape (``apply`` recorded as one node)."""
    f, inputs, argnums = FUNCTIONS[name]
    t_mod, j_mod = program("grad_reverse", "torch"), program("grad_reverse", "jaxmod")
    t_in = [torch.from_numpy(x).requires_grad_(i in argnums) for i, x in enumerate(inputs)]
    t_out = f(t_mod, *t_in)
    weight = np.linspace(-1.0, 2.0, t_out.numel(), dtype=np.float32).reshape(t_out.shape)
    (t_out * torch.from_numpy(weight)).sum().backward()
    if mode == "backward":
        j_in = [jaxmod.from_numpy(x).requires_grad_(i in argnums) for i, x in enumerate(inputs)]
        j_out = f(j_mod, *j_in)
        assert j_out.requires_grad and j_out.grad_fn is not None
        (j_out * jaxmod.from_numpy(weight)).sum().backward()
        assert_close(j_out, t_out, 1e-6, f"{name} output")
        for i in argnums:
            assert_close(j_in[i].grad, t_in[i].grad, 1e-6, f"{name} .grad of input {i}")
        return

    def objective(*xs: Any) -> Any:
        out = f(j_mod, *xs)
        return (out * jaxmod.from_numpy(weight)).sum(), out

    grad = jaxmod.grad(objective, argnums=argnums, has_aux=True)
    grad = jaxmod.jit(grad) if mode == "jit" else grad
    grads, j_out = grad(*[jaxmod.from_numpy(x) for x in inputs])
    assert isinstance(j_out, jaxmod.Tensor)
    assert_close(j_out, t_out, 1e-6, f"{name} output")
    for k, i in enumerate(argnums):
        assert isinstance(grads[k], jaxmod.Tensor)
        assert_close(grads[k], t_in[i].grad, 1e-6, f"{name} grad of input {i}")


# ---------------------------------------------------------------------------- distributions
_B, _A, _K = 4, 2, 3
_MU, _LOG_STD, _LOGITS, _LOGITS_Q, _U = rng_inputs(
    (_B, _A), (_A,), (_B, _K), (_B, _K), (_B, _A), seed=21
)
_PROBS = np.exp(_LOGITS) / np.exp(_LOGITS).sum(-1, keepdims=True) * 2.0  # unnormalised
_ACT = np.array([0, 2, 1, 2], np.int64)


def _diag(D: Any, lib: Any, mu: Any, log_std: Any) -> Any:
    return D.Independent(D.Normal(mu, lib.exp(log_std)), 1)


# name -> (f(lib, D, *params) -> scalar, params); each as gaussian_policy / reinforce /
# actor_critic use the distribution
DIST_CASES: dict[str, tuple[Callable[..., Any], list[np.ndarray]]] = {
    # reinforce: Categorical(probs) on a (1, K) softmax, log_prob of a (1,) action
    "categorical_probs_row_log_prob": (
        lambda L, D, p: D.Categorical(p[:1]).log_prob(L.tensor([2])).sum(), [_PROBS]
    ),
    # actor_critic: Categorical(probs) of one state, 0-d action, log_prob and entropy
    "categorical_probs_log_prob_entropy": (
        lambda L, D, p: D.Categorical(p[1]).log_prob(L.tensor(1)) - 0.1 * D.Categorical(p[1])
        .entropy(), [_PROBS]
    ),
    "categorical_probs_batch": (
        lambda L, D, p: (D.Categorical(p).log_prob(L.from_numpy(_ACT)) * L.arange(4.0)).sum()
        + D.Categorical(p).entropy().sum(), [_PROBS]
    ),
    "categorical_logits_batch": (
        lambda L, D, x: D.Categorical(logits=x).log_prob(L.from_numpy(_ACT)).sum()
        + D.Categorical(logits=x).entropy().sum(), [_LOGITS]
    ),
    "categorical_kl": (
        lambda L, D, p, x: D.kl_divergence(D.Categorical(p), D.Categorical(logits=x)).sum(),
        [_PROBS, _LOGITS_Q]
    ),
    # gaussian_policy: Independent(Normal(mu, exp(log_std)), 1), std broadcast over batch
    "diag_normal_log_prob": (
        lambda L, D, mu, ls: (_diag(D, L, mu, ls).log_prob(L.from_numpy(_U))
                              * L.arange(4.0)).sum(), [_MU, _LOG_STD]
    ),
    "diag_normal_entropy": (lambda L, D, mu, ls: _diag(D, L, mu, ls).entropy().sum(),
                            [_MU, _LOG_STD]),
    "diag_normal_kl_old_new": (
        lambda L, D, mu, ls: D.kl_divergence(
            D.Independent(D.Normal(L.from_numpy(_U), 0.7), 1), _diag(D, L, mu, ls)).mean(),
        [_MU, _LOG_STD]
    ),
    # the value scored is differentiated too (log_prob's gradient in its argument)
    "normal_log_prob_value_grad": (
        lambda L, D, mu, u: D.Normal(mu, 0.5).log_prob(u).sum(), [_MU, _U]
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", DIST_CASES)
def test_distribution_values_and_gradients_match_torch(name: str) -> None:
    """``log_prob`` / ``entropy`` / ``kl_divergence`` as these programs use them, and their
    gradients in every parameter, equal torch's under ``jaxmod.jit`` (the eager values are
    compared in the program aspects: ``eval``, ``select_action``, ``rollout``, ``act``,
    ``actor_loss_rsample``)."""
    f, params = DIST_CASES[name]
    t_ps = [torch.from_numpy(p).requires_grad_() for p in params]
    t_val = f(torch, torch.distributions, *t_ps)
    t_val.backward()

    def objective(*ps: Any) -> Any:
        return f(jaxmod, jaxmod.distributions, *ps)

    vg = jaxmod.jit(jaxmod.value_and_grad(objective, argnums=tuple(range(len(params)))))
    j_val, grads = vg(*[jaxmod.from_numpy(p) for p in params])
    assert_close(j_val, t_val, 1e-5, f"{name} value")
    # a parameter the value does not depend on (the mean, for an entropy): torch leaves
    # its .grad None, jaxmod's gradient is zeros
    t_grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in t_ps]
    assert_tree_close(grads, t_grads, 1e-5, f"{name} grads")
