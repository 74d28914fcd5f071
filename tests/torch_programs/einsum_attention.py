"""A small sequence classifier with attention written in einsum notation, written in
plain torch.

Multi-head attention as ``torch.einsum`` contractions (with an optional key padding mask
applied through ``masked_fill``), a linear-attention variant (``elu + 1`` feature map,
``einsum`` over the key / value outer products), a hand-written label-smoothing loss
(``torch.full_like`` + ``scatter_``), and a ``torch.no_grad()`` evaluation loop counting
``output.argmax(dim=1).eq(y).sum().item()``.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class EinsumAttention(nn.Module):
    def __init__(self, dim, heads=4, linear=False):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.linear = linear
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, key_padding_mask=None):
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, h, d // h).permute(0, 2, 1, 3) for t in (q, k, v))
        if self.linear:
            q, k = F.elu(q) + 1, F.elu(k) + 1
            if key_padding_mask is not None:
                k = k.masked_fill(key_padding_mask[:, None, :, None], 0.0)
            kv = torch.einsum("bhnd,bhne->bhde", k, v)
            z = 1.0 / (torch.einsum("bhnd,bhd->bhn", q, k.sum(dim=2)) + 1e-6)
            out = torch.einsum("bhnd,bhde,bhn->bhne", q, kv, z)
        else:
            dots = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
            if key_padding_mask is not None:
                dots = dots.masked_fill(
                    key_padding_mask[:, None, None, :], -torch.finfo(dots.dtype).max
                )
            attn = dots.softmax(dim=-1)
            out = torch.einsum("bhij,bhjd->bhid", attn, v)
        out = out.permute(0, 2, 1, 3).reshape(b, n, d)
        return self.to_out(out)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=64):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[: x.size(1)]


class Classifier(nn.Module):
    def __init__(self, vocab=20, dim=16, heads=4, num_classes=5, depth=2, linear=False, pad_idx=0):
        super().__init__()
        self.pad_idx = pad_idx
        self.embed = nn.Embedding(vocab, dim, padding_idx=pad_idx)
        self.pos = PositionalEncoding(dim)
        self.layers = nn.ModuleList()
        for _ in range(depth):
            self.layers.append(
                nn.ModuleList(
                    [
                        nn.LayerNorm(dim),
                        EinsumAttention(dim, heads, linear),
                        nn.LayerNorm(dim),
                        nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)),
                    ]
                )
            )
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens):
        mask = tokens == self.pad_idx
        x = self.pos(self.embed(tokens))
        for norm1, attn, norm2, ff in self.layers:
            x = x + attn(norm1(x), key_padding_mask=mask)
            x = x + ff(norm2(x))
        keep = (~mask).unsqueeze(-1).type_as(x)
        pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return self.head(pooled)


class LabelSmoothingLoss(nn.Module):
    def __init__(self, classes, smoothing=0.1, dim=-1):
        super().__init__()
        self.confidence = 1.0 - smoothing
        self.smoothing = smoothing
        self.cls = classes
        self.dim = dim

    def forward(self, pred, target):
        pred = pred.log_softmax(dim=self.dim)
        with torch.no_grad():
            true_dist = torch.full_like(pred, self.smoothing / (self.cls - 1))
            true_dist.scatter_(1, target.data.unsqueeze(1), self.confidence)
        return torch.mean(torch.sum(-true_dist * pred, dim=self.dim))


def make_data(n=24, length=7, vocab=20, num_classes=5, seed=0):
    """Token sequences (0 is padding, at the end of each row); the label is the most
    frequent token's residue mod ``num_classes``."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, vocab, (n, length), generator=g)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    pad = torch.arange(length).unsqueeze(0) >= lengths.unsqueeze(1)
    tokens[pad] = 0
    counts = torch.zeros(n, vocab, dtype=torch.long).scatter_add_(
        1, tokens, torch.ones_like(tokens)
    )
    counts[:, 0] = 0
    labels = counts.argmax(dim=1) % num_classes
    return tokens, labels


def evaluate(model, loader, criterion):
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            output = model(x)
            total_loss += criterion(output, y).item() * x.size(0)
            correct += output.argmax(dim=1).eq(y).sum().item()
            seen += y.size(0)
    return total_loss / seen, correct / seen


def make_loader(tokens, labels, batch_size=8):
    return DataLoader(TensorDataset(tokens, labels), batch_size=batch_size, shuffle=False)
