"""Run real PyTorch source files on jaxmod with only their import lines rewritten.

``port_module("torchvision", "models.resnet", "jaxmod")`` reads
``torchvision/models/resnet.py`` from the installed package, rewrites its import
statements (``import torch`` -> ``import jaxmod as torch``, ``from torch import nn`` ->
``from jaxmod import nn``, ``import torch.nn.functional as F`` ->
``import jaxmod.nn.functional as F``, ...) and executes it as a module. Nothing else in
the file changes: the AST of every other statement is compiled as it is, with the real
file name and line numbers, so a traceback points at the real line.

Files load as submodules of a synthetic package per mode (``_port_jaxmod.torchvision.*``,
``_port_torch.torchvision.*``), so relative imports inside torchvision
(``from ..ops.misc import Conv2dNormActivation``) go through the same rewrite: the helper
classes a model file uses are jaxmod modules too. In ``"torch"`` mode the files run with
real torch; that is the oracle, and it avoids ``torchvision/__init__.py`` (the PyPI build's
compiled ops do not load on this CPU torch). Package ``__init__.py`` files are never run:
a name imported from a package (``from torchvision.ops import StochasticDepth``) is found
by reading the ``from .x import name`` lines of its ``__init__.py`` and loading ``.x``.

A few torchvision modules are stubbed (see ``_STUBS``): the ones that download weights,
log API usage or need PIL. Everything a model's forward or construction runs is real.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

MODES = ("torch", "jaxmod")
PROGRAMS = Path(__file__).resolve().parent / "torch_programs"


def _root_dir(root: str) -> Path:
    """The directory a top-level name's files are read from (never executing a package)."""
    if root == "torch_programs":
        return PROGRAMS
    spec = importlib.util.find_spec(root)  # a top-level find_spec runs no package code
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{root} is not installed (pip install the test extra)")
    return Path(next(iter(spec.submodule_search_locations)))


ROOTS = ("torchvision", "torch_programs")


def _prefix(mode: str) -> str:
    return f"_port_{mode}"


# --------------------------------------------------------------------------- rewriting


def _map(name: str, mode: str) -> str:
    """The module a dotted import name refers to in ``mode``."""
    head, _, tail = name.partition(".")
    if head in ROOTS:
        return f"{_prefix(mode)}.{name}"
    if mode == "jaxmod" and head == "torch":
        return "jaxmod" + (f".{tail}" if tail else "")
    return name


class _Rewriter(ast.NodeTransformer):
    """Rewrites ``import``/``from ... import`` statements; records each changed line."""

    def __init__(self, mode: str, lines: list[str]) -> None:
        self.mode = mode
        self.lines = lines
        self.changed: list[tuple[int, str]] = []

    def _note(self, node: ast.stmt) -> None:
        self.changed.append((node.lineno, self.lines[node.lineno - 1].strip()))

    def visit_Import(self, node: ast.Import) -> Any:
        out: list[ast.stmt] = []
        for alias in node.names:
            target = _map(alias.name, self.mode)
            if target == alias.name:
                out.append(ast.Import(names=[alias]))
            elif alias.asname:
                out.append(ast.Import(names=[ast.alias(target, alias.asname)]))
            else:
                # ``import torch.nn`` binds ``torch``: import the submodule, then bind the
                # top-level name to the mapped top-level package.
                top = alias.name.partition(".")[0]
                if "." in alias.name:
                    out.append(ast.Import(names=[ast.alias(target)]))
                out.append(ast.Import(names=[ast.alias(_map(top, self.mode), top)]))
        if len(out) == 1 and out[0].names == node.names:
            return node
        self._note(node)
        for new in out:
            ast.copy_location(new, node)
        return out

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        if node.level or node.module is None:
            return node  # relative: resolved inside the synthetic package
        target = _map(node.module, self.mode)
        if target == node.module:
            return node
        self._note(node)
        return ast.copy_location(ast.ImportFrom(target, node.names, 0), node)


def rewrite_tree(source: str, filename: str, mode: str) -> tuple[ast.Module, list]:
    """``source``'s AST with its imports rewritten for ``mode``, and the changed lines as
    ``(line number, original text)``."""
    tree = ast.parse(source, filename)
    rw = _Rewriter(mode, source.splitlines())
    return ast.fix_missing_locations(rw.visit(tree)), rw.changed


def rewrite(source: str, mode: str) -> str:
    """``source`` with its imports rewritten for ``mode``, as text (for tests and reports)."""
    return ast.unparse(rewrite_tree(source, "<source>", mode)[0])


# --------------------------------------------------------------------------- stubs


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _no_download(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the port harness does not download weights")


class _StubTransform:
    """Stands in for torchvision's preset transforms (weights metadata only)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _InterpolationMode(Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _defs_from(rel: str, *names: str) -> Callable[[ModuleType, str], None]:
    """A stub filler that runs only the named top-level functions of a real file (plus the
    plain standard-library imports above them), for files whose other imports cannot load."""

    def fill(mod: ModuleType, mode: str) -> None:
        path = _root_dir("torchvision") / rel
        tree = ast.parse(path.read_text(), str(path))
        keep: list[ast.stmt] = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                keep.append(node)
            elif isinstance(node, ast.Import):
                if all(a.name.split(".")[0] in sys.stdlib_module_names for a in node.names):
                    keep.append(node)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                if (node.module or "").split(".")[0] in sys.stdlib_module_names:
                    keep.append(node)
        exec(compile(ast.Module(keep, []), str(path), "exec"), mod.__dict__)

    return fill


def _fill(**attrs: Any) -> Callable[[ModuleType, str], None]:
    def fill(mod: ModuleType, mode: str) -> None:
        mod.__dict__.update(attrs)

    return fill


# module (relative to the synthetic root) -> filler; each says why it is not the real file
_STUBS: dict[str, list[Callable[[ModuleType, str], None]]] = {
    # imports PIL; _log_api_usage_once calls torch._C
    "torchvision.utils": [
        _defs_from("utils.py", "_make_ntuple"),
        _fill(_log_api_usage_once=_noop),
    ],
    # torch.hub downloads
    "torchvision._internally_replaced_utils": [_fill(load_state_dict_from_url=_no_download)],
    # transforms/functional imports PIL; presets only appear in weights metadata
    "torchvision.transforms._presets": [
        _fill(ImageClassification=_StubTransform, InterpolationMode=_InterpolationMode)
    ],
}


# --------------------------------------------------------------------------- import system


class _Package(ModuleType):
    """A synthetic package: its ``__init__.py`` is not run; names it re-exports with
    ``from .x import name`` are loaded from ``.x`` on first access."""

    def __getattr__(self, name: str) -> Any:
        path = self.__dict__.get("__path__")
        if name.startswith("__") or not path or not (Path(path[0]) / "__init__.py").exists():
            raise AttributeError(name)
        init = Path(path[0]) / "__init__.py"
        for node in ast.walk(ast.parse(init.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        sub = importlib.import_module(f".{node.module}", self.__name__)
                        value = getattr(sub, alias.name)
                        setattr(self, name, value)
                        return value
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


class _Loader(importlib.abc.Loader):
    def __init__(self, mode: str, rel: str, path: Path | None) -> None:
        self.mode, self.rel, self.path = mode, rel, path

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        if spec.submodule_search_locations is not None:
            return _Package(spec.name)
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__port_mode__ = self.mode
        if self.rel in _STUBS:
            for fill in _STUBS[self.rel]:
                fill(module, self.mode)
            return
        if self.path is None or self.path.is_dir():
            return
        tree, changed = rewrite_tree(self.path.read_text(), str(self.path), self.mode)
        module.__port_rewritten__ = changed
        exec(compile(tree, str(self.path), "exec", dont_inherit=True), module.__dict__)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        top, _, rel = fullname.partition(".")
        mode = top.removeprefix("_port_")
        if not top.startswith("_port_") or mode not in MODES:
            return None
        if not rel:
            spec = importlib.machinery.ModuleSpec(fullname, _Loader(mode, "", None))
            spec.submodule_search_locations = []
            return spec
        root, *parts = rel.split(".")
        if root not in ROOTS:
            return None
        base = _root_dir(root).joinpath(*parts)
        if rel in _STUBS:
            return importlib.machinery.ModuleSpec(fullname, _Loader(mode, rel, None))
        if base.is_dir():
            spec = importlib.machinery.ModuleSpec(
                fullname, _Loader(mode, rel, base), origin=str(base)
            )
            spec.submodule_search_locations = [str(base)]
            return spec
        file = base.with_suffix(".py")
        if file.exists():
            spec = importlib.machinery.ModuleSpec(
                fullname, _Loader(mode, rel, file), origin=str(file)
            )
            spec.has_location = True
            return spec
        return None


_FINDER = _Finder()


def _install() -> None:
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def port_module(root: str, name: str, mode: str) -> ModuleType:
    """``root/name.py`` (``name`` dotted, e.g. ``"models.resnet"``) loaded for ``mode``.

    ``mode="torch"`` runs the file with real torch (the oracle); ``mode="jaxmod"`` runs it
    with every ``torch`` import rewritten to ``jaxmod``. Modules are cached per mode.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    _install()
    return importlib.import_module(f"{_prefix(mode)}.{root}.{name}")


def torchvision(name: str, mode: str) -> ModuleType:
    """An installed torchvision file, e.g. ``torchvision("models.resnet", "jaxmod")``."""
    return port_module("torchvision", name, mode)


def program(name: str, mode: str) -> ModuleType:
    """A program from ``tests/torch_programs/`` (written in plain torch)."""
    return port_module("torch_programs", name, mode)


def rewritten_lines(module: ModuleType) -> list[tuple[int, str]]:
    """The ``(line number, original text)`` of each import the loader rewrote."""
    return list(getattr(module, "__port_rewritten__", []))
