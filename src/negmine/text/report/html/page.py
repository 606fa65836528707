"""Page assembly of the HTML report (:mod:`negmine.text.report.html`): the header, navigation and
sections in one self-contained document, with its inline styles, search script and
Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from negmine.text.report.html.format import _e

_CSS = """
:root{--fg:#212529;--muted:#6c757d;--line:#dee2e6;--bg:#f5f6f8;--card:#fff;--accent:#3b5bdb;--warn:#c92a2a;
--pos:#1b9e77;--neg:#d95f02}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans","DejaVu Sans",Arial,sans-serif}
header{background:#1f2937;color:#f8f9fa;padding:18px 0 0}
header .wrap{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 18px}
header h1{margin:0;font-size:20px;font-weight:600}
header .meta{color:#adb5bd;font-size:13px}
nav{width:100%;display:flex;flex-wrap:wrap;gap:2px;margin-top:12px}
nav a{color:#dee2e6;text-decoration:none;padding:6px 10px;border-radius:6px 6px 0 0;font-size:13px}
nav a:hover{background:#374151;color:#fff}
.wrap{max-width:1200px;margin:0 auto;padding:0 24px}
main{padding-bottom:48px}
section{margin-top:28px}
h2{font-size:17px;margin:0 0 10px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:14px;margin:18px 0 6px}
p{margin:6px 0 10px}
.muted{color:var(--muted)}
.warn{color:var(--warn)}
.note{color:#495057;font-size:13px}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:12px}
pre{background:#f8f9fa;border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;max-height:420px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px;margin:0 0 12px}
.scroll{overflow-x:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.stat .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.stat .value{font-size:22px;font-weight:600;margin:2px 0;overflow-wrap:anywhere}
.stat .sub{font-size:12px;color:var(--muted)}
.filters-line{margin-top:12px}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(460px,100%),1fr));gap:12px;align-items:start}
.plots.one{grid-template-columns:1fr}
figure{margin:0}
figure img.plot{display:block;width:100%;height:auto}
.plots.one figure img.plot{max-width:960px;margin:0 auto}
figcaption{font-size:12.5px;color:#495057;margin-top:6px}
figure.empty{display:flex;align-items:center;justify-content:center;min-height:120px}
table.grid{border-collapse:collapse;width:100%;font-size:13px}
table.grid.narrow{width:auto;min-width:50%}
table.grid th,table.grid td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
table.grid th:first-child,table.grid td:first-child{text-align:left}
table.grid td:last-child{white-space:normal}
table.grid.audit td:last-child,table.grid.audit th:last-child{text-align:left}
table.grid.audit th,table.grid.audit td:first-child{white-space:normal}
table.grid.audit th,table.grid.audit td{padding:5px 7px}
.nowrap{white-space:nowrap;display:inline-block;margin-right:10px}
table.grid thead th{background:#f1f3f5;font-weight:600;color:#343a40}
table.grid tbody tr:hover{background:#f8f9fa}
table.kv{border-collapse:collapse;font-size:13px;width:100%}
table.kv th{text-align:left;color:var(--muted);font-weight:500;padding:4px 16px 4px 0;vertical-align:top;
white-space:nowrap}
table.kv td{padding:4px 0;overflow-wrap:anywhere}
.pills{display:flex;flex-wrap:wrap;gap:6px}
.pill{background:#e7f5ff;color:#1c3d5a;border-radius:999px;padding:2px 10px;font-size:12px}
details summary{cursor:pointer;color:var(--accent);margin:8px 0}
.search{display:flex;align-items:center;gap:12px;margin:8px 0}
.search input{flex:1;max-width:520px;padding:8px 12px;font-size:14px;border:1px solid #ced4da;border-radius:6px}
.search input:focus{outline:2px solid #a5b4fc;border-color:var(--accent)}
table.queries{border-collapse:collapse;width:100%;table-layout:fixed;font-size:13px}
table.queries th{text-align:left;background:#f1f3f5;padding:6px 8px;border-bottom:1px solid var(--line)}
table.queries th:nth-child(1){width:24%}
table.queries th:nth-child(2){width:30%}
table.queries td{vertical-align:top;padding:8px;border-bottom:1px solid var(--line)}
table.queries td.qcell .id{font-weight:600;color:var(--accent)}
table.queries .qtext{margin-top:2px}
ul.docs,ol.docs{list-style:none;margin:0;padding:0}
.docs li{padding:4px 0;border-top:1px dashed #e9ecef}
.docs li:first-child{border-top:0;padding-top:0}
.docs .id{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;font-weight:600;margin-right:8px}
.docs .score{font-variant-numeric:tabular-nums;margin-right:8px}
.docs .rank{color:var(--muted);margin-right:6px;font-variant-numeric:tabular-nums}
.docs .diff{color:var(--muted);font-size:12px;margin-right:8px}
.docs .src{background:#fff4e6;color:#a34e00;border-radius:4px;padding:0 6px;font-size:11.5px}
.docs .snip{color:#495057;font-size:12.5px;margin-top:1px;display:-webkit-box;-webkit-line-clamp:2;
-webkit-box-orient:vertical;overflow:hidden}
.docs li:hover .snip{-webkit-line-clamp:unset}
.docs li.hot{background:#fff5f5}
.docs li.hot .diff{color:var(--warn);font-weight:600}
.hot-key{background:#fff5f5;color:var(--warn);padding:0 4px;border-radius:3px}
.badge{display:inline-block;font-size:11.5px;border-radius:4px;padding:0 6px;margin-top:6px;background:#fff5f5}
footer{color:var(--muted);font-size:12px;padding:24px 0}
"""

_JS = """
(function () {
  var input = document.getElementById("q-search");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#query-table tbody tr"));
  var count = document.getElementById("q-count");
  var none = document.getElementById("q-none");
  function apply() {
    var terms = input.value.toLowerCase().split(/\\s+/).filter(function (t) { return t.length > 0; });
    var shown = 0;
    rows.forEach(function (tr) {
      var key = tr.getAttribute("data-key") || "";
      var ok = terms.every(function (t) { return key.indexOf(t) >= 0; });
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown.toLocaleString() + " of " + rows.length.toLocaleString() + " queries";
    none.hidden = shown > 0;
    document.body.dataset.rowsShown = String(shown);
  }
  if (input) {
    input.addEventListener("input", apply);
    var m = /^#q=(.*)$/.exec(window.location.hash);  /* report.html#q=TERMS opens a filtered view */
    if (m) { input.value = decodeURIComponent(m[1]); }
    apply();
  }
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.every(function (img) { return img.complete && img.naturalWidth > 0; });
    document.body.dataset.imagesOk = ok ? "true" : "false";
    document.body.dataset.images = String(imgs.length);
    document.body.dataset.rows = String(rows.length);
  });
})();
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _page(title: str, manifest: Mapping[str, Any], sections: Sequence[tuple[str, str, str]]) -> str:
    nav = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(name)}</h2>{content}</section>' for sid, name, content in sections)
    meta = (f"run {_e(manifest.get('run_id', '?'))} · negmine {_e(manifest.get('negmine', '?'))} · "
            f"seed {_e(manifest.get('seed', '?'))}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="negmine {_e(manifest.get("negmine", ""))}">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        f'<body><header><div class="wrap"><h1>{_e(title)}</h1><span class="meta">{meta}</span>'
        f"<nav>{nav}</nav></div></header>\n"
        f'<main class="wrap">{body}</main>\n'
        '<footer class="wrap">Generated by negmine from manifest.json, report.json, the mined file and '
        "texts file of this run. Self-contained: no network access needed.</footer>\n"
        f"<script>{_JS}</script></body></html>\n"
    )
