"""Fixtures for the recommendation tests: tiny interaction files and the shared MovieLens path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

ML100K = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ml-100k"  # ../shared beside the checkout


def write_csv(path: Path, rows: Sequence[Sequence[object]], header: str = "user_id,item_id,rating,timestamp",
              sep: str = ",") -> Path:
    path.write_text(header.replace(",", sep) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def make_csv() -> Callable[..., Path]:
    """``make_csv(path, rows, header=..., sep=",")`` -> path."""
    return write_csv


@pytest.fixture(scope="session")
def ml100k() -> Path:
    """MovieLens 100K's directory; the test is skipped where it is absent."""
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"{ML100K} not present")
    return ML100K
