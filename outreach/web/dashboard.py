"""The expansion dashboard (``/dashboard``) and the outcomes/metrics JSON API.

The page shows :func:`outreach.metrics.report.build_report` for a period with four charts — funnel by motion,
conversion by trigger, NRR/GRR over time, post-expansion churn — drawn here as inline SVG on the server: no
JavaScript chart library, nothing fetched from a CDN. Each chart carries a ``<title>`` and ``<desc>`` and its
numbers as text, and the tables under it hold the same figures for screen readers and copying.

``POST /api/outcomes`` records outcomes (one object or a list, the ``outreach events ingest`` format) for
``admin`` and ``marketing`` tokens; ``GET /api/metrics`` returns the report as JSON (any token).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from outreach.errors import OutreachError, PermissionDeniedError
from outreach.metrics.ingest import known_accounts
from outreach.metrics.outcomes import OutcomeEvent, OutcomeIngestReport, ingest_outcomes
from outreach.metrics.report import (
    DIMENSIONS,
    MOTIONS,
    Period,
    Report,
    build_report,
    latest_period_with_data,
    parse_period,
)
from outreach.web.api import User as ApiUser
from outreach.web.pages import User, _context, _render
from outreach.web.state import ReviewApp

router = APIRouter()
WRITERS = ("admin", "marketing")
MOTION_COLORS = {"upsell": "#2f5fd0", "cross_sell": "#1f8a5b", "bundle": "#b26a00"}
STAGES = ("drafted", "approved", "sent", "replied", "converted")


def _review(request: Request) -> ReviewApp:
    review: ReviewApp = request.app.state.review
    return review


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise OutreachError(f"{name} '{value[:40]}' is not a date", hint="use YYYY-MM-DD") from None
    if not 1970 <= day.year <= 2200:
        raise OutreachError(f"{name} {day} is out of range", hint="use a date between 1970 and 2200")
    return day


def _report(request: Request, period: str | None, start: str | None, end: str | None, as_of: str | None,
            window: int | None, *, latest: bool = False) -> tuple[Report, Period]:
    """The report for the asked period; with ``latest`` and no period asked, the latest quarter with data."""
    review = _review(request)
    settings = review.settings
    analysis = _day(as_of, "as_of") or settings.as_of or date.today()
    if not (period or start or end) and latest:
        chosen = latest_period_with_data(review.factory, analysis)
    else:
        chosen = parse_period(period or None, start=_day(start, "from"), end=_day(end, "to"), as_of=analysis)
    report = build_report(review.factory, period=chosen, as_of=analysis, data_dir=settings.data_dir,
                          window_days=window if window is not None else settings.attribution_window_days,
                          rules_path=settings.rules_path, prompts_dir=settings.prompts_dir,
                          rates_path=settings.rates_path, currency=settings.reporting_currency)
    return report, chosen


# ------------------------------------------------------------------------------------------------ charts


def _svg(chart_id: str, title: str, desc: str, width: int, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" id="{chart_id}" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(desc)}</desc>'
        + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12, weight: str = "normal",
          fill: str = "#1f2937") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" font-weight="{weight}" '
            f'fill="{fill}">{escape(text)}</text>')


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def funnel_chart(report: Report) -> Markup:
    """Grouped bars: for each funnel stage, one bar per motion, count written on the bar."""
    rows = {row.key: row for row in report.funnel["motion"]}
    motions = [m for m in MOTIONS if m in rows] + [m for m in rows if m not in MOTIONS]
    width, height, left, top, bottom = 640, 260, 40, 30, 40
    plot_h = height - top - bottom
    peak = max([getattr(rows[m], s) for m in motions for s in STAGES] + [1])
    group_w = (width - left - 10) / len(STAGES)
    bar_w = max(8.0, (group_w - 16) / max(len(motions), 1))
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#9ca3af"/>']
    parts = []
    for i, stage in enumerate(STAGES):
        x0 = left + i * group_w + 8
        body.append(_text(x0 + (group_w - 16) / 2, height - bottom + 18, stage, anchor="middle"))
        for j, motion in enumerate(motions):
            value = getattr(rows[motion], stage)
            bar_h = plot_h * value / peak
            x = x0 + j * bar_w
            body.append(f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w - 2:.1f}" '
                        f'height="{bar_h:.1f}" fill="{MOTION_COLORS.get(motion, "#6b7280")}">'
                        f'<title>{escape(f"{motion} {stage}: {value}")}</title></rect>')
            body.append(_text(x + (bar_w - 2) / 2, top + plot_h - bar_h - 3, str(value), anchor="middle", size=10))
            parts.append(f"{motion} {stage} {value}")
    for j, motion in enumerate(motions):
        body.append(f'<rect x="{left + j * 110}" y="6" width="10" height="10" '
                    f'fill="{MOTION_COLORS.get(motion, "#6b7280")}"/>')
        body.append(_text(left + j * 110 + 14, 15, motion.replace("_", "-"), size=11))
    desc = "Drafted, approved, sent, replied and converted counts per motion: " + "; ".join(parts) + "."
    if not motions:
        desc = "No drafts in this period."
        body.append(_text(width / 2, height / 2, "No drafts in this period", anchor="middle"))
    return _svg("chart-funnel", "Funnel by motion", desc, width, height, body)


def hbar_chart(chart_id: str, title: str, rows: list[tuple[str, float | None, str]], *, empty: str,
               max_value: float = 1.0, color: str = "#2f5fd0") -> Markup:
    """Horizontal bars, one per row: (label, value 0..max_value or None, text written after the bar)."""
    width, left, row_h, top = 640, 190, 24, 8
    height = top * 2 + row_h * max(len(rows), 1)
    body = []
    for i, (label, value, text) in enumerate(rows):
        y = top + i * row_h
        body.append(_text(left - 8, y + 15, label, anchor="end"))
        bar = 0.0 if value is None else (width - left - 140) * min(value, max_value) / max_value
        body.append(f'<rect x="{left}" y="{y + 4}" width="{bar:.1f}" height="{row_h - 8}" fill="{color}"/>')
        body.append(_text(left + bar + 6, y + 15, text, size=11))
    if not rows:
        body.append(_text(width / 2, height / 2 + 4, empty, anchor="middle"))
    desc = "; ".join(f"{label}: {text}" for label, _, text in rows) or empty
    return _svg(chart_id, title, desc, width, height, body)


def conversion_chart(report: Report) -> Markup:
    rows = [(row.key.replace("_", " "), row.conversion_rate,
             f"{_pct(row.conversion_rate)} ({row.converted} of {row.sent} sent)")
            for row in report.funnel["trigger"] if row.sent]
    return hbar_chart("chart-conversion", "Conversion by trigger (converted / sent)", rows,
                      empty="Nothing sent in this period")


def reverts_chart(report: Report) -> Markup:
    rows = [(r.key.replace("_", " "), r.rate,
             f"{_pct(r.rate)} ({r.reverted} of {r.expansions - r.pending}; {r.pending} within 90 days)")
            for r in report.post_expansion]
    return hbar_chart("chart-reverts", "Post-expansion churn or downgrade within 90 days", rows,
                      empty="No expansions in this period", color="#c2410c")


def nrr_chart(report: Report) -> Markup:
    """NRR and GRR per month as two lines, each point labelled with its percentage."""
    points = [p for p in report.nrr_series if p.nrr is not None]
    width, height, left, top, bottom = 640, 240, 50, 20, 40
    plot_w, plot_h = width - left - 50, height - top - bottom
    if not points:
        reason = "no data" if report.nrr_series else "No starting MRR (serve with a data directory)"
        body = [_text(width / 2, height / 2, reason, anchor="middle")]
        return _svg("chart-nrr", "NRR and GRR by month", "No data.", width, height, body)
    values = [v for p in points for v in (p.nrr, p.grr) if v is not None]
    low, high = min([*values, 0.9]), max([*values, 1.1])
    step = plot_w / max(len(points) - 1, 1)

    def y(value: float) -> float:
        return top + plot_h * (high - value) / (high - low)

    body = [f'<line x1="{left}" y1="{y(1.0):.1f}" x2="{width - 30}" y2="{y(1.0):.1f}" stroke="#9ca3af" '
            f'stroke-dasharray="4 3"/>', _text(left - 6, y(1.0) + 4, "100%", anchor="end", size=10)]
    for name, color in (("nrr", "#2f5fd0"), ("grr", "#6b7280")):
        coords = [(left + i * step, y(getattr(p, name))) for i, p in enumerate(points) if getattr(p, name) is not None]
        body.append('<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
            color, " ".join(f"{x:.1f},{yy:.1f}" for x, yy in coords)))
        for (x, yy), point in zip(coords, points, strict=False):
            body.append(f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="3" fill="{color}"/>')
            label_y = yy - 7 if name == "nrr" else yy + 15  # NRR above its point, GRR below: no overlap at 100%
            body.append(_text(x, label_y, _pct(getattr(point, name)), anchor="middle", size=10, fill=color))
    for i, point in enumerate(points):
        body.append(_text(left + i * step, height - bottom + 18, point.month, anchor="middle", size=11))
    body.append(_text(left, height - 4, "— NRR", size=11, fill="#2f5fd0"))
    body.append(_text(left + 70, height - 4, "— GRR", size=11, fill="#6b7280"))
    desc = "; ".join(f"{p.month}: NRR {_pct(p.nrr)}, GRR {_pct(p.grr)}" for p in points)
    missing = [p.month for p in report.nrr_series if p.nrr is None]
    if missing:
        desc += "; no data for " + ", ".join(missing)
    return _svg("chart-nrr", "NRR and GRR by month", desc, width, height, body)


# ---------------------------------------------------------------------------------------------- routes


@dataclass
class Shown:
    period: str
    start: str
    end: str
    as_of: str
    window: str


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page(request: Request, user: User, period: str | None = None, start: str | None = None,
                   end: str | None = None, as_of: str | None = None,
                   window: Annotated[int | None, Query(ge=0, le=3650)] = None) -> HTMLResponse:
    report, chosen = _report(request, period, start, end, as_of, window, latest=True)
    shown = Shown(period=period or ("" if start or end else chosen.label), start=start or "", end=end or "",
                  as_of=report.as_of.isoformat(), window=str(report.window_days))
    charts = {"funnel": funnel_chart(report), "conversion": conversion_chart(report), "nrr": nrr_chart(report),
              "reverts": reverts_chart(report)}
    return _render(request, "dashboard.html", _context(
        request, user, report=report, charts=charts, shown=shown, dimensions=DIMENSIONS,
        has_data=_review(request).settings.data_dir is not None,
    ))


@router.get("/api/metrics", tags=["metrics"])
def metrics_api(request: Request, _user: ApiUser, period: str | None = None, start: str | None = None,
                end: str | None = None, as_of: str | None = None,
                window: Annotated[int | None, Query(ge=0, le=3650)] = None) -> dict[str, Any]:
    """The expansion report (``outreach report --json``) for a period: ``2026-Q3``, ``2026-09``, ``2026`` or
    ``start``/``end`` dates."""
    report, _ = _report(request, period, start, end, as_of, window)
    return report.to_json()


class OutcomesResult(BaseModel):
    read: int
    created: int
    duplicates: int


@router.post("/api/outcomes", tags=["metrics"])
def outcomes_api(request: Request, user: ApiUser,
                 payload: Annotated[dict[str, Any] | list[dict[str, Any]], Body()]) -> OutcomesResult:
    """Record expansion, contraction and churn outcomes (one object or a list; the same fields as a line of
    ``outreach events ingest``). Re-posting an ``external_id`` is harmless. Admin and marketing tokens only."""
    if user.role not in WRITERS:
        raise PermissionDeniedError(f"the {user.role} role cannot record outcomes", hint="use an admin token")
    items = payload if isinstance(payload, list) else [payload]
    accounts = known_accounts(_review(request).settings.data_dir)
    events = []
    for index, item in enumerate(items):
        try:
            event = OutcomeEvent.model_validate(item)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise OutreachError(f"outcome {index}: field '{field}': {first['msg']}") from None
        if accounts is not None and event.account_id not in accounts:
            raise OutreachError(f"outcome {index}: field 'account_id': no account '{event.account_id}' in "
                                "accounts.csv", hint="nothing was recorded; fix the id or add the account")
        events.append(event)
    report: OutcomeIngestReport = ingest_outcomes(_review(request).factory, events, lambda: datetime.now(UTC),
                                                  source="api")
    return OutcomesResult(**report.model_dump())
