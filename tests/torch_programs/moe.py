"""A sparse Mixture-of-Experts feed-forward layer, written in plain torch.

A linear router picks the top-k experts per token (``torch.topk``), the tokens are
dispatched to each expert by index (``torch.where`` on the one-hot assignment,
``index_add_`` to combine), and a Switch-Transformer style load-balancing loss is built
from the fraction of tokens per expert (``F.one_hot(...).float().mean(0)``). A second,
dense formulation (every expert on every token, combined with ``scatter_`` / ``gather``
weights) gives the same output and is what a compiled step uses.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Expert(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class MoE(nn.Module):
    def __init__(self, dim=16, hidden=32, num_experts=4, top_k=2, aux_loss_coef=0.01):
        super().__init__()
        self.num_experts = num_experts
        self.top_k = top_k
        self.aux_loss_coef = aux_loss_coef
        self.gate = nn.Linear(dim, num_experts, bias=False)
        self.experts = nn.ModuleList([Expert(dim, hidden) for _ in range(num_experts)])

    def route(self, x):
        logits = self.gate(x)
        probs = F.softmax(logits, dim=-1, dtype=torch.float)
        weights, selected = torch.topk(probs, self.top_k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        return probs, weights.to(x.dtype), selected

    def aux_loss(self, probs, selected):
        # fraction of routing slots sent to each expert x mean router probability
        one_hot = F.one_hot(selected, num_classes=self.num_experts)  # (N, k, E)
        tokens_per_expert = one_hot.float().mean(0).sum(0) / self.top_k
        prob_per_expert = probs.float().mean(0)
        return self.num_experts * torch.sum(tokens_per_expert * prob_per_expert)

    def forward(self, x):
        batch, seq, dim = x.shape
        x = x.view(-1, dim)
        probs, weights, selected = self.route(x)
        out = torch.zeros_like(x)
        expert_mask = F.one_hot(selected, num_classes=self.num_experts).permute(2, 1, 0)
        for e, expert in enumerate(self.experts):
            slot, token = torch.where(expert_mask[e])
            if token.numel() == 0:
                continue
            y = expert(x[token]) * weights[token, slot, None]
            out.index_add_(0, token, y.to(x.dtype))
        loss = self.aux_loss_coef * self.aux_loss(probs, selected)
        return out.view(batch, seq, dim), loss

    def forward_dense(self, x):
        """Every expert on every token, combined by the top-k weights scattered into a
        dense (tokens, experts) matrix."""
        batch, seq, dim = x.shape
        x = x.reshape(-1, dim)
        probs, weights, selected = self.route(x)
        combine = torch.zeros(x.shape[0], self.num_experts, dtype=x.dtype, device=x.device)
        combine.scatter_(1, selected, weights)
        stacked = torch.stack([expert(x) for expert in self.experts], dim=1)  # (N, E, D)
        out = torch.einsum("ne,ned->nd", combine, stacked)
        loss = self.aux_loss_coef * self.aux_loss(probs, selected)
        return out.view(batch, seq, dim), loss


class MoEClassifier(nn.Module):
    def __init__(self, vocab=32, dim=16, num_classes=3, **moe):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.moe = MoE(dim=dim, **moe)
        self.head = nn.Linear(dim, num_classes)
        self.dense = False

    def forward(self, tokens):
        h = self.embed(tokens)
        moe_out, aux = (self.moe.forward_dense if self.dense else self.moe)(self.norm(h))
        h = h + moe_out
        return self.head(h.mean(dim=1)), aux


def expert_load(model, tokens):
    """How many tokens each expert receives (bincount of the router's choices)."""
    with torch.no_grad():
        x = model.norm(model.embed(tokens)).view(-1, model.moe.gate.in_features)
        _, _, selected = model.moe.route(x)
        return torch.bincount(selected.flatten(), minlength=model.moe.num_experts)


def routing_table(model, tokens):
    """The dense combine matrix, checked against the router's choices: gathering it at
    the chosen experts gives the weights back, and it is zero everywhere else."""
    with torch.no_grad():
        x = model.norm(model.embed(tokens)).view(-1, model.moe.gate.in_features)
        probs, weights, selected = model.moe.route(x)
        combine = torch.zeros_like(probs).scatter_(1, selected, weights)
        assert torch.allclose(combine.gather(1, selected), weights)
        chosen = torch.zeros_like(probs, dtype=torch.bool).scatter_(1, selected, True)
        unused = torch.where(chosen, torch.zeros_like(probs), probs)
        return combine, chosen, unused.sum(-1), probs.max(-1)
