"""SimCLR contrastive pre-training in the style of the popular ``SimCLR`` PyTorch
implementations, in plain PyTorch.

Two random views of each image (crops by ``torch.roll``, ``torch.flip``, brightness
jitter), a small ResNet-style encoder with its ``fc`` replaced by an MLP projection
head, and two formulations of the NT-Xent loss: ``info_nce_loss`` (labels from
``torch.cat`` of ``torch.arange``, ``F.normalize``, ``torch.matmul(features, features.T)``,
the diagonal dropped with a ``torch.eye(..., dtype=torch.bool)`` mask and boolean
indexing, ``CrossEntropyLoss`` against zeros) and ``nt_xent`` (``masked_fill`` of the
diagonal with ``-inf``, ``torch.logsumexp``, positives by ``torch.diag`` of an offset
block). Evaluation is a linear probe's accuracy on frozen features and top-k retrieval.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetSimCLR(nn.Module):
    def __init__(self, out_dim=16, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        dim_mlp = 2 * width
        self.fc = nn.Linear(dim_mlp, out_dim)
        # add mlp projection head
        self.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.fc)

    def features(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.features(x))


class ContrastiveLearningViewGenerator:
    """Take two random crops of one image as the query and key."""

    def __init__(self, n_views=2, generator=None):
        self.n_views = n_views
        self.generator = generator

    def transform(self, x):
        shift = torch.randint(-2, 3, (2,), generator=self.generator).tolist()
        x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(-2, -1))
        if torch.rand(1, generator=self.generator).item() < 0.5:
            x = torch.flip(x, dims=[-1])
        scale = 0.6 + 0.8 * torch.rand(1, generator=self.generator)
        return (x * scale).clamp(0, 1)

    def __call__(self, x):
        return [self.transform(x) for i in range(self.n_views)]


def synthetic_images(n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    yy, xx = np.mgrid[0:size, 0:size] / size
    imgs = np.empty((n, 3, size, size), np.float32)
    for i, c in enumerate(labels):
        base = np.sin((c + 1) * 3 * (xx if c % 2 else yy)) * 0.5 + 0.5
        imgs[i] = base[None] * rng.uniform(0.5, 1.0, (3, 1, 1)) + rng.normal(
            0, 0.05, (3, size, size)
        )
    return torch.from_numpy(imgs.clip(0, 1).astype(np.float32)), torch.from_numpy(labels)


def make_views(images, n_views=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    views = ContrastiveLearningViewGenerator(n_views, g)
    per_image = [views(img) for img in images]
    return torch.cat([torch.stack([v[i] for v in per_image]) for i in range(n_views)], dim=0)


def info_nce_loss(features, batch_size, n_views=2, temperature=0.07):
    labels = torch.cat([torch.arange(batch_size) for i in range(n_views)], dim=0)
    labels = (labels.unsqueeze(0) == labels.unsqueeze(1)).float()

    features = F.normalize(features, dim=1)

    similarity_matrix = torch.matmul(features, features.T)

    # discard the main diagonal from both: labels and similarities matrix
    mask = torch.eye(labels.shape[0], dtype=torch.bool)
    labels = labels[~mask].view(labels.shape[0], -1)
    similarity_matrix = similarity_matrix[~mask].view(similarity_matrix.shape[0], -1)

    # select and combine multiple positives
    positives = similarity_matrix[labels.bool()].view(labels.shape[0], -1)

    # select only the negatives the negatives
    negatives = similarity_matrix[~labels.bool()].view(similarity_matrix.shape[0], -1)

    logits = torch.cat([positives, negatives], dim=1)
    labels = torch.zeros(logits.shape[0], dtype=torch.long)

    logits = logits / temperature
    return logits, labels


def nt_xent(z_i, z_j, temperature=0.5):
    batch_size = z_i.size(0)
    z = F.normalize(torch.cat([z_i, z_j], dim=0), dim=1)
    sim = torch.mm(z, z.t()) / temperature
    self_mask = torch.eye(2 * batch_size, dtype=torch.bool)
    sim = sim.masked_fill(self_mask, float("-inf"))
    positives = torch.cat([torch.diag(sim, batch_size), torch.diag(sim, -batch_size)])
    return (torch.logsumexp(sim, dim=1) - positives).mean()


def simclr_loss(model, images, batch_size, temperature=0.07):
    features = model(images)
    logits, labels = info_nce_loss(features, batch_size, temperature=temperature)
    return nn.CrossEntropyLoss()(logits, labels), logits


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)

        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))

        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


def train(model, images, epochs=1, batch_size=8, lr=3e-4):
    optimizer = torch.optim.Adam(model.parameters(), lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10, eta_min=0)
    model.train()
    for epoch in range(epochs):
        for start in range(0, len(images), batch_size):
            batch = make_views(images[start : start + batch_size], seed=epoch * 1000 + start)
            loss, logits = simclr_loss(model, batch, batch.shape[0] // 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            top1, top5 = accuracy(logits, torch.zeros(logits.shape[0], dtype=torch.long), (1, 5))
        scheduler.step()
    return loss.item(), top1[0].item()


def linear_probe(model, images, labels, steps=30, lr=0.5):
    """Logistic regression on frozen, normalised encoder features (closed-form-free: a few
    full-batch gradient steps written with tensor ops, no autograd)."""
    model.eval()
    with torch.no_grad():
        feats = F.normalize(model.features(images), dim=1)
    n_classes = int(labels.max()) + 1
    W = torch.zeros(feats.shape[1], n_classes)
    onehot = F.one_hot(labels, n_classes).float()
    for _ in range(steps):
        p = torch.softmax(feats @ W, dim=1)
        W -= lr * feats.t() @ (p - onehot) / feats.shape[0]
    pred = (feats @ W).argmax(1)
    return (pred == labels).float().mean().item(), W


def retrieval_topk(model, images, labels, k=3):
    """For each image, the fraction of its k nearest neighbours (cosine) sharing its label."""
    model.eval()
    with torch.no_grad():
        z = F.normalize(model.features(images), dim=1)
        sim = z @ z.t()
        sim.fill_diagonal_(-1.0)
        idx = sim.topk(k, dim=1).indices
        return (labels[idx] == labels.unsqueeze(1)).float().mean().item()


def main(epochs=1):
    torch.manual_seed(0)
    images, labels = synthetic_images(16)
    model = ResNetSimCLR()
    train(model, images, epochs)
    return linear_probe(model, images, labels)[0], retrieval_topk(model, images, labels)


if __name__ == "__main__":
    print(main())
