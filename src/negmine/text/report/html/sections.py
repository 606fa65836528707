"""The text and table sections of the HTML report (:mod:`negmine.text.report.html`): summary cards,
statistics, the searchable per-query table and the run details."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from negmine.text.report.html.format import _e, _finite, _num, _snippet, _table

STAT_COLUMNS = ("count", "mean", "std", "min", "p5", "p25", "p50", "p75", "p95", "max")
SCORE_ROWS = (
    ("positive", "positive score"),
    ("negative", "negative score"),
    ("difference", "positive − negative"),
    ("negative_over_positive", "negative / positive"),
)


def _summary_section(report: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    q = report.get("queries") or {}
    neg = report.get("negatives") or {}
    short = report.get("shortfall") or {}
    cfg = manifest.get("config") or {}
    retr = (cfg.get("retriever") or {}).get("name", "?")
    members = (cfg.get("retriever") or {}).get("members")
    if isinstance(members, list) and members:
        names = [m.get("name", "?") if isinstance(m, Mapping) else str(m) for m in members]
        retr += " (" + ", ".join(names) + ")"
    sampler = (cfg.get("sampler") or {}).get("name", "?")
    filters = ", ".join(f.get("name", "?") for f in cfg.get("filters") or []) or "none"
    cards = [
        ("queries mined", _num(q.get("mined")),
         f"{_num(q.get('skipped_no_positive', 0))} skipped (no positive)"),
        ("documents", _num(report.get("documents")),
         f"{_num((report.get('candidates') or {}).get('depth'))} candidates per query"),
        ("negatives", _num(neg.get("chosen")),
         f"{_num(neg.get('mean_per_query'), 2)} per query, asked {_num(neg.get('requested_per_query'))}"),
        ("shortfall", _num(short.get("queries", 0)) + " queries",
         f"{_num(short.get('missing_negatives', 0))} negatives missing" if short.get("queries") else "none"),
        ("retriever", _e(retr), f"sampler {_e(sampler)}"),
        ("seed", _num(manifest.get("seed")), "same inputs and seed, same bytes"),
    ]
    out = '<div class="cards">' + "".join(
        f'<div class="stat"><div class="label">{label}</div><div class="value">{value}</div>'
        f'<div class="sub">{sub}</div></div>' for label, value, sub in cards) + "</div>"
    out += f'<p class="filters-line">Filters: {_e(filters)}.'
    if short.get("queries"):
        ex = ", ".join(_e(x) for x in (short.get("query_ids") or [])[:5])
        out += (f' <span class="warn">{_num(short.get("queries"))} queries ({_num(short.get("pct"), 2)}%) got fewer '
                f"negatives than asked (e.g. {ex}); widen range_max or relax the filters.</span>")
    out += "</p>"
    policy = (report.get("run") or {}).get("default_policy")
    if isinstance(policy, Mapping) and policy.get("reason"):
        warn = "" if policy.get("fnr_measured") else ' class="warn"'
        out += (f'<p class="filters-line">Default policy (no policy option given): '
                f'<span{warn}>{_e(policy["reason"])}</span>.</p>')
    return out


def _statistics_section(report: Mapping[str, Any]) -> str:
    scores = report.get("scores") or {}
    body = []
    for key, label in SCORE_ROWS:
        d = scores.get(key) or {}
        body.append([_e(label), *(_num(d.get(c)) for c in STAT_COLUMNS)])
    ranks = report.get("ranks") or {}
    body.append(["negative rank", *(_num(ranks.get(c), 2) for c in STAT_COLUMNS)])
    out = '<div class="card scroll">' + _table(["", *STAT_COLUMNS], body, "stats") + "</div>"
    filters = report.get("filters") or []
    retrieved = (report.get("candidates") or {}).get("retrieved", 0)
    fbody = [[_e(f.get("name", "?")), _num(f.get("removed")), _num(f.get("removed_pct"), 2) + "%"] for f in filters]
    neg = report.get("negatives") or {}
    fbody.append(["<b>negatives chosen</b>", f"<b>{_num(neg.get('chosen'))}</b>",
                  f"{_num(neg.get('mean_per_query'), 2)} / query"])
    out += ('<div class="card scroll">' + _table([f"of {_num(retrieved)} retrieved candidates", "removed",
                                                    "% of retrieved"], fbody, "narrow") + "</div>")
    notes = []
    if report.get("qrels_unknown_dropped"):
        notes.append(f"{_num(report['qrels_unknown_dropped'])} qrels rows naming unknown ids were dropped.")
    pos = report.get("positives") or {}
    if pos:
        notes.append(f"{_num(pos.get('pairs'))} positive pairs mined from; {_num(pos.get('excluded_pairs'))} "
                     "pairs (all splits) never used as negatives.")
    skipped = (report.get("queries") or {}).get("skipped_no_positive_ids") or []
    if skipped:
        notes.append("Queries skipped for having no positive, e.g. " + ", ".join(_e(x) for x in skipped[:5]) + ".")
    timings = report.get("timings") or {}
    if timings:
        notes.append("Timings: " + ", ".join(
            f"{_e(k[:-2] if k.endswith('_s') else k)} {v:.2f} s" for k, v in timings.items()
            if isinstance(v, (int, float))) + ".")
    enc = report.get("encoding") or {}
    if enc:
        notes.append("Embeddings: " + ", ".join(f"{_e(k.replace('_', ' '))} {_e(v)}" for k, v in sorted(enc.items()))
                     + ".")
    return out + "".join(f'<p class="note">{n}</p>' for n in notes)


def _queries_section(rows: Sequence[Mapping[str, Any]], texts: Mapping[tuple[str, str], Mapping[str, str]],
                     report: Mapping[str, Any], max_queries: int) -> str:
    """The searchable per-query table: the first ``max_queries`` queries, with a note when more
    were mined."""
    asked = (report.get("negatives") or {}).get("requested_per_query")
    shown = rows[:max_queries]
    trs = []
    for r in shown:
        qid = str(r.get("query_id", ""))
        qtext = (texts.get(("query", qid)) or {}).get("text", "")
        pids = [str(x) for x in r.get("positive_ids") or []]
        pscores = list(r.get("positive_scores") or [])
        nids = [str(x) for x in r.get("negative_ids") or []]
        nscores = list(r.get("negative_scores") or [])
        nranks = list(r.get("negative_ranks") or [])
        nsrc = [str(x) for x in r.get("negative_sources") or []]
        finite_pos = _finite(pscores)
        ref = min(finite_pos) if finite_pos else None
        key = " ".join([qid, qtext, *pids, *nids]).lower()

        pos_items = []
        for i, pid in enumerate(pids):
            s = pscores[i] if i < len(pscores) else None
            pos_items.append(
                f'<li><span class="id">{_e(pid)}</span><span class="score">{_num(s)}</span>'
                f'<div class="snip">{_snippet(texts.get(("doc", pid)))}</div></li>')
        neg_items = []
        for i, nid in enumerate(nids):
            s = nscores[i] if i < len(nscores) else None
            rank = nranks[i] if i < len(nranks) else None
            src = nsrc[i] if i < len(nsrc) else ""
            hot = ref is not None and s is not None and math.isfinite(float(s)) and float(s) >= ref
            diff = f'<span class="diff">Δ {_num(ref - float(s), 3)}</span>' if ref is not None and s is not None else ""
            neg_items.append(
                f'<li{" class=hot" if hot else ""}><span class="rank">#{_e(rank)}</span>'
                f'<span class="id">{_e(nid)}</span><span class="score">{_num(s)}</span>{diff}'
                + (f'<span class="src">{_e(src)}</span>' if src else "")
                + f'<div class="snip">{_snippet(texts.get(("doc", nid)))}</div></li>')
        short = ""
        if isinstance(asked, int) and len(nids) < asked:
            short = f'<div class="badge warn">{len(nids)} of {asked} negatives</div>'
        trs.append(
            f'<tr data-key="{_e(key)}"><td class="qcell"><div class="id">{_e(qid)}</div>'
            f'<div class="qtext">{_e(qtext)}</div>{short}</td>'
            f'<td><ul class="docs">{"".join(pos_items)}</ul></td>'
            f'<td><ol class="docs">{"".join(neg_items) or "<li class=muted>none</li>"}</ol></td></tr>')
    note = ""
    if len(rows) > max_queries:
        note = (f'<p class="note warn" id="q-cap">Showing the first {max_queries:,} of {len(rows):,} queries '
                "(in query-id order); every query is in mined.parquet.</p>")
    controls = (
        '<div class="search"><input id="q-search" type="search" autocomplete="off" '
        'placeholder="Filter by query id, query text or document id…" aria-label="filter queries">'
        f'<span id="q-count" class="muted">{len(shown):,} queries</span></div>'
        '<p class="note">Type several words to match all of them; <code>report.html#q=WORDS</code> opens a '
        "filtered view. Negatives are listed with their raw rank among the candidates (#0 = top), score, "
        "Δ = the query's lowest positive score minus the negative's score, and the retrievers that found them. "
        '<span class="hot-key">Highlighted</span> negatives score at or above a positive of their query.</p>'
    )
    table = ('<div class="card scroll"><table id="query-table" class="queries"><thead><tr><th>query</th>'
             "<th>positives (id, score, text)</th><th>negatives (rank, id, score, Δ, source, text)</th></tr></thead>"
             f'<tbody>{"".join(trs)}</tbody></table>'
             '<p id="q-none" class="muted" hidden>No query matches.</p></div>')
    return note + controls + table


def _run_section(manifest: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    cfg = manifest.get("config") or {}
    kv = [
        ("run id", _e(manifest.get("run_id", "?"))),
        ("negmine", _e(manifest.get("negmine", "?"))),
        ("seed", _num(manifest.get("seed"))),
        ("negatives per query", _num(manifest.get("num_negatives"))),
        ("candidate depth", _num(cfg.get("depth"))),
        ("retriever", _e(json.dumps(cfg.get("retriever", {}), sort_keys=True))),
        ("filters", "<br>".join(_e(json.dumps(f, sort_keys=True)) for f in cfg.get("filters") or []) or "none"),
        ("sampler", _e(json.dumps(cfg.get("sampler", {}), sort_keys=True))),
        ("data fingerprint", f"<code>{_e(manifest.get('data_fingerprint', '?'))}</code>"),
    ]
    for role, inp in (manifest.get("inputs") or {}).items():
        if isinstance(inp, Mapping):
            kv.append((f"input: {_e(role)}", f"{_e(inp.get('path', '?'))} <span class=muted>"
                       f"({_num(inp.get('bytes'))} bytes, sha256 {_e(str(inp.get('sha256', ''))[:12])}…)</span>"))
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in kv)
    versions = manifest.get("versions") or {}
    vers = " ".join(f'<span class="pill">{_e(k)} {_e(v)}</span>' for k, v in versions.items())
    out = f'<div class="card"><table class="kv">{rows}</table></div>'
    out += f'<h3>Versions</h3><p class="pills">{vers or "<span class=muted>not recorded</span>"}</p>'
    out += ("<details><summary>Full configuration (manifest.json)</summary>"
            f"<pre>{_e(json.dumps(dict(manifest), indent=2, sort_keys=True))}</pre></details>")
    return out
