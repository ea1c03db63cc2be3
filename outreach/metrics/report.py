"""Expansion metrics: the funnel by motion, trigger, prompt version and owner; NRR and GRR; post-expansion
churn; lift over the no-outreach control group. ``outreach report`` and the ``/dashboard`` page show it.

Every number is computed from three sources, for a period ``[start, end]`` and an ``as_of`` date:

- the review queue and sequence tables: every first-touch draft whose analysis date is in the period is one
  *journey* (triggered → drafted → approved → sent → replied → converted, each stage a subset of the one before);
- the engine (:func:`outreach.engine.decisions.decide` on the data directory at ``min(end, as_of)``): each triggered
  account without a journey in the period is a journey that stopped at *triggered* (or *gated out*);
- the outcomes table: conversions (:func:`outreach.metrics.outcomes.attribute`), NRR/GRR, organic expansions,
  post-expansion churn and lift. Outcomes for accounts that are not in accounts.csv are listed as *unmatched*
  and counted nowhere; amounts in several currencies are converted with a user-provided rates table.

The exact definitions, and the rule for which period a journey belongs to, are in docs/metrics.md.
"""

from __future__ import annotations

import calendar
import csv
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach.errors import ConfigError, DataError
from outreach.metrics.experiments import wilson
from outreach.metrics.outcomes import (
    DEFAULT_WINDOW_DAYS,
    MOTION_FOR_TYPE,
    Outcome,
    Touch,
    attribute,
    load_outcomes,
)

DIMENSIONS = ("motion", "trigger", "prompt_version", "owner")
MOTIONS = ("upsell", "cross_sell", "bundle")
REVERT_DAYS = 90
NOT_DRAFTED = "(not drafted)"
MIN_YEAR, MAX_YEAR = 1970, 2200


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
    for day, name in ((start, "--from"), (end, "--to")):
        if day is not None and not MIN_YEAR <= day.year <= MAX_YEAR:
            raise ConfigError(f"{name} {day} is out of range", hint=f"use a date in {MIN_YEAR}–{MAX_YEAR}")
    if start is not None or end is not None:
        first = start or date(as_of.year, 1, 1)
        last = end or as_of
        if last < first:
            raise ConfigError(f"--to {last} is before --from {first}")
        return Period(first, last, f"{first.isoformat()}..{last.isoformat()}")
    if value is None:
        value = f"{as_of.year}-Q{(as_of.month - 1) // 3 + 1}"
    text = value.strip().upper()
    if (found := re.match(r"(\d{4})", text)) and not MIN_YEAR <= int(found[1]) <= MAX_YEAR:
        raise ConfigError(f"period '{value}' is out of range", hint=f"use a year in {MIN_YEAR}–{MAX_YEAR}")
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
    """NRR and GRR of the accounts paying at the start of a period (docs/metrics.md). ``lost`` is the gross
    loss: each account's drop below its starting MRR, capped at that starting MRR."""

    start_mrr: float
    expansion: float
    contraction: float
    churn: float
    lost: float = 0.0
    end_mrr: float = 0.0
    accounts: int
    nrr: float | None
    grr: float | None
    no_data: str | None = None


class NrrPoint(BaseModel):
    month: str
    nrr: float | None
    grr: float | None
    no_data: str | None = None


class Unmatched(BaseModel):
    """An outcome whose account is not in accounts.csv: shown, never counted."""

    external_id: str
    account_id: str
    kind: str
    occurred_on: date
    mrr_delta: float | None


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
    """Expansion rate of contacted accounts minus the control group's, in percentage points, with a 95%
    confidence interval (Newcombe's hybrid score interval, built from the two Wilson intervals)."""

    control_accounts: int
    control_expanded: int
    treated_accounts: int
    treated_expanded: int
    control_rate: float | None
    treated_rate: float | None
    lift_pp: float | None
    ci_low_pp: float | None = None
    ci_high_pp: float | None = None

    def text(self) -> str:
        counts = (f"contacted {self.treated_expanded}/{self.treated_accounts} expanded, control "
                  f"{self.control_expanded}/{self.control_accounts}")
        if self.lift_pp is None:
            return f"lift — ({counts})"
        interval = "" if self.ci_low_pp is None else f" [95% CI {self.ci_low_pp:+.1f} to {self.ci_high_pp:+.1f} pp]"
        return f"lift {self.lift_pp:+.1f} pp{interval} ({counts})"


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
    currency: str | None = None
    unmatched: list[Unmatched] = []
    no_data: str | None = None
    notes: list[str] = []

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
            for name in ("start_mrr", "expansion", "contraction", "churn", "lost", "end_mrr", "accounts", "nrr",
                         "grr"):
                rows.append(["retention", name, _fmt(getattr(self.retention, name))])
            if self.retention.no_data:
                rows.append(["retention", "no_data", self.retention.no_data])
        for point in self.nrr_series:
            rows.append(["nrr_series", point.month, _fmt(point.nrr), _fmt(point.grr), point.no_data or ""])
        for revert in self.post_expansion:
            rows.append(["post_expansion", revert.key, str(revert.expansions), str(revert.reverted),
                         str(revert.pending), _fmt(revert.rate)])
        if self.lift is not None:
            lift = self.lift
            for name in ("control_accounts", "control_expanded", "control_rate", "treated_accounts",
                         "treated_expanded", "treated_rate", "lift_pp", "ci_low_pp", "ci_high_pp"):
                rows.append(["lift", name, _fmt(getattr(lift, name))])
        for item in self.unmatched:
            rows.append(["unmatched", item.account_id, item.kind, item.occurred_on.isoformat(), _fmt(item.mrr_delta),
                         item.external_id])
        if self.currency:
            rows.append(["currency", self.currency])
        if self.no_data:
            rows.append(["no_data", self.no_data])
        return rows


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
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
    """Everything a report is computed from; tests build it by hand, :func:`gather` reads it from a database.

    ``baseline_mrr`` (accounts.csv) is also the list of known accounts: outcomes for any other account are
    unmatched. ``contract_start`` says when each account became a customer; ``currencies`` is each account's
    currency and ``rates`` converts a currency into ``reporting_currency``."""

    touches: list[Touch]
    outcomes: list[Outcome]
    triggered: list[Triggered] | None = None
    baseline_mrr: dict[str, float] | None = None
    control_accounts: set[str] | None = None
    contract_start: dict[str, date | None] | None = None
    currencies: dict[str, str] | None = None
    rates: dict[str, float] | None = None
    reporting_currency: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _keys(touch: Touch) -> dict[str, str]:
    return {"motion": touch.motion, "trigger": touch.trigger, "prompt_version": touch.prompt_version,
            "owner": touch.owner}


def load_rates(path: Path) -> dict[str, float]:
    """A rates table: CSV with a ``currency,rate`` header; ``rate`` is what one unit is worth in the reporting
    currency (whose own rate is 1). A bad row stops with the file, line and field."""
    if not path.exists():
        raise DataError(path, "file not found")
    rates: dict[str, float] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"currency", "rate"} <= set(reader.fieldnames):
            raise DataError(path, "the header must name the columns currency and rate", line=1)
        for row in reader:
            line = reader.line_num
            code = (row.get("currency") or "").strip().upper()
            if not re.fullmatch(r"[A-Z]{3}", code):
                raise DataError(path, f"'{code}' is not a three-letter currency code", line=line, field="currency")
            try:
                rate = float(row.get("rate") or "")
            except ValueError:
                raise DataError(path, f"'{row.get('rate')}' is not a number", line=line, field="rate") from None
            if not math.isfinite(rate) or rate <= 0:
                raise DataError(path, "a rate must be a positive number", line=line, field="rate")
            if code in rates:
                raise DataError(path, f"{code} is listed twice", line=line, field="currency")
            rates[code] = rate
    return rates


def _in_one_currency(inputs: Inputs) -> tuple[Inputs, str | None]:
    """Baseline MRR and outcome amounts converted into one reporting currency (unchanged when everything is in
    one currency already). Mixed currencies without a rates table are refused: summing them would be wrong."""
    currencies = inputs.currencies or {}
    known = inputs.baseline_mrr or {}
    used = {currencies.get(a, "") for a in known if currencies.get(a)}
    used |= {o.currency for o in inputs.outcomes if o.currency}
    target = inputs.reporting_currency
    if inputs.rates is None:
        if len(used) > 1:
            raise ConfigError(f"the accounts and outcomes use several currencies ({', '.join(sorted(used))})",
                              hint="give a rates table (--rates FILE, CSV currency,rate) to convert them into one")
        only = next(iter(used), None)
        if target and only and target != only:
            raise ConfigError(f"the data is in {only}, not {target}", hint=f"give --rates FILE to convert {only}")
        return inputs, target or only
    rates = inputs.rates
    if target is None:
        ones = [code for code, rate in rates.items() if rate == 1]
        if len(ones) != 1:
            raise ConfigError("say which currency to report in", hint="--currency CODE (the rates convert into it)")
        target = ones[0]
    missing = sorted(code for code in used if code not in rates and code != target)
    if missing:
        raise ConfigError(f"the rates table has no rate for {', '.join(missing)}", hint="add a line per currency")

    def rate(code: str | None) -> float:
        return 1.0 if code in (None, "", target) else rates[code or ""]

    baseline = {a: mrr * rate(currencies.get(a)) for a, mrr in known.items()} if inputs.baseline_mrr else None
    outcomes = [Outcome(o.id, o.account_id, o.kind, o.type, o.offer_id,
                        None if o.mrr_delta is None else o.mrr_delta * rate(o.currency or currencies.get(o.account_id)),
                        o.occurred_on, target, o.external_id) for o in inputs.outcomes]
    converted = Inputs(**{**inputs.__dict__, "baseline_mrr": baseline, "outcomes": outcomes})
    return converted, target


def _no_data(inputs: Inputs, period: Period, as_of: date) -> str | None:
    if period.start > as_of:
        return f"no data: the period starts after the analysis date ({as_of})"
    starts = [d for d in (inputs.contract_start or {}).values() if d is not None]
    if starts and period.end < min(starts):
        return f"no data: the period ends before the first contract starts ({min(starts)})"
    return None


def compute(inputs: Inputs, period: Period, as_of: date, *, window_days: int = DEFAULT_WINDOW_DAYS) -> Report:
    """The report for ``period`` as known on ``as_of`` (outcomes and sends after ``as_of`` are ignored)."""
    inputs, currency = _in_one_currency(inputs)
    unmatched: list[Unmatched] = []
    outcomes = [o for o in inputs.outcomes if o.occurred_on <= as_of]
    notes: list[str] = []
    if inputs.baseline_mrr is not None:
        known = inputs.baseline_mrr
        unmatched = [Unmatched(external_id=o.external_id, account_id=o.account_id, kind=o.type,
                               occurred_on=o.occurred_on, mrr_delta=o.mrr_delta)
                     for o in outcomes if o.account_id not in known]
        outcomes = [o for o in outcomes if o.account_id in known]
    elif outcomes:
        notes.append("outcomes were not checked against accounts.csv (give the data directory)")
    no_data = _no_data(inputs, period, as_of)
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

    def targets(keys: dict[str, str]) -> list[FunnelRow]:
        return [*(rows[d].setdefault(k, FunnelRow(key=k)) for d, k in keys.items()), totals]

    # One population per row: a journey is a first-touch draft of the period (its keys are the draft's), or a
    # triggered account without such a draft (its keys are the engine's). Each stage is a subset of the one before.
    journeys = [t for t in visible if period.contains(t.created_on)] if no_data is None else []
    drafted_accounts = {t.account_id for t in journeys}
    for item in (inputs.triggered or []) if no_data is None else []:
        if item.account_id in drafted_accounts:
            continue
        keys = {"motion": item.motion, "trigger": item.trigger, "prompt_version": NOT_DRAFTED, "owner": item.owner}
        for target in targets(keys):
            target.triggered += 1
            if item.gate_reasons:
                target.gated_out += 1
                reasons = dict(target.gated_by_reason)
                for reason in item.gate_reasons:
                    reasons[reason] = reasons.get(reason, 0) + 1
                target.gated_by_reason = dict(sorted(reasons.items()))
    for touch in journeys:
        won = sorted(attributed.get(touch.draft_id, []), key=lambda o: o.occurred_on)
        sent = touch.sent_on is not None
        approved = touch.approved or sent
        replied = touch.replied and sent
        mrr = sum(o.mrr_delta or 0.0 for o in won)
        for target in targets(_keys(touch)):
            target.triggered += 1
            target.drafted += 1
            target.approved += approved
            target.sent += sent
            target.replied += replied
            target.converted += bool(won) and sent
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

    retention_figures = None
    series: list[NrrPoint] = []
    if inputs.baseline_mrr is not None:
        starts = inputs.contract_start
        retention_figures = nrr(inputs.baseline_mrr, outcomes, period, as_of=as_of, contract_start=starts)
        for first in _months(min(period.end, as_of), 6):
            last = date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
            month = nrr(inputs.baseline_mrr, outcomes, Period(first, min(last, as_of), first.strftime("%Y-%m")),
                        as_of=as_of, contract_start=starts)
            series.append(NrrPoint(month=first.strftime("%Y-%m"), nrr=month.nrr, grr=month.grr,
                                   no_data=month.no_data))

    reverts = post_expansion_reverts(outcomes, touch_of, period, as_of) if no_data is None else []
    return Report(
        period=period.label, start=period.start, end=period.end, as_of=as_of, window_days=window_days,
        funnel=funnel, totals=totals, organic=organic, attributed_mrr=attributed_mrr, retention=retention_figures,
        nrr_series=series, post_expansion=reverts,
        lift=lift(inputs, visible, outcomes, period) if no_data is None else None,
        currency=currency, unmatched=unmatched, no_data=no_data, notes=notes,
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


def nrr(baseline: dict[str, float], outcomes: Iterable[Outcome], period: Period, *, as_of: date | None = None,
        contract_start: dict[str, date | None] | None = None) -> Retention:
    """NRR and GRR for ``period`` (up to ``as_of``), the standard way.

    Each account's MRR starts at ``baseline`` (accounts.csv ``mrr``, its MRR before the first recorded outcome)
    and moves with every outcome in date order; a churn without an amount loses all of it; MRR never goes below 0.
    The starting cohort is every account that was a customer before the period (contract started before
    ``start``) with MRR > 0 just before ``start``; new customers are left out. For that cohort:

    - NRR = Σ end MRR / Σ start MRR (= (start + expansion − contraction − churn) / start);
    - GRR = Σ min(start MRR, end MRR) / Σ start MRR: each account's loss counts up to its starting MRR, so
      expansion gained and lost inside the period is not churn, and GRR is always between 0 % and 100 %.
    """
    last = min(period.end, as_of) if as_of is not None else period.end
    if as_of is not None and period.start > as_of:
        return Retention(start_mrr=0, expansion=0, contraction=0, churn=0, accounts=0, nrr=None, grr=None,
                         no_data=f"no data: the period starts after the analysis date ({as_of})")
    running = dict(baseline)
    start_mrr: dict[str, float] | None = None
    expansion = contraction = churn = 0.0
    ordered = sorted(outcomes, key=lambda o: (o.occurred_on, o.id))
    starts = contract_start or {}

    def snapshot() -> dict[str, float]:
        return {account: mrr for account, mrr in running.items()
                if mrr > 0 and ((begun := starts.get(account)) is None or begun < period.start)}

    for outcome in ordered:
        if outcome.occurred_on > last:
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
    end = sum(running.get(account, 0.0) for account in start_mrr)
    kept = sum(min(mrr, running.get(account, 0.0)) for account, mrr in start_mrr.items())
    no_data = None
    if not start_mrr:
        begun = [d for d in starts.values() if d is not None]
        no_data = (f"no data: no contract started before {period.start}" if begun and min(begun) >= period.start
                   else "no data: no account had MRR at the start of the period")
    return Retention(
        start_mrr=start, expansion=expansion, contraction=contraction, churn=churn, lost=start - kept, end_mrr=end,
        accounts=len(start_mrr), nrr=end / start if start else None, grr=kept / start if start else None,
        no_data=no_data,
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


def difference_interval(treated: tuple[int, int], control: tuple[int, int],
                        z: float = 1.96) -> tuple[float, float] | None:
    """95% interval for p_treated − p_control (Newcombe's method 10: Wilson intervals of each proportion,
    combined). Honest at the small samples a control group has, unlike p ± z·SE."""
    first, second = wilson(*treated, z=z), wilson(*control, z=z)
    if first is None or second is None:
        return None
    p1, p2 = treated[0] / treated[1], control[0] / control[1]
    (l1, u1), (l2, u2) = first, second
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, low), min(1.0, high)


def lift(inputs: Inputs, touches: list[Touch], outcomes: list[Outcome], period: Period) -> Lift | None:
    """Share of accounts with an expansion in the period: contacted (a send in the period) vs the held-out
    control group of a running A/B experiment, with sample sizes and a 95% interval. None without a control
    group."""
    if not inputs.control_accounts:
        return None
    treated = {t.account_id for t in touches if t.sent_on is not None and period.contains(t.sent_on)}
    treated -= inputs.control_accounts
    expanded = {o.account_id for o in outcomes if o.kind == "expansion" and period.contains(o.occurred_on)}
    control_hits = len(inputs.control_accounts & expanded)
    control_rate = _rate(control_hits, len(inputs.control_accounts))
    treated_rate = _rate(len(treated & expanded), len(treated))
    interval = difference_interval((len(treated & expanded), len(treated)),
                                   (control_hits, len(inputs.control_accounts)))
    return Lift(
        control_accounts=len(inputs.control_accounts), control_expanded=control_hits,
        treated_accounts=len(treated), treated_expanded=len(treated & expanded), control_rate=control_rate,
        treated_rate=treated_rate,
        lift_pp=None if control_rate is None or treated_rate is None else 100 * (treated_rate - control_rate),
        ci_low_pp=None if interval is None else 100 * interval[0],
        ci_high_pp=None if interval is None else 100 * interval[1],
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


@dataclass
class EngineView:
    """What the data directory tells a report: triggered accounts, and per account its MRR, currency, contract
    start and whether it is in the A/B control group."""

    triggered: list[Triggered]
    baseline: dict[str, float]
    currencies: dict[str, str]
    contract_start: dict[str, date | None]
    control: set[str] | None


def engine_view(data_dir: Path, as_of: date, *, rules_path: Path | None = None,
                prompts_dir: Path | None = None, decide_accounts: bool = True) -> EngineView:
    """Triggered accounts (from ``decide`` with the control group held out, as ``draft`` and ``explain`` do),
    baseline MRR, currencies and contract starts (accounts.csv) and the control group, if any."""
    from outreach.drafting.routing import TrafficRouter
    from outreach.engine.data import load_dataset
    from outreach.engine.decisions import decide, rules_for

    dataset = load_dataset(data_dir)
    router = TrafficRouter.for_directory(prompts_dir)
    triggered = []
    if decide_accounts:
        decisions = decide(dataset, rules_for(dataset, rules_path), as_of,
                           held_out=router.held_out if router is not None else None)
        for decision in decisions:
            if not decision.frictions:
                continue
            reasons = () if decision.gate.allowed else tuple(sorted({r.rule for r in decision.gate.reasons}))
            triggered.append(Triggered(decision.account_id, decision.motion, decision.trigger,
                                       decision.account.owner_email or "(no owner)", reasons))
    accounts = dataset.accounts
    return EngineView(
        triggered=triggered,
        baseline={a.account_id: float(a.mrr or 0.0) for a in accounts},
        currencies={a.account_id: a.currency for a in accounts},
        contract_start={a.account_id: a.contract_start for a in accounts},
        control={a.account_id for a in accounts if router.held_out(a)} if router is not None else None,
    )


def gather(session: Session, *, data_dir: Path | None, as_of: date, period: Period,
           rules_path: Path | None = None, prompts_dir: Path | None = None, rates_path: Path | None = None,
           currency: str | None = None) -> Inputs:
    inputs = Inputs(touches=load_touches(session), outcomes=load_outcomes(session),
                    rates=load_rates(rates_path) if rates_path is not None else None,
                    reporting_currency=currency.upper() if currency else None)
    if data_dir is not None:
        day = min(period.end, as_of)
        first = _first_contract(data_dir)
        # The engine describes accounts on a day; before the first contract or after as_of there is nothing to decide.
        live = period.start <= as_of and (first is None or day >= first)
        view = engine_view(data_dir, day, rules_path=rules_path, prompts_dir=prompts_dir, decide_accounts=live)
        inputs.triggered, inputs.baseline_mrr, inputs.control_accounts = view.triggered, view.baseline, view.control
        inputs.currencies, inputs.contract_start = view.currencies, view.contract_start
    return inputs


def _first_contract(data_dir: Path) -> date | None:
    from outreach.engine.data import load_dataset

    starts = [a.contract_start for a in load_dataset(data_dir).accounts if a.contract_start is not None]
    return min(starts) if starts else None


def latest_period_with_data(factory: sessionmaker[Session], as_of: date, *, quarters: int = 8) -> Period:
    """The latest quarter up to the one holding ``as_of`` with a draft or an outcome in it (what the dashboard
    opens on); the quarter of ``as_of`` when none has."""
    with factory() as session:
        touches, outcomes = load_touches(session), load_outcomes(session)
    days = [t.created_on for t in touches] + [o.occurred_on for o in outcomes]
    year, quarter = as_of.year, (as_of.month - 1) // 3 + 1
    for _ in range(quarters):
        period = parse_period(f"{year}-Q{quarter}", as_of=as_of)
        if any(period.contains(day) and day <= as_of for day in days):
            return period
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return parse_period(None, as_of=as_of)


def build_report(factory: sessionmaker[Session], *, period: Period, as_of: date, data_dir: Path | None,
                 window_days: int | None = None, rules_path: Path | None = None,
                 prompts_dir: Path | None = None, rates_path: Path | None = None,
                 currency: str | None = None) -> Report:
    """Gather the inputs from the database (and data directory) and compute the report."""
    window = window_days if window_days is not None else DEFAULT_WINDOW_DAYS
    with factory() as session:
        inputs = gather(session, data_dir=data_dir, as_of=as_of, period=period, rules_path=rules_path,
                        prompts_dir=prompts_dir, rates_path=rates_path, currency=currency)
    return compute(inputs, period, as_of, window_days=window)
