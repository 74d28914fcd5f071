"""PixelCNN on binarised-MNIST-sized images in the style of the well-known minimal
``pixelcnn-pytorch`` script, in plain PyTorch.

``MaskedConv2d`` subclasses ``nn.Conv2d``, keeps its causal mask in a buffer
(``register_buffer('mask', self.weight.data.clone())``, ``fill_`` and slice assignment
with a bool-valued offset ``kW // 2 + (mask_type == 'B')``) and masks its own weight in
place before every forward (``self.weight.data *= self.mask``). The network predicts a
256-way softmax per pixel, trained with ``F.cross_entropy`` on ``(N, 256, H, W)`` logits
against ``(input.data[:, 0] * 255).long()``; sampling fills the image pixel by pixel
with ``torch.multinomial``.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils import data


class MaskedConv2d(nn.Conv2d):
    def __init__(self, mask_type, *args, **kwargs):
        super().__init__(*args, **kwargs)
        assert mask_type in {"A", "B"}
        self.register_buffer("mask", self.weight.data.clone())
        _, _, kH, kW = self.weight.size()
        self.mask.fill_(1)
        self.mask[:, :, kH // 2, kW // 2 + (mask_type == "B") :] = 0
        self.mask[:, :, kH // 2 + 1 :] = 0

    def forward(self, x):
        self.weight.data *= self.mask
        return super().forward(x)


def pixelcnn(fm=64, layers=8, kernel=7):
    body = [MaskedConv2d("A", 1, fm, kernel, 1, kernel // 2, bias=False),
            nn.BatchNorm2d(fm), nn.ReLU(True)]  # fmt: skip
    for _ in range(layers - 1):
        body += [MaskedConv2d("B", fm, fm, kernel, 1, kernel // 2, bias=False),
                 nn.BatchNorm2d(fm), nn.ReLU(True)]  # fmt: skip
    return nn.Sequential(*body, nn.Conv2d(fm, 256, 1))


def synthetic_digits(n, size=12, seed=0):
    """Stroke-like grey images in [0, 1], quantised to 256 levels (MNIST's ToTensor)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    imgs = []
    for _ in range(n):
        a, b, w = rng.uniform(-1, 1), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.15)
        img = np.exp(-(((yy - b - a * (xx - 0.5)) / w) ** 2))
        imgs.append(np.round(img * 255) / 255)
    return torch.from_numpy(np.stack(imgs)[:, None].astype(np.float32))


def make_loader(images, batch_size, shuffle=False):
    return data.DataLoader(data.TensorDataset(images, torch.zeros(len(images))),
                           batch_size=batch_size, shuffle=shuffle)  # fmt: skip


def nll(net, input):
    target = (input.data[:, 0] * 255).long()
    return F.cross_entropy(net(input), target)


def train_epoch(net, optimizer, tr):
    err_tr = []
    net.train(True)
    for input, _ in tr:
        loss = nll(net, input)
        err_tr.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return np.mean(err_tr)


def test_epoch(net, te):
    err_te = []
    net.train(False)
    with torch.no_grad():
        for input, _ in te:
            loss = nll(net, input)
            err_te.append(loss.item())
    return np.mean(err_te)


def sample(net, n=4, size=12, temperature=1.0):
    sample = torch.Tensor(n, 1, size, size)
    sample.fill_(0)
    net.train(False)
    with torch.no_grad():
        for i in range(size):
            for j in range(size):
                out = net(sample)
                probs = F.softmax(out[:, :, i, j] / temperature, dim=1).data
                sample[:, :, i, j] = torch.multinomial(probs, 1).float() / 255.0
    return sample


def main(epochs=1, fm=8, layers=3):
    torch.manual_seed(0)
    net = pixelcnn(fm, layers)
    optimizer = optim.Adam(net.parameters())
    tr = make_loader(synthetic_digits(16), 8, shuffle=True)
    te = make_loader(synthetic_digits(8, seed=1), 8)
    for epoch in range(epochs):
        err_tr = train_epoch(net, optimizer, tr)
        err_te = test_epoch(net, te)
        print(f"epoch={epoch}; nll_tr={err_tr:.7f}; nll_te={err_te:.7f}")
    return sample(net, 2)


if __name__ == "__main__":
    main()
