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
from outreach.yamlfile import deep_merge, line_in_file, parse_yaml, read_yaml_text, validate_yaml

DEFAULT_RULES_PATH = bundled.RULES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Upper bounds, so a typo such as 10000000000 is an error naming its line instead of an overflow in SQL.
MAX_DAYS = 3650
MAX_COUNT = 1_000_000
MAX_FACTOR = 100.0
MAX_WEIGHT = 1000.0
MAX_EVIDENCE = 100


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
    window_days: int = Field(default=30, gt=0, le=MAX_DAYS)


class UsageNearLimit(_Strict):
    pct: float = Field(default=0.8, gt=0, le=1)
    window_days: int = Field(default=30, gt=0, le=MAX_DAYS, description="A usage snapshot older than this is ignored.")


class RepeatedLimitHits(Window):
    min_hits: int = Field(default=3, gt=0, le=MAX_COUNT)


class LockedFeature(Window):
    min_clicks: int = Field(default=3, gt=0, le=MAX_COUNT)


class SeatPressure(Window):
    pct: float = Field(default=0.9, gt=0, le=1)


class HeadcountGrowth(_Strict):
    pct: float = Field(default=0.25, gt=0, le=MAX_FACTOR)


class StrongNps(_Strict):
    min_nps: int = Field(default=9, ge=0, le=10)


class IntegrationRequest(Window):
    window_days: int = Field(default=60, gt=0, le=MAX_DAYS)
    min_requests: int = Field(default=1, gt=0, le=MAX_COUNT)


class FrequentExports(Window):
    window_days: int = Field(default=14, gt=0, le=MAX_DAYS)
    min_exports: int = Field(default=8, gt=0, le=MAX_COUNT)


class TicketTopicCluster(Window):
    window_days: int = Field(default=90, gt=0, le=MAX_DAYS)
    share: float = Field(default=0.3, gt=0, le=1)
    min_tickets: int = Field(default=3, gt=0, le=MAX_COUNT)


class AddonPageVisits(Window):
    min_visits: int = Field(default=3, gt=0, le=MAX_COUNT)


class NewDepartment(Window):
    min_invites: int = Field(default=1, gt=0, le=MAX_COUNT)


class WorkflowAbandoned(Window):
    min_abandons: int = Field(default=3, gt=0, le=MAX_COUNT)


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
    activation: float = Field(default=20, ge=0, le=MAX_WEIGHT)
    usage_trend: float = Field(default=25, ge=0, le=MAX_WEIGHT)
    champion: float = Field(default=15, ge=0, le=MAX_WEIGHT)
    support: float = Field(default=15, ge=0, le=MAX_WEIGHT)
    nps: float = Field(default=10, ge=0, le=MAX_WEIGHT)
    adoption: float = Field(default=15, ge=0, le=MAX_WEIGHT)

    @property
    def total(self) -> float:
        """The weights' sum (1 when all are zero, so a score stays defined)."""
        return (self.activation + self.usage_trend + self.champion + self.support + self.nps + self.adoption) or 1.0


class HealthRules(_Strict):
    weights: HealthWeights = HealthWeights()
    green_min: int = Field(default=70, ge=0, le=100)
    yellow_min: int = Field(default=40, ge=0, le=100)


class GateRules(_Strict):
    onboarding_days: int = Field(default=60, ge=0, le=MAX_DAYS)
    usage_drop_pct: float = Field(default=0.2, gt=0, le=1)
    champion_silent_days: int = Field(default=21, gt=0, le=MAX_DAYS)
    contact_cooldown_days: int = Field(default=14, ge=0, le=MAX_DAYS)
    block_on_open_priorities: list[str] = Field(default_factory=lambda: ["high", "urgent"])


class OfferRules(_Strict):
    headroom: float = Field(default=0.2, ge=0, le=MAX_FACTOR, description="Extra capacity a recommended plan must leave.")
    seat_growth_pct: float = Field(default=0.2, ge=0, le=MAX_FACTOR, description="Growth a seat pack is sized for.")


class Rules(_Strict):
    events: EventNames = EventNames()
    triggers: Triggers = Triggers()
    health: HealthRules = HealthRules()
    gate: GateRules = GateRules()
    offers: OfferRules = OfferRules()
    evidence_cap: int = Field(default=5, gt=0, le=MAX_EVIDENCE, description="Evidence ids kept per signal.")


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


def load_rules(
    *paths: Path | None, policy_overrides: dict[str, float] | None = None, policy_path: Path | None = None
) -> Rules:
    """Defaults, then each existing file in ``paths`` (later wins), then the catalog policy's dotted overrides
    (from ``policy_path``, the catalog.yaml errors name)."""
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
        key = next((k for k in policy_overrides or {} if field in (k, f"triggers.{k}")), field)
        location = ("policy", "thresholds", key)
        catalog = policy_path or Path("catalog.yaml")
        raise DataError(
            catalog,
            "not a rule name (check the spelling)" if first["type"] == "extra_forbidden" else first["msg"],
            line=line_in_file(catalog, location) if policy_path else None,
            field=".".join(location),
            hint="policy.thresholds keys are dotted rule names, e.g. frequent_exports.min_exports: 10",
        ) from None


def default_rules_yaml() -> str:
    return DEFAULT_RULES_PATH.read_text(encoding="utf-8")
