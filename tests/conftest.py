"""Shared fixtures: a fixed seed for every test, and torch (the oracle) kept single-threaded."""

from __future__ import annotations

import pytest

import jaxmod


@pytest.fixture(autouse=True)
def _seed() -> None:
    jaxmod.manual_seed(0)


@pytest.fixture(scope="session")
def torch():
    """The torch oracle (tests that need it are skipped where torch is not installed)."""
    t = pytest.importorskip("torch")
    t.set_num_threads(1)
    return t
