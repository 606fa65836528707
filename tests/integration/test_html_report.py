"""The HTML report (``negmine report DIR --html FILE``): one self-contained page, checked in a real
headless Chromium (its images decode, its rows and statistics are there, its search filters rows,
its screenshot is not blank) and at the unit level (escaping, sections, the row cap, errors)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from negmine.cli.main import main
from negmine.core.errors import DataError
from negmine.core.rundir import sha256_file

pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "src" / "negmine" / "sample"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=5000")
TIMEOUT = 60
#: plots of a run with one retriever, calibration and an audit: scores, difference, ranks,
#: filters, audit HP-FNR, calibration curve
EXPECTED_PLOTS = 6


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BM25 mining run of the bundled sample with a calibrated relative margin (so the report
    has a calibration curve). Tests must not modify it."""
    out = tmp_path_factory.mktemp("html_run") / "run"
    code = main(["mine", "--dataset", str(SAMPLE), "--retriever", "bm25", "--num-negatives", "4",
                 "--target-fnr", "0.2", "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def audit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html_audit")
    code = main(["audit", "--dataset", str(SAMPLE), "--retriever", "bm25", "--num-negatives", "4",
                 "--relative-margin", "0.02,0.05", "--out", str(out)])
    assert code == 0
    return out / "audit.json"


@pytest.fixture(scope="module")
def page(run_dir: Path, audit_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``negmine report RUN --html FILE --audit AUDIT``, run once for the module."""
    out = tmp_path_factory.mktemp("html_page") / "report.html"
    assert main(["report", str(run_dir), "--html", str(out), "--audit", str(audit_file)]) == 0
    return out


def mined(run_dir: Path) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, str]], dict[str, Any]]:
    from negmine.text.writers.mined import load_mined

    return load_mined(run_dir)


def chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's chromium headless on ``url``; skip when it is absent, except under CI."""
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run must install Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def body_attrs(dom: str) -> dict[str, str]:
    tag = re.search(r"<body\b[^>]*>", dom)
    assert tag, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))


# -------------------------------------------------------------------------------------- the CLI
def test_cli_writes_one_html_file_atomically_and_says_where(run_dir: Path, audit_file: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(run_dir), "--html", str(out), "--audit", str(audit_file)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1 and str(out) in stdout
    assert out.is_file() and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left behind


def test_cli_json_stays_pure_json_with_html(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--html", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads((run_dir / "report.json").read_text())
    assert str(out) in captured.err and out.is_file()


def test_cli_text_report_unchanged_without_html(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from negmine.text.report.stats import render_text

    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out == render_text(json.loads((run_dir / "report.json").read_text())) + "\n"


def test_cli_audit_needs_html_and_an_existing_file(run_dir: Path, audit_file: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run_dir), "--audit", str(audit_file)]) == 2
    assert "--html" in capsys.readouterr().err
    missing = tmp_path / "nope" / "audit.json"
    assert main(["report", str(run_dir), "--html", str(tmp_path / "r.html"), "--audit", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "negmine audit" in err
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------------------- page, no browser
def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    lowered = text.lower()
    assert not re.search(r"<script[^>]*\bsrc\s*=", lowered)
    assert not re.search(r"<link\b", lowered)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", lowered)
    assert "@import" not in lowered
    assert not re.search(r"\b(src|href)\s*=\s*['\"]?\s*(https?:)?//", lowered)
    assert "default-src 'none'" in text  # the Content-Security-Policy forbids any fetch
    images = re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', text)
    assert len(images) == EXPECTED_PLOTS
    for src in images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def test_page_holds_statistics_sections_and_every_query(page: Path, run_dir: Path, audit_file: Path) -> None:
    text = page.read_text(encoding="utf-8")
    report = json.loads((run_dir / "report.json").read_text())
    rows, texts, manifest = mined(run_dir)
    for sid in ("summary", "statistics", "distributions", "audit", "calibration", "queries", "run"):
        assert f'<section id="{sid}">' in text
    assert 'id="retrievers"' not in text  # one retriever: no agreement section
    for key in ("positive", "negative", "difference"):
        assert f"<td>{report['scores'][key]['mean']:.4f}</td>" in text
    assert f"<td>{report['ranks']['p50']:.2f}</td>" in text
    assert manifest["run_id"] in text and f"numpy {manifest['versions']['numpy']}" in text
    for setting in json.loads(audit_file.read_text())["settings"]:
        assert f"<td>{setting['setting']}</td>" in text
        assert f"<td>{setting['hp_fnr']:.4f}</td>" in text
    cal = report.get("calibration") or manifest.get("calibration") or {}
    assert cal.get("estimates"), "the calibrated run records an estimate per way of hiding positives"
    assert "The chosen policy under each way of hiding known positives" in text
    for m, e in cal["estimates"].items():  # both estimates of issue 17, each in its own row
        assert f"<td>{m} hiding" in text
        assert f"<td>{e['crossfit']['hp_fnr']:.4f}</td>" in text
    assert text.count("<tr data-key=") == len(rows) == report["queries"]["mined"]
    first = next(r for r in rows if r["negative_ids"])
    assert f'<span class="id">{first["negative_ids"][0]}</span>' in text
    assert html.escape(texts[("query", first["query_id"])]["text"]) in text


def test_render_html_escapes_text_from_the_data(tmp_path: Path, fs: Any, sample: dict[str, Any]) -> None:
    from negmine.text.report.html import render_html

    evil = '<script>alert("q")</script> & <b>bold</b>'
    doc_evil = '<img src=x onerror="alert(1)"> "quoted" & <i>'
    qids = [q for q, _, _ in sample["qrels"]["train"]][:8]
    pos = [r for r in sample["qrels"]["train"] if r[0] in qids]
    doc_ids = list(dict.fromkeys(d for _, d, _ in pos)) + list(sample["corpus"])[:30]
    doc_ids = list(dict.fromkeys(doc_ids))
    corpus = [{"_id": d, "title": sample["corpus"][d]["title"], "text": sample["corpus"][d]["text"][:400]}
              for d in doc_ids]
    corpus[0]["title"] = doc_evil
    queries = [{"_id": q, "text": (evil + " " if i == 0 else "") + sample["queries"][q]} for i, q in enumerate(qids)]
    data = fs.write_beir(tmp_path / "data", corpus, queries, {"train": pos})
    out = tmp_path / "run"
    assert main(["mine", "--dataset", str(data), "--retriever", "bm25", "--num-negatives", "3",
                 "--out", str(out)]) == 0
    text = render_html(out)
    assert text.count("<script") == 1  # ours, at the end
    assert "<img src=x" not in text and "<b>bold</b>" not in text and "<i>" not in text
    assert "&lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &quot;quoted&quot; &amp; &lt;i&gt;" in text
    assert 'id="audit"' not in text  # no audit given, none in the directory


def test_sections_for_several_retrievers_and_the_row_cap(run_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from negmine.text.report import html as html_report

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    report = json.loads((copy / "report.json").read_text())
    report["retrievers"] = {"names": ["bm25", "dense"], "negatives_by_source": {"bm25": 7, "bm25+dense": 13},
                            "candidate_jaccard": {"bm25~dense": 0.3425}}
    (copy / "report.json").write_text(json.dumps(report))
    manifest = json.loads((copy / "manifest.json").read_text())  # the edited report is this run's report
    manifest["files"]["report.json"] = sha256_file(copy / "report.json")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(html_report, "MAX_QUERIES", 10)
    text = html_report.render_html(copy, audit={"settings": [], "retrieval": {"retrievals": 1, "depth": 9}})
    assert '<section id="retrievers">' in text and "bm25 ~ dense" in text and "0.343" in text
    assert "<td>bm25+dense</td><td>13</td><td>65.0%</td>" in text
    assert text.count("<tr data-key=") == 10
    assert f"first 10 of {report['queries']['mined']} queries" in text
    assert '<section id="audit">' in text


def test_audit_json_in_the_directory_is_picked_up_and_bad_audits_are_data_errors(
        run_dir: Path, audit_file: Path, tmp_path: Path) -> None:
    from negmine.text.report.html import render_html

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.copy(audit_file, copy / "audit.json")
    assert '<section id="audit">' in render_html(copy)
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(DataError, match="not a negmine audit"):
        render_html(copy, bad)
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json:1"):
        render_html(copy, bad)
    with pytest.raises(DataError, match=r"manifest\.json"):
        render_html(tmp_path)


# ------------------------------------------------------------------------------ in a real browser
def test_chromium_displays_the_page(page: Path, run_dir: Path, tmp_path: Path) -> None:
    rows, _, _ = mined(run_dir)
    report = json.loads((run_dir / "report.json").read_text())
    dom = chromium(tmp_path, page.as_uri(), "--dump-dom").stdout
    attrs = body_attrs(dom)
    assert attrs.get("data-images-ok") == "true", attrs
    assert attrs.get("data-images") == str(EXPECTED_PLOTS)
    assert attrs.get("data-rows") == str(len(rows)) == attrs.get("data-rows-shown")
    assert dom.count('<img class="plot" src="data:image/png;base64,') == EXPECTED_PLOTS
    assert "negative score" in dom and f"{report['scores']['negative']['mean']:.4f}" in dom
    assert "Hidden-positive false-negative rate" in dom and "policies on" in dom and "policy frontier" in dom
    assert f"{len(rows)} of {len(rows)} queries" in dom  # the search script ran


def test_chromium_search_filters_rows(page: Path, run_dir: Path, tmp_path: Path) -> None:
    rows, texts, _ = mined(run_dir)
    target = rows[len(rows) // 2]
    words = texts[("query", target["query_id"])]["text"].lower().split()[:3]
    keys = [" ".join([r["query_id"], texts[("query", r["query_id"])]["text"], *r["positive_ids"],
                      *r["negative_ids"]]).lower() for r in rows]
    expected = sum(all(w in k for w in words) for k in keys)
    assert 1 <= expected < len(rows)
    url = page.as_uri() + "#q=" + "%20".join(words)
    dom = chromium(tmp_path, url, "--dump-dom").stdout
    attrs = body_attrs(dom)
    assert attrs.get("data-rows-shown") == str(expected) and attrs.get("data-rows") == str(len(rows))
    visible = re.findall(r'<tr data-key="([^"]*)"(?! hidden)[^>]*>', dom)
    assert len(visible) == expected
    assert any(k.startswith(target["query_id"].lower() + " ") for k in visible)


def test_chromium_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    shot = tmp_path / "report.png"
    chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file()
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (2000, 1280)
    assert float(img.std()) > 0.05
    background = np.all(np.abs(img - img[-1, -1]) < 0.02, axis=-1)
    assert background.mean() < 0.9  # text, tables and plots cover a good part of the page
    colours = np.unique((img[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # plots and text, not a flat error page
    keep = os.environ.get("NEGMINE_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_mine_writes_the_html_report_directly(tmp_path: Path) -> None:
    out, page = tmp_path / "out", tmp_path / "mined.html"
    code = main(["mine", "--dataset", str(SAMPLE), "--retriever", "bm25", "--num-negatives", "3",
                 "--out", str(out), "--html", str(page)])
    assert code == 0
    text = page.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") >= 4
    assert json.loads((out / "report.json").read_text())["queries"]["mined"] == 80
