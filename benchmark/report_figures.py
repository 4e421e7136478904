"""The report's figures as plain SVG text: a line chart (score against class count) and grouped horizontal bars.

Every drawn number carries its exact value in a ``data-value`` attribute (and a tooltip), so a test can check
that the figure shows what the result files say. A bar of value 0 is still drawn (a thin outlined stub with its
label), so "zero" never looks like "missing".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def num(v: float) -> str:
    return f"{v:.3f}"


@dataclass
class Bar:
    label: str
    value: float
    ci: tuple[float, float] | None = None
    colour: str = PALETTE[0]


@dataclass
class BarGroup:
    label: str
    bars: list[Bar] = field(default_factory=list)


def _text_width(s: str) -> float:
    return 6.8 * len(s)  # generous for a 12 px sans-serif: labels are never cut


def bar_chart(
    title: str, groups: Sequence[BarGroup], *, lo: float = 0.0, hi: float = 1.0, fmt: Callable[[float], str] = pct,
    figure_id: str = "",
) -> str:
    """Grouped horizontal bars on an axis from ``lo`` to ``hi``; whiskers show each bar's interval."""
    label_w = max([_text_width(g.label) for g in groups] + [_text_width(b.label) for g in groups for b in g.bars]
                  + [120.0]) + 16
    plot_w, bar_h, gap = 420.0, 14, 10
    width = max(label_w + plot_w + 80, _text_width(title) + 16)
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return label_w + plot_w * (min(max(v, lo), hi) - lo) / span

    out: list[str] = [f'<text x="8" y="18" font-weight="bold">{escape(title)}</text>']
    y = 34
    rows_top = y
    for g in groups:
        out.append(f'<text x="8" y="{y + 11}" font-weight="bold">{escape(g.label)}</text>')
        y += bar_h + 2
        for b in g.bars:
            x0 = x(0.0) if lo < 0 <= hi else x(lo)
            w = x(b.value) - x0
            left, wid = (x0 + w, -w) if w < 0 else (x0, w)
            tip = f"{escape(g.label)} / {escape(b.label)}: {fmt(b.value)}"
            if b.ci:
                tip += f" [{fmt(b.ci[0])}, {fmt(b.ci[1])}]"
            out.append(f'<text x="{label_w - 8}" y="{y + 11}" text-anchor="end">{escape(b.label)}</text>')
            if wid < 1.5:  # zero (or nearly): an outlined stub, so it is visibly drawn
                out.append(f'<rect class="bar" x="{left:.1f}" y="{y}" width="2" height="{bar_h - 2}" fill="white" '
                           f'stroke="{b.colour}" data-value="{b.value!r}"><title>{tip}</title></rect>')
            else:
                out.append(f'<rect class="bar" x="{left:.1f}" y="{y}" width="{wid:.1f}" height="{bar_h - 2}" '
                           f'fill="{b.colour}" data-value="{b.value!r}"><title>{tip}</title></rect>')
            end = max(x0 + w, x0) + 4
            if b.ci:
                mid = y + (bar_h - 2) / 2
                out.append(f'<line x1="{x(b.ci[0]):.1f}" x2="{x(b.ci[1]):.1f}" y1="{mid}" y2="{mid}" stroke="#222"/>')
                end = max(end, x(b.ci[1]) + 4)
            out.append(f'<text x="{end:.1f}" y="{y + 11}" fill="#333">{fmt(b.value)}</text>')
            y += bar_h
        y += gap
    for i in range(5):  # axis ticks
        v = lo + span * i / 4
        out.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{rows_top}" y2="{y}" stroke="#ddd" stroke-width="0.5"/>')
        out.append(f'<text x="{x(v):.1f}" y="{y + 14}" text-anchor="middle" fill="#555">{fmt(v)}</text>')
    y += 24
    return _svg(out, width, y + 8, figure_id)


@dataclass
class Series:
    label: str
    points: list[tuple[float, float, tuple[float, float] | None]]  # (x, y, interval)
    colour: str = PALETTE[0]
    dashed: bool = False


def line_chart(title: str, series: Sequence[Series], *, x_label: str, figure_id: str = "") -> str:
    """Lines of a score (0..1) against ``x`` (e.g. class count); whiskers show each point's interval."""
    left, plot_w, plot_h, top = 60, 460, 220, 34
    xs = sorted({p[0] for s in series for p in s.points}) or [0.0, 1.0]
    x_lo, x_hi = xs[0], xs[-1]
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1

    def px(v: float) -> float:
        return left + plot_w * (v - x_lo) / (x_hi - x_lo)

    def py(v: float) -> float:
        return top + plot_h * (1 - min(max(v, 0.0), 1.0))

    out = [f'<text x="8" y="18" font-weight="bold">{escape(title)}</text>']
    for i in range(6):
        v = i / 5
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end" fill="#555">{pct(v)}</text>')
    for v in xs:
        out.append(f'<text x="{px(v):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#555">{v:g}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 34}" text-anchor="middle">{escape(x_label)}</text>')
    for s in series:
        pts = sorted(s.points)
        dash = ' stroke-dasharray="5,3"' if s.dashed else ""
        if len(pts) > 1:
            path = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b, _ in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>')
        for a, b, ci in pts:
            if ci:
                out.append(f'<line x1="{px(a):.1f}" x2="{px(a):.1f}" y1="{py(ci[0]):.1f}" y2="{py(ci[1]):.1f}" '
                           f'stroke="{s.colour}"/>')
            tip = f"{escape(s.label)} at {a:g}: {pct(b)}" + (f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else "")
            fill = "white" if s.dashed else s.colour  # hollow markers for the dashed series
            out.append(f'<circle class="point" cx="{px(a):.1f}" cy="{py(b):.1f}" r="4" fill="{fill}" '
                       f'stroke="{s.colour}" stroke-width="2" '
                       f'data-series="{escape(s.label)}" data-x="{a:g}" data-value="{b!r}"><title>{tip}</title></circle>')
    y = top + plot_h + 50
    y = _legend(out, [(s.label, s.colour) for s in series], y, dashed=[s.dashed for s in series])
    return _svg(out, max(left + plot_w + 40, _text_width(title) + 16), y + 8, figure_id)


def _legend(out: list[str], items: Sequence[tuple[str, str]], y: float, dashed: Sequence[bool] = ()) -> float:
    for i, (label, colour) in enumerate(items):
        dash = ' stroke-dasharray="5,3"' if i < len(dashed) and dashed[i] else ""
        out.append(f'<line x1="10" x2="34" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" stroke-width="3"{dash}/>')
        out.append(f'<text x="40" y="{y}">{escape(label)}</text>')
        y += 16
    return y


def _svg(body: list[str], width: float, height: float, figure_id: str) -> str:
    ident = f' id="{escape(figure_id)}"' if figure_id else ""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg"{ident} width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" {FONT}>')
    return "\n".join([head, f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>', *body, "</svg>"]) + "\n"
