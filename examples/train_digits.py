"""The main job: train a LeNet-style CNN on the scikit-learn digits with jaxmod.

    python examples/train_digits.py [--epochs 20] [--batch-size 64] [--device auto|cpu|gpu]
                                    [--seed 0] [--out DIR]

The model is a torch-style class (Conv2d / ReLU / MaxPool2d / Dropout / Linear) for the
8x8 digits: 3x3 convolutions with padding keep the spatial size, two 2x2 poolings take
it to 2x2. One training step (forward, backward, AdamW update) is compiled with
``jaxmod.jit``; OneCycleLR changes the learning rate every step without recompiling
(hyper-parameters are inputs of the compiled step). Batches come from a torch-style
``DataLoader`` (``jaxmod.utils.data``): reshuffled every epoch by a seeded
``jaxmod.Generator``, the last partial batch dropped (``drop_last=True``) so every step has
the same shapes and the step compiles exactly once, and copied to the device in a
background thread while the previous step runs (``prefetch_to_device``). Evaluation is a
second compiled function, run with the model in ``eval()`` mode (dropout off).

Writes ``digits_checkpoint.safetensors`` (the state_dict) and ``training_curves.png``
into ``--out`` and prints the test accuracy, the device and the mean step time (the
progress bar goes to stderr).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn
from jaxmod.utils.data import DataLoader, TensorDataset, prefetch_to_device


class LeNet(nn.Module):
    """LeNet for 1x8x8 digit images: two conv blocks, then a two-layer classifier."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32x4x4
            nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64x2x2
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, num_classes),
        )  # fmt: skip

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


def load_data(seed: int, test_size: float = 0.2):
    """The 1797 digits as float32 NCHW images in [0, 1], split train/test (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = digits.target.astype(np.int32)
    return train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)


def pick_device(name: str) -> jax.Device:
    """``auto``: JAX's default device (a GPU when there is one); ``cpu``; ``gpu``."""
    if name == "auto":
        return jax.devices()[0]
    try:
        return jax.devices(name)[0]
    except RuntimeError as e:
        raise SystemExit(f"--device {name}: JAX sees no {name} device ({e})") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2, help="OneCycleLR max_lr")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=".", help="directory for the checkpoint and the plot")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")
    return p.parse_args(argv)


def save_curves(path: str, losses: list[float], accs: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(losses) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, losses, marker="o")
    ax1.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    ax2.plot(epochs, [100 * a for a in accs], marker="o", color="tab:green")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="Test accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate, save; return the results (accuracy, timings, paths)."""
    from tqdm.auto import tqdm

    args = parse_args(argv)
    device = pick_device(args.device)
    os.makedirs(args.out, exist_ok=True)
    x_train, x_test, y_train, y_test = load_data(args.seed)
    bs = args.batch_size

    with jax.default_device(device):
        # drop_last: every batch has the same shape, so the step compiles once. The loader
        # hands out numpy batches to prefetch_to_device, which copies the next two to
        # `device` in a background thread (uncommitted, like the model's state: mixing
        # committed inputs, e.g. from jax.device_put(x, device), with uncommitted state
        # makes XLA compile the step a second time).
        loader = DataLoader(
            TensorDataset(x_train, y_train), batch_size=bs, shuffle=True, drop_last=True,
            generator=jaxmod.Generator(args.seed),
        )  # fmt: skip
        steps_per_epoch = len(loader)
        if steps_per_epoch == 0:
            raise SystemExit(f"--batch-size {bs} is larger than the training set ({len(x_train)})")
        train_batches = prefetch_to_device(loader, size=2)
        total_steps = args.epochs * steps_per_epoch
        jaxmod.manual_seed(args.seed)
        model = LeNet()  # created on `device` by jax.default_device
        opt = jaxmod.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
        sched = jaxmod.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total_steps)
        x_test_d, y_test_d = jaxmod.tensor(x_test), jaxmod.tensor(y_test)

        @jaxmod.jit
        def train_step(model, opt, x, y):
            def loss_fn(model):
                return F.cross_entropy(model(x), y)

            loss, grads = jaxmod.value_and_grad(loss_fn)(model)
            opt.step(grads)
            return loss

        @jaxmod.jit
        def eval_step(model, x, y):
            return (model(x).argmax(dim=1) == y).float().mean()

        def evaluate() -> float:
            model.eval()
            acc = float(eval_step(model, x_test_d, y_test_d))
            model.train()
            return acc

        epoch_losses: list[float] = []
        test_accs: list[float] = []
        step_time = 0.0  # training steps after the first (which includes compilation)
        bar = tqdm(total=total_steps, unit="step", disable=args.no_progress)  # on stderr
        for epoch in range(args.epochs):
            losses = []
            t0 = time.perf_counter()
            for i, (xb, yb) in enumerate(train_batches):
                loss = train_step(model, opt, xb, yb)
                sched.step()
                losses.append(loss)
                if epoch == 0 and i == 0:  # time compilation separately
                    jax.block_until_ready(loss)
                    compile_time = time.perf_counter() - t0
                    t0 = time.perf_counter()
                bar.update(1)
            epoch_loss = jaxmod.stack(losses).mean().item()  # waits for the epoch's steps
            dt = time.perf_counter() - t0
            step_time += dt
            timed = steps_per_epoch - (1 if epoch == 0 else 0)
            test_accs.append(evaluate())
            epoch_losses.append(epoch_loss)
            bar.set_postfix(
                epoch=epoch + 1, loss=f"{epoch_loss:.4f}", acc=f"{test_accs[-1]:.3f}",
                samples_s=f"{timed * bs / max(dt, 1e-9):,.0f}",
            )  # fmt: skip
        bar.close()

    timed_steps = total_steps - 1
    mean_step = step_time / max(timed_steps, 1)
    ckpt = os.path.join(args.out, "digits_checkpoint.safetensors")
    jaxmod.save(model.state_dict(), ckpt)
    plot = os.path.join(args.out, "training_curves.png")
    save_curves(plot, epoch_losses, test_accs)

    print(f"test accuracy: {100 * test_accs[-1]:.2f}% ({len(x_test)} images)")
    print(f"device: {device} ({device.platform})")
    print(
        f"mean step time: {1e3 * mean_step:.2f} ms ({bs / mean_step:,.0f} samples/s) over "
        f"{timed_steps} steps; first step (compilation) {compile_time:.2f} s; "
        f"train_step traced {train_step.trace_count}x, eval_step {eval_step.trace_count}x"
    )
    print(f"saved {ckpt} and {plot}")
    return {
        "accuracy": test_accs[-1],
        "accuracies": test_accs,
        "losses": epoch_losses,
        "mean_step_s": mean_step,
        "compile_s": compile_time,
        "device": str(device),
        "train_traces": train_step.trace_count,
        "eval_traces": eval_step.trace_count,
        "checkpoint": ckpt,
        "plot": plot,
    }


if __name__ == "__main__":
    main()
