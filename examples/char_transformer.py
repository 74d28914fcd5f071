"""A small GPT-style character model, trained on ``examples/data/tiny.txt`` and sampled.

    python examples/char_transformer.py [--steps 400] [--batch-size 32] [--block-size 64]
                                        [--sample-len 200] [--seed 0] [--text FILE]

Token and position embeddings (``nn.Embedding``), pre-norm ``nn.TransformerEncoderLayer``
blocks with a causal mask (``nn.Transformer.generate_square_subsequent_mask`` and
``is_causal=True``), a final ``nn.LayerNorm`` and a linear head: the torch recipe,
unchanged. Training windows come from a ``Dataset`` of every ``block + 1``-character
window, drawn by a ``RandomSampler`` with replacement through a ``DataLoader``. Training is
one ``jaxmod.jit`` step (AdamW, cosine schedule, gradient clipping). Sampling is a second
compiled function over a fixed-size context window: each call shifts the window by one
character, so every call has the same shapes and it compiles once; the random draws come
from jaxmod's generator, lifted by ``jaxmod.jit``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import jaxmod
import jaxmod.nn.functional as F
from jaxmod import nn
from jaxmod.nn.utils.clip_grad import clip_grad_norm_
from jaxmod.utils.data import DataLoader, Dataset, RandomSampler

HERE = Path(__file__).resolve().parent


class CharGPT(nn.Module):
    def __init__(self, vocab_size, block_size=64, d_model=64, nhead=4, num_layers=2,
                 dropout=0.1):  # fmt: skip
        super().__init__()
        self.block_size = block_size
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model,
                nhead,
                dim_feedforward=4 * d_model,
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )  # fmt: skip
            for _ in range(num_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok_emb(idx) + self.pos_emb(jaxmod.arange(t))
        mask = nn.Transformer.generate_square_subsequent_mask(t)  # -inf above the diagonal
        for block in self.blocks:
            x = block(x, src_mask=mask, is_causal=True)
        return self.head(self.ln_f(x))


class CharWindows(Dataset):
    """Window ``i``: characters ``i .. i + block - 1`` and, as targets, the next character of
    each (the same window shifted by one)."""

    def __init__(self, data: np.ndarray, block: int):
        self.data, self.block = data, block

    def __len__(self) -> int:
        return len(self.data) - self.block - 1

    def __getitem__(self, i: int):
        window = self.data[i : i + self.block + 1]
        return window[:-1], window[1:]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--sample-len", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--prompt", default="Shall I compare thee")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", choices=("off", "bf16"), default="off",
                   help="bf16: compute matmuls in bfloat16 under jaxmod.autocast "
                   "(float32 master weights, losses and softmax as torch's policy)")  # fmt: skip
    p.add_argument("--text", default=str(HERE / "data" / "tiny.txt"))
    args = p.parse_args(argv)

    text = Path(args.text).read_text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int32)
    print(f"{len(text):,} characters, vocabulary of {len(chars)}")

    jaxmod.manual_seed(args.seed)
    bs, block = args.batch_size, args.block_size
    model = CharGPT(len(chars), block, d_model=args.d_model, num_layers=args.layers)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"CharGPT: {n_params:,} parameters")
    opt = jaxmod.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = jaxmod.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.steps, 1))

    @jaxmod.jit
    def train_step(model, opt, x, y):
        def loss_fn(model):
            with jaxmod.autocast("cpu", dtype=jaxmod.bfloat16, enabled=args.amp == "bf16"):
                logits = model(x)
                return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

        loss, grads = jaxmod.value_and_grad(loss_fn)(model)
        clip_grad_norm_(grads, 1.0)
        opt.step(grads)
        return loss

    windows = CharWindows(data, block)
    sampler = RandomSampler(  # args.steps batches of random windows
        windows, replacement=True, num_samples=args.steps * bs,
        generator=jaxmod.Generator(args.seed),
    )  # fmt: skip
    first = None
    for step, (x, y) in enumerate(DataLoader(windows, batch_size=bs, sampler=sampler)):
        loss = train_step(model, opt, x, y)
        sched.step()
        if step == 0:
            first = float(loss)
        if step % max(args.steps // 6, 1) == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {float(loss):.3f}")

    @jaxmod.jit
    def sample_step(model, ctx, temperature):
        logits = model(ctx)[:, -1] / temperature
        nxt = jaxmod.multinomial(F.softmax(logits, dim=-1), num_samples=1)  # (1, 1)
        return jaxmod.cat([ctx[:, 1:], nxt], dim=1), nxt

    model.eval()  # dropout off
    prompt = "".join(c for c in args.prompt if c in stoi)[-block:]
    fill = stoi["\n"] if "\n" in stoi else 0
    ctx = jaxmod.tensor([[fill] * (block - len(prompt)) + [stoi[c] for c in prompt]])
    out = []
    for _ in range(args.sample_len):
        ctx, nxt = sample_step(model, ctx, args.temperature)
        out.append(nxt)
    sample = prompt + "".join(chars[i] for i in jaxmod.cat(out, dim=1)[0].tolist())
    print(f"--- sample (temperature {args.temperature}) ---\n{sample}\n---")
    print(f"traces: train {train_step.trace_count}, sample {sample_step.trace_count}")
    return {"first_loss": first, "loss": float(loss), "sample": sample,
            "traces": (train_step.trace_count, sample_step.trace_count)}  # fmt: skip


if __name__ == "__main__":
    main()
