"""Fixtures for the knowledge-graph tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kg_graphs import write_triples_dir


@pytest.fixture(scope="session")
def write_triples() -> Callable[..., Path]:
    """``write_triples(root, train, valid=(), test=())`` -> root (files ``train.txt`` ...)."""
    return write_triples_dir
