"""Expansion metrics: the funnel by motion, trigger, prompt version and owner; NRR and GRR; post-expansion
churn; lift over the no-outreach control group. ``outreach report`` and the ``/dashboard`` page show it.

Every number is computed from three sources, for a period ``[start, end]`` and an ``as_of`` date:

- the engine (:func:`outreach.engine.decisions.decide` on the data directory at ``min(end, as_of)``): *triggered*
  accounts (at least one friction) and *gated out* ones (triggered but blocked, by gate rule);
- the review queue and sequence tables: *drafted* (drafts whose analysis date is in the period), and of those *approved*,
  *sent* (an email in the outbox), *replied* (a reply event on its enrollment) and *converted* (an expansion
  attributed to it, see :func:`outreach.metrics.outcomes.attribute`), with the attributed *expansion MRR* and the
  median *days to convert* (first send → expansion);
- the outcomes table: NRR/GRR, organic expansions, post-expansion churn and lift.

The exact definitions are in docs/metrics.md.
"""

from __future__ import annotations

import calendar
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach.errors import ConfigError
from outreach.metrics.outcomes import (
    DEFAULT_WINDOW_DAYS,
    MOTION_FOR_TYPE,
    Outcome,
    Touch,
    attribute,
    load_outcomes,
)
from outreach.settings import get_settings

DIMENSIONS = ("motion", "trigger", "prompt_version", "owner")
MOTIONS = ("upsell", "cross_sell", "bundle")
REVERT_DAYS = 90
NOT_DRAFTED = "(not drafted)"


# ------------------------------------------------------------------------------------------------ periods


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    label: str

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def parse_period(value: str | None = None, *, start: date | None = None, end: date | None = None,
                 as_of: date) -> Period:
    """``2026-Q3``, ``2026-09``, ``2026``, or ``--from``/``--to`` (either may be omitted). Default: the
    quarter that contains ``as_of``."""
    if value is not None and (start is not None or end is not None):
        raise ConfigError("give --period or --from/--to, not both")
    if start is not None or end is not None:
        first = start or date(as_of.year, 1, 1)
        last = end or as_of
        if last < first:
            raise ConfigError(f"--to {last} is before --from {first}")
        return Period(first, last, f"{first.isoformat()}..{last.isoformat()}")
    if value is None:
        value = f"{as_of.year}-Q{(as_of.month - 1) // 3 + 1}"
    text = value.strip().upper()
    if match := re.fullmatch(r"(\d{4})-Q([1-4])", text):
        year, quarter = int(match[1]), int(match[2])
        first = date(year, 3 * quarter - 2, 1)
        last_month = 3 * quarter
        return Period(first, date(year, last_month, calendar.monthrange(year, last_month)[1]), text)
    if match := re.fullmatch(r"(\d{4})-(\d{2})", text):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ConfigError(f"period '{value}' has no month {month}")
        return Period(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]), text)
    if match := re.fullmatch(r"(\d{4})", text):
        year = int(match[1])
        return Period(date(year, 1, 1), date(year, 12, 31), text)
    raise ConfigError(f"period '{value}' is not a year, month or quarter",
                      hint="use 2026, 2026-09 or 2026-Q3, or --from/--to")


# ------------------------------------------------------------------------------------------ the figures


class FunnelRow(BaseModel):
    key: str
    triggered: int = 0
    gated_out: int = 0
    gated_by_reason: dict[str, int] = {}
    drafted: int = 0
    approved: int = 0
    sent: int = 0
    replied: int = 0
    converted: int = 0
    expansion_mrr: float = 0.0
    median_days_to_convert: float | None = None

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.sent if self.sent else None


class Retention(BaseModel):
    start_mrr: float
    expansion: float
    contraction: float
    churn: float
    accounts: int
    nrr: float | None
    grr: float | None


class NrrPoint(BaseModel):
    month: str
    nrr: float | None
    grr: float | None


class Reverts(BaseModel):
    key: str
    expansions: int = 0
    reverted: int = 0
    pending: int = 0

    @property
    def rate(self) -> float | None:
        decided = self.expansions - self.pending
        return self.reverted / decided if decided else None


class Lift(BaseModel):
    control_accounts: int
    control_expanded: int
    treated_accounts: int
    treated_expanded: int
    control_rate: float | None
    treated_rate: float | None
    lift_pp: float | None


class Organic(BaseModel):
    expansions: int = 0
    mrr: float = 0.0
    by_motion: dict[str, float] = {}


class Report(BaseModel):
    period: str
    start: date
    end: date
    as_of: date
    window_days: int
    funnel: dict[str, list[FunnelRow]]
    totals: FunnelRow
    organic: Organic
    attributed_mrr: float
    retention: Retention | None
    nrr_series: list[NrrPoint]
    post_expansion: list[Reverts]
    lift: Lift | None

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for rows in data["funnel"].values():
            for row in rows:
                row["conversion_rate"] = _rate(row["converted"], row["sent"])
        data["totals"]["conversion_rate"] = _rate(self.totals.converted, self.totals.sent)
        for row, source in zip(data["post_expansion"], self.post_expansion, strict=True):
            row["rate"] = source.rate
        return data

    def csv_rows(self) -> list[list[str]]:
        """One row per (dimension, value): the funnel; then the retention figures as (metric, value) rows."""
        header = ["section", "dimension", "key", "triggered", "gated_out", "drafted", "approved", "sent",
                  "replied", "converted", "conversion_rate", "expansion_mrr", "median_days_to_convert"]
        rows = [header]
        for dimension, funnel in [*self.funnel.items(), ("all", [self.totals])]:
            for row in funnel:
                rows.append(["funnel", dimension, row.key, str(row.triggered), str(row.gated_out), str(row.drafted),
                             str(row.approved), str(row.sent), str(row.replied), str(row.converted),
                             _fmt(row.conversion_rate), _fmt(row.expansion_mrr), _fmt(row.median_days_to_convert)])
        for reason, count in sorted(self.totals.gated_by_reason.items()):
            rows.append(["gated_out", "gate_reason", reason, "", str(count)])
        rows.append(["organic", "all", "organic", "", "", "", "", "", "", str(self.organic.expansions), "",
                     _fmt(self.organic.mrr)])
        if self.retention is not None:
            for name in ("start_mrr", "expansion", "contraction", "churn", "nrr", "grr"):
                rows.append(["retention", name, _fmt(getattr(self.retention, name))])
        for point in self.nrr_series:
            rows.append(["nrr_series", point.month, _fmt(point.nrr), _fmt(point.grr)])
        for revert in self.post_expansion:
            rows.append(["post_expansion", revert.key, str(revert.expansions), str(revert.reverted),
                         str(revert.pending), _fmt(revert.rate)])
        if self.lift is not None:
            rows.append(["lift", "control_rate", _fmt(self.lift.control_rate)])
            rows.append(["lift", "treated_rate", _fmt(self.lift.treated_rate)])
            rows.append(["lift", "lift_pp", _fmt(self.lift.lift_pp)])
        return rows


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


# ------------------------------------------------------------------------------------------ the inputs


@dataclass(frozen=True)
class Triggered:
    """One triggered account from the engine: its split keys and, when gated, the gate rules."""

    account_id: str
    motion: str
    trigger: str
    owner: str
    gate_reasons: tuple[str, ...]


@dataclass
class Inputs:
    """Everything a report is computed from; tests build it by hand, :func:`gather` reads it from a database."""

    touches: list[Touch]
    outcomes: list[Outcome]
    triggered: list[Triggered] | None = None
    baseline_mrr: dict[str, float] | None = None
    control_accounts: set[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _keys(touch: Touch) -> dict[str, str]:
    return {"motion": touch.motion, "trigger": touch.trigger, "prompt_version": touch.prompt_version,
            "owner": touch.owner}


def compute(inputs: Inputs, period: Period, as_of: date, *, window_days: int = DEFAULT_WINDOW_DAYS) -> Report:
    """The report for ``period`` as known on ``as_of`` (outcomes and sends after ``as_of`` are ignored)."""
    outcomes = [o for o in inputs.outcomes if o.occurred_on <= as_of]
    touches = [t for t in inputs.touches if t.created_on <= as_of]
    visible = [t if t.sent_on is None or t.sent_on <= as_of else _unsent(t) for t in touches]
    attributed: dict[int, list[Outcome]] = defaultdict(list)
    organic = Organic()
    organic_by_motion: dict[str, float] = defaultdict(float)
    touch_of: dict[int, Touch | None] = {}
    for outcome in outcomes:
        touch = attribute(outcome, visible, window_days)
        touch_of[outcome.id] = touch
        if touch is not None:
            attributed[touch.draft_id].append(outcome)
        elif outcome.kind == "expansion" and period.contains(outcome.occurred_on):
            organic.expansions += 1
            organic.mrr += outcome.mrr_delta or 0.0
            organic_by_motion[MOTION_FOR_TYPE.get(outcome.type, "upsell")] += outcome.mrr_delta or 0.0
    organic.by_motion = dict(sorted(organic_by_motion.items()))

    rows: dict[str, dict[str, FunnelRow]] = {d: {} for d in DIMENSIONS}
    days: dict[tuple[str, str], list[int]] = defaultdict(list)
    totals = FunnelRow(key="all")
    total_days: list[int] = []

    def bump(dimension: str, key: str, apply: Callable[[FunnelRow], None]) -> None:
        row = rows[dimension].setdefault(key, FunnelRow(key=key))
        apply(row)

    for item in inputs.triggered or []:
        keys = {"motion": item.motion, "trigger": item.trigger, "prompt_version": NOT_DRAFTED, "owner": item.owner}
        for target in [*(rows[d].setdefault(k, FunnelRow(key=k)) for d, k in keys.items()), totals]:
            target.triggered += 1
            if item.gate_reasons:
                target.gated_out += 1
                reasons = dict(target.gated_by_reason)
                for reason in item.gate_reasons:
                    reasons[reason] = reasons.get(reason, 0) + 1
                target.gated_by_reason = dict(sorted(reasons.items()))

    for touch in visible:
        if not period.contains(touch.created_on):
            continue
        won = sorted(attributed.get(touch.draft_id, []), key=lambda o: o.occurred_on)
        mrr = sum(o.mrr_delta or 0.0 for o in won)
        for target in [*(rows[d].setdefault(k, FunnelRow(key=k)) for d, k in _keys(touch).items()), totals]:
            target.drafted += 1
            target.approved += touch.approved
            target.sent += touch.sent_on is not None
            target.replied += touch.replied
            target.converted += bool(won)
            target.expansion_mrr += mrr
        if won and touch.sent_on is not None:
            lag = (won[0].occurred_on - touch.sent_on).days
            total_days.append(lag)
            for dimension, key in _keys(touch).items():
                days[(dimension, key)].append(lag)
    for dimension, by_key in rows.items():
        for key, row in by_key.items():
            lags = days.get((dimension, key))
            row.median_days_to_convert = statistics.median(lags) if lags else None
    totals.median_days_to_convert = statistics.median(total_days) if total_days else None
    funnel = {d: sorted(by_key.values(), key=lambda r: r.key) for d, by_key in rows.items()}
    attributed_mrr = sum(o.mrr_delta or 0.0 for won in attributed.values() for o in won
                         if period.contains(o.occurred_on))

    retention = None
    series: list[NrrPoint] = []
    if inputs.baseline_mrr is not None:
        retention = nrr(inputs.baseline_mrr, outcomes, period)
        for first in _months(min(period.end, as_of), 6):
            last = date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
            month = nrr(inputs.baseline_mrr, outcomes, Period(first, min(last, as_of), first.strftime("%Y-%m")))
            series.append(NrrPoint(month=first.strftime("%Y-%m"), nrr=month.nrr, grr=month.grr))

    reverts = post_expansion_reverts(outcomes, touch_of, period, as_of)
    return Report(
        period=period.label, start=period.start, end=period.end, as_of=as_of, window_days=window_days,
        funnel=funnel, totals=totals, organic=organic, attributed_mrr=attributed_mrr, retention=retention,
        nrr_series=series, post_expansion=reverts, lift=lift(inputs, visible, outcomes, period),
    )


def _unsent(touch: Touch) -> Touch:
    return Touch(touch.draft_id, touch.account_id, touch.offer_id, touch.offer_kind, touch.motion, touch.trigger,
                 touch.owner, touch.prompt_version, touch.created_on, touch.approved, None, False,
                 touch.enrollment_id)


def _months(end: date, count: int) -> list[date]:
    firsts = []
    year, month = end.year, end.month
    for _ in range(count):
        firsts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(firsts))


def nrr(baseline: dict[str, float], outcomes: Iterable[Outcome], period: Period) -> Retention:
    """NRR and GRR for ``period``.

    Each account's MRR starts at ``baseline`` (accounts.csv ``mrr``) and moves with every outcome in date
    order; a churn without an amount loses all of the account's MRR at that point. Starting MRR is the sum
    over accounts with MRR > 0 the day before the period starts; expansion, contraction and churn are the
    period's changes of those accounts only (new customers are not in NRR).
    NRR = (start + expansion − contraction − churn) / start; GRR = min(1, (start − contraction − churn) / start).
    """
    running = dict(baseline)
    start_mrr: dict[str, float] | None = None
    expansion = contraction = churn = 0.0
    ordered = sorted(outcomes, key=lambda o: (o.occurred_on, o.id))

    def snapshot() -> dict[str, float]:
        return {account: mrr for account, mrr in running.items() if mrr > 0}

    for outcome in ordered:
        if outcome.occurred_on > period.end:
            break
        if start_mrr is None and outcome.occurred_on >= period.start:
            start_mrr = snapshot()
        current = running.get(outcome.account_id, 0.0)
        delta = outcome.mrr_delta if outcome.mrr_delta is not None else -current
        delta = max(delta, -current)  # MRR never goes below zero
        running[outcome.account_id] = current + delta
        if start_mrr is None or outcome.account_id not in start_mrr:
            continue
        if outcome.kind == "expansion":
            expansion += delta
        elif outcome.kind == "contraction":
            contraction -= delta
        else:
            churn -= delta
    if start_mrr is None:
        start_mrr = snapshot()
    start = sum(start_mrr.values())
    return Retention(
        start_mrr=start, expansion=expansion, contraction=contraction, churn=churn, accounts=len(start_mrr),
        nrr=(start + expansion - contraction - churn) / start if start else None,
        grr=min(1.0, (start - contraction - churn) / start) if start else None,
    )


def post_expansion_reverts(outcomes: list[Outcome], touch_of: dict[int, Touch | None], period: Period,
                           as_of: date) -> list[Reverts]:
    """Expansions in the period followed, within 90 days, by a contraction, downgrade or churn of the same
    account. Split by motion (the attributed touch's, or the mechanism's for organic ones) and by source.
    ``pending`` counts expansions whose 90 days have not passed by ``as_of`` and that have not reverted yet;
    the rate leaves them out."""
    groups: dict[str, Reverts] = {}
    for outcome in outcomes:
        if outcome.kind != "expansion" or not period.contains(outcome.occurred_on):
            continue
        touch = touch_of.get(outcome.id)
        motion = touch.motion if touch is not None else MOTION_FOR_TYPE.get(outcome.type, "upsell")
        reverted = any(
            later.account_id == outcome.account_id and later.kind in ("contraction", "churn")
            and 0 <= (later.occurred_on - outcome.occurred_on).days <= REVERT_DAYS and later.id != outcome.id
            and (later.occurred_on, later.id) > (outcome.occurred_on, outcome.id)
            for later in outcomes
        )
        pending = not reverted and outcome.occurred_on + timedelta(days=REVERT_DAYS) > as_of
        for key in ("all", motion, "attributed" if touch is not None else "organic"):
            group = groups.setdefault(key, Reverts(key=key))
            group.expansions += 1
            group.reverted += reverted
            group.pending += pending
    order = ["all", *MOTIONS, "attributed", "organic"]
    return [groups[k] for k in order if k in groups]


def lift(inputs: Inputs, touches: list[Touch], outcomes: list[Outcome], period: Period) -> Lift | None:
    """Share of accounts with an expansion in the period: contacted (a send in the period) vs the held-out
    control group of a running A/B experiment. None without a control group."""
    if not inputs.control_accounts:
        return None
    treated = {t.account_id for t in touches if t.sent_on is not None and period.contains(t.sent_on)}
    treated -= inputs.control_accounts
    expanded = {o.account_id for o in outcomes if o.kind == "expansion" and period.contains(o.occurred_on)}
    control_rate = _rate(len(inputs.control_accounts & expanded), len(inputs.control_accounts))
    treated_rate = _rate(len(treated & expanded), len(treated))
    return Lift(
        control_accounts=len(inputs.control_accounts), control_expanded=len(inputs.control_accounts & expanded),
        treated_accounts=len(treated), treated_expanded=len(treated & expanded), control_rate=control_rate,
        treated_rate=treated_rate,
        lift_pp=None if control_rate is None or treated_rate is None else 100 * (treated_rate - control_rate),
    )


# ------------------------------------------------------------------------------------ reading a database


def load_touches(session: Session) -> list[Touch]:
    """Every first-touch draft in the queue as a :class:`Touch` (its enrollment's first email in the outbox is
    the send, a reply event on the enrollment the reply); a sequence's follow-up drafts belong to their touch."""
    from outreach.review.storage import DraftRow, DraftVersionRow, ReviewActionRow
    from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow

    versions: dict[int, str] = {}
    for version_draft, name, version in session.execute(
        select(DraftVersionRow.draft_id, DraftVersionRow.template_name, DraftVersionRow.template_version)
        .where(DraftVersionRow.template_name.is_not(None)).order_by(DraftVersionRow.draft_id, DraftVersionRow.number)
    ):
        versions.setdefault(version_draft, f"{name}@{version or '?'}")
    approved = set(session.scalars(select(ReviewActionRow.draft_id).where(ReviewActionRow.action.in_(
        ("approve", "bulk_approve")))))
    enrollment_rows = list(session.scalars(select(EnrollmentRow)))
    enrollments = {row.draft_id: row.id for row in enrollment_rows if row.draft_id is not None}
    first_draft = {row.id: row.draft_id for row in enrollment_rows}
    # Follow-up drafts a sequence wrote for an enrollment are part of that touch, not touches of their own.
    followups = {row.pending_draft_id for row in enrollment_rows if row.pending_draft_id is not None}
    first_send: dict[int, date] = {}
    for sent_enrollment, sent_draft, sent_at in session.execute(
        select(OutboxRow.enrollment_id, OutboxRow.draft_id, OutboxRow.sent_at)
        .where(OutboxRow.kind == "email", OutboxRow.state == "sent", OutboxRow.sent_at.is_not(None))
    ):
        if sent_draft is not None and sent_draft != first_draft.get(sent_enrollment):
            followups.add(sent_draft)
        if sent_at is not None:
            first_send[-sent_enrollment] = min(first_send.get(-sent_enrollment, sent_at.date()), sent_at.date())
    replied = set(session.scalars(select(MailEventRow.enrollment_id).where(
        MailEventRow.kind == "reply", MailEventRow.enrollment_id.is_not(None))))
    touches = []
    for draft in session.scalars(select(DraftRow).order_by(DraftRow.id)):
        if draft.id in followups:
            continue
        enrollment_id = enrollments.get(draft.id)
        sent = first_send.get(-enrollment_id) if enrollment_id else None
        if sent is None and draft.sent_at is not None:
            sent = draft.sent_at.date()
        offer = draft.offer or {}
        touches.append(Touch(
            draft_id=draft.id, account_id=draft.account_id, offer_id=draft.offer_id,
            offer_kind=offer.get("kind"), motion=str(offer.get("motion") or draft.motion), trigger=draft.trigger,
            owner=draft.owner_email or "(no owner)", prompt_version=versions.get(draft.id, "(unknown)"),
            created_on=draft.as_of,
            approved=draft.id in approved or draft.status in ("approved", "scheduled", "sent") or sent is not None,
            sent_on=sent, replied=enrollment_id in replied if enrollment_id else False, enrollment_id=enrollment_id,
        ))
    return touches


def engine_view(data_dir: Path, as_of: date, *, rules_path: Path | None = None,
                prompts_dir: Path | None = None) -> tuple[list[Triggered], dict[str, float], set[str] | None]:
    """Triggered accounts (from ``decide``), baseline MRR (accounts.csv) and the control group, if any."""
    from outreach.drafting.routing import TrafficRouter
    from outreach.engine.data import load_dataset
    from outreach.engine.decisions import decide, rules_for

    dataset = load_dataset(data_dir)
    router = TrafficRouter.for_directory(prompts_dir)
    decisions = decide(dataset, rules_for(dataset, rules_path), as_of,
                       held_out=router.held_out if router is not None else None)
    triggered = []
    for decision in decisions:
        if not decision.frictions:
            continue
        reasons = () if decision.gate.allowed else tuple(sorted({r.rule for r in decision.gate.reasons}))
        triggered.append(Triggered(decision.account_id, decision.motion, decision.trigger,
                                   decision.account.owner_email or "(no owner)", reasons))
    baseline = {a.account_id: float(a.mrr or 0.0) for a in dataset.accounts}
    control = {a.account_id for a in dataset.accounts if router.held_out(a)} if router is not None else None
    return triggered, baseline, control


def gather(session: Session, *, data_dir: Path | None, as_of: date, period: Period,
           rules_path: Path | None = None, prompts_dir: Path | None = None) -> Inputs:
    inputs = Inputs(touches=load_touches(session), outcomes=load_outcomes(session))
    if data_dir is not None:
        triggered, baseline, control = engine_view(data_dir, min(period.end, as_of), rules_path=rules_path,
                                                   prompts_dir=prompts_dir)
        inputs.triggered, inputs.baseline_mrr, inputs.control_accounts = triggered, baseline, control
    return inputs


def build_report(factory: sessionmaker[Session], *, period: Period, as_of: date, data_dir: Path | None,
                 window_days: int | None = None, rules_path: Path | None = None,
                 prompts_dir: Path | None = None) -> Report:
    """Gather the inputs from the database (and data directory) and compute the report."""
    window = window_days if window_days is not None else get_settings().attribution_window_days
    with factory() as session:
        inputs = gather(session, data_dir=data_dir, as_of=as_of, period=period, rules_path=rules_path,
                        prompts_dir=prompts_dir)
    return compute(inputs, period, as_of, window_days=window)
