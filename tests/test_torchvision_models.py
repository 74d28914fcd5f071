"""torchvision's model files, read from the installed package, run on jaxmod with only their
import lines rewritten (``tests/_torch_port.py``), and match the same files run by torch.

For each model (small configurations of the real classes, 1-2 images of 32-64 px):
``structure`` (repr, state_dict keys and shapes), ``eval`` (torch's weights loaded, eval-mode
forward under no_grad, eagerly) and ``train`` (train-mode output, loss and every parameter
gradient, then one SGD step, the jaxmod one under ``jaxmod.jit``; parameters and BatchNorm
statistics after it). A case that does not run yet is ``xfail(strict=True)`` with the error
it stops at (``XFAIL``), so it turns red the day it passes; ``GAPS.md`` lists the gaps.
``python tests/_port_report.py`` re-runs every case and prints the current table.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from _port_checks import check_eval, check_step, check_structure, cross_entropy, labels, rng_inputs
from _torch_port import torchvision

if importlib.util.find_spec("torchvision") is None:  # finding it runs none of its code
    pytest.skip("torchvision is not installed (the test extra)", allow_module_level=True)


def googlenet_loss(F: Any, out: Any, y: Any) -> Any:
    """Inception's training loss: logits plus 0.3 x each auxiliary head."""
    logits, aux2, aux1 = out
    return F.cross_entropy(logits, y) + 0.3 * (F.cross_entropy(aux1, y) + F.cross_entropy(aux2, y))


@dataclass(frozen=True)
class Case:
    """A model built from one torchvision file; ``tol`` is the parity tolerance (max abs
    error over torch's max magnitude, for outputs, gradients, the step and buffers)."""

    file: str
    build: Callable[[Any], Any]
    size: int = 32
    batch: int = 2
    tol: float = 2e-4
    loss: Callable = field(default=cross_entropy)


def _effnet(m: Any) -> Any:
    setting, _ = m._efficientnet_conf("efficientnet_b0", width_mult=0.5, depth_mult=0.5)
    return m.EfficientNet(setting, dropout=0.2, num_classes=10)


def _regnet(m: Any) -> Any:
    params = m.BlockParams.from_init_params(
        depth=3, w_0=16, w_a=8.0, w_m=2.0, group_width=8, se_ratio=0.25
    )
    return m.RegNet(params, num_classes=10, stem_width=16)


CASES: dict[str, Case] = {
    "resnet18": Case("models.resnet", lambda m: m.resnet18(num_classes=10), size=64),
    "resnet_bottleneck": Case(
        "models.resnet",
        lambda m: m.ResNet(
            m.Bottleneck,
            [1, 1, 1, 1],
            num_classes=10,
            groups=2,
            width_per_group=32,
            zero_init_residual=True,
        ),
        size=64,
    ),  # fmt: skip
    "vgg11_bn": Case("models.vgg", lambda m: m.vgg11_bn(num_classes=10), size=32),
    "alexnet": Case("models.alexnet", lambda m: m.alexnet(num_classes=10), size=64),
    "mobilenet_v2": Case(
        "models.mobilenetv2", lambda m: m.mobilenet_v2(num_classes=10, width_mult=0.5)
    ),
    "mobilenet_v3_small": Case(
        "models.mobilenetv3", lambda m: m.mobilenet_v3_small(num_classes=10)
    ),
    "densenet_small": Case(
        "models.densenet",
        lambda m: m.DenseNet(
            growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2, num_classes=10
        ),
    ),  # fmt: skip
    "densenet_memory_efficient": Case(
        "models.densenet",
        lambda m: m.DenseNet(
            growth_rate=8,
            block_config=(2, 2),
            num_init_features=16,
            bn_size=2,
            num_classes=10,
            memory_efficient=True,
        ),
    ),  # fmt: skip
    "squeezenet1_1": Case("models.squeezenet", lambda m: m.squeezenet1_1(num_classes=10), size=64),
    "googlenet": Case(
        "models.googlenet",
        lambda m: m.googlenet(num_classes=10, aux_logits=True, init_weights=True),
        size=64,
        loss=googlenet_loss,
    ),
    "shufflenet_v2_x0_5": Case(
        "models.shufflenetv2", lambda m: m.shufflenet_v2_x0_5(num_classes=10)
    ),
    "efficientnet_b0_half": Case("models.efficientnet", _effnet),
    "convnext_small_config": Case(
        "models.convnext",
        lambda m: m.ConvNeXt(
            [m.CNBlockConfig(16, 32, 1), m.CNBlockConfig(32, None, 1)], num_classes=10
        ),
    ),  # fmt: skip
    "vit_small_config": Case(
        "models.vision_transformer",
        lambda m: m.VisionTransformer(
            image_size=32,
            patch_size=8,
            num_layers=2,
            num_heads=2,
            hidden_dim=32,
            mlp_dim=64,
            num_classes=10,
        ),
    ),  # fmt: skip
    "regnet_small_config": Case("models.regnet", _regnet),
    "mnasnet0_5": Case("models.mnasnet", lambda m: m.mnasnet0_5(num_classes=10)),
}
ASPECTS = ("structure", "eval", "train")

# (case, aspect) -> the error it stops at today (``_port_report.py`` prints this table)
XFAIL: dict[tuple[str, str], str] = {}


def _build(name: str) -> tuple[Any, Any]:
    """The torch and jaxmod models of a case, built from the same seed (cached; a failed
    jaxmod build is cached too, and re-raised for each aspect)."""
    if name not in _BUILT:
        import torch

        import jaxmod

        case = CASES[name]
        torch.manual_seed(0)
        tm = case.build(torchvision(case.file, "torch"))
        try:
            jaxmod.manual_seed(0)
            _BUILT[name] = (tm, case.build(torchvision(case.file, "jaxmod")))
        except Exception as e:  # noqa: BLE001
            _BUILT[name] = e
    built = _BUILT[name]
    if isinstance(built, Exception):
        raise built
    return built


_BUILT: dict[str, Any] = {}


def run_case(name: str, aspect: str) -> None:
    """Run one aspect of one case (raises on a mismatch or on the first unsupported op)."""
    case = CASES[name]
    tm, jm = _build(name)
    x = rng_inputs((case.batch, 3, case.size, case.size))
    if aspect == "structure":
        check_structure(tm, jm)
    elif aspect == "eval":
        check_eval(tm, jm, x, case.tol)
    else:

        def loss_of(lib: Any, model: Any, x: Any, y: Any) -> tuple[Any, Any]:
            out = model(x)
            return case.loss(lib.nn.functional, out, y), out

        check_step(tm, jm, [*x, labels(case.batch, 10)], loss_of, case.tol)


def aspects(name: str) -> tuple[str, ...]:
    return ASPECTS


def _params() -> list[Any]:
    out = []
    for name in CASES:
        for aspect in ASPECTS:
            reason = XFAIL.get((name, aspect))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(name, aspect, marks=marks, id=f"{name}-{aspect}"))
    return out


UNMODIFIED = [n for n in CASES if not any((n, a) in XFAIL for a in ASPECTS)]


@pytest.fixture(scope="module", autouse=True)
def _report_count(request: pytest.FixtureRequest) -> Any:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"torchvision models that run unmodified on jaxmod: {len(UNMODIFIED)}/{len(CASES)}"
            + (f" ({', '.join(UNMODIFIED)})" if UNMODIFIED else "")
        )


@pytest.mark.parametrize("name, aspect", _params())
def test_torchvision_model_matches_torch(name: str, aspect: str) -> None:
    run_case(name, aspect)
