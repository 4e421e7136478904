"""``singerbench report``: the paper's figures, intervals, paired ranking and probes for any set of result files.

Reads result files only (nothing is re-run) and writes ``report.md``, the figures as SVG files, and ONE static
self-contained ``index.html`` (inline SVG, a few lines of inline JavaScript for sorting, no network). Results are
grouped by dataset variant (dataset, split checksum, protocol preset, class count): rows of different variants
are never ranked together. What a result file lacks (older files have no verification, per-track groups or
probe) is said on the page, not guessed. Every rule is in docs/results.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from singerbench import analysis
from singerbench.analysis import Score
from singerbench.errors import UserError
from singerbench.leaderboard import dedupe, model_label, result_files
from singerbench.probe import OUTCOMES, ProbeRow
from singerbench.report_figures import PALETTE, Bar, BarGroup, Series, bar_chart, line_chart, num
from singerbench.results import RunResult
from singerbench.similarity import PAIR_LABELS, PAIRS
from singerbench.stats import bootstrap_ci, outcomes

EVAL_SETS = ("test", "cloned")
SET_LABEL = {"test": "real", "cloned": "cloned"}
OK_ATTRIBUTE = "data-report-ok"
FIGURE_DIR = "figures"


@dataclass
class Entry:
    """One result file as the report sees it."""

    path: Path | None
    result: RunResult


@dataclass
class Figure:
    name: str  # file stem under figures/
    caption: str
    svg: str


@dataclass
class Variant:
    """Results that may be ranked together: same dataset split, protocol preset and class count."""

    key: tuple
    entries: list[Entry]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: per eval set, the paired tests of every pair of entries (analysis.pairwise), made once for ranks and table
    pairs: dict[str, dict] = field(default_factory=dict)

    def paired(self, eval_set: str) -> dict:
        if eval_set not in self.pairs:
            self.pairs[eval_set] = analysis.pairwise([e.result for e in self.entries], eval_set)
        return self.pairs[eval_set]


def load_entries(paths_or_dirs: Sequence[Path | str]) -> list[Entry]:
    """Read result files (a folder: every ``*.json`` below it), keeping where each came from."""
    out = [Entry(f, RunResult.from_json(f)) for f in result_files(paths_or_dirs)]
    if not out:
        raise UserError(f"no result files found in {', '.join(map(str, paths_or_dirs))}")
    return out


def variant_key(r: RunResult) -> tuple:
    return (r.dataset.name, r.dataset.checksum, r.preset["name"], r.preset["version"], r.main_class_count)


def variant_label(r: RunResult) -> str:
    """What a newcomer needs to tell two corpora apart: generated or real, size, seed, split, protocol."""
    d = r.dataset
    opts = r.dataset_options
    bits = [f"{d.name} ({'generated' if d.generated else 'real data'})"]
    if opts.get("preset"):
        bits.append(f"corpus preset {opts['preset']}")
    if "seed" in opts:
        bits.append(f"corpus seed {opts['seed']}")
    counts = "/".join(f"{d.tracks[k]}" for k in ("train", "val", "test", "cloned") if k in d.tracks)
    roles = "/".join(k for k in ("train", "val", "test", "cloned") if k in d.tracks)
    bits.append(f"{d.singers} singers, {counts} {roles} tracks")
    bits.append(f"split {d.checksum[:8]}")
    bits.append(f"protocol {r.preset['name']} v{r.preset['version']}, {r.main_class_count} classes")
    return " · ".join(bits)


def _fmt_score(s: Score | None) -> str:
    if s is None:
        return ""
    ci = f" [{100 * s.ci[0]:.1f}, {100 * s.ci[1]:.1f}]" if s.ci else " [no per-track data]"
    return f"{100 * s.mean:.1f}{ci}"


def _fmt_ver(r: RunResult, eval_set: str, metric: str) -> str:
    v = r.verification.get(eval_set)
    if not v:
        return ""
    lo, hi = v[f"{metric}_ci"]
    if metric == "eer":
        return f"{100 * v['eer']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{v['min_dcf']:.3f} [{lo:.3f}, {hi:.3f}]"


def model_card(entry: Entry, out_dir: Path) -> str | None:
    """Where the model is described: its Hub page, its weights folder's README, or the baselines page."""
    m = entry.result.model
    if m.spec.startswith("hf://"):
        return "https://huggingface.co/" + m.spec[len("hf://"):].split("@")[0]
    folder = Path(m.spec)
    if folder.is_dir() and (folder / "README.md").is_file():
        return os.path.relpath(folder / "README.md", out_dir)
    if m.source in ("builtin", "built-in") or m.source.startswith("entry point"):
        docs = Path("docs") / "baselines.md"
        if docs.is_file():
            return os.path.relpath(docs, out_dir) + f"#{m.name}"
    return None


# --------------------------------------------------------------------------------------------------------------
# the rows and figures of one variant


COLUMNS = ["Rank real", "Rank cloned", "Model", "real top-1 [95 % CI]", "cloned top-1 [95 % CI]", "real top-5",
           "cloned top-5", "drop real→cloned", "real EER %", "real minDCF", "cloned EER %", "cloned minDCF",
           "Runs", "Tracks scored (real/cloned)", "Created", "singerbench / torch", "Files"]
NUMERIC = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12}


def _rank_cell(rank: analysis.Rank | None) -> str:
    if rank is None:
        return ""
    return f"{rank.rank}{'=' if rank.tied else ''}{'' if rank.tested else '*'}"


def variant_rows(v: Variant, out_dir: Path) -> list[dict]:
    results = [e.result for e in v.entries]
    ranks = {s: analysis.rank(results, s, tests=v.paired(s)) for s in EVAL_SETS}
    rows = []
    for i, e in enumerate(v.entries):
        r, c = e.result, e.result.main_class_count
        sc = {(s, m): analysis.score(r, c, s, m) for s in EVAL_SETS for m in ("top1", "top5")}
        t, cl = sc[("test", "top1")], sc[("cloned", "top1")]
        links = []
        if e.path is not None:
            links.append(("result", os.path.relpath(e.path, out_dir)))
        card = model_card(e, out_dir)
        if card:
            links.append(("model card", card))
        rows.append({
            "cells": [
                _rank_cell(ranks["test"].get(i)), _rank_cell(ranks["cloned"].get(i)), model_label(r),
                _fmt_score(t), _fmt_score(cl),
                _fmt_score(sc[("test", "top5")]), _fmt_score(sc[("cloned", "top5")]),
                f"{100 * (t.mean - cl.mean):.1f}" if t and cl else "",
                _fmt_ver(r, "test", "eer"), _fmt_ver(r, "test", "min_dcf"),
                _fmt_ver(r, "cloned", "eer"), _fmt_ver(r, "cloned", "min_dcf"),
                str(r.runs), f"{t.tracks if t else 0}/{cl.tracks if cl else 0}", r.created[:10],
                f"{r.singerbench_version} / {r.host.get('torch', '?')}",
            ],
            "weights": r.model.weights_id,
            "sort": [ranks["test"][i].rank if i in ranks["test"] else 99,
                     ranks["cloned"][i].rank if i in ranks["cloned"] else 99, model_label(r).lower(),
                     *[(s.mean if s else -1) for s in (t, cl, sc[("test", "top5")], sc[("cloned", "top5")])],
                     (t.mean - cl.mean) if t and cl else -1,
                     *[(r.verification.get(s, {}).get(m, 99)) for s in EVAL_SETS for m in ("eer", "min_dcf")],
                     r.runs, (t.tracks if t else 0), r.created, r.singerbench_version],
            "links": links,
        })
    return rows


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def variant_figures(v: Variant, probe_rows: dict[int, ProbeRow]) -> tuple[list[Figure], list[str]]:
    """Every figure the variant's results support, and a note for each they cannot."""
    results = [e.result for e in v.entries]
    slug = re.sub(r"[^a-z0-9]+", "-", f"{v.key[0]}-{v.key[1][:8]}-{v.key[2]}-{v.key[4]}".lower())
    figs: list[Figure] = []
    notes: list[str] = []

    series = []
    for i, r in enumerate(results):
        for s in EVAL_SETS:
            pts = [(float(c), sc.mean, sc.ci) for c, sc in analysis.sweep(r, s)]
            if pts:
                series.append(Series(f"{model_label(r)} — {SET_LABEL[s]}", pts, _colour(i), dashed=s == "cloned"))
    if series:
        counts = sorted({c for r in results for c in r.class_counts})
        cap = "Fig. 1 — top-1 against the number of classes (solid: real test tracks, dashed: cloned; whiskers: " \
              "95 % bootstrap CI)"
        if len(counts) == 1:
            notes.append("Fig. 1 has a single class count: run with --sweep for more (a dataset of 10 singers or "
                         "fewer has one step).")
        figs.append(Figure(f"{slug}-fig1-classes", cap, line_chart(cap, series, x_label="classes",
                                                                   figure_id=f"{slug}-fig1")))

    for field_name, title, figno in (("genre", "genre", "2a"), ("language", "language", "2b"),
                                     ("train_songs", "number of training songs of the singer", "3")):
        groups: dict[str, BarGroup] = {}
        for i, r in enumerate(results):
            for s in EVAL_SETS:
                for value, sc in analysis.grouped(r, s, field_name).items():
                    label = f"{value} ({SET_LABEL[s]})"
                    groups.setdefault(label, BarGroup(label)).bars.append(
                        Bar(model_label(r), sc.mean, sc.ci, _colour(i)))
        if groups:
            cap = f"Fig. {figno} — top-1 per {title}, at the largest class count (whiskers: 95 % bootstrap CI)"
            figs.append(Figure(f"{slug}-fig{figno}-{field_name}", cap,
                               bar_chart(cap, list(groups.values()), figure_id=f"{slug}-fig{figno}")))
        else:
            notes.append(f"Fig. {figno} (per {title}): no result here records it per track (track_info); "
                         "re-run with this singerbench to add it.")

    groups = {}
    for r in results:
        for s, data in (r.similarity.get("sets") or {}).items():
            label = f"{model_label(r)} ({SET_LABEL.get(s, s)} tracks)"
            groups[label] = BarGroup(label, [Bar(PAIR_LABELS[p], data["means"][p], similarity_ci(data, p), _colour(k))
                                             for k, p in enumerate(PAIRS)])
    if groups:
        lo = min(0.0, min(b.value for g in groups.values() for b in g.bars))
        cap = "Fig. 4 — similarity probe: mean cosine similarity of a track's segment embeddings with …"
        figs.append(Figure(f"{slug}-fig4-similarity", cap, bar_chart(cap, list(groups.values()), lo=lo, hi=1.0,
                                                                     fmt=num, figure_id=f"{slug}-fig4")))
    else:
        notes.append("Fig. 4 (similarity probe): no result here carries it; run with `singerbench run --probe` "
                     "on a dataset with vocal and instrumental stems (synth).")

    if probe_rows:
        groups = {}
        for i, row in probe_rows.items():
            label = model_label(results[i])
            names = {"voice": "names the voice", "context": "names the backing's singer", "other": "another singer"}
            groups[label] = BarGroup(label, [Bar(names[o], row.shares[o]["mean"], None, _colour(k))
                                             for k, o in enumerate(OUTCOMES)])
        cap = "Context probe — on cloned tracks, whom the model names (share of tracks, mean over runs)"
        figs.append(Figure(f"{slug}-context-probe", cap, bar_chart(cap, list(groups.values()),
                                                                   figure_id=f"{slug}-context")))
    elif any(r.dataset.tracks.get("cloned") for r in results):
        notes.append("Context probe: the datasets these results record are not in this cache; give the one they "
                     "were run on (e.g. `--dataset synth --synth-preset large`) to draw it: it reads each clone's "
                     "context singer from the manifest.")
    return figs, notes


def paired_rows(v: Variant) -> list[list[str]]:
    """Every pair of models in a variant: difference of top-1 (A − B) and the paired test's p-value, per set."""
    rows = []
    results = [e.result for e in v.entries]
    for a in range(len(results)):
        for b in range(a + 1, len(results)):
            cells = [model_label(results[a]), model_label(results[b])]
            for s in EVAL_SETS:
                t = v.paired(s)[(a, b)]
                cells += ["", "no shared per-track data"] if t is None else [
                    f"{100 * t.difference:+.1f}", f"{t.p_value:.4f}" + (" (significant)" if t.significant else "")]
            rows.append(cells)
    return rows


def similarity_ci(data: dict, pair: str) -> tuple[float, float] | None:
    """95 % bootstrap interval over tracks of one similarity mean (None without per-track values)."""
    values = {t: v[pair] for t, v in data.get("per_track", {}).items() if pair in v}
    return bootstrap_ci(outcomes([(0, values)])) if len(values) > 1 else None


def similarity_rows(v: Variant) -> list[list[str]]:
    rows = []
    for e in v.entries:
        for s, data in (e.result.similarity.get("sets") or {}).items():
            cells = []
            for p in PAIRS:
                ci = similarity_ci(data, p)
                cells.append(f"{data['means'][p]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
            rows.append([model_label(e.result), SET_LABEL.get(s, s), str(data["tracks"]), *cells])
    return rows


def group(entries: Sequence[Entry]) -> list[Variant]:
    """Newest result per (model, weights, split, preset) kept; grouped by variant, sorted by real top-1 within."""
    keep = {id(r) for r in dedupe([e.result for e in entries])}
    variants: dict[tuple, Variant] = {}
    for e in entries:
        if id(e.result) in keep:
            variants.setdefault(variant_key(e.result), Variant(variant_key(e.result), [])).entries.append(e)
    for v in variants.values():
        def key(e: Entry) -> tuple:
            t = e.result.score(e.result.main_class_count, "test")
            c = e.result.score(e.result.main_class_count, "cloned")
            return (-(t["top1"]["mean"] if t else -1), -(c["top1"]["mean"] if c else -1), e.result.model.name)
        v.entries.sort(key=key)
    return sorted(variants.values(), key=lambda v: v.key)
