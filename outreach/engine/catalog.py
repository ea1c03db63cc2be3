"""The plan and add-on catalog (catalog.yaml): what can be offered, at what price, under which policy.

Offers and drafts may only name what is in here; the drafting validators check that against this model.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from outreach.errors import DataError
from outreach.yamlfile import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Plan(_Strict):
    """A tier. ``limits`` maps a metric (seats, reports, storage_gb, api_calls, …) to its cap; null = unlimited.
    ``solves`` names frictions moving up to it removes (like an add-on's, e.g. ``trigger:<kind>``)."""

    id: str
    name: str
    price_monthly: float = Field(ge=0)
    limits: dict[str, int | None] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=list)
    solves: list[str] = Field(default_factory=list)

    def limit(self, metric: str) -> int | None:
        """The cap for ``metric``; None when the plan does not cap it (unlimited or not metered)."""
        return self.limits.get(metric)


class Addon(_Strict):
    """An add-on. ``solves`` lists the frictions it removes (``integration:salesforce``, ``topic:permissions``,
    ``trigger:<kind>``; docs/data-formats.md), matched case-insensitively."""

    id: str
    name: str
    price_monthly: float = Field(ge=0)
    solves: list[str] = Field(default_factory=list)
    requires_plan: str | None = None
    outcome: str = ""
    features: list[str] = Field(default_factory=list)


class SeatPack(_Strict):
    id: str
    name: str
    seats: int = Field(gt=0)
    price_monthly: float = Field(ge=0)


class Bundle(_Strict):
    id: str
    name: str
    plan: str | None = None
    addons: list[str] = Field(default_factory=list)
    discount_pct: float = Field(default=0, ge=0, le=100)


class Policy(_Strict):
    max_discount_pct: float = Field(default=0, ge=0, le=100)
    thresholds: dict[str, float] = Field(default_factory=dict, description="Overrides of rules thresholds.")


class Company(_Strict):
    name: str
    postal_address: str
    sender_name: str
    sender_email: str
    sender_title: str | None = Field(default=None, description="Signs under sender_name when no owner signs.")
    phone: str | None = Field(default=None, description="The only phone number a draft may give.")
    upgrade_url: str
    unsubscribe_url: str
    domains: list[str] = Field(default_factory=list, description="Domains links in drafts may point to.")
    product_name: str | None = None


class Metric(_Strict):
    """How a limit reads to the customer: ``storage_gb`` → "GB of storage"."""

    label: str = Field(min_length=1)


class Catalog(_Strict):
    plans: list[Plan]
    metrics: dict[str, Metric] = Field(
        default_factory=dict, description="Display name per limit (plans' limits keys); drafts never show raw ids."
    )
    addons: list[Addon] = Field(default_factory=list)
    seat_packs: list[SeatPack] = Field(default_factory=list)
    bundles: list[Bundle] = Field(default_factory=list)
    policy: Policy = Field(default_factory=Policy)
    company: Company

    @model_validator(mode="after")
    def _check_references(self) -> Catalog:
        plan_ids = self.plan_ids()
        if len(plan_ids) != len(self.plans):
            raise ValueError("plan ids must be unique")
        limits = {metric for plan in self.plans for metric in plan.limits}
        for metric in self.metrics:
            if metric not in limits:
                raise ValueError(f"metrics names '{metric}', which no plan limits (known: {', '.join(sorted(limits))})")
        addon_ids = {addon.id for addon in self.addons}
        for addon in self.addons:
            if addon.requires_plan and addon.requires_plan not in plan_ids:
                raise ValueError(f"add-on '{addon.id}' requires unknown plan '{addon.requires_plan}'")
        for bundle in self.bundles:
            if bundle.plan and bundle.plan not in plan_ids:
                raise ValueError(f"bundle '{bundle.id}' names unknown plan '{bundle.plan}'")
            for addon_id in bundle.addons:
                if addon_id not in addon_ids:
                    raise ValueError(f"bundle '{bundle.id}' names unknown add-on '{addon_id}'")
        return self

    def plan_ids(self) -> set[str]:
        return {plan.id for plan in self.plans}

    def plan(self, plan_id: str) -> Plan:
        for plan in self.plans:
            if plan.id == plan_id:
                return plan
        raise KeyError(plan_id)

    def plan_rank(self, plan_id: str) -> int:
        """Position of the plan in the ordered tier list (0 = lowest)."""
        for index, plan in enumerate(self.plans):
            if plan.id == plan_id:
                return index
        raise KeyError(plan_id)

    def higher_plans(self, plan_id: str) -> list[Plan]:
        return self.plans[self.plan_rank(plan_id) + 1 :]

    def metric_label(self, metric: str) -> str:
        """The customer-facing name of a limit: the catalog's ``label``, else the id in words."""
        found = self.metrics.get(metric)
        return found.label if found else metric.replace("_", " ")

    def addon(self, addon_id: str) -> Addon:
        for addon in self.addons:
            if addon.id == addon_id:
                return addon
        raise KeyError(addon_id)

    def all_ids(self) -> set[str]:
        return (
            self.plan_ids()
            | {a.id for a in self.addons}
            | {s.id for s in self.seat_packs}
            | {b.id for b in self.bundles}
        )


def load_catalog(path: Path) -> Catalog:
    if not path.exists():
        raise DataError(
            path, "file not found", hint="a data directory needs catalog.yaml (plans, addons, company)"
        )
    return load_yaml_model(Catalog, path)
