"""jaxmod.optim.lr_scheduler writes the same lr (and momentum) sequences as torch's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from jaxmod import nn, optim
from jaxmod.optim import lr_scheduler as J

torch = pytest.importorskip("torch")
T = torch.optim.lr_scheduler

STEPS = 100


def _opts(kind: str = "SGD"):
    """Two-group optimizers (different lrs) in jaxmod and torch."""
    jm = nn.Linear(2, 2)
    tm = torch.nn.Linear(2, 2)
    if kind == "SGD":
        jo = optim.SGD([{"params": [jm.weight]}, {"params": [jm.bias], "lr": 0.05}], lr=0.1,
                       momentum=0.9)  # fmt: skip
        to = torch.optim.SGD([{"params": [tm.weight]}, {"params": [tm.bias], "lr": 0.05}],
                             lr=0.1, momentum=0.9)  # fmt: skip
    else:
        jo = optim.Adam([{"params": [jm.weight]}, {"params": [jm.bias], "lr": 0.05}], lr=0.1)
        to = torch.optim.Adam([{"params": [tm.weight]}, {"params": [tm.bias], "lr": 0.05}], lr=0.1)
    return jo, to


CONFIGS = {
    "LambdaLR": lambda S, o: S.LambdaLR(o, lambda e: 0.95**e),
    "LambdaLR-list": lambda S, o: S.LambdaLR(o, [lambda e: 0.9**e, lambda e: 1 / (e + 1)]),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lambda e: 0.97),
    "StepLR": lambda S, o: S.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[10, 30, 30, 80], gamma=0.3),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.25, total_iters=13),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=40),
    "LinearLR-down": lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=70),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.96),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, total_iters=60, power=2.0),
    "PolynomialLR-linear": lambda S, o: S.PolynomialLR(o, total_iters=150),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=30, eta_min=1e-3),
    "CosineAnnealingLR-long": lambda S, o: S.CosineAnnealingLR(o, T_max=100),
    "WarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=10),
    "WarmRestarts-Tmult": lambda S, o: S.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=2, eta_min=1e-4
    ),  # fmt: skip
    "CyclicLR-triangular": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=10),
    "CyclicLR-triangular2": lambda S, o: S.CyclicLR(
        o, [0.01, 0.02], 0.1, step_size_up=7, step_size_down=13, mode="triangular2"
    ),
    "CyclicLR-exp_range": lambda S, o: S.CyclicLR(
        o, 0.01, 0.1, step_size_up=9, mode="exp_range", gamma=0.98
    ),
    "CyclicLR-no-momentum": lambda S, o: S.CyclicLR(
        o, 0.01, 0.1, step_size_up=5, cycle_momentum=False
    ),
    "OneCycleLR-cos": lambda S, o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS + 1),
    "OneCycleLR-linear": lambda S, o: S.OneCycleLR(
        o, max_lr=[0.5, 0.3], epochs=10, steps_per_epoch=11, anneal_strategy="linear"
    ),
    "OneCycleLR-three_phase": lambda S, o: S.OneCycleLR(
        o, max_lr=0.4, total_steps=120, pct_start=0.25, three_phase=True
    ),
    "SequentialLR": lambda S, o: S.SequentialLR(
        o,
        [S.LinearLR(o, start_factor=0.1, total_iters=10), S.ExponentialLR(o, gamma=0.97)],
        milestones=[10],
    ),
    "SequentialLR-3": lambda S, o: S.SequentialLR(
        o,
        [
            S.ConstantLR(o, factor=0.5, total_iters=5),
            S.CosineAnnealingLR(o, T_max=20),
            S.StepLR(o, step_size=10, gamma=0.5),
        ],
        milestones=[15, 45],
    ),  # fmt: skip
    "ChainedScheduler": lambda S, o: S.ChainedScheduler(
        [S.ConstantLR(o, factor=0.5, total_iters=20), S.ExponentialLR(o, gamma=0.98)]
    ),
    "ChainedScheduler-opt": lambda S, o: S.ChainedScheduler(
        [
            S.LinearLR(o, start_factor=0.2, total_iters=8),
            S.MultiStepLR(o, [20, 50], gamma=0.5),
            S.PolynomialLR(o, total_iters=90),
        ],
        optimizer=o,
    ),  # fmt: skip
}


def _momenta(opt) -> list:
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_sequence_matches_torch(name: str, kind: str) -> None:
    if kind == "Adam" and not name.startswith(("Cyclic", "OneCycle", "SequentialLR-3")):
        pytest.skip("optimizer kind only matters for momentum cycling")
    jo, to = _opts(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        js, ts = CONFIGS[name](J, jo), CONFIGS[name](T, to)
        for i in range(STEPS):
            assert [g["lr"] for g in jo.param_groups] == [g["lr"] for g in to.param_groups], i
            assert js.get_last_lr() == ts.get_last_lr(), i
            assert _momenta(jo) == _momenta(to), i
            assert all(type(g["lr"]) is float for g in jo.param_groups)
            js.step()
            ts.step()


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "WarmRestarts-Tmult",
                                  "CyclicLR-triangular2", "OneCycleLR-cos", "SequentialLR-3",
                                  "ChainedScheduler", "LambdaLR", "MultiplicativeLR"])  # fmt: skip
def test_state_dict_roundtrip(name: str) -> None:
    jo, to = _opts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        js, ts = CONFIGS[name](J, jo), CONFIGS[name](T, to)
        for _ in range(40):
            js.step()
            ts.step()
        sd, osd = js.state_dict(), jo.state_dict()
        jo2, _ = _opts()
        js2 = CONFIGS[name](J, jo2)
        jo2.load_state_dict(osd)
        js2.load_state_dict(sd)
        for i in range(40):
            js2.step()
            ts.step()
            assert [g["lr"] for g in jo2.param_groups] == [g["lr"] for g in to.param_groups], i
            assert js2.get_last_lr() == ts.get_last_lr()


METRICS = [1.0, 0.9, 0.95, 0.96, 0.97, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8,
           0.8, 0.8, 0.8, 0.8, 0.79999, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75] * 4  # fmt: skip


@pytest.mark.parametrize(
    "kw",
    [
        dict(patience=2),
        dict(mode="max", factor=0.5, patience=1, cooldown=2),
        dict(threshold_mode="abs", threshold=0.05, patience=0, min_lr=[0.01, 0.002]),
        dict(factor=0.3, patience=3, min_lr=0.004, eps=1e-3),
    ],
)
def test_reduce_lr_on_plateau(kw: dict) -> None:
    jo, to = _opts()
    js, ts = J.ReduceLROnPlateau(jo, **kw), T.ReduceLROnPlateau(to, **kw)
    for i, m in enumerate(METRICS):
        js.step(m)
        ts.step(m)
        assert [g["lr"] for g in jo.param_groups] == [g["lr"] for g in to.param_groups], i
        assert js.get_last_lr() == ts.get_last_lr()
        assert (js.num_bad_epochs, js.cooldown_counter, js.best) == (
            ts.num_bad_epochs, ts.cooldown_counter, ts.best,
        )  # fmt: skip
    sd = js.state_dict()
    jo2, _ = _opts()
    js2 = J.ReduceLROnPlateau(jo2, **kw)
    js2.load_state_dict(sd)
    assert js2.best == js.best and js2.num_bad_epochs == js.num_bad_epochs


def test_scheduler_changes_jitted_hparam_refs() -> None:
    jo, _ = _opts()
    refs = [v for v in jo._jaxmod_cells_() if getattr(v, "_jaxmod_readonly", False)]
    sched = J.StepLR(jo, step_size=1, gamma=0.5)
    refs = [v for v in jo._jaxmod_cells_() if getattr(v, "_jaxmod_readonly", False)]
    (ref,) = refs
    sched.step()
    assert np.isclose(float(ref._value[ref.offsets[id(jo.param_groups[0])]["lr"][0]]), 0.05)
    assert np.isclose(sched.get_last_lr()[0], 0.05)


def test_errors_match_torch() -> None:
    jo, _ = _opts()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        J.StepLR(object(), 3)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        J.ReduceLROnPlateau(jo, factor=1.5)
    with pytest.raises(ValueError, match="Constant multiplicative factor"):
        J.ConstantLR(jo, factor=2.0)
