"""A tabular classifier and the data and bookkeeping code around it, in plain PyTorch, in
the style of many small training scripts: a ``Dataset`` subclass returning numpy rows,
``random_split`` with its own ``Generator``, ``Subset``, a ``WeightedRandomSampler``, a
``collate_fn``, ``drop_last`` / ``pin_memory``; printing ``model.state_dict()[k].size()``;
``ReduceLROnPlateau`` stepped on the validation loss; early stopping; a checkpoint dict
(epoch, model and optimizer state) saved with ``torch.save`` and loaded back into a fresh
model and optimizer; ``parameters_to_vector``.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, WeightedRandomSampler, random_split


class Rows(Dataset):
    def __init__(self, n, dim=4, seed=0):
        rng = np.random.RandomState(seed)
        self.x = rng.randn(n, dim).astype(np.float32)
        self.y = (self.x.sum(1) > 0).astype(np.int64)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def stack_rows(batch):
    xs, ys = zip(*batch)
    return torch.tensor(np.stack(xs)), torch.tensor(ys)


def make_model(dim=4, hidden=16):
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 2))


def main(epochs=3, n=100, patience=2):
    torch.manual_seed(0)
    ds = Rows(n)
    n_val = n // 5
    train_ds, val_ds = random_split(
        ds, [n - n_val, n_val], generator=torch.Generator().manual_seed(42)
    )
    head = Subset(ds, list(range(10)))
    sampler = WeightedRandomSampler(
        [1.0] * len(train_ds), num_samples=len(train_ds), replacement=True
    )
    train_loader = DataLoader(
        train_ds, batch_size=16, sampler=sampler, drop_last=True, pin_memory=True
    )
    val_loader = DataLoader(val_ds, batch_size=8, collate_fn=stack_rows)
    print(len(train_ds), len(val_ds), len(head), len(train_loader), len(val_loader))

    model = make_model()
    for name in model.state_dict():
        print(name, "\t", model.state_dict()[name].size())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min", patience=0, factor=0.5)
    best, bad, history = float("inf"), 0, []
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for xb, yb in val_loader:
                total += F.cross_entropy(model(xb), yb, reduction="sum").item()
                count += yb.size(0)
        val_loss = total / count
        scheduler.step(val_loss)
        history.append(val_loss)
        print(epoch, round(val_loss, 4), optimizer.param_groups[0]["lr"])
        if val_loss < best:
            best, bad = val_loss, 0
        else:
            bad += 1
            if bad >= patience:
                break

    path = os.path.join(tempfile.mkdtemp(), "checkpoint.tar")
    torch.save(
        {
            "epoch": epoch,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": best,
        },
        path,
    )
    fresh = make_model()
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    checkpoint = torch.load(path, weights_only=False)
    fresh.load_state_dict(checkpoint["model_state_dict"])
    fresh_opt.load_state_dict(checkpoint["optimizer_state_dict"])
    same = torch.allclose(
        torch.nn.utils.parameters_to_vector(fresh.parameters()),
        torch.nn.utils.parameters_to_vector(model.parameters()),
    )
    fresh.eval()
    x = torch.from_numpy(ds.x[:3])
    agree = fresh(x).argmax(1).tolist() == model(x).argmax(1).tolist()
    return {
        "val_loss": history,
        "best": best,
        "restored": bool(same and agree),
        "lr": fresh_opt.state_dict()["param_groups"][0]["lr"],
    }


if __name__ == "__main__":
    print(main())
