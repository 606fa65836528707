"""``negmine list`` shows the registered components of every domain."""

from __future__ import annotations

import json

import pytest

from negmine.cli.main import main


def test_list_without_a_family_shows_every_domain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert {"retrievers", "filters", "samplers", "scorers", "formats", "rec-samplers", "rec-scorers",
            "kg-samplers", "kg-filters"} <= set(every)
    names = {family: {r["name"] for r in rows} for family, rows in every.items()}
    assert {"bm25", "dense"} <= names["retrievers"]
    assert {"uniform", "dns", "live-dns", "mixed"} <= names["rec-samplers"]
    assert {"uniform", "bernoulli", "hasa", "lemon"} <= names["kg-samplers"]
    assert {"exact", "bloom", "none"} == names["kg-filters"]
    bloom = next(r for r in every["kg-filters"] if r["name"] == "bloom")
    assert [o["key"] for o in bloom["options"]] == ["error_rate"]


def test_list_one_domain_family_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "rec-samplers"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dns") and "--candidates" in out


def test_an_unknown_family_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["list", "nope"])
    assert exc.value.code == 2
    assert "kg-samplers" in capsys.readouterr().err
