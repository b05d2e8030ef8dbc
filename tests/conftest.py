"""Shared fixtures: the project root on sys.path, and MNIST loaded once per test session."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def mnist():
    from mnist import load_mnist

    return load_mnist()
