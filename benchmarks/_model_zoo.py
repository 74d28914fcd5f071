"""The models the benchmarks train, written once in torch style and built on either torch
or jaxmod (``ns`` is the ``torch`` module or ``jaxmod``: the same class body runs on both,
as a ported model file does).

``build(name, ns, cfg)`` gives a model; ``batch(name, cfg)`` the numpy inputs and labels;
``spec(name, size)`` the sizes. Torchvision's ResNets, DenseNet and MobileNetV2 are
torchvision's own files, loaded through ``tests/_torch_port.py`` (imports rewritten, nothing
else changed) so that torch and jaxmod run the very same source.
"""

from __future__ import annotations

import math
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmark this checkout's jaxmod, not an installed one
    sys.path.insert(0, str(ROOT))

CONVNETS = ("cnn", "resnet18", "resnet50", "densenet121", "mobilenet_v2")
TORCHVISION = {
    "resnet18": ("models.resnet", "resnet18"),
    "resnet50": ("models.resnet", "resnet50"),
    "densenet121": ("models.densenet", "densenet121"),
    "mobilenet_v2": ("models.mobilenetv2", "mobilenet_v2"),
}


SIZES = ("cpu", "quick", "tiny", "gpu")


def spec(name: str, size: str = "cpu") -> dict[str, Any]:
    """Sizes of one benchmark model: batch, image size / block size, widths. ``size``: "cpu"
    (the default run), "quick", "tiny" (smoke runs: seconds) or "gpu"."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    tiny, quick, gpu = size == "tiny", size == "quick", size == "gpu"
    if name == "cnn":
        return {"batch": 4 if tiny else 32, "size": 16 if tiny else 32, "classes": 10}
    if name in TORCHVISION:
        img = {"cpu": 64, "quick": 32, "tiny": 32, "gpu": 224}[size]
        b = {"cpu": 16, "quick": 16, "tiny": 2, "gpu": 64}[size]
        return {"batch": b, "size": img, "classes": 1000 if gpu else 10}
    if name == "gpt":
        if gpu:
            return {"batch": 8, "block": 1024, "layers": 12, "width": 768, "heads": 12,
                    "vocab": 50304}  # fmt: skip
        if tiny:
            return {"batch": 2, "block": 16, "layers": 1, "width": 32, "heads": 2, "vocab": 64}
        if quick:
            return {"batch": 8, "block": 64, "layers": 2, "width": 128, "heads": 4, "vocab": 512}
        return {"batch": 8, "block": 128, "layers": 4, "width": 256, "heads": 4, "vocab": 512}
    if name == "lstm":
        if tiny:
            return {"batch": 2, "block": 8, "layers": 1, "width": 16, "embed": 8, "vocab": 32}
        if quick:
            return {"batch": 16, "block": 32, "layers": 1, "width": 128, "embed": 64, "vocab": 512}
        return {"batch": 16, "block": 64, "layers": 2, "width": 256, "embed": 128, "vocab": 512}
    if name == "mlp":
        width = {"cpu": 1024, "quick": 256, "tiny": 32, "gpu": 4096}[size]
        return {"batch": 1024 if gpu else (8 if tiny else 256), "width": width, "layers": 2}
    known = ", ".join(["cnn", "gpt", "lstm", "mlp", *TORCHVISION])
    raise ValueError(f"unknown model {name!r}; known: {known}")


def is_convnet(name: str) -> bool:
    return name in CONVNETS


def batch(name: str, cfg: dict[str, Any], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One training batch ``(x, y)`` as numpy arrays (images NCHW, tokens int32)."""
    rng = np.random.default_rng(seed)
    b = cfg["batch"]
    if is_convnet(name):
        x = rng.standard_normal((b, 3, cfg["size"], cfg["size"]), dtype=np.float32)
        return x, rng.integers(0, cfg["classes"], (b,)).astype(np.int64)
    if name == "mlp":
        x = rng.standard_normal((b, cfg["width"]), dtype=np.float32)
        return x, rng.standard_normal((b, cfg["width"]), dtype=np.float32)
    tok = rng.integers(0, cfg["vocab"], (b, cfg["block"] + 1))
    return tok[:, :-1].astype(np.int64), tok[:, 1:].astype(np.int64)


def _classes(ns: ModuleType) -> dict[str, type]:
    """The benchmark's own model classes, defined over ``ns`` (torch or jaxmod)."""
    nn, F = ns.nn, ns.nn.functional

    class SmallResNet(nn.Module):
        """4 convolutions with BatchNorm: a stem, one residual block, a strided conv."""

        def __init__(self, classes: int = 10, width: int = 32) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(width)
            self.conv4 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False)
            self.bn4 = nn.BatchNorm2d(2 * width)
            self.fc = nn.Linear(2 * width, classes)

        def forward(self, x: Any) -> Any:
            x = F.relu(self.bn1(self.conv1(x)))
            h = F.relu(self.bn2(self.conv2(x)))
            x = F.relu(x + self.bn3(self.conv3(h)))
            x = F.relu(self.bn4(self.conv4(x)))
            return self.fc(x.mean((2, 3)))

    class Attention(nn.Module):
        def __init__(self, width: int, heads: int, block: int) -> None:
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.register_buffer("mask", ns.tril(ns.ones(block, block)).view(1, 1, block, block))

        def forward(self, x: Any) -> Any:
            b, t, c = x.shape
            q, k, v = self.qkv(x).split(c, dim=2)
            q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.mask[:, :, :t, :t] == 0, float("-inf"))
            y = att.softmax(dim=-1) @ v  # a Tensor method: jaxmod F returns arrays
            return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))

    class Block(nn.Module):
        def __init__(self, width: int, heads: int, block: int) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(width)
            self.attn = Attention(width, heads, block)
            self.ln2 = nn.LayerNorm(width)
            self.fc = nn.Linear(width, 4 * width)
            self.out = nn.Linear(4 * width, width)

        def forward(self, x: Any) -> Any:
            x = x + self.attn(self.ln1(x))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self, vocab: int, block: int, layers: int, width: int, heads: int) -> None:
            super().__init__()
            self.wte = nn.Embedding(vocab, width)
            self.wpe = nn.Embedding(block, width)
            self.blocks = nn.ModuleList([Block(width, heads, block) for _ in range(layers)])
            self.ln_f = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab, bias=False)

        def forward(self, idx: Any) -> Any:
            pos = ns.arange(idx.shape[1])
            x = self.wte(idx) + self.wpe(pos)
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln_f(x))

    class LSTMLM(nn.Module):
        def __init__(self, vocab: int, embed: int, width: int, layers: int) -> None:
            super().__init__()
            self.emb = nn.Embedding(vocab, embed)
            self.lstm = nn.LSTM(embed, width, layers, batch_first=True)
            self.head = nn.Linear(width, vocab)

        def forward(self, idx: Any) -> Any:
            out, _ = self.lstm(self.emb(idx))
            return self.head(out)

    class MLP(nn.Module):
        def __init__(self, width: int, layers: int) -> None:
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(layers)])

        def forward(self, x: Any) -> Any:
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i < len(self.layers) - 1:
                    x = F.relu(x)
            return x

    return {"cnn": SmallResNet, "gpt": GPT, "lstm": LSTMLM, "mlp": MLP}


@cache
def classes(ns_name: str) -> dict[str, type]:
    return _classes(_ns(ns_name))


def _ns(ns_name: str) -> ModuleType:
    if ns_name == "torch":
        import torch

        return torch
    import jaxmod

    return jaxmod


def torchvision_file(name: str, mode: str) -> ModuleType:
    """Torchvision's model file for ``name``, run on ``mode`` ("torch" or "jaxmod")."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from _torch_port import torchvision  # noqa: PLC0415 (the tests' port loader)

    return torchvision(TORCHVISION[name][0], mode)


def build(name: str, ns_name: str, cfg: dict[str, Any]) -> Any:
    """A fresh model ``name`` on ``ns_name`` ("torch" or "jaxmod"), in train mode."""
    if name in TORCHVISION:
        return getattr(torchvision_file(name, ns_name), TORCHVISION[name][1])(
            num_classes=cfg["classes"]
        )
    cls = classes(ns_name)[name]
    if name == "cnn":
        return cls(cfg["classes"])
    if name == "gpt":
        return cls(cfg["vocab"], cfg["block"], cfg["layers"], cfg["width"], cfg["heads"])
    if name == "lstm":
        return cls(cfg["vocab"], cfg["embed"], cfg["width"], cfg["layers"])
    return cls(cfg["width"], cfg["layers"])


def loss_of(name: str, F: Any, out: Any, y: Any) -> Any:
    """The training loss on ``out`` (``F`` is torch's or jaxmod's ``nn.functional``)."""
    if name == "mlp":
        return F.mse_loss(out, y)
    if out.ndim == 3:
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return F.cross_entropy(out, y)


def optimizer(name: str, ns: Any, params: Any) -> Any:
    """SGD with momentum for convnets (their usual recipe), AdamW otherwise."""
    if is_convnet(name):
        return ns.optim.SGD(params, lr=0.01, momentum=0.9)
    return ns.optim.AdamW(params, lr=3e-4)
