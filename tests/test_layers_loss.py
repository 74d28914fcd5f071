"""torch parity of the loss layers: constructor args, buffers, repr, values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jaxmod.nn as jnn
from tests._step_parity import Step, check_structure, close, parity, randn

tnn = torch.nn

R = np.random.RandomState(0)
X = randn(4, 5)
Y = randn(4, 5, seed=1)
PROB = (1 / (1 + np.exp(-X))).astype(np.float32)
BIN = (R.rand(4, 5) > 0.5).astype(np.float32)
SIGN = np.where(R.rand(4, 5) > 0.5, 1.0, -1.0).astype(np.float32)
IDX = R.randint(0, 5, size=(4,)).astype(np.int64)
W5 = np.abs(randn(5, seed=2)) + 0.5
LOGP = (X - np.log(np.exp(X).sum(1, keepdims=True))).astype(np.float32)


def _targets_ml() -> np.ndarray:
    t = -np.ones((4, 5), np.int64)
    t[0, :2] = [1, 3]
    t[1, :1] = [0]
    t[2, :3] = [4, 2, 0]
    return t


def _cases() -> list[tuple[str, tuple, dict, tuple]]:
    """(name, ctor args, ctor kwargs, inputs as numpy)."""
    out: list[tuple[str, tuple, dict, tuple]] = []
    for red in ("mean", "sum", "none"):
        out += [
            ("L1Loss", (), {"reduction": red}, (X, Y)),
            ("MSELoss", (), {"reduction": red}, (X, Y)),
            ("SmoothL1Loss", (), {"reduction": red, "beta": 0.5}, (X, Y)),
            ("HuberLoss", (), {"reduction": red, "delta": 0.7}, (X, Y)),
            ("CrossEntropyLoss", (), {"reduction": red}, (X, IDX)),
            ("NLLLoss", (), {"reduction": red}, (LOGP, IDX)),
            ("BCELoss", (), {"reduction": red}, (PROB, BIN)),
            ("BCEWithLogitsLoss", (), {"reduction": red}, (X, BIN)),
            ("SoftMarginLoss", (), {"reduction": red}, (X, SIGN)),
        ]
    out += [
        ("CrossEntropyLoss", (), {"weight": W5, "label_smoothing": 0.1}, (X, IDX)),
        ("CrossEntropyLoss", (), {"ignore_index": int(IDX[0])}, (X, IDX)),
        ("CrossEntropyLoss", (), {}, (X, PROB / PROB.sum(1, keepdims=True))),
        ("NLLLoss", (W5,), {"ignore_index": 2}, (LOGP, IDX)),
        ("BCELoss", (BIN[0] + 0.5,), {}, (PROB, BIN)),
        ("BCEWithLogitsLoss", (), {"weight": W5, "pos_weight": W5[::-1].copy()}, (X, BIN)),
        ("KLDivLoss", (), {"reduction": "batchmean"}, (LOGP, PROB / PROB.sum(1, keepdims=True))),
        ("KLDivLoss", (), {"reduction": "sum", "log_target": True}, (LOGP, LOGP[::-1].copy())),
        ("PoissonNLLLoss", (), {}, (X, np.abs(Y) * 3)),
        ("PoissonNLLLoss", (False, True), {"eps": 1e-6}, (PROB * 4, np.abs(Y) * 3)),
        ("GaussianNLLLoss", (), {"full": True}, (X, Y, np.abs(randn(4, 5, seed=4)) + 0.1)),
        ("GaussianNLLLoss", (), {"reduction": "sum"}, (X, Y, np.abs(randn(4, 1, seed=4)))),
        ("HingeEmbeddingLoss", (), {"margin": 0.5}, (X, SIGN)),
        ("MultiLabelSoftMarginLoss", (W5,), {}, (X, BIN)),
        ("MultiLabelMarginLoss", (), {}, (X, _targets_ml())),
        ("MultiMarginLoss", (), {}, (X, IDX)),
        ("MultiMarginLoss", (2, 0.5, W5), {"reduction": "sum"}, (X, IDX)),
        ("CosineEmbeddingLoss", (), {"margin": 0.2}, (X, Y, SIGN[:, 0].copy())),
        ("MarginRankingLoss", (0.1,), {}, (X[:, 0].copy(), Y[:, 0].copy(), SIGN[:, 0].copy())),
        ("TripletMarginLoss", (), {}, (X, Y, randn(4, 5, seed=5))),
        ("TripletMarginLoss", (0.5, 1.0), {"swap": True}, (X, Y, randn(4, 5, seed=5))),
        ("TripletMarginWithDistanceLoss", (), {}, (X, Y, randn(4, 5, seed=5))),
        (
            "TripletMarginWithDistanceLoss",
            (),
            {"swap": True, "margin": 0.5},
            (X, Y, randn(4, 5, seed=5)),
        ),
    ]
    return out


# inputs differentiated (torch refuses gradients for some targets); default: the first
DIFF = {
    "L1Loss": (0, 1),
    "MSELoss": (0, 1),
    "CosineEmbeddingLoss": (0, 1),
    "MarginRankingLoss": (0, 1),
    "TripletMarginLoss": (0, 1, 2),
    "TripletMarginWithDistanceLoss": (0, 1, 2),
    "GaussianNLLLoss": (0, 1, 2),
}


def _torch_arg(v: object) -> object:
    return torch.tensor(v) if isinstance(v, np.ndarray) else v


def _ids(case: tuple) -> str:
    name, args, kwargs, _ = case
    extra = [k if not isinstance(v, (str, int, float, bool)) else f"{k}={v}" for k, v in
             kwargs.items()]  # fmt: skip
    return "-".join([name, str(len(args)), *extra])


@pytest.mark.parametrize("case", _cases(), ids=_ids)
def test_loss_parity(case: tuple) -> None:
    name, args, kwargs, inputs = case
    tm = getattr(tnn, name)(*map(_torch_arg, args), **{k: _torch_arg(v) for k, v in
                                                       kwargs.items()})  # fmt: skip
    jm = getattr(jnn, name)(*args, **kwargs)
    check_structure(tm, jm)
    parity(tm, jm, *inputs, diff=DIFF.get(name, (0,)))


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in _cases()
        if c[0] in ("CrossEntropyLoss", "BCEWithLogitsLoss", "TripletMarginLoss")
        and c[2].get("reduction", "mean") == "mean"
    ][:4],  # fmt: skip
    ids=_ids,
)
def test_loss_parity_jit(case: tuple) -> None:
    name, args, kwargs, inputs = case
    tm = getattr(tnn, name)(*map(_torch_arg, args), **{k: _torch_arg(v) for k, v in
                                                       kwargs.items()})  # fmt: skip
    jm = getattr(jnn, name)(*args, **kwargs)
    parity(tm, jm, *inputs, diff=DIFF.get(name, (0,)), jit=True)


def test_weight_buffers_like_torch() -> None:
    for name, kwargs in [
        ("CrossEntropyLoss", {"weight": W5}),
        ("NLLLoss", {"weight": W5}),
        ("BCELoss", {"weight": W5}),
        ("MultiLabelSoftMarginLoss", {"weight": W5}),
        ("MultiMarginLoss", {"weight": W5}),
        ("BCEWithLogitsLoss", {"weight": W5, "pos_weight": W5}),
        ("BCEWithLogitsLoss", {"pos_weight": W5}),
        ("CrossEntropyLoss", {}),
    ]:
        tm = getattr(tnn, name)(**{k: torch.tensor(v) for k, v in kwargs.items()})
        jm = getattr(jnn, name)(**kwargs)
        assert [n for n, _ in jm.named_buffers()] == [n for n, _ in tm.named_buffers()]
        assert list(jm.state_dict()) == list(tm.state_dict())
        for k, v in tm.state_dict().items():
            close(jm.state_dict()[k], v)
        assert list(jm.parameters()) == []


def test_ctc_loss() -> None:
    t, n, c, s = 12, 3, 5, 4
    logits = randn(t, n, c, seed=7)
    log_probs = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
    targets = np.random.RandomState(1).randint(1, c, size=(n, s)).astype(np.int64)
    in_lens = np.array([12, 10, 8], np.int64)
    tg_lens = np.array([4, 3, 2], np.int64)
    for kwargs in ({}, {"reduction": "sum", "blank": 0}, {"reduction": "none"}):
        tm, jm = tnn.CTCLoss(**kwargs), jnn.CTCLoss(**kwargs)
        check_structure(tm, jm)
        Step(jm, 4, (0,), jit=False)(tm, log_probs, targets, in_lens, tg_lens, atol=1e-4)
    tm, jm = tnn.CTCLoss(zero_infinity=True), jnn.CTCLoss(zero_infinity=True)
    bad = np.array([12, 10, 1], np.int64)
    Step(jm, 4, (0,), jit=True)(tm, log_probs, targets, bad, tg_lens, atol=1e-4)


def test_loss_reprs_and_legacy_args() -> None:
    assert repr(jnn.CrossEntropyLoss()) == repr(tnn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        m = jnn.MSELoss(size_average=False)
    assert m.reduction == "sum"
    with pytest.warns(UserWarning):
        assert jnn.NLLLoss(reduce=False).reduction == "none"
    assert jnn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    with pytest.raises(TypeError, match="delta must be a float or int"):
        jnn.HuberLoss(delta="1")
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        jnn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="expected margin to be greater than 0"):
        jnn.TripletMarginLoss(margin=0.0)
    with pytest.raises(ValueError, match="expected weight to be None or 1D tensor"):
        jnn.MultiMarginLoss(weight=np.ones((2, 2), np.float32))


def test_triplet_with_distance_calls_a_torch_style_distance_with_tensors() -> None:
    import jaxmod

    def cosine_distance(lib):  # torch code: Tensor methods on the function's arguments
        return lambda a, b: 1.0 - lib.nn.functional.cosine_similarity(a, b).clamp(min=-1)

    a, p, n = X, Y, randn(4, 5, seed=5)
    t = tnn.TripletMarginWithDistanceLoss(distance_function=cosine_distance(torch), margin=0.3)
    j = jnn.TripletMarginWithDistanceLoss(distance_function=cosine_distance(jaxmod), margin=0.3)
    assert repr(j) == repr(t)
    out = j(*map(jaxmod.from_numpy, (a, p, n)))
    assert isinstance(out, jaxmod.Tensor)
    close(out, t(*map(torch.from_numpy, (a, p, n))))
    with pytest.raises(ValueError, match="expected margin to be greater than 0, got 0 instead"):
        jnn.TripletMarginWithDistanceLoss(margin=0)
