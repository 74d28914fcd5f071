# ruff: noqa: E501 - the snippets are torch source as people write it
"""Everyday torch idioms, written in plain torch, run with only their imports rewritten.

Each snippet below is torch code as model files, training scripts and notebooks write it
(initialisation through ``model.apply``, the eval loop with ``pred.eq(y.view_as(pred))``,
``torch.load(path, weights_only=True)``, a loader over a numpy ``Dataset``, top-k sampling
with ``logits[logits < v[:, [-1]]] = -inf``, rotary embeddings through ``view_as_complex``,
...). It runs twice: with real torch 2.13, and with ``import torch`` -> ``import jaxmod as
torch`` (the same rewrite as the program ports, ``_torch_port.rewrite``). Its ``result`` (a
list of tensors, shapes, numbers, strings) must be equal, tensors to float32 tolerance.
Random draws come from different generators, so snippets compare only what does not
depend on them (shapes, bounds, properties of the draws).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from _torch_port import rewrite

import jaxmod

torch.set_num_threads(1)

SNIPPETS: dict[str, str] = {}
SNIPPETS["init_apply"] = """
import torch
import torch.nn as nn
torch.manual_seed(0)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)
    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))
def init_weights(m):
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.constant_(m.weight, 1); nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0, 0.01); m.bias.data.fill_(0.5)
net = Net(); net.apply(init_weights)
result = [n for n, _ in net.named_modules()] + [float(net.fc.bias.sum()), tuple(net.conv.weight.shape),
          sum(p.numel() for p in net.parameters() if p.requires_grad)]
"""
SNIPPETS["tensor_misc"] = """
import torch
x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
idx = torch.tensor([0, 2])
result = [x.cumsum(1), torch.cumprod(x + 1, dim=0), x.flip(0),
          torch.bucketize(torch.tensor([1.5, 7.0]), torch.tensor([0., 2., 5., 8.])),
          torch.searchsorted(torch.tensor([0., 2., 5., 8.]), torch.tensor([3.0])),
          x.scatter_add(0, torch.zeros(3, 4, dtype=torch.long), x), x.index_select(0, idx), x.norm(dim=1),
          x.clamp(min=2, max=9), torch.logsumexp(x, dim=1), x.std(0), x.var(1, unbiased=False), x.argmax(), x.max(),
          x.max(dim=0).values, torch.nn.functional.pad(x, (1, 1)), x.unfold(1, 2, 2), torch.diff(x, dim=1),
          torch.meshgrid(torch.arange(2), torch.arange(3), indexing='ij')[0], x.masked_select(x > 5), torch.nonzero(x > 9),
          x.new_empty(2, 3).shape, x.t().contiguous().view(-1), torch.where(x > 5, x, torch.zeros_like(x)), x.lt(3).sum().item(),
          torch.allclose(x, x + 1e-9), torch.equal(x, x), x.sign(), x.abs().sqrt().rsqrt()[1:], x.pow(2).mean().item(), x.numel(),
          torch.full((2,), 3.0).tolist(), x.type(torch.int64).dtype == torch.long, x.is_floating_point(), torch.is_tensor(x), x.ndim,
          x.ndimension()]
"""
SNIPPETS["inplace_init_ops"] = """
import torch
torch.manual_seed(0)
w = torch.empty(3, 4)
w.uniform_(-0.1, 0.1); a = w.abs().max().item() <= 0.1
w.normal_(0, 1); w.zero_(); w.add_(torch.ones(3, 4), alpha=2.0); w.mul_(3).sub_(1).div_(5)
b = torch.zeros(5).bernoulli_(0.5)
w2 = w.clone().detach().requires_grad_(True)
result = [a, w, set(b.tolist()) <= {0.0, 1.0}, w2.requires_grad]
"""
SNIPPETS["generator_seed"] = """
import torch
g = torch.Generator().manual_seed(42)
a = torch.randn(3, generator=g)
g2 = torch.Generator(); g2.manual_seed(42)
b = torch.randn(3, generator=g2)
perm = torch.randperm(10, generator=g)
result = [bool((a == b).all()), sorted(perm.tolist()) == list(range(10)), torch.initial_seed() >= 0]
"""
SNIPPETS["transformer_layers"] = """
import torch
from torch import nn
torch.manual_seed(0)
mha = nn.MultiheadAttention(8, 2, batch_first=True)
enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0), 2)
x = torch.ones(2, 5, 8)
mask = nn.Transformer.generate_square_subsequent_mask(5)
out, w = mha(x, x, x, need_weights=True)
y = enc(x, mask=mask, is_causal=True)
kpm = torch.tensor([[False, False, True, True, True], [False, False, False, True, True]])
out2, w2 = mha(x, x, x, key_padding_mask=kpm, need_weights=True, average_attn_weights=False)
dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True), 2)
z = dec(x, x, tgt_mask=mask, tgt_key_padding_mask=kpm, memory_key_padding_mask=kpm)
result = [out.shape, w.shape, y.shape, mask, w2.shape, w2[0, 0, 0, 2:].sum().item() == 0.0, z.shape]
"""
SNIPPETS["packed_rnns"] = """
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence, pack_padded_sequence, pad_packed_sequence, pack_sequence
torch.manual_seed(0)
seqs = [torch.ones(3, 2), torch.ones(2, 2), torch.ones(1, 2)]
padded = pad_sequence(seqs, batch_first=True)
lstm = nn.LSTM(2, 4, batch_first=True)
packed = pack_padded_sequence(padded, torch.tensor([3, 2, 1]), batch_first=True, enforce_sorted=True)
out, (h, c) = lstm(packed)
unpacked, out_lens = pad_packed_sequence(out, batch_first=True)
gru = nn.GRU(2, 3, num_layers=2, bidirectional=True, batch_first=True)
out2, h2 = gru(pack_sequence([torch.ones(4, 2), torch.ones(2, 2)]))
pad2, lens2 = pad_packed_sequence(out2, batch_first=True)
hx, cx = nn.LSTMCell(2, 3)(torch.ones(1, 2))
emb = nn.Embedding.from_pretrained(torch.eye(4), freeze=True, padding_idx=0)
result = [padded.shape, unpacked.shape, out_lens.tolist(), h.shape, pad2.shape, lens2.tolist(), h2.shape, hx.shape,
          emb(torch.tensor([1, 2])), emb.weight.requires_grad]
"""
SNIPPETS["data_pipeline"] = """
import torch
from torch.utils.data import (Dataset, DataLoader, TensorDataset, random_split, SubsetRandomSampler,
                              WeightedRandomSampler, SequentialSampler, BatchSampler)
import numpy as np
class DS(Dataset):
    def __init__(self): self.x = np.arange(10, dtype=np.float32).reshape(10, 1)
    def __len__(self): return 10
    def __getitem__(self, i): return self.x[i], int(i % 2)
dl = DataLoader(DS(), batch_size=4, shuffle=False, drop_last=False)
shapes = [(xb.view(xb.size(0), -1).shape, yb.tolist(), xb.argmax(dim=1).tolist()) for xb, yb in dl]
tr, va = random_split(TensorDataset(torch.arange(10.)), [8, 2], generator=torch.Generator().manual_seed(0))
g = torch.Generator().manual_seed(0)
s = WeightedRandomSampler([0.0] * 5 + [1.0] * 5, num_samples=20, replacement=True, generator=g)
bs = list(BatchSampler(SequentialSampler(range(7)), batch_size=3, drop_last=False))
dl2 = DataLoader(TensorDataset(torch.arange(10.), torch.arange(10)), batch_size=4,
                 sampler=SubsetRandomSampler(list(range(8)), generator=g))
result = [shapes, len(tr), len(va), len(dl), all(int(i) >= 5 for i in s), bs, sum(len(b[0]) for b in dl2)]
"""
SNIPPETS["checkpoints"] = """
import torch, os, tempfile
from torch import nn
m = nn.Linear(2, 2)
decay = [p for n, p in m.named_parameters() if p.dim() >= 2]
nodecay = [p for n, p in m.named_parameters() if p.dim() < 2]
groups = [{'params': decay, 'weight_decay': 0.1}, {'params': nodecay, 'weight_decay': 0.0}]
opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95))
opt.zero_grad(set_to_none=True)
p = os.path.join(tempfile.mkdtemp(), 'ck.pt')
torch.save({'model': m.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3, 'config': {'n_layer': 2}}, p)
ck = torch.load(p, map_location='cpu', weights_only=True)
m2 = nn.Linear(2, 2); missing = m2.load_state_dict(ck['model'], strict=True)
opt2 = torch.optim.AdamW([{'params': [m2.weight]}, {'params': [m2.bias]}], lr=1e-3)
opt2.load_state_dict(ck['optimizer'])
for g in opt2.param_groups: g['lr'] = 5e-4
result = [ck['epoch'], ck['config'], bool(torch.equal(m.weight, m2.weight)), list(missing.missing_keys),
          [g['weight_decay'] for g in opt2.param_groups], opt2.param_groups[0]['lr']]
"""
SNIPPETS["losses"] = """
import torch
import torch.nn.functional as F
x = torch.linspace(-2, 2, 12).view(3, 4)
t = torch.tensor([0, 3, 1])
result = [F.cross_entropy(x, t, label_smoothing=0.1), F.nll_loss(F.log_softmax(x, 1), t),
          F.kl_div(F.log_softmax(x, 1), F.softmax(x.flip(1), 1), reduction='batchmean'),
          F.binary_cross_entropy_with_logits(x, (x > 0).float(), pos_weight=torch.ones(4) * 2),
          F.smooth_l1_loss(x, x * 0.5, beta=0.5), F.huber_loss(x, -x), F.cosine_similarity(x, x.flip(0), dim=1),
          F.normalize(x, dim=1), F.mse_loss(x, torch.zeros_like(x), reduction='sum'), F.triplet_margin_loss(x, x * 2, x.flip(0)),
          F.margin_ranking_loss(x[0], x[1], torch.ones(4))]
"""
SNIPPETS["attention_code"] = """
import torch
x = torch.arange(24.).view(2, 3, 4)
a, b = x.chunk(2, dim=-1)
B, T, C = x.size()
q = x.view(B, T, 2, C // 2).transpose(1, 2)
att = (q @ q.transpose(-2, -1)) * (1.0 / (C // 2) ** 0.5)
mask = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
att = att.masked_fill(mask[:, :, :T, :T] == 0, float('-inf')).softmax(dim=-1)
y = (att @ q).transpose(1, 2).contiguous().view(B, T, C)
result = [a.shape, y, torch.einsum('bij,bkj->bik', x, x).shape, x.permute(2, 0, 1).reshape(4, -1).shape,
          x.repeat(1, 2, 1).shape, x.unsqueeze(0).expand(3, -1, -1, -1).shape, torch.stack([x, x], dim=1).shape,
          x.flatten(1).shape, x.squeeze().shape, x[:, None].shape, x[..., -1], x[x > 20]]
"""
SNIPPETS["functional_ops"] = """
import torch
import torch.nn.functional as F
x = torch.linspace(-3, 3, 2 * 3 * 8 * 8).view(2, 3, 8, 8)
result = [F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False).shape,
          F.interpolate(x, size=(5, 5), mode='nearest'), F.adaptive_avg_pool2d(x, 1).flatten(1), F.max_pool2d(x, 2, 2),
          F.avg_pool2d(x, 3, 1, 1), F.unfold(x, 3, padding=1).shape, F.pixel_shuffle(x.repeat(1, 4, 1, 1), 2).shape,
          F.dropout(x, 0.5, training=False), F.silu(x).sum(), F.mish(x).sum(), F.hardswish(x).sum(), F.softplus(x, beta=2).sum(),
          F.glu(torch.cat([x, x], 1), dim=1).shape, F.embedding(torch.tensor([[0, 2]]), torch.eye(3)), F.group_norm(x, 3).abs().sum(),
          F.conv2d(x, torch.ones(4, 3, 3, 3), padding='same').shape, F.one_hot(torch.tensor([0, 2]), 4)]
"""
SNIPPETS["module_api"] = """
import torch
from torch import nn
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('running', torch.zeros(3))
        self.register_buffer('tmp', torch.ones(1), persistent=False)
        self.blocks = nn.ModuleDict({'a': nn.Linear(3, 3), 'b': nn.Sequential(nn.ReLU(), nn.Linear(3, 1))})
        self.scale = nn.Parameter(torch.ones(1))
    def forward(self, x):
        return self.blocks['b'](self.blocks['a'](x)) * self.scale
m = M()
for p in m.blocks['a'].parameters(): p.requires_grad = False
trainable = [n for n, p in m.named_parameters() if p.requires_grad]
m.eval(); tr = m.training; m.train()
h = []
hd = m.blocks['a'].register_forward_hook(lambda mod, i, o: h.append(o.shape))
m(torch.ones(2, 3)); hd.remove(); m(torch.ones(2, 3))
opt = torch.optim.Adam([{'params': [m.scale], 'lr': 1e-2}, {'params': m.blocks['b'].parameters()}], lr=1e-3)
sub = m.get_submodule('blocks.b.1')
m.requires_grad_(False); frozen = [p.requires_grad for p in m.parameters()]
m.register_module('c', nn.Identity()); m.add_module('d', nn.Dropout(0.1))
m.half(); dt = str(m.scale.dtype).replace('torch.', ''); m.float(); m.zero_grad(); m.share_memory()
r = m.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith('blocks.a')}, strict=False)
result = [list(m.state_dict().keys()), trainable, tr, h, len(list(m.children())), [g['lr'] for g in opt.param_groups],
          sum(1 for _ in m.modules()), str(m.blocks['b']), type(sub).__name__, frozen, dt, list(r.missing_keys),
          list(m.state_dict(prefix='model.').keys())[:2], [n for n, _ in m.named_buffers(recurse=False)]]
"""
SNIPPETS["eval_loop"] = """
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.0), nn.Linear(16, 3))
x = torch.linspace(-1, 1, 32).view(8, 4); y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
crit = nn.CrossEntropyLoss()
correct = 0
model.eval()
with torch.no_grad():
    pred = model(x).argmax(dim=1, keepdim=True)
    correct += pred.eq(y.view_as(pred)).sum().item()
    acc = 100. * correct / len(x)
result = [acc >= 0, pred.shape, '{:.4f}'.format(crit(model(x), y).item()) != '', f"{crit(model(x), y):.1f}" != '']
"""
SNIPPETS["schedulers"] = """
import torch
from torch import nn, optim
m = nn.Linear(3, 2)
opt = optim.SGD(m.parameters(), lr=0.1)
s1 = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
lrs = []
for i in range(5):
    s1.step(); lrs.append(opt.param_groups[0]['lr'])
opt2 = optim.Adam(m.parameters(), lr=1.0)
s2 = optim.lr_scheduler.ReduceLROnPlateau(opt2, 'min', patience=1, factor=0.5)
for v in [1.0, 1.0, 1.0, 1.0, 0.5]:
    s2.step(v); lrs.append(opt2.param_groups[0]['lr'])
s3 = optim.lr_scheduler.MultiStepLR(optim.SGD(m.parameters(), lr=1.0), milestones=[1, 3], gamma=0.1)
for i in range(4): s3.step(); lrs.append(s3.get_last_lr()[0])
opt4 = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
s4 = optim.lr_scheduler.OneCycleLR(opt4, max_lr=0.5, total_steps=20)
for i in range(6): s4.step(); lrs.append(s4.get_last_lr()[0])
result = lrs
"""
SNIPPETS["init_and_params"] = """
import torch
from torch import nn
torch.manual_seed(0)
w = torch.empty(64, 32)
nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain('relu')); a = float(w.abs().max()) <= (2 ** 0.5) * (6 / 96) ** 0.5 + 1e-6
nn.init.trunc_normal_(w, std=0.02); b = float(w.abs().max()) <= 2.0
nn.init.orthogonal_(w.T); c = torch.allclose(w.t() @ w, torch.eye(32), atol=1e-4)
m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
v = nn.utils.parameters_to_vector(m.parameters())
nn.utils.vector_to_parameters(torch.zeros(v.numel()) + 0.5, m.parameters())
result = [a, b, c, round(nn.init.calculate_gain('leaky_relu', 0.2), 6), tuple(v.shape), float(m[0].weight.sum())]
"""
SNIPPETS["index_ops"] = """
import torch
x = torch.zeros(3, 4)
idx = torch.tensor([[0, 1], [2, 3], [1, 0]])
x.scatter_(1, idx, 1.0)
y = torch.arange(12.).view(3, 4)
g = torch.gather(y, 1, idx)
y.masked_fill_(y > 8, -1.0)
z = torch.zeros(5).index_fill_(0, torch.tensor([1, 3]), 2.0)
w = torch.zeros(5).index_add_(0, torch.tensor([0, 0, 2]), torch.ones(3))
u, cnt = torch.unique(torch.tensor([3, 1, 3, 2, 1, 3]), return_counts=True)
result = [x, g, y, z, w, u, cnt, torch.bincount(torch.tensor([0, 2, 2, 5])), torch.count_nonzero(x),
          torch.isclose(y, y + 1e-9).all().item()]
"""
SNIPPETS["reductions"] = """
import torch
x = torch.tensor([[3., 1., 4., 1.], [5., 9., 2., 6.], [5., 3., 5., 8.]])
result = [torch.median(x), x.median(dim=1).values, x.median(dim=1).indices, torch.quantile(x, 0.25, dim=1),
          x.kthvalue(2, dim=1).values, torch.cdist(x, x).shape, x.cummax(dim=1).values, torch.logcumsumexp(x, dim=1),
          x.nan_to_num(), torch.histc(x, bins=4, min=0, max=10), torch.kron(torch.eye(2), torch.ones(2, 2)),
          torch.block_diag(torch.ones(1, 2), torch.ones(2, 1)), torch.cartesian_prod(torch.tensor([1, 2]), torch.tensor([3, 4])),
          torch.rot90(x, 1, [0, 1]), torch.trapz(x, dim=1), torch.cross(torch.eye(3), torch.ones(3, 3), dim=1), x.mode(dim=1).values,
          torch.combinations(torch.tensor([1, 2, 3]), 2), torch.std_mean(x, dim=1)[0], torch.var_mean(x, dim=0, unbiased=False)[1],
          x.amax(dim=(0, 1)), x.aminmax(), x.prod(1), x.all(), x.any(dim=0)]
"""
SNIPPETS["devices"] = """
import torch
torch.cuda.manual_seed_all(0); torch.cuda.manual_seed(0)
dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
x = torch.ones(2, 3).to(dev, non_blocking=True)
m = torch.nn.Linear(3, 1).to(dev)
result = [str(dev), x.device.type, torch.cuda.device_count(), torch.backends.mps.is_available(), m(x).shape, x.is_cuda,
          torch.get_default_dtype() == torch.float32, torch.finfo(torch.float32).eps, torch.iinfo(torch.int32).max,
          str(torch.get_default_device())]
"""
SNIPPETS["creation"] = """
import torch
import numpy as np
a = np.arange(6, dtype=np.float32).reshape(2, 3)
t = torch.from_numpy(a)
result = [torch.tensor(a).dtype == torch.float32, torch.as_tensor([1, 2, 3]).dtype == torch.int64,
          torch.zeros_like(t, dtype=torch.long).dtype == torch.long, torch.full_like(t, 7).tolist(), torch.empty(2, 3).shape,
          torch.eye(3, 2), torch.linspace(0, 1, 5), torch.logspace(0, 2, 3), torch.arange(0, 1, 0.25),
          torch.tensor([[1, 2], [3, 4]]).T.contiguous().view(-1).tolist(), torch.tensor(3.5).item(), t.numpy().sum(),
          torch.ones(2, 2).numpy().dtype == np.float32, torch.tensor([1.0, 2.0]).cpu().detach().numpy().tolist(),
          torch.randn(3, 4).size(1), torch.randint(0, 10, (3,)).dtype == torch.int64, torch.zeros(3, dtype=torch.bool).dtype == torch.bool,
          torch.tensor([True, False]).float().tolist(), torch.tensor([1, 2]).long().dtype == torch.long, torch.stack([torch.ones(2)] * 3).shape,
          torch.tensor([]).numel()]
"""
SNIPPETS["sampling_loop"] = """
import torch
import torch.nn.functional as F
torch.manual_seed(0)
logits = torch.linspace(-1, 1, 20).view(2, 10)
v, _ = torch.topk(logits, 3)
logits[logits < v[:, [-1]]] = -float('Inf')
probs = F.softmax(logits, dim=-1)
idx_next = torch.multinomial(probs, num_samples=1)
idx = torch.cat((torch.zeros(2, 1, dtype=torch.long), idx_next), dim=1)
result = [bool((idx_next >= 7).all()), idx.shape, idx.dtype == torch.long, torch.isinf(logits).sum().item(), probs.sum(-1)]
"""
SNIPPETS["rotary_and_masks"] = """
import torch
import torch.nn.functional as F
x = torch.zeros(2, 4, 8) + 1
mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
ext = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
freqs = 1.0 / (10000 ** (torch.arange(0, 8, 2)[: 4].float() / 8))
fr = torch.outer(torch.arange(4), freqs)
cis = torch.polar(torch.ones_like(fr), fr)
xc = torch.view_as_complex(x.float().reshape(2, 4, 4, 2))
out = torch.view_as_real(xc * cis).flatten(2)
att = F.scaled_dot_product_attention(x[:, None], x[:, None], x[:, None], is_causal=True)
result = [ext.shape, float(ext.min()) < -1e30, out, att.shape, out.type_as(x).dtype == x.dtype]
"""
SNIPPETS["conv_layers"] = """
import torch
from torch import nn
torch.manual_seed(0)
c = nn.Conv2d(3, 4, 3, padding='same', padding_mode='reflect', bias=False)
d = nn.Conv1d(2, 4, 5, stride=2, dilation=2, groups=2)
t = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, output_padding=0)
up = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)
x = torch.ones(1, 3, 8, 8)
result = [c(x).shape, d(torch.ones(1, 2, 20)).shape, t(torch.ones(1, 4, 5, 5)).shape,
          t(torch.ones(1, 4, 5, 5), output_size=[11, 11]).shape, up(x).shape, str(c), str(t)]
"""
SNIPPETS["math_grab_bag"] = """
import torch
x = torch.linspace(-2, 2, 12).view(3, 4)
sq = x[:, :3] + 3 * torch.eye(3)
result = [torch.cov(x), torch.corrcoef(x), torch.diag_embed(x[0]), torch.tril_indices(3, 3), torch.triu_indices(3, 4, 1),
          torch.searchsorted(torch.tensor([1., 2., 3.]), torch.tensor([2.0]), right=True),
          torch.clamp(x, min=torch.zeros(4), max=torch.ones(4)), torch.addcdiv(x, x, x + 5, value=0.5), torch.lerp(x, x * 2, 0.3),
          torch.diag(x), torch.trace(x[:, :3]), torch.det(sq), torch.inverse(sq), torch.linalg.norm(x, dim=1),
          torch.linalg.solve(sq, torch.ones(3)), torch.matrix_exp(x[:, :3] * 0.1), torch.argsort(x, dim=1, descending=True),
          torch.sort(x.flatten(), stable=True).indices, torch.msort(x), torch.topk(x, 2, dim=0, largest=False).values,
          torch.nanmean(x), torch.nansum(x), torch.var(x, dim=1, correction=0), torch.logdet(sq @ sq.T), torch.dist(x, x + 1),
          torch.renorm(x, 2, 0, 1.0), torch.heaviside(x, torch.tensor(0.5)), torch.frac(x), torch.floor_divide(x, 0.7),
          torch.remainder(x, 1.5), torch.fmod(x, 1.5), torch.take(x, torch.tensor([0, 5])),
          torch.take_along_dim(x, torch.tensor([[0], [1], [2]]), dim=1), torch.flipud(x), torch.fliplr(x), torch.roll(x, 1, 0),
          torch.narrow(x, 1, 1, 2), torch.vstack([x, x]).shape, torch.hstack([x, x]).shape, torch.dstack([x, x]).shape,
          torch.column_stack([x[0], x[1]]), torch.atleast_2d(x[0]).shape, torch.broadcast_tensors(x, x[0])[1].shape,
          torch.broadcast_shapes((3, 1), (1, 4)), torch.can_cast(torch.float32, torch.int32), torch.numel(x),
          torch.is_nonzero(torch.tensor([1])), torch.square(x), torch.signbit(x), torch.trunc(x), torch.round(x, decimals=1),
          torch.rad2deg(x), torch.logaddexp(x, x), torch.hypot(x, x), torch.erfinv(x * 0.4), torch.i0(x), torch.sinc(x),
          torch.xlogy(x.abs(), x.abs()), torch.cumsum(x, dim=0), torch.cummin(x, 0).values, torch.diff(x, n=2, dim=1),
          torch.gradient(x)[1], torch.special.expit(x), torch.special.logit(torch.sigmoid(x))]
"""


def _plain(v: Any) -> Any:
    """A snippet's result with tensors as numpy arrays (torch's and jaxmod's alike)."""
    if isinstance(v, torch.Tensor):
        return v.detach().numpy()
    if isinstance(v, jaxmod.Tensor):
        return v.numpy()
    if isinstance(v, torch.Size) or type(v).__name__ == "Size":
        return tuple(v)
    if isinstance(v, (list, tuple)) and not hasattr(v, "_fields"):
        return [_plain(x) for x in v]
    if hasattr(v, "_fields"):  # a named tuple (values, indices)
        return [_plain(x) for x in v]
    return v


def _assert_same(got: Any, want: Any, where: str) -> None:
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} vs {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, np.ndarray):
        g = np.asarray(got)
        assert g.shape == want.shape, f"{where}: shape {g.shape} vs torch's {want.shape}"
        np.testing.assert_allclose(g.astype(np.float64), want.astype(np.float64), rtol=2e-5,
                                   atol=2e-5, equal_nan=True, err_msg=where)  # fmt: skip
    elif isinstance(want, float):
        assert abs(got - want) <= 1e-5 * max(1.0, abs(want)), f"{where}: {got} vs {want}"
    else:
        assert got == want, f"{where}: {got!r} vs torch's {want!r}"


def _run(source: str) -> Any:
    scope: dict[str, Any] = {"__name__": "snippet"}
    exec(compile(source, "<snippet>", "exec"), scope)  # noqa: S102 - our own test snippets
    return _plain(scope["result"])


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_torch_idiom_runs_unmodified_and_matches_torch(name):
    source = SNIPPETS[name]
    want = _run(source)
    got = _run(rewrite(source, "jaxmod"))
    _assert_same(got, want, name)
