"""Renders the report (singerbench.report) as Markdown + SVG files and as ONE self-contained HTML page.

The page has no external resource at all: figures are inline SVG, styles and a small sorting script are inline.
The script also checks the page once loaded (every figure present and drawn with a non-zero size) and marks the
``<body>`` with ``data-report-ok="yes"`` (or ``"no: <why>"``): the browser test reads that mark.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from singerbench.io import atomic_write_text
from singerbench.leaderboard import GENERATED_NOTE, md_table, preset_deviations
from singerbench.manifest import Manifest
from singerbench.probe import HEADER as PROBE_HEADER
from singerbench.probe import ProbeRow, probe_files, probe_results
from singerbench.report import (
    COLUMNS,
    FIGURE_DIR,
    NUMERIC,
    OK_ATTRIBUTE,
    Entry,
    Variant,
    group,
    paired_rows,
    similarity_rows,
    variant_figures,
    variant_label,
    variant_rows,
)
from singerbench.similarity import PAIR_LABELS, PAIRS
from singerbench.stats import ALPHA, CONFIDENCE, PERMUTATIONS, RESAMPLES

TITLE = "singerbench leaderboard and analyses"
PAIRED_HEADER = ["Model A", "Model B", "real: A − B (pp)", "real: p", "cloned: A − B (pp)", "cloned: p"]
SIMILARITY_HEADER = ["Model", "Tracks", "n", *[PAIR_LABELS[p] for p in PAIRS]]
METHOD = (
    f"Intervals: {int(CONFIDENCE * 100)} % percentile bootstrap over runs and tracks together ({RESAMPLES} "
    "replicates; each draws the runs and the tracks with replacement). Ranks: a model is behind another only when "
    f"the other's top-1 is higher and a paired sign-flip permutation test over the shared tracks and run seeds "
    f"({PERMUTATIONS} flips) gives p < {ALPHA}; `=` marks a tie (not significantly different), `*` a rank that "
    "fell back to the means because per-track data was missing. EER and minDCF (p_target 0.01, C_miss = C_fa = 1, "
    "normalised): cosine of mean track embeddings against every training song, no head; CI by bootstrap over "
    "eval tracks."
)


@dataclass
class Report:
    markdown: str
    html: str
    figures: dict[str, str]  # file name under figures/ -> SVG text


def context_probes(variants: Sequence[Variant], manifest: Manifest | None,
                   cache_dir: Path | None = None) -> dict[tuple, dict[int, ProbeRow]]:
    """The context probe (singerbench.probe) of every result with cloned tracks, per variant: on ``manifest``'s
    split when one is given, else each on the dataset its request records, read from the cache (nothing is
    rendered; a result whose dataset is not here is left out, and the report says how to add it)."""
    out: dict[tuple, dict[int, ProbeRow]] = {}
    checksum = manifest.checksum() if manifest is not None else None
    for v in variants:
        if not any(e.result.dataset.tracks.get("cloned") for e in v.entries):
            continue
        if manifest is not None:
            idx = [i for i, e in enumerate(v.entries) if e.result.dataset.checksum == checksum]
            rows = dict(zip(idx, probe_results([v.entries[i].result for i in idx], manifest), strict=True))
        else:
            found = probe_files([(str(e.path), e.result) for e in v.entries], cache_dir=cache_dir)
            by_name = {str(e.path): i for i, e in enumerate(v.entries)}
            rows = {by_name[name]: row for name, row in zip(found.names, found.rows, strict=True)}
        if rows:
            out[v.key] = rows
    return out


def build(entries: Sequence[Entry], out_dir: Path, manifest: Manifest | None = None,
          cache_dir: Path | None = None) -> Report:
    """Everything the report shows, for result ``entries``; links are relative to ``out_dir``. ``cache_dir``:
    where the context probe looks for the datasets the results record (default: the usual cache)."""
    variants = group(entries)
    probes = context_probes(variants, manifest, cache_dir)
    md = [f"# {TITLE}", "", METHOD, ""]
    body: list[str] = [f"<h1>{TITLE}</h1>", f'<p class="note">{html.escape(METHOD)}</p>']
    figures: dict[str, str] = {}
    generated = False
    for n, v in enumerate(variants):
        figs, notes = variant_figures(v, probes.get(v.key, {}))
        first = v.entries[0].result
        generated |= first.dataset.generated
        label = variant_label(first)
        kind = ("generated data (singerbench's synthetic singers; not comparable to real data)"
                if first.dataset.generated else "real data")
        deviations = preset_deviations(first)  # one rule with the tables, v1 files included
        dev_text = "; ".join(deviations) if deviations else "none (the paper's protocol)"
        rows = variant_rows(v, out_dir)

        md += [f"## {label}", "", f"Data: {kind}. Protocol preset `{first.preset['name']}` "
               f"v{first.preset['version']}, deviations from the paper: {dev_text}.", ""]
        md += md_table(COLUMNS,
                       [r["cells"] + [", ".join(f"[{t}]({u})" for t, u in r["links"])] for r in rows])
        body += [f'<section class="variant" id="variant-{n}"><h2>{html.escape(label)}</h2>',
                 f'<p>Data: <b>{html.escape(kind)}</b>. Protocol preset <code>{html.escape(first.preset["name"])}'
                 f'</code> v{html.escape(first.preset["version"])}; deviations from the paper: '
                 f"{html.escape(dev_text)}.</p>", _html_table(rows)]

        paired = paired_rows(v)
        if paired:
            md += ["", "Paired tests (top-1, same tracks and run seeds):", ""] + md_table(PAIRED_HEADER, paired)
            body += ["<h3>Paired tests (top-1, same tracks and run seeds)</h3>", _plain_table(PAIRED_HEADER, paired)]
        sim = similarity_rows(v)
        if sim:
            md += ["", "Similarity probe (mean cosine similarity):", ""] + md_table(SIMILARITY_HEADER, sim)
            body += ["<h3>Similarity probe (mean cosine similarity)</h3>", _plain_table(SIMILARITY_HEADER, sim)]
        if v.key in probes:
            prow = [r.cells() for r in probes[v.key].values()]
            md += ["", "Context probe (cloned tracks, % mean ± std over runs):", ""] + md_table(PROBE_HEADER, prow)
            body += ["<h3>Context probe (cloned tracks, % mean ± std over runs)</h3>",
                     _plain_table(PROBE_HEADER, prow)]
        for f in figs:
            name = f"{f.name}.svg"
            figures[name] = f.svg
            md += ["", f"![{f.caption}]({FIGURE_DIR}/{name})"]
            body.append(f'<figure data-figure="{html.escape(f.name)}">{f.svg}'
                        f"<figcaption>{html.escape(f.caption)}</figcaption></figure>")
        if notes:
            md += ["", *[f"- {x}" for x in notes]]
            body.append("<ul class=\"missing\">" + "".join(f"<li>{html.escape(x)}</li>" for x in notes) + "</ul>")
        md.append("")
        body.append("</section>")
    if not variants:
        md.append("No results.")
        body.append("<p>No results.</p>")
    if generated:
        md += ["", GENERATED_NOTE]
        body.append(f'<p class="note">{html.escape(GENERATED_NOTE)}</p>')
    return Report("\n".join(md) + "\n", _page(body, len(figures)), figures)


def write(report: Report, out_dir: Path | str, page_name: str = "index.html") -> list[Path]:
    """``report.md``, ``figures/*.svg`` and the page, each written atomically."""
    out = Path(out_dir)
    files = {"report.md": report.markdown, page_name: report.html}
    files.update({f"{FIGURE_DIR}/{name}": svg for name, svg in report.figures.items()})
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return [out / n for n in files]


# --------------------------------------------------------------------------------------------------------------
# HTML

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:100rem}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}
th{background:#f3f3f3;text-align:left}th.sortable{cursor:pointer}th.sortable:after{content:" \\2195";color:#999}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.model{white-space:normal;overflow-wrap:anywhere;min-width:12rem}.weights{color:#666;font-size:.8rem}
tr:nth-child(even) td{background:#fafafa}.note{color:#555;font-size:.9rem}
div.scroll{overflow-x:auto}figure{margin:1rem 0}figcaption{color:#555;font-size:.9rem}ul.missing{color:#8a5a00}
"""

SCRIPT = """
(function(){
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th.sortable').forEach(function(th, col){
      th.addEventListener('click', function(){
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var dir = th.getAttribute('data-dir') === 'asc' ? -1 : 1;
        th.setAttribute('data-dir', dir === 1 ? 'asc' : 'desc');
        rows.sort(function(a, b){
          var x = JSON.parse(a.getAttribute('data-sort'))[col], y = JSON.parse(b.getAttribute('data-sort'))[col];
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
  var problems = [];
  var want = parseInt(document.body.getAttribute('data-figures'), 10);
  var figs = document.querySelectorAll('figure[data-figure]');
  if (figs.length !== want) problems.push('expected ' + want + ' figures, found ' + figs.length);
  figs.forEach(function(f){
    var svg = f.querySelector('svg'), box = svg && svg.getBoundingClientRect();
    if (!svg || box.width < 10 || box.height < 10) problems.push('figure ' + f.getAttribute('data-figure') + ' not drawn');
    else if (!svg.querySelector('.bar, .point')) problems.push('figure ' + f.getAttribute('data-figure') + ' has no data');
  });
  if (location.hash === '#check-sorting') {  // the browser test: sort every table by Model, both ways
    document.querySelectorAll('table.sortable').forEach(function(table){
      var th = table.querySelectorAll('th.sortable')[2];
      var names = function(){ return Array.prototype.map.call(table.tBodies[0].rows, function(r){
        return JSON.parse(r.getAttribute('data-sort'))[2]; }); };
      th.click(); var up = names(); th.click(); var down = names();
      if (up.join('|') !== up.slice().sort().join('|') || down.join('|') !== up.slice().reverse().join('|'))
        problems.push('sorting by model failed: ' + up.join(', '));
    });
  }
  document.body.setAttribute('OK_ATTRIBUTE', problems.length ? 'no: ' + problems.join('; ') : 'yes');
})();
""".replace("OK_ATTRIBUTE", OK_ATTRIBUTE)


def _html_table(rows: list[dict]) -> str:
    import json

    head = "".join(f'<th class="sortable">{html.escape(h)}</th>' for h in COLUMNS[:-1]) + "<th>Files</th>"
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r["cells"]):
            if i == 2:
                cells.append(f'<td class="model">{html.escape(c)}<div class="weights">weights: '
                             f"{html.escape(r['weights'])}</div></td>")
            else:
                cells.append(f'<td class="num">{html.escape(c)}</td>' if i in NUMERIC else f"<td>{html.escape(c)}</td>")
        links = " · ".join(f'<a href="{html.escape(u)}">{html.escape(t)}</a>' for t, u in r["links"])
        cells.append(f"<td>{links}</td>")
        sort = html.escape(json.dumps(r["sort"]))
        body.append(f'<tr data-sort="{sort}">{"".join(cells)}</tr>')
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _plain_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(body: list[str], n_figures: int) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{TITLE}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        f'<body data-figures="{n_figures}">',
        *body,
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]) + "\n"
