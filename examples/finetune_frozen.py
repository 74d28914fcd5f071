"""Fine-tune a new head on a frozen backbone (``requires_grad_(False)``).

    python examples/finetune_frozen.py [--steps 150] [--seed 0]

1. Pre-train a backbone + head on the scikit-learn digits 0-4.
2. Freeze the backbone with ``backbone.requires_grad_(False)``, attach a new head for the
   digits 5-9, and train it: ``jaxmod.grad`` returns no entry for frozen parameters, and
   the optimizer is built over the trainable ones (the usual torch idiom).
3. Check that the backbone's weights are bit-for-bit unchanged.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


def digits(lo: int, hi: int, seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    keep = (d.target >= lo) & (d.target < hi)
    x, y = (d.data[keep] / 16.0).astype(np.float32), (d.target[keep] - lo).astype(np.int32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return jaxmod.tensor(xtr), jaxmod.tensor(ytr), jaxmod.tensor(xte), jaxmod.tensor(yte)


def fit(model, data, steps: int, lr: float) -> float:
    xtr, ytr, xte, yte = data
    opt = jaxmod.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)

    @jaxmod.jit
    def step(model, opt, x, y):
        loss, grads = jaxmod.value_and_grad(lambda m: F.cross_entropy(m(x), y))(model)
        opt.step(grads)
        return loss

    for _ in range(steps):
        loss = step(model, opt, xtr, ytr)  # full batch: the subsets are small
    acc = (model(xte).argmax(1) == yte).float().mean().item()
    print(f"  final loss {float(loss):.4f}, test accuracy {100 * acc:.1f}%")
    return acc


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    jaxmod.manual_seed(args.seed)

    backbone = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
    print("1. pre-training backbone + head on digits 0-4")
    acc_a = fit(Classifier(backbone, 5), digits(0, 5, args.seed), args.steps, 1e-2)

    backbone.requires_grad_(False)
    model = Classifier(backbone, 5)  # a fresh head for digits 5-9 (labels 0-4)
    before = {k: np.array(v) for k, v in backbone.state_dict().items()}
    grads = jaxmod.grad(lambda m: m(jaxmod.ones(1, 64)).sum())(model)
    print(f"2. fine-tuning the new head; gradients exist only for {list(grads)}")
    jaxmod.summary(model, jaxmod.ones(1, 64))
    acc_b = fit(model, digits(5, 10, args.seed), args.steps, 5e-2)

    unchanged = all(np.array_equal(before[k], np.asarray(v))
                    for k, v in backbone.state_dict().items())  # fmt: skip
    print(f"3. backbone unchanged: {unchanged}")
    if not unchanged:
        raise SystemExit("the frozen backbone changed")

    # 4. ship it: a StableHLO artifact that runs without jaxmod (jax.export), and the same
    # forward through torch.func-style functional_call with the pre-training weights
    x = jaxmod.ones(2, 64)
    artifact = jax.export.deserialize(jaxmod.export(model, x).serialize())
    # the artifact runs without jaxmod: it takes and returns plain jax.Arrays
    exported_ok = jaxmod.allclose(artifact.call(x.numpy()), model.eval()(x), atol=1e-6)
    swapped = {f"backbone.{k}": v for k, v in before.items()}
    out = jaxmod.func.functional_call(model, swapped, (x,), strict=False)
    print(f"4. exported artifact matches: {exported_ok}; functional_call output {out.shape}")
    return {"acc_pretrain": acc_a, "acc_finetune": acc_b, "unchanged": unchanged,
            "grad_keys": list(grads), "exported_ok": exported_ok}  # fmt: skip


if __name__ == "__main__":
    main()
