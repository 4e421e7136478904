"""Figures as plain SVG text (no plotting dependency): the leaderboard's real-vs-cloned bars, training curves.

The leaderboard figure has one panel per dataset; per model a bar for the real test tracks and one for the
cloned tracks (mean over runs, whisker = ± std), and a dashed tick at chance (1 / classes). The gap between
the two bars is the paper's question at a glance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from singerbench.results import RunResult

WIDTH = 760
LABEL_W = 230  # room for "model (weights id)" at the left
PLOT_W = 400
BAR_H = 11
ROW_H = 2 * BAR_H + 14
TITLE_H = 28
AXIS_H = 26
COLOURS = {"test": "#4477aa", "cloned": "#ee6677"}
LEGEND = {"test": "real test tracks", "cloned": "cloned tracks"}


def _x(fraction: float) -> float:
    return LABEL_W + PLOT_W * min(max(fraction, 0.0), 1.0)


def real_vs_cloned_svg(
    results: Sequence[RunResult], model_label: Callable[[RunResult], str], dataset_label: Callable[[RunResult], str]
) -> str | None:
    """The figure for ``results`` (already deduplicated and sorted), or None when none has a test score."""
    panels: dict[str, list[RunResult]] = {}
    for r in results:
        if r.score(r.main_class_count, "test"):
            panels.setdefault(dataset_label(r), []).append(r)
    if not panels:
        return None
    out: list[str] = []
    y = 8
    for title, rows in panels.items():
        out.append(f'<text x="{LABEL_W}" y="{y + 16}" font-weight="bold">{escape(title)}: top-1 at the largest '
                   "class count</text>")
        y += TITLE_H
        bottom = y + len(rows) * ROW_H
        for pct in range(0, 101, 20):  # the grid first, so the bars lie on top of it
            x = _x(pct / 100)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 4}" y2="{bottom - 8}" stroke="#ccc" '
                       'stroke-width="0.5"/>')
            out.append(f'<text x="{x:.1f}" y="{bottom + 6}" text-anchor="middle" fill="#555">{pct} %</text>')
        for r in rows:
            c = r.main_class_count
            out.append(f'<text x="{LABEL_W - 8}" y="{y + BAR_H + 4}" text-anchor="end">{escape(model_label(r))}</text>')
            for i, eval_set in enumerate(("test", "cloned")):
                s = r.score(c, eval_set)
                if not s:
                    continue
                mean, std = s["top1"]["mean"], s["top1"]["std"]
                by = y + i * BAR_H
                out.append(f'<rect x="{LABEL_W}" y="{by}" width="{_x(mean) - LABEL_W:.1f}" height="{BAR_H - 1}" '
                           f'fill="{COLOURS[eval_set]}"><title>{LEGEND[eval_set]}: {100 * mean:.1f} ± '
                           f"{100 * std:.1f} %</title></rect>")
                if _x(mean) - LABEL_W < 1.5:  # a 0 % bar is drawn as an outlined stub, so zero never looks missing
                    out.append(f'<rect x="{LABEL_W}" y="{by}" width="2" height="{BAR_H - 1}" fill="white" '
                               f'stroke="{COLOURS[eval_set]}"/>')
                    out.append(f'<text x="{LABEL_W + 6}" y="{by + BAR_H - 2}" font-size="10" fill="#333">'
                               f"{100 * mean:.1f} %</text>")
                mid = by + (BAR_H - 1) / 2
                out.append(f'<line x1="{_x(mean - std):.1f}" x2="{_x(mean + std):.1f}" y1="{mid}" y2="{mid}" '
                           'stroke="#222"/>')
            chance = _x(1.0 / c)
            out.append(f'<line x1="{chance:.1f}" x2="{chance:.1f}" y1="{y - 2}" y2="{y + 2 * BAR_H}" stroke="#222" '
                       'stroke-dasharray="2,2"><title>chance</title></line>')
            y += ROW_H
        y += AXIS_H
    legend_x = 20
    for eval_set, colour in COLOURS.items():
        out.append(f'<rect x="{legend_x}" y="{y}" width="12" height="10" fill="{colour}"/>')
        out.append(f'<text x="{legend_x + 16}" y="{y + 9}">{LEGEND[eval_set]}</text>')
        legend_x += 16 + 8 * len(LEGEND[eval_set])
    out.append(f'<line x1="{legend_x}" x2="{legend_x}" y1="{y - 1}" y2="{y + 11}" stroke="#222" '
               'stroke-dasharray="2,2"/>')
    out.append(f'<text x="{legend_x + 6}" y="{y + 9}">chance (1 / classes); whiskers: ± std over runs</text>')
    height = y + 20
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="system-ui, sans-serif" font-size="12">')
    background = f'<rect width="{WIDTH}" height="{height}" fill="white"/>'
    return "\n".join([head, background, *out, "</svg>"]) + "\n"


def loss_curves_svg(epochs: Sequence[int], curves: dict[str, Sequence[float]], y_label: str = "loss") -> str:
    """Training curves (one polyline per named curve against the epoch), written beside ``history.csv``.

    The y axis is logarithmic when the curves are positive and span more than a factor of 20 (contrastive
    losses fall fast, then slowly), else linear.
    """
    width, height, left, right, top, bottom = 560, 320, 60, 20, 20, 50
    values = [v for c in curves.values() for v in c if math.isfinite(v)] or [0.0, 1.0]
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1.0
    log_scale = lo > 0 and hi / lo > 20
    scale = math.log10 if log_scale else (lambda v: v)
    first, last = (epochs[0], epochs[-1]) if epochs else (0, 1)
    span = max(last - first, 1)

    def xy(epoch: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * (epoch - first) / span
        return x, top + (height - top - bottom) * (scale(hi) - scale(value)) / (scale(hi) - scale(lo))

    def point(epoch: float, value: float) -> str:
        x, y = xy(epoch, value)
        return f"{x:.1f},{y:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<polyline points="{point(first, hi)} {point(first, lo)} {point(last, lo)}" fill="none" stroke="#888"/>']
    middle = math.sqrt(lo * hi) if log_scale else (lo + hi) / 2
    for value in (lo, middle, hi):
        x, y = xy(first, value)
        out.append(f'<text x="{x - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{value:.3g}</text>')
    for epoch in (first, last):
        x, y = xy(epoch, lo)
        out.append(f'<text x="{x:.1f}" y="{y + 16:.1f}" text-anchor="middle" fill="#555">{epoch}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">epoch</text>')
    out.append(f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 14 {(top + height - bottom) / 2})">{escape(y_label)}'
               f'{" (log scale)" if log_scale else ""}</text>')
    palette = ("#4477aa", "#ee6677", "#228833", "#ccbb44")
    for i, (name, curve) in enumerate(curves.items()):
        pts = " ".join(point(e, v) for e, v in zip(epochs, curve, strict=True) if math.isfinite(v))
        colour = palette[i % len(palette)]
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"><title>{escape(name)}'
                   "</title></polyline>")
        out.append(f'<text x="{width - right - 4}" y="{top + 14 + 16 * i}" text-anchor="end" fill="{colour}">'
                   f"{escape(name)}</text>")
    return "\n".join([*out, "</svg>"]) + "\n"
