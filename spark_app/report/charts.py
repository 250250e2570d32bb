"""Inline SVG line charts of a match rate over the window's days; no script, no fonts fetched.

A day without a value (no successful run, or no views) breaks the line: the points before and
after it are separate segments, and a day with no successful run is drawn as a hatched band,
so a missing day never reads as a rate of zero.

The `viewBox` lets a page scale a chart to its container (the report's CSS does on a phone); the
margins around the plot leave room for axis labels drawn up to 16 units high, so labels that the
page enlarges to stay legible on a narrow screen are not cut at the chart's edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape
from typing import List, Optional, Sequence


@dataclass(frozen=True)
class Frame:
    width: int
    height: int
    left: int = 44
    right: int = 24
    top: int = 12
    bottom: int = 24

    def x(self, i: int, n: int) -> float:
        span = self.width - self.left - self.right
        return self.left + (span * i / (n - 1) if n > 1 else span / 2)

    def y(self, value: float) -> float:
        span = self.height - self.top - self.bottom
        return self.top + span * (1.0 - max(0.0, min(1.0, value)))


def segments(values: Sequence[Optional[float]]) -> List[List[int]]:
    """Indexes of the runs of consecutive known values (a None ends a segment)."""
    out: List[List[int]] = []
    current: List[int] = []
    for i, v in enumerate(values):
        if v is None:
            if current:
                out.append(current)
            current = []
        else:
            current.append(i)
    if current:
        out.append(current)
    return out


def rate_chart(
    days: Sequence[date],
    values: Sequence[Optional[float]],
    gaps: Sequence[bool],
    title: str,
    width: int = 720,
    height: int = 200,
    reference: Optional[float] = None,
    reference_label: str = "",
    css_class: str = "chart",
    axes: bool = True,
) -> str:
    """An SVG of `values` (0..1) over `days`; `gaps[i]` marks a day with no successful run."""
    f = Frame(width, height) if axes else Frame(width, height, left=2, right=2, top=3, bottom=3)
    n = len(days)
    parts = [
        f'<svg class="{css_class}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    ]
    step = (f.width - f.left - f.right) / max(n - 1, 1)
    for i, gap in enumerate(gaps):
        if gap:
            x = f.x(i, n) - step / 2
            parts.append(
                f'<rect class="gap" x="{x:.1f}" y="{f.top}" width="{step:.1f}" '
                f'height="{f.height - f.top - f.bottom}"><title>{days[i]}: no successful run</title></rect>'
            )
    if axes:
        parts += _axes(f, days)
    if reference is not None:
        y = f.y(reference)
        parts.append(
            f'<line class="reference" x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        if reference_label and axes:
            parts.append(
                f'<text class="label" x="{f.width - f.right}" y="{y - 3:.1f}" text-anchor="end">'
                f"{escape(reference_label)}</text>"
            )
    for seg in segments(values):
        points = " ".join(f"{f.x(i, n):.1f},{f.y(values[i]):.1f}" for i in seg)  # type: ignore[arg-type]
        parts.append(f'<polyline class="line" points="{points}"/>')
        for i in seg:
            parts.append(
                f'<circle class="point" cx="{f.x(i, n):.1f}" cy="{f.y(values[i]):.1f}" r="2.2">'
                f"<title>{days[i]}: {values[i] * 100:.1f}%</title></circle>"
            )  # type: ignore[operator]
    parts.append("</svg>")
    return "".join(parts)


def _axes(f: Frame, days: Sequence[date]) -> List[str]:
    out = []
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = f.y(v)
        out.append(f'<line class="grid" x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="label" x="{f.left - 4}" y="{y:.1f}" text-anchor="end" dominant-baseline="central">'
            f"{int(v * 100)}%</text>"
        )
    n = len(days)
    every = max(1, n // 7)
    for i in range(0, n, every):
        out.append(
            f'<text class="label" x="{f.x(i, n):.1f}" y="{f.height - 5}" text-anchor="middle">'
            f"{days[i].strftime('%m-%d')}</text>"
        )
    return out
