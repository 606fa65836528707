"""Tiny planted graphs for the knowledge-graph tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

Triple = tuple[str, str, str]


def write_triples_dir(root: Path, train: Sequence[Triple], valid: Sequence[Triple] = (),
                      test: Sequence[Triple] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        if rows or name == "train":
            (root / f"{name}.txt").write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return root


def planted() -> tuple[list[Triple], list[Triple], list[Triple]]:
    """A small graph: ``likes`` 1-to-N, ``parent`` N-to-1, ``knows`` symmetric, plus held-out facts."""
    people = [f"p{i}" for i in range(8)]
    things = [f"t{i}" for i in range(5)]
    train = [("p0", "likes", t) for t in things] + [("p1", "likes", "t0"), ("p1", "likes", "t1")]
    train += [(p, "parent", "p7") for p in people[:5]] + [("p5", "parent", "p6")]
    train += [(a, "knows", b) for a, b in [("p0", "p1"), ("p1", "p0"), ("p2", "p3"), ("p3", "p2"), ("p1", "p2")]]
    valid = [("p2", "likes", "t3"), ("p2", "knows", "p1")]
    test = [("p3", "likes", "t4"), ("p4", "knows", "p5")]
    return train, valid, test
