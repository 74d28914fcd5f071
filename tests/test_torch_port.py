"""The import-rewrite loader (``tests/_torch_port.py``) that the port tests stand on: it
changes import lines and nothing else, resolves torchvision's relative imports through
itself, and keeps file names and line numbers."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

import pytest
import torch
from _torch_port import PROGRAMS, port_module, program, rewrite, rewritten_lines, torchvision

import jaxmod

HAS_TV = importlib.util.find_spec("torchvision") is not None
needs_tv = pytest.mark.skipif(not HAS_TV, reason="torchvision is not installed (test extra)")

REWRITES = [
    ("import torch", "import jaxmod as torch"),
    ("import torch.nn as nn", "import jaxmod.nn as nn"),
    ("import torch.nn.functional as F", "import jaxmod.nn.functional as F"),
    ("from torch import nn, Tensor", "from jaxmod import nn, Tensor"),
    ("from torch.nn import functional as F", "from jaxmod.nn import functional as F"),
    ("from torch.utils.data import DataLoader", "from jaxmod.utils.data import DataLoader"),
    ("import torch.fx", "import jaxmod.fx\nimport jaxmod as torch"),
    ("import torch.utils.checkpoint as cp", "import jaxmod.utils.checkpoint as cp"),
    ("import torchvision", "import _port_jaxmod.torchvision as torchvision"),
    (
        "from torchvision.ops import StochasticDepth",
        "from _port_jaxmod.torchvision.ops import StochasticDepth",
    ),  # fmt: skip
    ("from ..ops.misc import Conv2dNormActivation", "from ..ops.misc import Conv2dNormActivation"),
    ("from ._api import register_model", "from ._api import register_model"),
    ("import numpy as np", "import numpy as np"),
    ("import torchaudio", "import torchaudio"),
    ("def f():\n    import torch.nn as nn", "def f():\n    import jaxmod.nn as nn"),
]


@pytest.mark.parametrize("source, expected", REWRITES)
def test_rewrite_maps_torch_imports_to_jaxmod(source: str, expected: str):
    assert rewrite(source, "jaxmod") == expected


@pytest.mark.parametrize("source, expected", REWRITES)
def test_rewrite_in_torch_mode_only_redirects_torchvision(source: str, expected: str):
    out = rewrite(source, "torch")
    if "torchvision" in source and "from ." not in source:
        assert out == expected.replace("_port_jaxmod", "_port_torch")
    else:
        assert out == ast.unparse(ast.parse(source))


def _non_import_statements(tree: ast.AST) -> list[str]:
    return [
        ast.dump(n)
        for n in ast.walk(tree)
        if isinstance(n, ast.stmt) and not isinstance(n, (ast.Import, ast.ImportFrom))
    ]


@pytest.mark.parametrize("name", sorted(p.stem for p in PROGRAMS.glob("*.py")))
def test_only_import_lines_change(name: str):
    source = (PROGRAMS / f"{name}.py").read_text()
    rewritten = ast.parse(rewrite(source, "jaxmod"))
    assert _non_import_statements(rewritten) == _non_import_statements(ast.parse(source))


def test_program_runs_with_jaxmod_as_torch_and_keeps_lines():
    mod = program("mnist", "jaxmod")
    assert mod.torch is jaxmod and mod.nn is jaxmod.nn and mod.F is jaxmod.nn.functional
    assert issubclass(mod.Net, jaxmod.nn.Module)
    assert program("mnist", "torch").torch is torch
    # tracebacks and inspect point at the real file and line
    path = PROGRAMS / "mnist.py"
    assert inspect.getsourcefile(mod.Net) == str(path)
    line = path.read_text().splitlines().index("class Net(nn.Module):") + 1
    assert mod.Net.forward.__code__.co_filename == str(path)
    assert inspect.getsourcelines(mod.Net)[1] == line
    assert [text for _, text in rewritten_lines(mod)] == [
        "import torch",
        "import torch.nn as nn",
        "import torch.nn.functional as F",
        "import torch.optim as optim",
        "from torch.optim.lr_scheduler import StepLR",
    ]


@needs_tv
def test_torchvision_helpers_load_through_the_same_rewrite():
    misc = {mode: torchvision("ops.misc", mode) for mode in ("torch", "jaxmod")}
    assert issubclass(misc["jaxmod"].Conv2dNormActivation, jaxmod.nn.Sequential)
    assert issubclass(misc["torch"].Conv2dNormActivation, torch.nn.Sequential)
    mbv2 = torchvision("models.mobilenetv2", "jaxmod")
    assert mbv2.Conv2dNormActivation is misc["jaxmod"].Conv2dNormActivation
    # read from the installed package, not a copy
    spec = importlib.util.find_spec("torchvision")
    root = Path(next(iter(spec.submodule_search_locations)))
    assert Path(inspect.getsourcefile(mbv2.MobileNetV2)) == root / "models" / "mobilenetv2.py"


@needs_tv
def test_torchvision_package_names_resolve_without_running_init():
    ops = port_module("torchvision", "ops", "torch")
    assert issubclass(ops.StochasticDepth, torch.nn.Module)  # from ops/__init__'s re-export
    with pytest.raises(AttributeError, match="no attribute 'nms_does_not_exist'"):
        ops.nms_does_not_exist


@needs_tv
def test_weight_downloads_are_stubbed_with_a_clear_error():
    resnet = torchvision("models.resnet", "torch")
    assert resnet.ResNet18_Weights.IMAGENET1K_V1.url.startswith("https://")
    with pytest.raises(RuntimeError, match="does not download weights"):
        resnet.resnet18(weights=resnet.ResNet18_Weights.IMAGENET1K_V1)
