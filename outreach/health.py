"""Health score and the gate: whether an account may be pitched at all, with a reason for every rule that fired.

The score (0–100) is a weighted sum of six components, each scored 0..1 (docs/engine.md):
activation, usage trend (active users last 30 days vs the 30 before), champion recency, open support load,
NPS and feature adoption. The gate is separate from the score: a single rule (no activation, onboarding,
usage decline, silent champion, an open high/urgent ticket, red health, a CS veto, a recent contact, a
held-out control account) blocks the pitch whatever the score says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypedDict

from pydantic import BaseModel, ConfigDict

from outreach.data import Account, Ticket
from outreach.rules import Rules
from outreach.types import Band, GateRule


@dataclass(frozen=True, slots=True)
class UsageFacts:
    """Per-account figures the health score needs, computed in DuckDB by :mod:`outreach.signals`."""

    active_users_30d: int = 0
    active_users_prior_30d: int = 0
    champion_last_seen: date | None = None
    features_used_30d: int = 0
    last_event: date | None = None


class Health(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: int
    band: Band
    components: dict[str, float]
    active_users_30d: int
    active_users_prior_30d: int
    usage_change_pct: float | None
    champion_silent_days: int | None
    open_tickets: int
    open_priority_tickets: int
    nps: int | None
    feature_adoption: float | None


class GateReason(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: GateRule
    message: str


class Gate(BaseModel):
    model_config = ConfigDict(frozen=True)

    allowed: bool
    reasons: list[GateReason]


class HealthRecord(TypedDict):
    """:class:`Health` as the plain dict the engine computes (validated into Health only when asked)."""

    score: int
    band: Band
    components: dict[str, float]
    active_users_30d: int
    active_users_prior_30d: int
    usage_change_pct: float | None
    champion_silent_days: int | None
    open_tickets: int
    open_priority_tickets: int
    nps: int | None
    feature_adoption: float | None


class GateReasonRecord(TypedDict):
    rule: GateRule
    message: str


class GateRecord(TypedDict):
    allowed: bool
    reasons: list[GateReasonRecord]


def _clamp(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value


def open_tickets(tickets: list[Ticket], as_of: date) -> list[Ticket]:
    """Tickets still open that were opened before the analysis date, oldest first."""
    return sorted(
        (t for t in tickets if t.is_open and t.created_at.date() < as_of), key=lambda t: t.created_at
    )


def score_health(
    account: Account,
    usage: UsageFacts,
    open_now: list[Ticket],
    plan_feature_count: int,
    rules: Rules,
    as_of: date,
) -> HealthRecord:
    """Compute the health score from activation, usage trend, champion, support, NPS and adoption.

    ``open_now`` is :func:`open_tickets` for the account. Returns a plain record: the engine scores every
    account, and building 100k validated models cost more than the scoring (docs/BENCHMARKS.md).
    """
    weights = rules.health.weights
    activated = account.activated_at is not None and account.activated_at <= as_of
    active, prior = usage.active_users_30d, usage.active_users_prior_30d

    change: float | None = None
    if prior > 0:
        change = (active - prior) / prior
        trend = _clamp((active / prior - 0.5) / 0.5)
    else:
        trend = 0.5 if active > 0 else 0.0

    silent_days: int | None = None
    if account.champion_user_id:
        if usage.champion_last_seen is not None:
            silent_days = (as_of - usage.champion_last_seen).days
            champion = _clamp(1 - (silent_days - 7) / 23)
        else:
            champion = 0.0
    else:
        champion = 0.5

    priorities = rules.gate.block_on_open_priorities
    priority_count = sum(1 for t in open_now if t.priority in priorities)
    support = _clamp(1 - 0.15 * (len(open_now) - priority_count) - 0.5 * priority_count)

    nps = _clamp(account.nps / 10) if account.nps is not None else 0.5
    adoption_ratio: float | None = None
    if plan_feature_count > 0:
        adoption_ratio = min(1.0, usage.features_used_30d / plan_feature_count)
        adoption = adoption_ratio
    else:
        adoption = 0.5

    components = {
        "activation": weights.activation * (1.0 if activated else 0.0),
        "usage_trend": weights.usage_trend * trend,
        "champion": weights.champion * champion,
        "support": weights.support * support,
        "nps": weights.nps * nps,
        "adoption": weights.adoption * adoption,
    }
    score = round(100 * sum(components.values()) / weights.total)
    band: Band = (
        "green"
        if score >= rules.health.green_min
        else "yellow"
        if score >= rules.health.yellow_min
        else "red"
    )
    return {
        "score": score,
        "band": band,
        "components": {key: round(value, 2) for key, value in components.items()},
        "active_users_30d": active,
        "active_users_prior_30d": prior,
        "usage_change_pct": round(change * 100, 1) if change is not None else None,
        "champion_silent_days": silent_days,
        "open_tickets": len(open_now),
        "open_priority_tickets": priority_count,
        "nps": account.nps,
        "feature_adoption": round(adoption_ratio, 2) if adoption_ratio is not None else None,
    }


def check_gate(
    account: Account,
    health: HealthRecord,
    open_now: list[Ticket],
    rules: Rules,
    as_of: date,
    *,
    last_contacted: date | None = None,
    held_out: bool = False,
) -> GateRecord:
    """Every rule that blocks a pitch, each with a reason a rep can read."""
    gate = rules.gate
    reasons: list[GateReasonRecord] = []

    def block(rule: GateRule, message: str) -> None:
        reasons.append({"rule": rule, "message": message})

    if account.activated_at is None or account.activated_at > as_of:
        block("not_activated", "has not reached its first promised outcome yet (no activation date)")
    if account.contract_start is not None:
        days = (as_of - account.contract_start).days
        if 0 <= days < gate.onboarding_days:
            block(
                "onboarding",
                f"in onboarding: contract started {account.contract_start.isoformat()}, {days} days ago "
                f"(no pitch in the first {gate.onboarding_days} days)",
            )
    change = health["usage_change_pct"]
    if change is not None and change <= -gate.usage_drop_pct * 100:
        block(
            "usage_declining",
            f"active users fell {abs(change):g}% ({health['active_users_prior_30d']} → "
            f"{health['active_users_30d']}, last 30 days vs the 30 before)",
        )
    if account.champion_user_id:
        silent = health["champion_silent_days"]
        if silent is None:
            block(
                "champion_silent",
                f"champion {account.champion_name or account.champion_user_id} has no activity",
            )
        elif silent >= gate.champion_silent_days:
            block(
                "champion_silent",
                f"champion {account.champion_name or account.champion_user_id} silent for "
                f"{silent} days (limit {gate.champion_silent_days})",
            )
    priorities = gate.block_on_open_priorities
    urgent = [t for t in open_now if t.priority in priorities]
    if urgent:
        first = urgent[0]
        more = f" (+{len(urgent) - 1} more)" if len(urgent) > 1 else ""
        block(
            "open_priority_ticket", f"open {first.priority} ticket {first.id}: {first.subject[:80]!r}{more}"
        )
    if health["band"] == "red":
        block("red_health", f"health is red ({health['score']}/100)")
    if account.cs_veto:
        block("cs_veto", f"customer success veto: {account.cs_veto_reason or 'no reason given'}")
    contacted = max(filter(None, (last_contacted, account.last_contacted_at)), default=None)
    cooldown = timedelta(days=gate.contact_cooldown_days)
    if contacted is not None and cooldown and as_of - cooldown < contacted <= as_of:
        block(
            "recently_contacted",
            f"last expansion email {contacted.isoformat()}, within the {gate.contact_cooldown_days}-day cooldown",
        )
    if held_out:
        block("held_out", "in the no-outreach control group (held out to measure lift)")
    return {"allowed": not reasons, "reasons": reasons}
