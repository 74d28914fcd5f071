"""A Vision Transformer and the training-script pieces around it, in the style of
timm / DeiT / the many minimal ViT training scripts, in plain PyTorch.

The model: a ``Conv2d`` patch embedding (``flatten(2).transpose(1, 2)``), a ``cls_token``
and ``pos_embed`` as ``nn.Parameter``s initialised with ``nn.init.trunc_normal_``, attention
written out (``qkv`` ``reshape`` / ``permute`` / ``unbind(0)``, ``q @ k.transpose(-2, -1)``),
a stochastic-depth ``DropPath`` module, pre-norm blocks and ``self.apply(self._init_weights)``.
The script: AdamW parameter groups built by name (no weight decay on biases, norms,
``cls_token`` / ``pos_embed``), a warmup + cosine ``LambdaLR``, ``CrossEntropyLoss`` with
``label_smoothing``, ``clip_grad_norm_``, mixup, and top-k accuracy evaluation.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def drop_path(x, drop_prob: float = 0.0, training: bool = False):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    return x * random_tensor / keep_prob


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self):
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


class PatchEmbed(nn.Module):
    def __init__(self, img_size=16, patch_size=4, in_chans=3, embed_dim=32):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, num_heads=4, qkv_bias=True, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = (
            self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, drop=0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0, drop=0.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class VisionTransformer(nn.Module):
    def __init__(self, img_size=16, patch_size=4, in_chans=3, num_classes=10, embed_dim=32,
                 depth=2, num_heads=4, mlp_ratio=2.0, drop_rate=0.0, drop_path_rate=0.1,
                 global_pool="token"):  # fmt: skip
        super().__init__()
        self.global_pool = global_pool
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, drop_rate, dpr[i])
                                      for i in range(depth)])  # fmt: skip
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def forward_features(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.blocks(x)
        return self.norm(x)

    def forward(self, x):
        x = self.forward_features(x)
        x = x[:, 1:].mean(dim=1) if self.global_pool == "avg" else x[:, 0]
        return self.head(x)


def param_groups_weight_decay(model, weight_decay=0.05, no_weight_decay_list=()):
    no_weight_decay_list = set(no_weight_decay_list)
    decay = []
    no_decay = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or name in no_weight_decay_list:
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": no_decay, "weight_decay": 0.0},
            {"params": decay, "weight_decay": weight_decay}]  # fmt: skip


def cosine_with_warmup(optimizer, warmup_steps, total_steps, min_ratio=0.01):
    def lr_lambda(step):
        if step < warmup_steps:
            return float(step + 1) / float(max(1, warmup_steps))
        progress = float(step - warmup_steps) / float(max(1, total_steps - warmup_steps))
        return max(min_ratio, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


def create_optimizer(model, lr=1e-3, weight_decay=0.05):
    groups = param_groups_weight_decay(model, weight_decay, model.no_weight_decay())
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))


def mixup(x, y, num_classes, lam):
    """Mixup with a fixed lambda: the batch mixed with its flip, soft one-hot targets."""
    y1 = F.one_hot(y, num_classes).float()
    x = lam * x + (1 - lam) * x.flip(0)
    return x, lam * y1 + (1 - lam) * y1.flip(0)


def soft_target_cross_entropy(x, target):
    loss = torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1)
    return loss.mean()


def synthetic_cifar(n, num_classes=10, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    protos = rng.normal(0, 1, (num_classes, 3, size, size)).astype(np.float32)
    x = protos[y] + rng.normal(0, 0.5, (n, 3, size, size)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def accuracy(output, target, topk=(1,)):
    maxk = min(max(topk), output.size()[1])
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.reshape(1, -1).expand_as(pred))
    return [correct[: min(k, maxk)].reshape(-1).float().sum(0) * 100.0 / batch_size for k in topk]


def train_one_epoch(model, loader, optimizer, scheduler, criterion, clip_grad=1.0, mixup_lam=None):
    model.train()
    losses = []
    for images, target in loader:
        if mixup_lam is not None:
            images, soft = mixup(images, target, model.head.out_features, mixup_lam)
            loss = soft_target_cross_entropy(model(images), soft)
        else:
            loss = criterion(model(images), target)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


@torch.no_grad()
def validate(model, loader):
    model.eval()
    criterion = nn.CrossEntropyLoss()
    top1_sum, top5_sum, loss_sum, n = 0.0, 0.0, 0.0, 0
    for images, target in loader:
        output = model(images)
        loss = criterion(output, target)
        acc1, acc5 = accuracy(output, target, topk=(1, 5))
        bs = images.size(0)
        loss_sum += loss.item() * bs
        top1_sum += acc1.item() * bs
        top5_sum += acc5.item() * bs
        n += bs
    return {"loss": loss_sum / n, "top1": top1_sum / n, "top5": top5_sum / n}


def lr_trajectory(model, steps, warmup_steps=3, lr=1e-3):
    """The learning rate of each group over ``steps`` scheduler steps (no training)."""
    optimizer = create_optimizer(model, lr)
    scheduler = cosine_with_warmup(optimizer, warmup_steps, steps)
    lrs = []
    for _ in range(steps):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        scheduler.step()
    return lrs


def main(epochs=1):
    torch.manual_seed(0)
    x, y = synthetic_cifar(32)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8,
                                         shuffle=True)  # fmt: skip
    model = VisionTransformer()
    optimizer = create_optimizer(model)
    scheduler = cosine_with_warmup(optimizer, 2, epochs * len(loader))
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    for _ in range(epochs):
        train_one_epoch(model, loader, optimizer, scheduler, criterion)
    return validate(model, loader)


if __name__ == "__main__":
    print(main())
