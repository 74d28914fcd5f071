"""The tricks research training scripts carry around a model, in plain PyTorch.

A small CNN classifier on synthetic images trained with:

* a hand-written ``Lion`` optimizer (a ``torch.optim.Optimizer`` subclass whose ``step``
  walks ``param_groups`` and keeps ``exp_avg`` in ``self.state[p]``) beside AdamW for the
  head, each with ``CosineAnnealingLR``;
* a YOLOv5-style ``ModelEMA``: a ``deepcopy`` of the model updated under ``no_grad``
  through its ``state_dict()`` values, skipping non-float entries with
  ``v.dtype.is_floating_point``;
* a frozen teacher whose ``forward`` is decorated with ``@torch.no_grad()`` (a feature
  distillation term);
* forward hooks collecting activations into a dict (``feats[name] = out.detach()``) and a
  forward that caches ``self.last_embedding``;
* a straight-through estimator written as a ``torch.autograd.Function``;
* ``torch.nn.utils.clip_grad_norm_`` whose returned norm is logged with ``.item()``;
* the DDP boilerplate that single-process runs go through (``dist.is_available()`` /
  ``is_initialized()``, ``get_rank()`` only when initialised) and a version check on
  ``torch.__version__``.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import copy
import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        if lr <= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.data.mul_(1 - group["lr"] * group["weight_decay"])
                state = self.state[p]
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p)
                exp_avg = state["exp_avg"]
                beta1, beta2 = group["betas"]
                update = exp_avg * beta1 + p.grad * (1 - beta1)
                p.add_(torch.sign(update), alpha=-group["lr"])
                exp_avg.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss


class BinarizeSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float() * 2 - 1

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() <= 1).to(grad_output.dtype)


class Net(nn.Module):
    def __init__(self, num_classes=4, width=8):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, num_classes)
        self.last_embedding = None

    def forward(self, x, binarize=False):
        h = self.body(x)
        if binarize:
            h = BinarizeSTE.apply(h)
        self.last_embedding = h.detach()
        return self.head(h)


class Teacher(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 2 * width, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())  # fmt: skip

    @torch.no_grad()
    def forward(self, x):
        return self.body(x)


class ModelEMA:
    def __init__(self, model, decay=0.99):
        self.ema = copy.deepcopy(model).eval()
        self.updates = 0
        self.decay = lambda x: decay * (1 - math.exp(-x / 20))
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def update(self, model):
        with torch.no_grad():
            self.updates += 1
            d = self.decay(self.updates)
            msd = model.state_dict()
            for k, v in self.ema.state_dict().items():
                if v.dtype.is_floating_point:
                    v *= d
                    v += (1 - d) * msd[k].detach()


def make_data(n=64, num_classes=4, size=8):
    x = torch.randn(n, 1, size, size)
    y = torch.randint(0, num_classes, (n,))
    x[torch.arange(n), 0, y, y] += 3.0  # a learnable signal
    return x, y


def main(epochs=2, batch_size=16):
    torch.manual_seed(0)
    if tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) < (1, 10):
        raise RuntimeError("needs torch >= 1.10")
    distributed = dist.is_available() and dist.is_initialized()
    rank = dist.get_rank() if distributed else 0

    x, y = make_data()
    model, teacher = Net(), Teacher()
    feats = {}

    def save_to(name):
        def hook(module, inputs, output):
            feats[name] = output.detach()

        return hook

    hooks = [m.register_forward_hook(save_to(name))
             for name, m in model.body.named_children() if isinstance(m, nn.Conv2d)]  # fmt: skip
    ema = ModelEMA(model)
    opt_body = Lion(model.body.parameters(), lr=3e-4, weight_decay=0.01)
    opt_head = torch.optim.AdamW(model.head.parameters(), lr=1e-2)
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs * 4)
              for o in (opt_body, opt_head)]  # fmt: skip
    losses, norms = [], []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = x[idx], y[idx]
            logits = model(xb, binarize=epoch > 0)
            # hint loss: the hooked conv features (detached) pulled towards the teacher's,
            # through the head's input embedding cached by forward
            target = teacher(xb)
            hint = F.mse_loss(feats["4"].mean((2, 3)), target) + F.mse_loss(
                model.last_embedding, target
            )
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1) + 0.1 * hint
            opt_body.zero_grad()
            opt_head.zero_grad()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            norms.append(norm.item())
            opt_body.step()
            opt_head.step()
            ema.update(model)
            losses.append(loss.item())
        for s in scheds:
            s.step()
    for h in hooks:
        h.remove()
    model.eval()
    with torch.no_grad():
        acc = (ema.ema(x).argmax(1) == y).float().mean().item()
        agree = (model(x).argmax(1) == ema.ema(x).argmax(1)).float().mean().item()
    assert teacher.body[0].weight.grad is None  # the teacher's no_grad forward
    assert model.last_embedding.shape == (len(x), 16)
    state = opt_body.state_dict()
    assert len(state["state"]) == len(list(model.body.parameters()))
    if rank == 0:
        print(f"loss {losses[-1]:.4f} ema acc {acc:.3f} agree {agree:.3f} norm {norms[-1]:.3f}")
    return losses + norms + [acc, agree]


if __name__ == "__main__":
    main()
