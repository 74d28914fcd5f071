"""Packaging: a fresh install gets everything jaxmod imports, and CI runs the README.

These read files (pyproject.toml, README.md, .ci/run, jaxmod's sources); none installs
anything. `.ci/run` itself is the end-to-end check: it builds a fresh venv.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

# import name -> distribution name, where they differ
DIST_OF = {"yaml": "pyyaml"}
# imported only inside a function (or, einops, only when installed) for an optional feature
OPTIONAL = {
    "torch": "test",
    "orbax": "test",
    "einops": "test",  # einops: when installed
    "tensorboard": "tensorboard",  # jaxmod.utils.tensorboard only, as torch.utils.tensorboard
}


def _requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / "jaxmod").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "jaxmod" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_module_jaxmod_imports_is_a_declared_dependency():
    runtime = _requirement_names(PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    for module, files in _third_party_imports().items():
        dist = DIST_OF.get(module, module).replace("_", "-")
        if module in OPTIONAL:
            extra = _requirement_names(extras[OPTIONAL[module]])
            assert any(d.startswith(dist) for d in extra), f"{module} ({files}) in no extra"
            continue
        assert dist in runtime, f"jaxmod imports {module} ({sorted(files)}) but does not declare it"


def test_torch_is_never_a_runtime_dependency():
    assert not {"torch", "torchvision"} & _requirement_names(PROJECT["dependencies"])
    assert "torch==2.13.0" in PROJECT["optional-dependencies"]["test"]
    assert "torchvision==0.28.0" in PROJECT["optional-dependencies"]["test"]


@pytest.mark.parametrize(
    "field, expected",
    [
        ("name", "jaxmod-nn"),  # "jaxmod" on PyPI is an unrelated project
        ("requires-python", ">=3.11"),  # jax 0.10 needs 3.11
    ],
)
def test_project_metadata(field, expected):
    assert PROJECT[field] == expected


def test_dependency_floors_and_jax_range():
    deps = {r.split(">")[0].split("<")[0]: r for r in PROJECT["dependencies"]}
    assert deps["optax"] == "optax>=0.2.5"
    assert deps["jax"] == "jax>=0.10,<0.12"
    assert "ml_dtypes" in deps


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands_main_job_then_tests():
    commands = _setup_commands()
    assert len(commands) == 2
    assert "examples/train_digits.py" in commands[0]
    assert ".[test," in commands[1] and "python -m pytest" in commands[1]


def test_ci_runs_the_readme_commands_in_a_fresh_venv():
    script = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv" in script and "mktemp -d" in script
    # .ci/run's own extraction gives the same two commands as the README
    awk = script.split("mapfile -t commands < <(awk '", 1)[1].split("' README.md)", 1)[0]
    out = subprocess.run(["awk", awk, "README.md"], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.splitlines() == _setup_commands()
