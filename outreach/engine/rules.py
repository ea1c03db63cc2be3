"""Thresholds and rules: when a trigger fires, how health is scored, when the gate blocks, how offers are sized.

Defaults live in ``outreach/defaults/rules.yaml`` (documented there and in docs/engine.md). A project
overrides any subset with ``rules.yaml`` in its data directory or ``--rules FILE``; the catalog's
``policy.thresholds`` may override single values with dotted keys (``frequent_exports.min_exports: 10``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from outreach import bundled
from outreach.errors import ConfigError, DataError
from outreach.yamlfile import deep_merge, parse_yaml, read_yaml_text, validate_yaml

DEFAULT_RULES_PATH = bundled.RULES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventNames(_Strict):
    """The Segment event names recognised, so a product that says "Quota Hit" can map it."""

    limit_reached: str = "Limit Reached"
    usage_reported: str = "Usage Reported"
    locked_feature_clicked: str = "Locked Feature Clicked"
    export_created: str = "Export Created"
    integration_requested: str = "Integration Requested"
    user_invited: str = "User Invited"
    user_removed: str = "User Removed"
    signed_in: str = "Signed In"
    feature_used: str = "Feature Used"
    workflow_completed: str = "Workflow Completed"
    workflow_abandoned: str = "Workflow Abandoned"
    page_viewed: str = "Page Viewed"


class Window(_Strict):
    window_days: int = Field(default=30, gt=0)


class UsageNearLimit(_Strict):
    pct: float = Field(default=0.8, gt=0, le=1)
    window_days: int = Field(default=30, gt=0, description="A usage snapshot older than this is ignored.")


class RepeatedLimitHits(Window):
    min_hits: int = Field(default=3, gt=0)


class LockedFeature(Window):
    min_clicks: int = Field(default=3, gt=0)


class SeatPressure(Window):
    pct: float = Field(default=0.9, gt=0, le=1)


class HeadcountGrowth(_Strict):
    pct: float = Field(default=0.25, gt=0)


class StrongNps(_Strict):
    min_nps: int = Field(default=9, ge=0, le=10)


class IntegrationRequest(Window):
    window_days: int = Field(default=60, gt=0)
    min_requests: int = Field(default=1, gt=0)


class FrequentExports(Window):
    window_days: int = Field(default=14, gt=0)
    min_exports: int = Field(default=8, gt=0)


class TicketTopicCluster(Window):
    window_days: int = Field(default=90, gt=0)
    share: float = Field(default=0.3, gt=0, le=1)
    min_tickets: int = Field(default=3, gt=0)


class AddonPageVisits(Window):
    min_visits: int = Field(default=3, gt=0)


class NewDepartment(Window):
    min_invites: int = Field(default=1, gt=0)


class WorkflowAbandoned(Window):
    min_abandons: int = Field(default=3, gt=0)


class Triggers(_Strict):
    usage_near_limit: UsageNearLimit = UsageNearLimit()
    repeated_limit_hits: RepeatedLimitHits = RepeatedLimitHits()
    locked_feature: LockedFeature = LockedFeature()
    seat_pressure: SeatPressure = SeatPressure()
    headcount_growth: HeadcountGrowth = HeadcountGrowth()
    strong_nps: StrongNps = StrongNps()
    integration_request: IntegrationRequest = IntegrationRequest()
    frequent_exports: FrequentExports = FrequentExports()
    ticket_topic_cluster: TicketTopicCluster = TicketTopicCluster()
    addon_page_visits: AddonPageVisits = AddonPageVisits()
    new_department: NewDepartment = NewDepartment()
    workflow_abandoned: WorkflowAbandoned = WorkflowAbandoned()
    disabled: list[str] = Field(default_factory=list, description="Trigger kinds switched off.")


class HealthWeights(_Strict):
    activation: float = 20
    usage_trend: float = 25
    champion: float = 15
    support: float = 15
    nps: float = 10
    adoption: float = 15

    @property
    def total(self) -> float:
        """The weights' sum (1 when all are zero, so a score stays defined)."""
        return (self.activation + self.usage_trend + self.champion + self.support + self.nps + self.adoption) or 1.0


class HealthRules(_Strict):
    weights: HealthWeights = HealthWeights()
    green_min: int = Field(default=70, ge=0, le=100)
    yellow_min: int = Field(default=40, ge=0, le=100)


class GateRules(_Strict):
    onboarding_days: int = Field(default=60, ge=0)
    usage_drop_pct: float = Field(default=0.2, gt=0, le=1)
    champion_silent_days: int = Field(default=21, gt=0)
    contact_cooldown_days: int = Field(default=14, ge=0)
    block_on_open_priorities: list[str] = Field(default_factory=lambda: ["high", "urgent"])


class OfferRules(_Strict):
    headroom: float = Field(default=0.2, ge=0, description="Extra capacity a recommended plan must leave.")
    seat_growth_pct: float = Field(default=0.2, ge=0, description="Growth a seat pack is sized for.")


class Rules(_Strict):
    events: EventNames = EventNames()
    triggers: Triggers = Triggers()
    health: HealthRules = HealthRules()
    gate: GateRules = GateRules()
    offers: OfferRules = OfferRules()
    evidence_cap: int = Field(default=5, gt=0, description="Evidence ids kept per signal.")


def _dotted(overrides: dict[str, float]) -> dict[str, Any]:
    """``{"frequent_exports.min_exports": 10}`` → nested dict under ``triggers`` (or a top-level section)."""
    nested: dict[str, Any] = {}
    sections = set(Rules.model_fields)
    for key, value in overrides.items():
        parts = key.split(".")
        if parts[0] not in sections:
            parts = ["triggers", *parts]
        cursor = nested
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
    return nested


def load_rules(*paths: Path | None, policy_overrides: dict[str, float] | None = None) -> Rules:
    """Defaults, then each existing file in ``paths`` (later wins), then the catalog policy's dotted overrides."""
    merged: dict[str, Any] = {}
    files = [path for path in paths if path is not None]
    for path in files:
        if not path.exists():
            raise ConfigError(f"{path}: rules file not found", hint="check --rules or OUTREACH_RULES_PATH")
        text = read_yaml_text(path)
        data, _ = parse_yaml(text, path)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise DataError(path, "rules file must be a mapping", line=1)
        validate_yaml(Rules, text, path)  # reports bad fields with their line in the file that has them
        merged = deep_merge(merged, data)
    if policy_overrides:
        merged = deep_merge(merged, _dotted(policy_overrides))
    if not merged:
        return Rules()
    try:
        return Rules.model_validate(merged)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"catalog.yaml policy.thresholds: '{field}': {first['msg']}",
            hint="policy.thresholds keys are dotted rule names, e.g. frequent_exports.min_exports: 10",
        ) from None


def default_rules_yaml() -> str:
    return DEFAULT_RULES_PATH.read_text(encoding="utf-8")
