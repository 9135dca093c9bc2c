"""The nightly sales report: one self-contained HTML file drawn from the serving database.

Everything the page shows is read from the published marts (docs/metrics.md defines them); the
few roll-ups it makes (a team's quota, a source's leads over twelve months, a rep's SLA rate over
twelve weeks) are sums of mart rows and ratios of those sums, spelled out beside each chart.

The file is viewable offline: CSS is inline, charts are inline SVG drawn here (no chart library),
tooltips are SVG ``<title>`` elements (no script at all), and a Content-Security-Policy meta tag
forbids the browser from fetching anything. Each mark and each cell of the table under a chart
carries ``data-key``, ``data-series`` and ``data-value`` (the mart's number, unrounded), so a test
can compare the page with the marts exactly.
"""

from __future__ import annotations

import html
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from ingestion.crash_points import crash_point
from ingestion.warehouse import connect_duckdb
from orchestration.serving import remove_stale_temporaries

WEEKS = 12  # lead response and rep activity: the last twelve ISO weeks up to as_of
FUNNEL_MONTHS = 12  # funnel conversion: lead cohorts of the last twelve months up to as_of
NO_TEAM = "(no team)"
UNOWNED = "(unowned)"
RESPONSE_BINS = (0, 15, 30, 60, 120, 240, 480, 960, 2400)  # business minutes; 480 = one business day
NOT_RESPONDED = "not responded"
FORECAST_METHODS = ("weighted_pipeline", "commit", "best_case", "calibrated")
METHOD_LABELS = {
    "weighted_pipeline": "Weighted pipeline",
    "commit": "Commit",
    "best_case": "Best case",
    "calibrated": "Calibrated",
}
RAMP_STATUSES = ("ramping", "ramped", "behind")
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0891b2", "#db2777", "#65a30d", "#64748b")

Key = str
Values = dict[tuple[Key, str], "float | int | None"]


@dataclass(frozen=True)
class ReportSummary:
    path: Path
    as_of: date
    charts: tuple[str, ...]  # data-chart ids, in page order
    empty_charts: tuple[str, ...]  # charts drawn with a "no data" message
    forecast_available: bool
    bytes: int


# ------------------------------------------------------------------------------------- formatting


def _number(value: object) -> float | int | None:
    """A mart value as a Python number; NULL and NaN are None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        value = float(value)
    value = float(value)  # type: ignore[arg-type]
    return None if math.isnan(value) else value


def raw(value: object) -> str:
    """The exact value for ``data-value``: ints as digits, floats round-trip (repr), empty for NULL."""
    number = _number(value)
    if number is None:
        return ""
    return str(number) if isinstance(number, int) else repr(number)


def fmt_money(value: object) -> str:
    number = _number(value)
    if number is None:
        return "–"
    size = abs(number)
    if size >= 1e6:
        return f"{number / 1e6:,.2f}M"
    if size >= 1e4:
        return f"{number / 1e3:,.1f}k"
    return f"{number:,.0f}"


def fmt_count(value: object) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:,.0f}"


def fmt_pct(value: object) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.1%}"


def fmt_ratio(value: object) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.2f}×"


def fmt_signed_pct(value: object) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:+.1%}"


def fmt_decimal(value: object) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:,.1f}"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ratio(numerator: float | int | None, denominator: float | int | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _fsum(values: Iterable[object]) -> float | None:
    """Exactly rounded sum of the non-null values (order-independent); None when there are none."""
    numbers = [float(n) for n in (_number(v) for v in values) if n is not None]
    return math.fsum(numbers) if numbers else None


# ------------------------------------------------------------------------------------------ dates


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def quarter_of(day: date, shift: int) -> date:
    """First day of the (fiscal) quarter holding ``day``; ``shift`` = (fiscal start month - 1) % 3."""
    month = date(day.year, day.month, 1)
    return add_months(month, -((day.month - 1 - shift) % 3))


def quarter_label(start: date, shift: int) -> str:
    if shift == 0:
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    return f"Quarter from {start:%b %Y}"


# ----------------------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class Series:
    name: str  # the mart column (or derived measure) the marks carry
    label: str
    color: str


@dataclass
class Chart:
    chart_id: str
    svg: str
    empty: bool


def _nice_ticks(high: float, count: int = 5) -> list[float]:
    """0 .. a round number ≥ high in about ``count`` round steps."""
    if not high or high <= 0 or not math.isfinite(high):
        high = 1.0
    raw_step = high / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = magnitude
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if high / step <= count:
            break
    steps = math.ceil(high / step - 1e-9)
    return [step * index for index in range(steps + 1)]


def _svg_open(chart_id: str, title: str, width: int, height: int, empty: bool = False) -> str:
    return (
        f'<svg class="chart" data-chart="{esc(chart_id)}" data-empty="{str(empty).lower()}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>'
        f'<text class="chart-title" x="12" y="22">{esc(title)}</text>'
    )


def empty_chart(chart_id: str, title: str, message: str, width: int = 860) -> Chart:
    height = 120
    svg = (
        _svg_open(chart_id, title, width, height, empty=True)
        + f'<rect class="empty-frame" x="12" y="36" width="{width - 24}" height="{height - 48}" rx="6"/>'
        + f'<text class="empty" x="{width / 2}" y="{height / 2 + 20}" text-anchor="middle">'
        + f"No data: {esc(message)}</text></svg>"
    )
    return Chart(chart_id, svg, empty=True)


def _legend(
    series: Sequence[Series], left: float, right: float, kinds: dict[str, str] | None = None
) -> tuple[str, float]:
    """The legend under the title, wrapped to the chart's width; returns it and the plot's top."""
    parts, x, y = [], left, 44.0
    for s in series:
        item_width = 30 + 6.4 * len(s.label)
        if x > left and x + item_width > right:
            x, y = left, y + 17
        if (kinds or {}).get(s.name) == "line":
            swatch = (
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 14:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{s.color}" stroke-width="2.5"/>'
            )
        else:
            swatch = f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" rx="2" fill="{s.color}"/>'
        parts.append(
            f'<g class="legend-item">{swatch}<text x="{x + 18:.1f}" y="{y:.1f}">{esc(s.label)}</text></g>'
        )
        x += item_width
    return '<g class="legend">' + "".join(parts) + "</g>", y + 16


def _mark_attrs(key: Key, series: str, value: object) -> str:
    return f'class="mark" data-key="{esc(key)}" data-series="{esc(series)}" data-value="{raw(value)}"'


def hbar_chart(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[Key, str]],
    series: Sequence[Series],
    values: Values,
    fmt: Callable[[object], str],
    axis_label: str,
    *,
    stacked: bool = False,
    reference: tuple[float, str] | None = None,
    annotate: Callable[[Key], str] | None = None,
    mark_id: Callable[[Key, str], tuple[Key, str]] | None = None,
    width: int = 860,
) -> Chart:
    """Horizontal bars: one row per category (a rep, a team, a source), one bar per series (or a
    stack). ``mark_id`` maps (row, series) to the data-key and data-series the mark carries."""
    left, right, bottom = 230, 60 + (80 if annotate else 0), 46
    legend, top = _legend(series, left, width - right)
    top += 8
    bar = 13 if stacked or len(series) == 1 else 11
    group = bar * (1 if stacked else len(series)) + 9
    height = int(top + group * len(rows) + bottom)
    plot_width = width - left - right
    ends = []
    for key, _ in rows:
        numbers = [v for s in series if (v := _number(values.get((key, s.name)))) is not None]
        ends.append(sum(numbers) if stacked else max(numbers, default=0))
    ticks = _nice_ticks(max([*ends, reference[0] if reference else 0, 0]))
    scale = plot_width / ticks[-1]
    parts = [_svg_open(chart_id, title, width, height), legend]
    for tick in ticks:
        x = left + tick * scale
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - bottom}"/>'
            f'<text class="tick" x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle">'
            f"{esc(fmt(tick))}</text>"
        )
    for index, (key, label) in enumerate(rows):
        y0 = top + index * group
        middle = y0 + group / 2 + 1
        parts.append(
            f'<text class="category" x="{left - 8}" y="{middle:.1f}" text-anchor="end" '
            f'dominant-baseline="middle">{esc(label)}</text>'
        )
        offset = 0.0
        for position, s in enumerate(series):
            value = _number(values.get((key, s.name)))
            if value is None:
                continue
            y = y0 + (0 if stacked else position * bar) + 4
            mark_key, mark_series = mark_id(key, s.name) if mark_id else (key, s.name)
            parts.append(
                f'<rect {_mark_attrs(mark_key, mark_series, value)} x="{left + offset * scale:.2f}" '
                f'y="{y:.1f}" width="{max(value * scale, 0.0):.2f}" height="{bar - 2}" fill="{s.color}">'
                f"<title>{esc(label)} – {esc(s.label)}: {esc(fmt(value))}</title></rect>"
            )
            if stacked:
                offset += value
            else:
                parts.append(
                    f'<text class="value-label" x="{left + max(value, 0.0) * scale + 4:.1f}" '
                    f'y="{y + (bar - 2) / 2:.1f}" dominant-baseline="middle">{esc(fmt(value))}</text>'
                )
        if stacked:
            parts.append(
                f'<text class="value-label" x="{left + ends[index] * scale + 4:.1f}" y="{middle:.1f}" '
                f'dominant-baseline="middle">{esc(fmt(ends[index]))}</text>'
            )
        note = annotate(key) if annotate else ""
        if note:
            parts.append(
                f'<text class="annotation" x="{left + ends[index] * scale + 58:.1f}" y="{middle:.1f}" '
                f'dominant-baseline="middle">{esc(note)}</text>'
            )
    if reference:
        x = left + reference[0] * scale
        parts.append(
            f'<line class="reference" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - bottom}"/>'
            f'<text class="reference-label" x="{x + 4:.1f}" y="{height - bottom - 4}">'
            f"{esc(reference[1])}</text>"
        )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{top - 4}" x2="{left}" y2="{height - bottom}"/>'
        f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}"/>'
        f'<text class="axis-label" x="{left + plot_width / 2:.1f}" y="{height - 8}" '
        f'text-anchor="middle">{esc(axis_label)}</text></svg>'
    )
    return Chart(chart_id, "".join(parts), empty=False)


def column_chart(
    chart_id: str,
    title: str,
    categories: Sequence[tuple[Key, str]],
    values: Values,
    fmt: Callable[[object], str],
    x_label: str,
    y_label: str,
    *,
    bars: Sequence[Series] = (),
    lines: Sequence[Series] = (),
    interval: tuple[Series, Series] | None = None,
    stacked: bool = False,
    width: int = 860,
    height: int = 330,
) -> Chart:
    """Categories along x (months, weeks, bins): bars (grouped or stacked), lines with points, and
    an optional low-high interval drawn as a whisker per category."""
    left, right, bottom = 78, 20, 56
    legend_series = [*bars, *lines, *([interval[0]] if interval else [])]
    kinds = {s.name: "line" for s in [*lines, *([interval[0]] if interval else [])]}
    legend, top = _legend(legend_series, left, width - right, kinds)
    top += 8
    height = int(height + top - 66)
    plot_width, plot_height = width - left - right, height - top - bottom
    band = plot_width / max(len(categories), 1)
    candidates: list[float] = [0.0]
    for key, _ in categories:
        bar_values = [_number(values.get((key, s.name))) or 0 for s in bars]
        candidates.append(sum(bar_values) if stacked else max(bar_values, default=0))
        candidates.extend(_number(values.get((key, s.name))) or 0 for s in lines)
        if interval:
            candidates.append(_number(values.get((key, interval[1].name))) or 0)
    ticks = _nice_ticks(max(candidates))
    scale = plot_height / ticks[-1]
    base = top + plot_height
    parts = [_svg_open(chart_id, title, width, height), legend]
    for tick in ticks:
        y = base - tick * scale
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(fmt(tick))}</text>'
        )
    label_every = max(1, math.ceil(len(categories) / 14))
    for index, (key, label) in enumerate(categories):
        center = left + band * (index + 0.5)
        if index % label_every == 0:
            parts.append(
                f'<text class="category" x="{center:.1f}" y="{base + 16}" text-anchor="middle">'
                f"{esc(label)}</text>"
            )
        inner = band * 0.72
        bar_width = inner if stacked or not bars else inner / len(bars)
        stack = 0.0
        for position, s in enumerate(bars):
            value = _number(values.get((key, s.name)))
            if value is None:
                continue
            x = center - inner / 2 + (0 if stacked else position * bar_width)
            bottom_value = stack if stacked else 0.0
            y = base - (bottom_value + value) * scale
            parts.append(
                f'<rect {_mark_attrs(key, s.name, value)} x="{x:.2f}" y="{y:.2f}" '
                f'width="{max(bar_width - 1, 1):.2f}" height="{max(value * scale, 0):.2f}" fill="{s.color}">'
                f"<title>{esc(label)} – {esc(s.label)}: {esc(fmt(value))}</title></rect>"
            )
            if stacked:
                stack += value
        if interval:
            # on the last bar of the group (the bar the interval belongs to), else the category's center
            if bars and not stacked:
                center = center - inner / 2 + (len(bars) - 0.5) * bar_width
            low = _number(values.get((key, interval[0].name)))
            high = _number(values.get((key, interval[1].name)))
            if low is not None and high is not None:
                y_low, y_high = base - low * scale, base - high * scale
                parts.append(
                    f'<line class="whisker" x1="{center:.1f}" y1="{y_low:.2f}" x2="{center:.1f}" '
                    f'y2="{y_high:.2f}" stroke="{interval[0].color}"/>'
                )
                for s, value, y in ((interval[0], low, y_low), (interval[1], high, y_high)):
                    parts.append(
                        f'<line {_mark_attrs(key, s.name, value)} x1="{center - 7:.1f}" y1="{y:.2f}" '
                        f'x2="{center + 7:.1f}" y2="{y:.2f}" stroke="{s.color}" stroke-width="2">'
                        f"<title>{esc(label)} – {esc(s.label)}: {esc(fmt(value))}</title></line>"
                    )
    for s in lines:
        points = []
        for index, (key, label) in enumerate(categories):
            value = _number(values.get((key, s.name)))
            if value is None:
                continue
            points.append((left + band * (index + 0.5), base - value * scale, key, label, value))
        if len(points) > 1:
            path = " ".join(f"{x:.2f},{y:.2f}" for x, y, *_ in points)
            parts.append(f'<polyline class="line" points="{path}" stroke="{s.color}"/>')
        for x, y, key, label, value in points:
            parts.append(
                f'<circle {_mark_attrs(key, s.name, value)} cx="{x:.2f}" cy="{y:.2f}" r="3.5" '
                f'fill="{s.color}">'
                f"<title>{esc(label)} – {esc(s.label)}: {esc(fmt(value))}</title></circle>"
            )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{top - 4}" x2="{left}" y2="{base}"/>'
        f'<line class="axis" x1="{left}" y1="{base}" x2="{width - right}" y2="{base}"/>'
        f'<text class="axis-label" x="{left + plot_width / 2:.1f}" y="{height - 14}" '
        f'text-anchor="middle">{esc(x_label)}</text>'
        f'<text class="axis-label" transform="translate(16 {top + plot_height / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{esc(y_label)}</text></svg>'
    )
    return Chart(chart_id, "".join(parts), empty=False)


def scatter_chart(
    chart_id: str,
    title: str,
    points: Sequence[tuple[Key, str, float, float, str]],  # key, label, x, y, group
    groups: Sequence[Series],
    x_series: str,
    y_series: str,
    x_label: str,
    y_label: str,
    width: int = 860,
    height: int = 360,
) -> Chart:
    left, right, bottom = 78, 20, 54
    legend, top = _legend(groups, left, width - right)
    top += 8
    plot_width, plot_height = width - left - right, height - top - bottom
    x_ticks = _nice_ticks(max((p[2] for p in points), default=1))
    y_ticks = _nice_ticks(max((p[3] for p in points), default=1))
    x_scale, y_scale = plot_width / x_ticks[-1], plot_height / y_ticks[-1]
    base = top + plot_height
    colors = {g.name: g.color for g in groups}
    parts = [_svg_open(chart_id, title, width, height), legend]
    for tick in y_ticks:
        y = base - tick * y_scale
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(fmt_count(tick))}</text>"
        )
    for tick in x_ticks:
        x = left + tick * x_scale
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{base}"/>'
            f'<text class="tick" x="{x:.1f}" y="{base + 14}" text-anchor="middle">'
            f"{esc(fmt_count(tick))}</text>"
        )
    for key, label, x_value, y_value, group in points:
        parts.append(
            f'<circle {_mark_attrs(key, y_series, y_value)} data-x-series="{esc(x_series)}" '
            f'data-x="{raw(x_value)}" cx="{left + x_value * x_scale:.2f}" '
            f'cy="{base - y_value * y_scale:.2f}" '
            f'r="5" fill="{colors.get(group, PALETTE[-1])}"><title>{esc(label)} ({esc(group)}): '
            f"{esc(fmt_count(x_value))} days of tenure, first win after {esc(fmt_count(y_value))} days"
            f"</title></circle>"
        )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{base}"/>'
        f'<line class="axis" x1="{left}" y1="{base}" x2="{width - right}" y2="{base}"/>'
        f'<text class="axis-label" x="{left + plot_width / 2:.1f}" y="{height - 12}" '
        f'text-anchor="middle">{esc(x_label)}</text>'
        f'<text class="axis-label" transform="translate(16 {top + plot_height / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{esc(y_label)}</text></svg>'
    )
    return Chart(chart_id, "".join(parts), empty=False)


# ----------------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    series: str  # data-series; "" for a text-only column
    label: str
    fmt: Callable[[object], str] = fmt_count
    numeric: bool = True


@dataclass
class Table:
    table_id: str  # data-for: the chart it belongs to
    caption: str
    columns: Sequence[Column]
    rows: list[tuple[Key, list[object]]] = field(default_factory=list)

    def html(self, open_: bool = False) -> str:
        head = "".join(
            f'<th class="{"num" if c.numeric else "text"}">{esc(c.label)}</th>' for c in self.columns
        )
        body = []
        for key, cells in self.rows:
            tds = []
            for column, value in zip(self.columns, cells, strict=True):
                if column.numeric and column.series:
                    tds.append(
                        f'<td class="num" data-key="{esc(key)}" data-series="{esc(column.series)}" '
                        f'data-value="{raw(value)}">{esc(column.fmt(value))}</td>'
                    )
                else:
                    tds.append(f'<td class="text">{esc("–" if value is None else value)}</td>')
            body.append("<tr>" + "".join(tds) + "</tr>")
        if not body:
            body.append(f'<tr><td class="text" colspan="{len(self.columns)}">No rows.</td></tr>')
        return (
            f'<details class="numbers"{" open" if open_ else ""}><summary>{esc(self.caption)}</summary>'
            f'<table class="data" data-for="{esc(self.table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></details>"
        )


# ------------------------------------------------------------------------------------------- data


class Marts:
    """Read-only access to the serving database; a missing table reads as no rows."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        self.tables = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
            ).fetchall()
        }

    def has(self, *names: str) -> bool:
        return all(name in self.tables for name in names)

    def rows(self, table: str, sql: str, params: Sequence[object] = ()) -> list[dict[str, object]]:
        if table not in self.tables:
            return []
        cursor = self.connection.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Reps:
    names: dict[str, str]
    teams: dict[str, str]

    def name(self, rep_id: object) -> str:
        if rep_id is None:
            return UNOWNED
        return self.names.get(str(rep_id)) or str(rep_id)

    def team(self, rep_id: object) -> str:
        return self.teams.get(str(rep_id)) or NO_TEAM


def load_reps(marts: Marts) -> Reps:
    rows = marts.rows("dim_reps", "SELECT rep_id, rep_name, team FROM dim_reps")
    return Reps(
        {r["rep_id"]: r["rep_name"] for r in rows if r["rep_name"]},
        {r["rep_id"]: r["team"] for r in rows if r["team"]},
    )


def quarter_shift(marts: Marts) -> int:
    """The fiscal quarter grid of the marts ((start month - 1) % 3), read from their quarter starts."""
    for table, sql in (
        ("quota_attainment", "SELECT min(period_start) FROM quota_attainment WHERE period_type = 'quarter'"),
        ("pipeline_coverage", "SELECT min(quarter_start) FROM pipeline_coverage"),
    ):
        rows = marts.rows(table, sql)
        if rows and (start := next(iter(rows[0].values()))) is not None:
            return (start.month - 1) % 3
    return 0


# --------------------------------------------------------------------------------------- sections


@dataclass
class Section:
    section_id: str
    heading: str
    intro: str
    blocks: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)

    def add(self, chart: Chart, table: Table | None = None) -> None:
        self.charts.append(chart)
        self.blocks.append(f'<figure class="chart-box">{chart.svg}</figure>')
        if table is not None:
            self.blocks.append(table.html())

    def html(self) -> str:
        return (
            f'<section id="{esc(self.section_id)}"><h2>{esc(self.heading)}</h2>'
            f'<p class="intro">{self.intro}</p>{"".join(self.blocks)}</section>'
        )


def _sort_rows(
    keys: Iterable[Key], label: Callable[[Key], str], metric: Callable[[Key], object]
) -> list[Key]:
    """Best first by ``metric``, empty values last, then by label."""

    def order(key: Key) -> tuple[int, float, str]:
        value = _number(metric(key))
        return (value is None, -(value or 0.0), label(key))

    return sorted(keys, key=order)


def quota_section(marts: Marts, reps: Reps, as_of: date, shift: int) -> Section:
    current = quarter_of(as_of, shift)
    previous = add_months(current, -3)
    quarters = [
        (previous, f"{quarter_label(previous, shift)} (complete)"),
        (current, quarter_label(current, shift)),
    ]
    section = Section(
        "quota",
        "Quota attainment",
        f"Bookings (won amount by close date) against quota, per rep and per team, for the latest "
        f"complete quarter ({esc(quarter_label(previous, shift))}) and the current one "
        f"({esc(quarter_label(current, shift))}, to {as_of.isoformat()}). Source: "
        "<code>quota_attainment</code> (quarter rows); a team's attainment is the sum of its reps' "
        "bookings over the sum of their quotas (team from <code>dim_reps</code>).",
    )
    rows = marts.rows(
        "quota_attainment",
        "SELECT rep_id, period_start, quota_amount, bookings_amount, won_deals, attainment "
        "FROM quota_attainment WHERE period_type = 'quarter' AND period_start IN (?, ?)",
        [previous, current],
    )
    series = [
        Series(f"attainment@{previous.isoformat()}", quarters[0][1], PALETTE[8]),
        Series(f"attainment@{current.isoformat()}", quarters[1][1], PALETTE[0]),
    ]
    # rep chart: one row per rep, a bar per quarter
    values: Values = {}
    table = Table(
        "quota_rep",
        "Numbers: quota attainment by rep",
        [
            Column("", "Rep", numeric=False),
            Column("", "Team", numeric=False),
            Column("", "Quarter", numeric=False),
            Column("quota_amount", "Quota", fmt_money),
            Column("bookings_amount", "Bookings", fmt_money),
            Column("won_deals", "Won deals"),
            Column("attainment", "Attainment", fmt_pct),
        ],
    )
    labels = dict(quarters)
    rep_ids = sorted({r["rep_id"] for r in rows})
    for row in sorted(rows, key=lambda r: (reps.name(r["rep_id"]), r["period_start"])):
        key = f"{row['rep_id']}|{row['period_start'].isoformat()}"
        values[(row["rep_id"], f"attainment@{row['period_start'].isoformat()}")] = row["attainment"]
        table.rows.append(
            (
                key,
                [
                    reps.name(row["rep_id"]),
                    reps.team(row["rep_id"]),
                    labels[row["period_start"]],
                    row["quota_amount"],
                    row["bookings_amount"],
                    row["won_deals"],
                    row["attainment"],
                ],
            )
        )
    title = "Quota attainment by rep"
    if any(v is not None for v in values.values()):
        order = _sort_rows(rep_ids, reps.name, lambda k: values.get((k, series[1].name)))
        chart = hbar_chart(
            "quota_rep",
            title,
            [(k, reps.name(k)) for k in order if any(values.get((k, s.name)) is not None for s in series)],
            series,
            values,
            fmt_pct,
            "Attainment (bookings ÷ quota)",
            reference=(1.0, "100% of quota"),
            mark_id=_quarter_mark,
        )
    else:
        chart = empty_chart("quota_rep", title, "no rep has a quota in these quarters")
    section.add(chart, table)

    # team chart
    grouped: dict[tuple[str, date], list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        grouped[(reps.team(row["rep_id"]), row["period_start"])].append(row)
    team_values: Values = {}
    team_table = Table(
        "quota_team",
        "Numbers: quota attainment by team",
        [
            Column("", "Team", numeric=False),
            Column("", "Quarter", numeric=False),
            Column("reps", "Reps"),
            Column("quota_amount", "Quota", fmt_money),
            Column("bookings_amount", "Bookings", fmt_money),
            Column("attainment", "Attainment", fmt_pct),
        ],
    )
    for (team, start), members in sorted(grouped.items()):
        quota = _fsum(m["quota_amount"] for m in members)
        bookings = _fsum(m["bookings_amount"] for m in members)
        attainment = _ratio(bookings, quota) if quota and quota > 0 else None
        team_values[(team, f"attainment@{start.isoformat()}")] = attainment
        team_table.rows.append(
            (
                f"{team}|{start.isoformat()}",
                [team, labels[start], len(members), quota, bookings, attainment],
            )
        )
    title = "Quota attainment by team"
    if any(v is not None for v in team_values.values()):
        teams = sorted({team for team, _ in grouped})
        order = _sort_rows(teams, str, lambda k: team_values.get((k, series[1].name)))
        chart = hbar_chart(
            "quota_team",
            title,
            [(k, k) for k in order if any(team_values.get((k, s.name)) is not None for s in series)],
            series,
            team_values,
            fmt_pct,
            "Attainment (team bookings ÷ team quota)",
            reference=(1.0, "100% of quota"),
            mark_id=_quarter_mark,
        )
    else:
        chart = empty_chart("quota_team", title, "no team has a quota in these quarters")
    section.add(chart, team_table)
    return section


def _quarter_mark(key: Key, series: str) -> tuple[Key, str]:
    """A bar of series ``attainment@<quarter>`` carries key ``<row>|<quarter>`` and series
    ``attainment``: the same key and series as the table cell holding that number."""
    measure, quarter = series.split("@", 1)
    return f"{key}|{quarter}", measure


def funnel_section(marts: Marts, as_of: date) -> Section:
    first = add_months(date(as_of.year, as_of.month, 1), -(FUNNEL_MONTHS - 1))
    section = Section(
        "funnel",
        "Funnel conversion by lead source",
        f"Leads created from {first:%b %Y} to {as_of:%b %Y} ({FUNNEL_MONTHS} monthly cohorts of "
        "<code>funnel_conversion</code>, summed per source): how many became opportunities and how many "
        "of those were won. Rates are sums over sums: opportunities ÷ leads and won ÷ leads.",
    )
    rows = marts.rows(
        "funnel_conversion",
        "SELECT lead_source, leads, converted_leads, opportunities, won_opportunities, won_amount "
        "FROM funnel_conversion WHERE cohort_month BETWEEN ? AND ?",
        [first, as_of],
    )
    grouped: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        grouped[row["lead_source"] or "Unknown"].append(row)
    values: Values = {}
    table = Table(
        "funnel_source",
        "Numbers: funnel by lead source",
        [
            Column("", "Lead source", numeric=False),
            Column("leads", "Leads"),
            Column("converted_leads", "Converted"),
            Column("opportunities", "Opportunities"),
            Column("won_opportunities", "Won"),
            Column("won_amount", "Won amount", fmt_money),
            Column("lead_to_opportunity_rate", "Lead → opportunity", fmt_pct),
            Column("lead_to_win_rate", "Lead → win", fmt_pct),
        ],
    )
    totals = {}
    for source, members in grouped.items():
        leads = sum(int(m["leads"] or 0) for m in members)
        opportunities = sum(int(m["opportunities"] or 0) for m in members)
        won = sum(int(m["won_opportunities"] or 0) for m in members)
        totals[source] = [
            leads,
            sum(int(m["converted_leads"] or 0) for m in members),
            opportunities,
            won,
            _fsum(m["won_amount"] for m in members),
            _ratio(opportunities, leads),
            _ratio(won, leads),
        ]
        values[(source, "lead_to_opportunity_rate")] = totals[source][5]
        values[(source, "lead_to_win_rate")] = totals[source][6]
    order = _sort_rows(totals, str, lambda k: totals[k][0])
    for source in order:
        table.rows.append((source, [source, *totals[source]]))
    title = "Funnel conversion by lead source"
    if order:
        chart = hbar_chart(
            "funnel_source",
            title,
            [(k, f"{k} ({fmt_count(totals[k][0])} leads)") for k in order],
            [
                Series("lead_to_opportunity_rate", "Lead → opportunity", PALETTE[0]),
                Series("lead_to_win_rate", "Lead → won deal", PALETTE[2]),
            ],
            values,
            fmt_pct,
            "Share of the source's leads",
        )
    else:
        chart = empty_chart("funnel_source", title, f"no leads created since {first:%b %Y}")
    section.add(chart, table)
    return section


def _bin_label(index: int) -> str:
    low = RESPONSE_BINS[index]
    if index + 1 < len(RESPONSE_BINS):
        return f"{low}–{RESPONSE_BINS[index + 1]}"
    return f"{low}+"


def response_section(marts: Marts, reps: Reps, as_of: date) -> Section:
    start = week_monday(as_of) - timedelta(weeks=WEEKS - 1)
    end = as_of + timedelta(days=1)
    section = Section(
        "lead-response",
        "Lead response",
        f"Leads created from {start.isoformat()} (Monday, {WEEKS} weeks back) to {as_of.isoformat()}, "
        "from <code>lead_response_times</code>: how many business minutes (09:00–17:00 Mon–Fri, owner's "
        "time zone) the first call, email or meeting took, and each owner's SLA rate (leads answered "
        "within the SLA ÷ leads, as <code>lead_response_by_rep_week.sla_rate</code> but over the "
        "whole window).",
    )
    where = "WHERE created_at >= ? AND created_at < ?"
    # bin -1: never answered; bin i: RESPONSE_BINS[i] <= business minutes < RESPONSE_BINS[i + 1]
    bins = " ".join(
        f"WHEN business_response_minutes < {high} THEN {index}"
        for index, high in enumerate(RESPONSE_BINS[1:])
    )
    histogram = marts.rows(
        "lead_response_times",
        "SELECT CASE WHEN NOT coalesce(is_responded, false) OR business_response_minutes IS NULL THEN -1 "
        f"{bins} ELSE {len(RESPONSE_BINS) - 1} END AS bin, count(*) AS leads FROM lead_response_times "
        + where
        + " GROUP BY 1",
        [start, end],
    )
    counts = [0] * len(RESPONSE_BINS)
    unanswered = 0
    for row in histogram:
        if row["bin"] < 0:
            unanswered += int(row["leads"])
        else:
            counts[row["bin"]] += int(row["leads"])
    categories = [(_bin_label(i), _bin_label(i)) for i in range(len(RESPONSE_BINS))]
    categories.append((NOT_RESPONDED, NOT_RESPONDED))
    values: Values = {
        (key, "leads"): count for (key, _), count in zip(categories, [*counts, unanswered], strict=True)
    }
    table = Table(
        "response_histogram",
        "Numbers: leads by business minutes to first response",
        [Column("", "Business minutes", numeric=False), Column("leads", "Leads")],
        [(key, [label, values[(key, "leads")]]) for key, label in categories],
    )
    title = f"Lead response time distribution (last {WEEKS} weeks)"
    if histogram:
        chart = column_chart(
            "response_histogram",
            title,
            categories,
            values,
            fmt_count,
            "Business minutes from lead creation to first response",
            "Leads",
            bars=[Series("leads", "Leads", PALETTE[0])],
        )
    else:
        chart = empty_chart("response_histogram", title, f"no leads created since {start.isoformat()}")
    section.add(chart, table)

    by_owner = marts.rows(
        "lead_response_times",
        "SELECT owner_id, count(*) AS leads, count(*) FILTER (WHERE is_responded) AS responded, "
        "count(*) FILTER (WHERE within_sla) AS within_sla FROM lead_response_times "
        + where
        + " GROUP BY owner_id",
        [start, end],
    )
    sla_values: Values = {}
    sla_table = Table(
        "sla_by_rep",
        "Numbers: SLA rate by lead owner",
        [
            Column("", "Owner", numeric=False),
            Column("leads", "Leads"),
            Column("responded", "Responded"),
            Column("within_sla", "Within SLA"),
            Column("sla_rate", "SLA rate", fmt_pct),
        ],
    )
    stats = {}
    for row in by_owner:
        key = row["owner_id"] if row["owner_id"] is not None else UNOWNED
        rate = _ratio(int(row["within_sla"]), int(row["leads"]))
        stats[key] = [int(row["leads"]), int(row["responded"]), int(row["within_sla"]), rate]
        sla_values[(key, "sla_rate")] = rate
    order = _sort_rows(stats, reps.name, lambda k: stats[k][3])
    for key in order:
        sla_table.rows.append((key, [reps.name(key) if key != UNOWNED else UNOWNED, *stats[key]]))
    title = f"SLA rate by lead owner (last {WEEKS} weeks)"
    if order:
        chart = hbar_chart(
            "sla_by_rep",
            title,
            [(k, reps.name(k) if k != UNOWNED else UNOWNED) for k in order],
            [Series("sla_rate", "Answered within SLA", PALETTE[2])],
            sla_values,
            fmt_pct,
            "Share of leads answered within the SLA",
            annotate=lambda k: f"{fmt_count(stats[k][0])} leads",
        )
    else:
        chart = empty_chart("sla_by_rep", title, f"no leads created since {start.isoformat()}")
    section.add(chart, sla_table)
    return section


def coverage_section(marts: Marts, reps: Reps, as_of: date, shift: int) -> Section:
    quarter = quarter_of(as_of, shift)
    section = Section(
        "coverage",
        "Pipeline coverage",
        f"Open pipeline closing in {esc(quarter_label(quarter, shift))} against the quota still to "
        f"book, per rep (<code>pipeline_coverage</code> for the as_of quarter). Coverage = open "
        "pipeline ÷ remaining quota; 3× is the usual rule of thumb.",
    )
    rows = marts.rows(
        "pipeline_coverage",
        "SELECT rep_id, quota_amount, bookings_to_date, remaining_quota, open_opportunities, open_pipeline, "
        "weighted_pipeline, commit_amount, best_case_amount, coverage_ratio FROM pipeline_coverage "
        "WHERE quarter_start = ?",
        [quarter],
    )
    columns = [
        "quota_amount",
        "bookings_to_date",
        "remaining_quota",
        "open_opportunities",
        "open_pipeline",
        "weighted_pipeline",
        "commit_amount",
        "best_case_amount",
        "coverage_ratio",
    ]
    by_rep = {row["rep_id"]: row for row in rows}
    values: Values = {
        (rep, c): row[c] for rep, row in by_rep.items() for c in ("open_pipeline", "remaining_quota")
    }
    order = _sort_rows(by_rep, reps.name, lambda k: by_rep[k]["coverage_ratio"])
    table = Table(
        "pipeline_coverage",
        "Numbers: pipeline coverage by rep",
        [
            Column("", "Rep", numeric=False),
            Column("quota_amount", "Quota", fmt_money),
            Column("bookings_to_date", "Booked", fmt_money),
            Column("remaining_quota", "Remaining", fmt_money),
            Column("open_opportunities", "Open opps"),
            Column("open_pipeline", "Open pipeline", fmt_money),
            Column("weighted_pipeline", "Weighted", fmt_money),
            Column("commit_amount", "Commit", fmt_money),
            Column("best_case_amount", "Best case", fmt_money),
            Column("coverage_ratio", "Coverage", fmt_ratio),
        ],
        [(rep, [reps.name(rep), *(by_rep[rep][c] for c in columns)]) for rep in order],
    )
    title = f"Pipeline coverage by rep, {quarter_label(quarter, shift)}"
    if order:
        chart = hbar_chart(
            "pipeline_coverage",
            title,
            [(k, reps.name(k)) for k in order],
            [
                Series("open_pipeline", "Open pipeline", PALETTE[0]),
                Series("remaining_quota", "Remaining quota", PALETTE[1]),
            ],
            values,
            fmt_money,
            "Amount",
            annotate=lambda k: (
                f"{fmt_ratio(by_rep[k]['coverage_ratio'])}" if by_rep[k]["coverage_ratio"] is not None else ""
            ),
        )
    else:
        chart = empty_chart("pipeline_coverage", title, "no rep has quota or pipeline this quarter")
    section.add(chart, table)
    return section


def forecast_section(marts: Marts, as_of: date) -> tuple[Section, bool]:
    section = Section(
        "forecast",
        "Forecast versus actual",
        "Each forecast method replayed on past months (<code>forecast_accuracy</code>: the forecast made "
        "on the month's first day from the pipeline as it stood then, against the bookings that month), "
        "each method's accuracy over those months (<code>forecast_accuracy_summary</code>: MAPE, and bias = "
        "Σ error ÷ Σ actual), and the org forecast for the months ahead (<code>sales_forecast</code>, "
        "with its 80% interval).",
    )
    if not marts.has("sales_forecast", "forecast_accuracy"):
        missing = [t for t in ("sales_forecast", "forecast_accuracy") if not marts.has(t)]
        section.blocks.append(
            '<p class="note unavailable" data-note="forecast-unavailable">'
            "<strong>Forecast not available.</strong> "
            f"The serving database has no {' or '.join(f'<code>{t}</code>' for t in missing)} table yet; "
            "the forecast appears here once the forecast marts are published.</p>"
        )
        return section, False

    accuracy = marts.rows(
        "forecast_accuracy",
        "SELECT method, month_start, forecast, actual, error, absolute_percentage_error "
        "FROM forecast_accuracy WHERE level = 'org' ORDER BY month_start, method",
    )
    methods = [m for m in FORECAST_METHODS if any(r["method"] == m for r in accuracy)]
    methods += sorted({r["method"] for r in accuracy} - set(methods))
    months = sorted({r["month_start"] for r in accuracy})
    values: Values = {}
    for row in accuracy:
        key = row["month_start"].isoformat()
        values[(key, row["method"])] = row["forecast"]
        values.setdefault((key, "actual"), row["actual"])
    colors = dict(zip(FORECAST_METHODS, (PALETTE[0], PALETTE[1], PALETTE[4], PALETTE[3]), strict=True))
    method_series = [
        Series(m, METHOD_LABELS.get(m, m), colors.get(m, PALETTE[(i + 5) % len(PALETTE)]))
        for i, m in enumerate(methods)
    ]
    categories = [(m.isoformat(), f"{m:%b %Y}") for m in months]
    table = Table(
        "forecast_backtest",
        "Numbers: backtest, org level",
        [Column("", "Month", numeric=False), Column("actual", "Actual", fmt_money)]
        + [Column(s.name, s.label, fmt_money) for s in method_series],
        [
            (k, [label, values.get((k, "actual")), *(values.get((k, s.name)) for s in method_series)])
            for k, label in categories
        ],
    )
    title = "Forecast versus actual bookings per month, org (backtest)"
    if months:
        chart = column_chart(
            "forecast_backtest",
            title,
            categories,
            values,
            fmt_money,
            "Month",
            "Bookings",
            bars=[Series("actual", "Actual bookings", "#cbd5e1")],
            lines=method_series,
        )
    else:
        chart = empty_chart("forecast_backtest", title, "the backtest has no completed month yet")
    section.add(chart, table)

    # accuracy per method
    summary_columns = ["months", "observations", "mape", "bias", "total_forecast", "total_actual"]
    if marts.has("forecast_accuracy_summary"):
        summary = marts.rows(
            "forecast_accuracy_summary",
            "SELECT level, method, months, observations, mape, bias, total_forecast, total_actual "
            "FROM forecast_accuracy_summary",
        )
        source = "forecast_accuracy_summary"
    else:
        summary = _summarize_accuracy(
            marts.rows(
                "forecast_accuracy",
                "SELECT level, method, month_start, forecast, actual, absolute_percentage_error "
                "FROM forecast_accuracy",
            )
        )
        source = "forecast_accuracy (summarised here: no forecast_accuracy_summary table)"
    level_order = {"org": 0, "team": 1, "rep": 2}
    method_order = {m: i for i, m in enumerate(FORECAST_METHODS)}
    summary.sort(
        key=lambda r: (level_order.get(r["level"], 9), method_order.get(r["method"], 9), r["method"])
    )
    accuracy_table = Table(
        "forecast_mape",
        f"Numbers: accuracy of each method ({source})",
        [
            Column("", "Level", numeric=False),
            Column("", "Method", numeric=False),
            Column("months", "Months"),
            Column("observations", "Scored"),
            Column("mape", "MAPE", fmt_pct),
            Column("bias", "Bias", fmt_signed_pct),
            Column("total_forecast", "Σ forecast", fmt_money),
            Column("total_actual", "Σ actual", fmt_money),
        ],
        [
            (
                f"{r['level']}|{r['method']}",
                [r["level"], METHOD_LABELS.get(r["method"], r["method"]), *(r[c] for c in summary_columns)],
            )
            for r in summary
        ],
    )
    org = {r["method"]: r for r in summary if r["level"] == "org"}
    mape_values: Values = {(f"org|{m}", "mape"): org[m]["mape"] for m in org}
    title = "Forecast accuracy by method, org (MAPE, lower is better)"
    if any(v is not None for v in mape_values.values()):
        order = [m for m in [*FORECAST_METHODS, *sorted(set(org) - set(FORECAST_METHODS))] if m in org]
        chart = hbar_chart(
            "forecast_mape",
            title,
            [(f"org|{m}", METHOD_LABELS.get(m, m)) for m in order],
            [Series("mape", "Mean absolute percentage error", PALETTE[3])],
            mape_values,
            fmt_pct,
            "MAPE over the backtest months",
            annotate=lambda k: f"bias {fmt_signed_pct(org[k.split('|', 1)[1]]['bias'])}",
        )
    else:
        chart = empty_chart("forecast_mape", title, "no method could be scored yet")
    section.add(chart, accuracy_table)

    outlook = marts.rows(
        "sales_forecast",
        "SELECT month_start, closed_to_date, commit, best_case, weighted_pipeline, calibrated_pipeline, "
        "run_rate, forecast, forecast_low, forecast_high FROM sales_forecast WHERE level = 'org' "
        "ORDER BY month_start",
    )
    outlook_columns = [
        "closed_to_date",
        "commit",
        "best_case",
        "weighted_pipeline",
        "calibrated_pipeline",
        "run_rate",
        "forecast",
        "forecast_low",
        "forecast_high",
    ]
    outlook_values: Values = {
        (r["month_start"].isoformat(), c): r[c]
        for r in outlook
        for c in ("closed_to_date", "forecast", "forecast_low", "forecast_high")
    }
    outlook_table = Table(
        "forecast_outlook",
        "Numbers: org forecast by month",
        [Column("", "Month", numeric=False)]
        + [Column(c, c.replace("_", " ").capitalize(), fmt_money) for c in outlook_columns],
        [
            (r["month_start"].isoformat(), [f"{r['month_start']:%b %Y}", *(r[c] for c in outlook_columns)])
            for r in outlook
        ],
    )
    title = f"Org forecast for the months ahead (as of {as_of.isoformat()})"
    if outlook:
        chart = column_chart(
            "forecast_outlook",
            title,
            [(r["month_start"].isoformat(), f"{r['month_start']:%b %Y}") for r in outlook],
            outlook_values,
            fmt_money,
            "Month",
            "Bookings",
            bars=[
                Series("closed_to_date", "Closed to date", PALETTE[2]),
                Series("forecast", "Forecast", PALETTE[0]),
            ],
            interval=(
                Series("forecast_low", "80% interval", "#1e293b"),
                Series("forecast_high", "80% interval (high)", "#1e293b"),
            ),
        )
    else:
        chart = empty_chart("forecast_outlook", title, "the forecast has no org rows")
    section.add(chart, outlook_table)
    return section, True


def _summarize_accuracy(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """forecast_accuracy_summary's definition (docs/metrics.md), for a serving file without it."""
    grouped: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        grouped[(row["level"], row["method"])].append(row)
    summary = []
    for (level, method), members in grouped.items():
        scored = [e for r in members if (e := _number(r["absolute_percentage_error"])) is not None]
        total_forecast = _fsum(r["forecast"] for r in members) or 0.0
        total_actual = _fsum(r["actual"] for r in members) or 0.0
        summary.append(
            {
                "level": level,
                "method": method,
                "months": len({r["month_start"] for r in members}),
                "observations": len(scored),
                "mape": math.fsum(scored) / len(scored) if scored else None,
                "bias": (total_forecast - total_actual) / total_actual if total_actual > 0 else None,
                "total_forecast": total_forecast,
                "total_actual": total_actual,
            }
        )
    return summary


def activity_section(marts: Marts, reps: Reps, as_of: date) -> Section:
    last = week_monday(as_of)
    first = last - timedelta(weeks=WEEKS - 1)
    section = Section(
        "activity",
        "Rep activity",
        f"Calls and emails logged and meetings held (customer, internal and training), per week from "
        f"{first.isoformat()} to the week of {as_of.isoformat()} (<code>rep_activity</code>), for the whole "
        "team and per rep over those weeks.",
    )
    rows = marts.rows(
        "rep_activity",
        "SELECT rep_id, week_start, calls, emails, customer_meetings, internal_meetings, training_sessions, "
        "opportunities_created FROM rep_activity WHERE week_start BETWEEN ? AND ?",
        [first, last],
    )
    measures = [
        "calls",
        "emails",
        "customer_meetings",
        "internal_meetings",
        "training_sessions",
        "opportunities_created",
    ]
    weeks = [first + timedelta(weeks=i) for i in range(WEEKS)]
    weekly = {w: dict.fromkeys(measures, 0) for w in weeks}
    per_rep: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(measures, 0))
    for row in rows:
        for m in measures:
            weekly[row["week_start"]][m] += int(row[m] or 0)
            per_rep[row["rep_id"]][m] += int(row[m] or 0)

    def meetings(counts: dict[str, int]) -> int:
        return counts["customer_meetings"] + counts["internal_meetings"] + counts["training_sessions"]

    stacked = [
        Series("calls", "Calls", PALETTE[0]),
        Series("emails", "Emails", PALETTE[1]),
        Series("meetings", "Meetings", PALETTE[2]),
    ]
    values: Values = {}
    for w in weeks:
        for s in ("calls", "emails"):
            values[(w.isoformat(), s)] = weekly[w][s]
        values[(w.isoformat(), "meetings")] = meetings(weekly[w])
    columns = [
        Column("calls", "Calls"),
        Column("emails", "Emails"),
        Column("meetings", "Meetings"),
        Column("customer_meetings", "Customer mtgs"),
        Column("internal_meetings", "Internal mtgs"),
        Column("training_sessions", "Trainings"),
        Column("opportunities_created", "Opps created"),
    ]

    def cells(counts: dict[str, int]) -> list[object]:
        return [meetings(counts) if c.series == "meetings" else counts[c.series] for c in columns]

    table = Table(
        "rep_activity_weekly",
        "Numbers: activity per week, all reps",
        [Column("", "Week of", numeric=False), *columns],
        [(w.isoformat(), [w.isoformat(), *cells(weekly[w])]) for w in weeks],
    )
    title = f"Rep activity per week, all reps (last {WEEKS} weeks)"
    if rows:
        chart = column_chart(
            "rep_activity_weekly",
            title,
            [(w.isoformat(), f"{w:%d %b}") for w in weeks],
            values,
            fmt_count,
            "Week (Monday)",
            "Activities",
            bars=stacked,
            stacked=True,
        )
    else:
        chart = empty_chart("rep_activity_weekly", title, f"no activity since {first.isoformat()}")
    section.add(chart, table)

    rep_values: Values = {}
    for rep, counts in per_rep.items():
        rep_values[(rep, "calls")] = counts["calls"]
        rep_values[(rep, "emails")] = counts["emails"]
        rep_values[(rep, "meetings")] = meetings(counts)
    order = _sort_rows(per_rep, reps.name, lambda k: sum(cells(per_rep[k])[:3]))
    rep_table = Table(
        "rep_activity_by_rep",
        "Numbers: activity per rep over the window",
        [Column("", "Rep", numeric=False), *columns],
        [(rep, [reps.name(rep), *cells(per_rep[rep])]) for rep in order],
    )
    title = f"Rep activity by rep (last {WEEKS} weeks)"
    if order:
        chart = hbar_chart(
            "rep_activity_by_rep",
            title,
            [(k, reps.name(k)) for k in order],
            stacked,
            rep_values,
            fmt_count,
            "Calls, emails and meetings",
            stacked=True,
        )
    else:
        chart = empty_chart("rep_activity_by_rep", title, f"no activity since {first.isoformat()}")
    section.add(chart, rep_table)
    return section


def onboarding_section(marts: Marts, reps: Reps) -> Section:
    section = Section(
        "onboarding",
        "Onboarding ramp",
        "Each rep's tenure against the days from hire to their first won deal, coloured by ramp status "
        "(<code>onboarding_progress</code>: ramping under 90 days of tenure, behind over 180 days without a "
        "win, ramped otherwise); reps without a win yet are in the table only.",
    )
    rows = marts.rows(
        "onboarding_progress",
        "SELECT rep_id, hire_date, tenure_days, trainings_attended_90d, days_to_first_win, "
        "first_full_quarter_attainment, ramp_status FROM onboarding_progress",
    )
    groups = [
        Series("ramping", "Ramping", PALETTE[1]),
        Series("ramped", "Ramped", PALETTE[2]),
        Series("behind", "Behind", PALETTE[3]),
    ]
    rows.sort(key=lambda r: (r["hire_date"] or date.min, reps.name(r["rep_id"])), reverse=True)
    table = Table(
        "onboarding_ramp",
        "Numbers: onboarding per rep",
        [
            Column("", "Rep", numeric=False),
            Column("", "Hired", numeric=False),
            Column("", "Status", numeric=False),
            Column("tenure_days", "Tenure (days)"),
            Column("trainings_attended_90d", "Trainings (90d)"),
            Column("days_to_first_win", "Days to first win"),
            Column("first_full_quarter_attainment", "1st full quarter", fmt_pct),
        ],
        [
            (
                r["rep_id"],
                [
                    reps.name(r["rep_id"]),
                    r["hire_date"].isoformat() if r["hire_date"] else None,
                    r["ramp_status"],
                    r["tenure_days"],
                    r["trainings_attended_90d"],
                    r["days_to_first_win"],
                    r["first_full_quarter_attainment"],
                ],
            )
            for r in rows
        ],
    )
    points = [
        (r["rep_id"], reps.name(r["rep_id"]), r["tenure_days"], r["days_to_first_win"], r["ramp_status"])
        for r in rows
        if r["tenure_days"] is not None and r["days_to_first_win"] is not None
    ]
    title = "Onboarding ramp: tenure versus days to first win"
    if points:
        chart = scatter_chart(
            "onboarding_ramp",
            title,
            points,
            groups,
            "tenure_days",
            "days_to_first_win",
            "Tenure (days since hire)",
            "Days from hire to first win",
        )
    else:
        chart = empty_chart("onboarding_ramp", title, "no rep with a hire date has won a deal")
    section.add(chart, table)

    status_counts = {s: 0 for s in RAMP_STATUSES}
    for r in rows:
        if r["ramp_status"]:
            status_counts[r["ramp_status"]] = status_counts.get(r["ramp_status"], 0) + 1
    status_values: Values = {(s, "reps"): n for s, n in status_counts.items()}
    status_table = Table(
        "onboarding_status",
        "Numbers: reps by ramp status",
        [Column("", "Status", numeric=False), Column("reps", "Reps")],
        [(s, [s, n]) for s, n in status_counts.items()],
    )
    title = "Reps by ramp status"
    if rows:
        chart = column_chart(
            "onboarding_status",
            title,
            [(s, s) for s in status_counts],
            status_values,
            fmt_count,
            "Ramp status",
            "Reps",
            bars=[Series("reps", "Reps", PALETTE[4])],
            height=260,
        )
    else:
        chart = empty_chart("onboarding_status", title, "no rep has a hire date")
    section.add(chart, status_table)
    return section


def hygiene_section(marts: Marts) -> Section:
    section = Section(
        "crm-hygiene",
        "CRM hygiene trend",
        "Records failing each CRM-hygiene check, org-wide, at each nightly run "
        "(<code>crm_data_quality_history</code>, level org; docs/data-quality.md defines the checks).",
    )
    rows = marts.rows(
        "crm_data_quality_history",
        "SELECT as_of, check_name, record_count FROM crm_data_quality_history WHERE level = 'org' "
        "ORDER BY as_of, check_name",
    )
    days = sorted({r["as_of"] for r in rows})
    checks = sorted({r["check_name"] for r in rows})
    values: Values = {(r["as_of"].isoformat(), r["check_name"]): int(r["record_count"]) for r in rows}
    series = [Series(c, c.replace("_", " "), PALETTE[i % len(PALETTE)]) for i, c in enumerate(checks)]
    table = Table(
        "crm_hygiene",
        "Numbers: failing records per check and run",
        [Column("", "Run (as_of)", numeric=False), *(Column(c, c.replace("_", " ")) for c in checks)],
        [(d.isoformat(), [d.isoformat(), *(values.get((d.isoformat(), c)) for c in checks)]) for d in days],
    )
    title = "CRM hygiene: failing records per check over time"
    if rows:
        chart = column_chart(
            "crm_hygiene",
            title,
            [(d.isoformat(), d.isoformat()) for d in days],
            values,
            fmt_count,
            "Run date (as_of)",
            "Failing records",
            lines=series,
            height=380,
        )
    else:
        chart = empty_chart("crm_hygiene", title, "no hygiene history yet")
    section.add(chart, table)
    return section


# ------------------------------------------------------------------------------------------- page

STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  margin: 0; background: #f8fafc; color: #0f172a; }
header { background: #0f172a; color: #f8fafc; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 2px 0; color: #cbd5e1; font-size: 13px; }
nav { padding: 8px 32px; background: #e2e8f0; font-size: 13px; }
nav a { color: #1e3a8a; margin-right: 14px; text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1100px; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 8px 20px 16px;
  margin: 18px 0; }
h2 { font-size: 19px; margin: 10px 0 4px; }
p.intro { font-size: 13px; color: #475569; margin: 4px 0 10px; }
figure.chart-box { margin: 10px 0 4px; overflow-x: auto; }
svg.chart { display: block; font-size: 12px; background: #fff; }
svg.chart .chart-title { font-size: 15px; font-weight: 600; fill: #0f172a; }
svg.chart .axis { stroke: #334155; stroke-width: 1; }
svg.chart .grid { stroke: #e2e8f0; stroke-width: 1; }
svg.chart .tick, svg.chart .category { fill: #475569; font-size: 11px; }
svg.chart .axis-label { fill: #0f172a; font-size: 12px; font-weight: 600; }
svg.chart .legend text { fill: #334155; font-size: 11.5px; }
svg.chart .annotation { fill: #334155; font-size: 11px; font-style: italic; }
svg.chart .value-label { fill: #334155; font-size: 10px; }
svg.chart .reference { stroke: #dc2626; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg.chart .reference-label { fill: #dc2626; font-size: 11px; }
svg.chart .line { fill: none; stroke-width: 2; }
svg.chart .whisker { stroke-width: 1.5; }
svg.chart .mark:hover { opacity: 0.75; }
svg.chart .empty { fill: #64748b; font-size: 14px; }
svg.chart .empty-frame { fill: #f1f5f9; stroke: #cbd5e1; stroke-dasharray: 4 3; }
details.numbers { margin: 2px 0 14px; font-size: 12.5px; }
details.numbers summary { cursor: pointer; color: #1e3a8a; }
table.data { border-collapse: collapse; margin-top: 6px; }
table.data th, table.data td { padding: 3px 9px; border-bottom: 1px solid #e2e8f0; }
table.data th { background: #f1f5f9; text-align: left; }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { background: #fef9c3; border: 1px solid #facc15; padding: 10px 14px; border-radius: 6px;
  font-size: 14px; }
code { font-size: 12px; background: #f1f5f9; padding: 0 3px; border-radius: 3px; }
@media print { nav { display: none; } section { break-inside: avoid-page; }
  details.numbers { display: none; } }
"""


def _publication(marts: Marts) -> str:
    rows = marts.rows(
        "_publication",
        "SELECT max(published_at) AS published_at, any_value(dagster_run_id) AS run_id FROM _publication",
    )
    if not rows or rows[0]["published_at"] is None:
        return ""
    return f"Marts published {rows[0]['published_at']:%Y-%m-%d %H:%M} UTC by run {esc(rows[0]['run_id'])}."


def build_html(marts: Marts, as_of: date) -> tuple[str, list[Chart], bool]:
    reps = load_reps(marts)
    shift = quarter_shift(marts)
    forecast, forecast_available = forecast_section(marts, as_of)
    sections = [
        quota_section(marts, reps, as_of, shift),
        funnel_section(marts, as_of),
        response_section(marts, reps, as_of),
        coverage_section(marts, reps, as_of, shift),
        forecast,
        activity_section(marts, reps, as_of),
        onboarding_section(marts, reps),
        hygiene_section(marts),
    ]
    charts = [chart for section in sections for chart in section.charts]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    nav = "".join(f'<a href="#{esc(s.section_id)}">{esc(s.heading)}</a>' for s in sections)
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Sales operations report – {as_of.isoformat()}</title>"
        f"<style>{STYLE}</style></head><body>"
        f'<header><h1>Sales operations report</h1><p>As of <strong data-as-of="{as_of.isoformat()}">'
        f"{as_of:%A %d %B %Y}</strong>. Generated {generated} UTC. {_publication(marts)}</p>"
        "<p>Every number comes from the published metric marts (docs/metrics.md); hover a mark for its "
        "value, open “Numbers” under a chart for the table.</p></header>"
        f"<nav>{nav}</nav><main>{''.join(s.html() for s in sections)}</main></body></html>\n"
    )
    return page, charts, forecast_available


def render_report(serving_path: Path, output_path: Path, as_of: date) -> ReportSummary:
    """Read the serving database (read-only) and write the report to ``output_path`` atomically."""
    serving_path, output_path = Path(serving_path), Path(output_path)
    if not serving_path.exists():
        raise FileNotFoundError(f"serving database {serving_path} does not exist")
    with connect_duckdb(serving_path, read_only=True) as connection:
        page, charts, forecast_available = build_html(Marts(connection), as_of)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output_path.parent, f".{output_path.name}.")
    temporary = output_path.with_name(f".{output_path.name}.{os.getpid()}.tmp")
    data = page.encode("utf-8")
    temporary.write_bytes(data)
    crash_point("report_write")
    os.replace(temporary, output_path)
    return ReportSummary(
        path=output_path,
        as_of=as_of,
        charts=tuple(c.chart_id for c in charts),
        empty_charts=tuple(c.chart_id for c in charts if c.empty),
        forecast_available=forecast_available,
        bytes=len(data),
    )
