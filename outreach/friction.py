"""Friction: each fired trigger restated as the specific, quantified problem the customer already feels.

The statement is built only from the signal's figures, so every number in it is true; drafting later checks
that every number in an email appears among these figures.
"""

from __future__ import annotations

from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field

from outreach.catalog import Catalog
from outreach.rules import Rules
from outreach.signals import Figure, Signal, signal_strength
from outreach.types import Motion, SignalKind


class Friction(BaseModel):
    """A fired trigger with its plain-language statement, figures, window and evidence."""

    model_config = ConfigDict(frozen=True)

    kind: SignalKind
    motion: Motion
    subject: str | None = None
    statement: str
    figures: dict[str, Figure] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)
    window_days: int | None = None
    strength: float = 0.0

    @property
    def id(self) -> str:
        """Stable id within an account: kind plus subject (``repeated_limit_hits:reports``)."""
        return f"{self.kind}:{self.subject}" if self.subject else self.kind


class FrictionRecord(TypedDict):
    """:class:`Friction` as the plain dict the engine computes (validated into Friction only when asked)."""

    kind: SignalKind
    motion: Motion
    subject: str | None
    statement: str
    figures: dict[str, Figure]
    window_days: int | None
    strength: float
    evidence: list[str]


def friction_id(friction: FrictionRecord) -> str:
    """The record's :attr:`Friction.id`."""
    subject = friction["subject"]
    return f"{friction['kind']}:{subject}" if subject else friction["kind"]


def _n(value: Figure) -> str:
    """Large counts read better grouped (870,000); the figure itself stays a number."""
    if isinstance(value, int | float) and abs(value) >= 10000:
        return f"{value:,}"
    return str(value)


def _times(count: int) -> str:
    return "once" if count == 1 else "twice" if count == 2 else f"{count} times"


def _label(text: str) -> str:
    return text.replace("_", " ")


def _window(days: int | None) -> str:
    return f"in the last {days} days" if days else ""


def state(signal: Signal, catalog: Catalog) -> str:
    """The one-sentence friction statement, with the exact figures."""
    f = signal.figures
    window = _window(signal.window_days)
    kind = signal.kind
    if kind == "repeated_limit_hits":
        cap = f" (cap {_n(f['cap'])})" if "cap" in f else ""
        return f"hit the {_label(str(f['limit']))} limit {_times(int(f['hits']))} {window}{cap}"
    if kind == "usage_near_limit":
        return f"is using {_n(f['used'])} of {_n(f['cap'])} {_label(str(f['metric']))} allowed by the plan ({f['pct']}%)"
    if kind == "seat_pressure":
        parts = []
        if "seats_used" in f and "seats" in f:
            parts.append(f"has {f['seats_used']} of {f['seats']} seats in use")
        if "swaps" in f:
            parts.append(f"removed users to make room for new invites {_times(int(f['swaps']))} {window}")
        return " and ".join(parts)
    if kind == "locked_feature":
        return f"clicked the locked {_feature(str(f['feature']))} feature {_times(int(f['clicks']))} {window}"
    if kind == "headcount_growth":
        return (
            f"grew from {f['employees_at_contract']} to {f['employees_now']} employees since the contract "
            f"started (+{f['growth_pct']}%)"
        )
    if kind == "strong_nps":
        return f"gave an NPS score of {f['nps']}"
    if kind == "integration_request":
        sources = []
        if int(f["requests"]):
            sources.append(f"asked for it in the product {_times(int(f['requests']))}")
        if int(f["tickets"]):
            count = int(f["tickets"])
            sources.append(f"in {count} support ticket{'s' if count != 1 else ''}")
        return (
            f"asked about a {_display(str(f['integration']))} integration ({' and '.join(sources)}) {window}"
        )
    if kind == "frequent_exports":
        rows = f" ({f['rows']:,} rows)" if isinstance(f.get("rows"), int) else ""
        return f"exported data {f['exports']} times {window}{rows}"
    if kind == "ticket_topic_cluster":
        return (
            f"opened {f['tickets']} of {f['total_tickets']} support tickets about {_label(str(f['topic']))} "
            f"{window} ({f['share_pct']}%)"
        )
    if kind == "addon_page_visits":
        try:
            name = catalog.addon(str(f["addon"])).name
        except KeyError:
            name = str(f["addon"])
        return f"viewed the {name} page {_times(int(f['visits']))} {window}"
    if kind == "new_department":
        count = int(f["invites"])
        return (
            f"invited {count} user{'s' if count != 1 else ''} from {_display(str(f['department']))}, "
            f"a department new to the account, {window}"
        )
    if kind == "workflow_abandoned":
        step = f" at the {_label(str(f['step']))} step" if f.get("step") else ""
        return (
            f"abandoned the {_label(str(f['workflow']))} workflow{step} {_times(int(f['abandons']))} {window}"
        )
    raise ValueError(f"no statement for signal kind {kind}")  # pragma: no cover - SignalKind is closed


def _display(name: str) -> str:
    special = {"hubspot": "HubSpot", "bigquery": "BigQuery", "sso": "SSO", "api": "API"}
    return special.get(name.lower(), name.replace("_", " ").title() if name.islower() else name)


def _feature(name: str) -> str:
    return {"sso": "SSO", "api_access": "API access", "audit_log": "audit log"}.get(name, _label(name))


def enrich(signal: Signal, catalog: Catalog, rules: Rules) -> FrictionRecord:
    return {
        "kind": signal.kind,
        "motion": signal.motion,
        "subject": signal.subject,
        "statement": state(signal, catalog).strip(),
        "figures": signal.figures,
        "window_days": signal.window_days,
        "strength": signal_strength(signal, rules),
        "evidence": signal.evidence,
    }


def rank(frictions: list[FrictionRecord]) -> list[FrictionRecord]:
    """Strongest friction first; ties broken by kind and subject so the order is deterministic."""
    return sorted(frictions, key=lambda f: (-f["strength"], f["kind"], f["subject"] or ""))
