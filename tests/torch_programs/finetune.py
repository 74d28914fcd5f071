"""Fine-tuning a pretrained-style convnet, in plain PyTorch, in the style of transfer-
learning scripts: freeze every parameter (``requires_grad = False``), replace the head,
optimise ``filter(lambda p: p.requires_grad, model.parameters())``, a ``StepLR``; a forward
hook that keeps a layer's activation (``output.detach()``); train and val phases under
``torch.set_grad_enabled(phase == "train")``; ``CrossEntropyLoss(label_smoothing=...)``;
``torch.sum(preds == labels.data)`` / ``.double()`` accuracy; then a ``BCEWithLogitsLoss``
with ``pos_weight`` + ``SmoothL1Loss`` + ``KLDivLoss`` on a ``requires_grad`` tensor, and a
``SequentialLR`` (``LinearLR`` warmup then ``CosineAnnealingWarmRestarts``) stepped with
``optimizer.step()`` calls that have no gradient to apply.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim import lr_scheduler


class Backbone(nn.Module):
    def __init__(self, classes=100):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.fc(torch.flatten(x, 1))


def main(epochs=3, batch=8, size=16):
    torch.manual_seed(0)
    model = Backbone()
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(model.fc.in_features, 2)
    optimizer = optim.SGD(
        filter(lambda p: p.requires_grad, model.parameters()), lr=0.01, momentum=0.9
    )
    step_lr = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    kept = {}

    def keep(name):
        def hook(module, inputs, output):
            kept[name] = output.detach()

        return hook

    handle = model.avgpool.register_forward_hook(keep("avgpool"))
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 2, (batch,))
    accs = []
    for epoch in range(epochs):
        for phase in ["train", "val"]:
            model.train() if phase == "train" else model.eval()
            optimizer.zero_grad()
            with torch.set_grad_enabled(phase == "train"):
                outputs = model(x)
                _, preds = torch.max(outputs, 1)
                loss = criterion(outputs, y)
                if phase == "train":
                    loss.backward()
                    optimizer.step()
            if phase == "train":
                step_lr.step()
            accs.append(float(torch.sum(preds == y.data).double() / batch))
            print(epoch, phase, round(loss.item(), 4), accs[-1], tuple(kept["avgpool"].shape))
    handle.remove()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    frozen_grad = model.features[1].weight.grad

    bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0]))
    logit = torch.randn(5, 1, requires_grad=True)
    target = torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0]])
    total = bce(logit, target) + nn.SmoothL1Loss()(logit, target)
    total = total + nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(logit, 0), F.softmax(target, 0)
    )
    total.backward()
    hits = (((torch.sigmoid(logit) > 0.5).float() == 1) & (target == 1)).sum().item()

    warm_then_cosine = lr_scheduler.SequentialLR(
        optimizer,
        [
            lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2),
            lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=3),
        ],
        milestones=[2],
    )
    lrs = []
    for _ in range(6):
        optimizer.step()  # no .grad anywhere after zero_grad(): torch changes nothing
        warm_then_cosine.step()
        lrs.append(round(optimizer.param_groups[0]["lr"], 6))
    return {
        "acc": accs,
        "trainable": trainable,
        "frozen_grad_is_none": frozen_grad is None,
        "loss": total.item(),
        "grad_rows": logit.grad.shape[0],
        "hits": hits,
        "lrs": lrs,
    }


if __name__ == "__main__":
    print(main())
