"""The Leaderboard: render any set of result files as Markdown, CSV, a static HTML page and an SVG figure.

Rows are (model, weights, dataset, preset); the main table uses each result's largest class count, a sweep
table lists every class count of results that have several. Scores are shown as "mean ± std" percentages with
one decimal. Rules (dedup, sorting, the drop column) are in docs/results.md.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from singerbench.errors import UserError
from singerbench.figures import real_vs_cloned_svg
from singerbench.io import atomic_write_text
from singerbench.presets import PRESETS, deviations_of
from singerbench.results import RunResult

GENERATED_TAG = " (generated)"
GENERATED_NOTE = "(generated): a synthetic dataset made by singerbench; its scores are not comparable to real data."
DROP_HEADER = "drop real→cloned"
FIGURE_FILE = "real_vs_cloned.svg"
METRICS = (("top1", "top-1"), ("top5", "top-5"))
DEVIATION_MARK = " †"
NOT_COMPARABLE_HEADER = "Not comparable to the paper"
NOT_COMPARABLE_NOTE = ("These presets' `leaderboard` flag is false (e.g. `quick`, a smoke test): their scores are "
                       "not ranked with the rows above.")
UNKNOWN_DEVIATIONS = "not recorded in the result and unknown to this singerbench"


def _key(r: RunResult) -> tuple:
    return (r.model.name, r.model.weights_id, r.dataset.name, r.dataset.checksum, r.preset["name"],
            r.preset["version"])


def dedupe(results: Iterable[RunResult]) -> list[RunResult]:
    """Keep the newest result (by ``created``) of each (model, weights, dataset, split checksum, preset)."""
    best: dict[tuple, RunResult] = {}
    for r in results:
        k = _key(r)
        if k not in best or r.created_at >= best[k].created_at:
            best[k] = r
    return list(best.values())


def percent(summary: dict) -> str:
    """A mean/std summary of fractions as ``"mean ± std"`` in percent, one decimal."""
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


def _cell(s: dict | None, metric: str) -> str:
    return "" if s is None else percent(s[metric])


def short_weights_id(weights_id: str) -> str:
    """A readable short form: the kind prefix kept, the hash cut (``sha256:4a5b6c7d``, ``hf:owner/repo@1a2b3c4d``)."""
    head, sep, digest = weights_id.rpartition("@" if "@" in weights_id else ":")
    return f"{head}{sep}{digest[:8]}" if sep else weights_id[:8]


def model_label(r: RunResult) -> str:
    w = r.model.weights_id
    return r.model.name if w in ("", "none") else f"{r.model.name} ({short_weights_id(w)})"


def dataset_label(r: RunResult) -> str:
    """The dataset's name, with the corpus variant its request names (``synth-large``, ``confound 0``), so
    corpora of one dataset never share a label."""
    options = r.dataset_options
    name = r.dataset.name + (f"-{options['preset']}" if options.get("preset") else "")
    if options.get("confound") is not None:
        name += f", confound {float(options['confound']):g}"
    return name + (GENERATED_TAG if r.dataset.generated else "")


def is_comparable(r: RunResult) -> bool:
    """The preset's ``leaderboard`` flag: as recorded, else the registered preset's, else true."""
    if "leaderboard" in r.preset:
        return bool(r.preset["leaderboard"])
    known = PRESETS.get(r.preset["name"])
    return known.leaderboard if known is not None else True


def preset_deviations(r: RunResult) -> tuple[str, ...]:
    """How the result's preset departs from the reference: as recorded, else as singerbench knows that version."""
    if "deviations" in r.preset:
        return tuple(r.preset["deviations"])
    known = deviations_of(r.preset["name"], r.preset["version"])
    return (UNKNOWN_DEVIATIONS,) if known is None else known


def _preset_label(r: RunResult) -> str:
    return f"{r.preset['name']} v{r.preset['version']}" + (DEVIATION_MARK if preset_deviations(r) else "")


def _deviation_notes(results: list[RunResult]) -> list[str]:
    notes: dict[str, tuple[str, ...]] = {}
    for r in results:
        if preset_deviations(r):
            notes[f"{r.preset['name']} v{r.preset['version']}"] = preset_deviations(r)
    return [f"{label}: " + "; ".join(devs) for label, devs in sorted(notes.items())]


def _sort_key(r: RunResult, class_count: int) -> tuple:
    t = r.score(class_count, "test")
    return (r.dataset.name, -(t["top1"]["mean"] if t else -1.0), r.model.name, r.model.weights_id,
            r.preset["name"])


@dataclass
class Leaderboard:
    """Rendered tables: ``header`` + ``rows`` (main), ``sweep_header`` + ``sweep_rows``, a CSV export, and the
    real-vs-cloned figure (SVG text, None without test scores)."""

    header: list[str]
    rows: list[list[str]]
    sweep_header: list[str]
    sweep_rows: list[list[str]]
    csv_header: list[str]
    csv_rows: list[list[str]]
    has_generated: bool
    figure_svg: str | None = None
    #: rows of presets whose leaderboard flag is false, shown apart under NOT_COMPARABLE_HEADER.
    other_rows: list[list[str]] = field(default_factory=list)
    #: one line per preset marked with DEVIATION_MARK: how it departs from the reference code.
    deviation_notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        out = ["# singerbench leaderboard", ""]
        if not self.rows and not self.other_rows:
            return "\n".join(out + ["No results yet.", ""])
        out += ["Accuracy in %, mean ± std over runs (track-level majority vote), at the largest class count.", ""]
        if self.rows:
            out += md_table(self.header, self.rows)
        if self.figure_svg:
            out += ["", f"![real vs cloned top-1 per model]({FIGURE_FILE})"]
        if self.other_rows:
            out += ["", f"## {NOT_COMPARABLE_HEADER}", "", NOT_COMPARABLE_NOTE, ""]
            out += md_table(self.header, self.other_rows)
        if self.sweep_rows:
            out += ["", "## Class-count sweep", ""] + md_table(self.sweep_header, self.sweep_rows)
        if self.deviation_notes:
            out += ["", f"{DEVIATION_MARK.strip()} deviates from the reference code:", ""]
            out += [f"- {n}" for n in self.deviation_notes]
        if self.has_generated:
            out += ["", GENERATED_NOTE]
        return "\n".join(out) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.csv_header)
        w.writerows(self.csv_rows)
        return buf.getvalue()

    def to_html(self) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>singerbench leaderboard</title>",
            "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
            "table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem}"
            "th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}"
            "tr:nth-child(even) td{background:#fafafa}.note{color:#555;font-size:.9rem}</style>",
            "</head><body>",
            "<h1>singerbench leaderboard</h1>",
        ]
        if not self.rows and not self.other_rows:
            parts.append("<p>No results yet.</p>")
        else:
            parts.append('<p class="note">Accuracy in %, mean ± std over runs (track-level majority vote), '
                         "at the largest class count.</p>")
            if self.rows:
                parts.append(_html_table(self.header, self.rows))
            if self.figure_svg:
                parts.append(f'<p><img src="{FIGURE_FILE}" alt="real vs cloned top-1 per model"></p>')
            if self.other_rows:
                parts.append(f"<h2>{html.escape(NOT_COMPARABLE_HEADER)}</h2>")
                parts.append(f'<p class="note">{html.escape(NOT_COMPARABLE_NOTE)}</p>')
                parts.append(_html_table(self.header, self.other_rows))
            if self.sweep_rows:
                parts.append("<h2>Class-count sweep</h2>")
                parts.append(_html_table(self.sweep_header, self.sweep_rows))
            if self.deviation_notes:
                items = "".join(f"<li>{html.escape(n)}</li>" for n in self.deviation_notes)
                parts.append(f'<p class="note">{DEVIATION_MARK.strip()} deviates from the reference code:</p>'
                             f'<ul class="note">{items}</ul>')
            if self.has_generated:
                parts.append(f'<p class="note">{html.escape(GENERATED_NOTE)}</p>')
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{html.escape(c)}</td>' if i >= 3 else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render(results: list[RunResult]) -> Leaderboard:
    """Build the tables from results (deduplicated: the newest of each key wins)."""
    results = dedupe(results)
    ordered = sorted(results, key=lambda r: _sort_key(r, r.main_class_count))
    sets = sorted({s for r in results for s in r.eval_sets()}, key=lambda n: ({"test": 0, "cloned": 1}.get(n, 2), n))
    has_drop = any(
        r.score(r.main_class_count, "test") and r.score(r.main_class_count, "cloned") for r in results
    )
    score_cols = [f"{s} {label}" for s in sets for _, label in METRICS]
    header = ["Model", "Dataset", "Preset", "Classes", "Runs", *score_cols] + ([DROP_HEADER] if has_drop else [])

    def score_cells(r: RunResult, c: int) -> list[str]:
        return [_cell(r.score(c, s), m) for s in sets for m, _ in METRICS]

    def drop_cell(r: RunResult, c: int) -> str:
        t, cl = r.score(c, "test"), r.score(c, "cloned")
        return f"{100 * (t['top1']['mean'] - cl['top1']['mean']):.1f}" if t and cl else ""

    rows, other_rows = [], []
    for r in ordered:
        c = r.main_class_count
        row = [model_label(r), dataset_label(r), _preset_label(r), str(c), str(r.runs), *score_cells(r, c)]
        (rows if is_comparable(r) else other_rows).append(row + ([drop_cell(r, c)] if has_drop else []))

    swept = [r for r in results if len(r.class_counts) > 1]
    sweep_header = ["Model", "Dataset", "Preset", "Classes", "Runs", *score_cols] + ([DROP_HEADER] if has_drop else [])
    sweep_rows = []
    for r in sorted(swept, key=lambda r: _sort_key(r, r.main_class_count)):
        label = _preset_label(r) + ("" if is_comparable(r) else " (not comparable)")
        for c in sorted(r.class_counts):
            row = [model_label(r), dataset_label(r), label, str(c), str(r.runs), *score_cells(r, c)]
            sweep_rows.append(row + ([drop_cell(r, c)] if has_drop else []))

    csv_header = ["model", "weights_id", "dataset", "generated", "split_checksum", "preset", "preset_version",
                  "comparable", "deviations", "classes", "runs"]
    csv_header += [f"{s}_{m}_{stat}" for s in sets for m, _ in METRICS for stat in ("mean", "std")]
    csv_header += ["drop_real_cloned_top1"] if has_drop else []
    csv_rows = []
    for r in ordered:
        for c in sorted(r.class_counts, reverse=True):
            row = [r.model.name, r.model.weights_id, r.dataset.name, str(r.dataset.generated).lower(),
                   r.dataset.checksum, r.preset["name"], r.preset["version"], str(is_comparable(r)).lower(),
                   "; ".join(preset_deviations(r)), str(c), str(r.runs)]
            for s in sets:
                sc = r.score(c, s)
                for m, _ in METRICS:
                    row += ["", ""] if sc is None else [f"{100 * sc[m]['mean']:.2f}", f"{100 * sc[m]['std']:.2f}"]
            if has_drop:
                t, cl = r.score(c, "test"), r.score(c, "cloned")
                row.append(f"{100 * (t['top1']['mean'] - cl['top1']['mean']):.2f}" if t and cl else "")
            csv_rows.append(row)

    comparable = [r for r in ordered if is_comparable(r)]
    return Leaderboard(header, rows, sweep_header, sweep_rows, csv_header, csv_rows,
                       has_generated=any(r.dataset.generated for r in results),
                       figure_svg=real_vs_cloned_svg(comparable, model_label, dataset_label) if comparable else None,
                       other_rows=other_rows, deviation_notes=_deviation_notes(ordered))


def result_files(paths_or_dirs: Iterable[Path | str]) -> list[Path]:
    """The result files named: a file as given, a folder every ``*.json`` below it (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths_or_dirs):
        if p.is_dir():
            out += sorted(p.rglob("*.json"))
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"results path {p} does not exist")
    return out


def load_results(paths_or_dirs: Iterable[Path | str]) -> list[RunResult]:
    """Read the result files of :func:`result_files`."""
    return [RunResult.from_json(f) for f in result_files(paths_or_dirs)]


def write(leaderboard: Leaderboard, out_dir: Path | str, html: str | None = None) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``index.html`` and the figure into ``out_dir``, atomically.

    ``html`` replaces the plain page (the CLI passes the report's page, singerbench.report_page)."""
    out = Path(out_dir)
    files = {"leaderboard.md": leaderboard.to_markdown(), "leaderboard.csv": leaderboard.to_csv(),
             "index.html": leaderboard.to_html() if html is None else html}
    if leaderboard.figure_svg:
        files[FIGURE_FILE] = leaderboard.figure_svg
    paths = []
    for name, text in files.items():
        atomic_write_text(out / name, text)
        paths.append(out / name)
    return paths
