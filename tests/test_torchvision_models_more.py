"""More of torchvision's model files, run on jaxmod unmodified: the same checks as
``tests/test_torchvision_models.py`` (structure, eval, types, train; its ``Case`` table
and ``run_case``), for files that one does not cover: Swin (v1 / v2), EfficientNet v2
(FusedMBConv) and Inception v3 (full tier). Not covered yet: MaxViT, the segmentation
heads, the video ResNets / S3D (5-D input: ``run_case`` feeds 4-D images) and RAFT.
Small configurations (few channels, 32-75 px, batch 2); XLA:CPU compile time dominates.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from _port_checks import case_params, report_unmodified, unmodified

if importlib.util.find_spec("torchvision") is None:  # finding it runs none of its code
    pytest.skip("torchvision is not installed (the test extra)", allow_module_level=True)

from test_torchvision_models import ALL, Case, run_case, slow_skip  # noqa: E402


def _swin(v2: bool) -> Any:
    def build(m: Any) -> Any:
        kw: dict[str, Any] = {}
        if v2:
            kw = {"block": m.SwinTransformerBlockV2, "downsample_layer": m.PatchMergingV2}
        return m.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1],
                                 num_heads=[1, 2], window_size=[2, 2], num_classes=10,
                                 **kw)  # fmt: skip

    return build


def _effnet_v2(m: Any) -> Any:
    conf = m.FusedMBConvConfig
    setting = [conf(1, 3, 1, 8, 8, 1), conf(4, 3, 2, 8, 16, 1),
               m.MBConvConfig(4, 3, 2, 16, 24, 1)]  # fmt: skip
    return m.EfficientNet(setting, dropout=0.2, num_classes=10, last_channel=32)


CASES: dict[str, Case] = {
    "swin_small_config": Case("models.swin_transformer", _swin(False), size=32),
    "swin_v2_small_config": Case("models.swin_transformer", _swin(True), size=32),
    "efficientnet_v2_small_config": Case("models.efficientnet", _effnet_v2, size=32),
    "inception_v3": Case(
        "models.inception",
        lambda m: m.inception_v3(
            num_classes=10, aux_logits=False, transform_input=True, init_weights=False
        ),
        size=75,
        full=ALL,
    ),  # fmt: skip
}
ASPECTS = ALL
XFAIL: dict[tuple[str, str], str] = {
    # at 75 px Mixed_7's BatchNorms see 1x1 maps, 2 values per channel in train mode, and
    # the step is ill-conditioned (first-conv gradients ~1e3); not yet traced to a cause
    ("inception_v3", "train"): (
        "AssertionError: train output 0: max abs error 0.00271 > 0.0002 x scale 0.723"
    ),
}


_ASPECTS = {name: ASPECTS for name in CASES}
UNMODIFIED = unmodified(_ASPECTS, XFAIL)
_report_count = report_unmodified("more torchvision models", UNMODIFIED, len(CASES))


@pytest.mark.parametrize("name, aspect", case_params(_ASPECTS, XFAIL, slow_skip(CASES)))
def test_more_torchvision_models_match_torch(name: str, aspect: str) -> None:
    run_case(name, aspect, CASES)
