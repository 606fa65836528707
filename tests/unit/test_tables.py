"""negmine.core.tables.markdown_table: the format the hand-built tables wrote, and its refusals."""

from __future__ import annotations

import pytest

from negmine.core.tables import markdown_table


def test_the_hand_built_format() -> None:
    """The lines the reports used to build by hand: ``"| " + " | ".join(cols) + " |"``, then
    ``"|" + "---|" * len(cols)``, then one such line per row."""
    cols = ["sampler", "hidden FNR", "95% CI"]
    rows = [["uniform", "0.0100", "[0.0050, 0.0200]"], ["dns", "–", "–"]]
    by_hand = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    by_hand += ["| " + " | ".join(r) + " |" for r in rows]
    assert markdown_table(cols, rows) == "\n".join(by_hand)


def test_alignment_row() -> None:
    assert markdown_table(["a", "b"], [], align="-r") == "| a | b |\n|---|---:|"
    assert markdown_table(["a", "b", "c", "d"], [], align=["l", "c", "r", "-"]).splitlines()[1] == \
        "|:---|:---:|---:|---|"
    # text compare's row: the first column unstated, the others right-aligned
    assert markdown_table(list("wxyz"), [], align="-" + "r" * 3).splitlines()[1] == "|---|" + "---:|" * 3


def test_cells_are_strings_of_values_and_cannot_split_the_table() -> None:
    out = markdown_table(["k", "v"], [[1, 2.5], [None, "a|b\nc"]])
    assert out.splitlines() == ["| k | v |", "|---|---|", "| 1 | 2.5 |", "| None | a\\|b c |"]


def test_rows_may_be_any_iterable() -> None:
    assert markdown_table(("x",), ([i] for i in range(2))) == "| x |\n|---|\n| 0 |\n| 1 |"


@pytest.mark.parametrize(("header", "rows", "align", "message"), [
    ([], [], None, "at least one column"),
    (["a", "b"], [["1"]], None, "row 0 has 1 cells, the header 2"),
    (["a", "b"], [], "r", "one of"),
    (["a", "b"], [], "rx", "one of"),
])
def test_refusals(header: list[str], rows: list[list[str]], align: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        markdown_table(header, rows, align)
