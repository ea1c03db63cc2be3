"""The plan and add-on catalog (catalog.yaml): what can be offered, at what price, under which policy.

Offers and drafts may only name what is in here; the drafting validators check that against this model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from outreach.engine.values import email_problem, http_url_problem
from outreach.yamlfile import MAX_WHOLE_NUMBER, FieldProblem, load_yaml_model

MAX_PRICE = 1e9


def _email(text: str) -> str:
    problem = email_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def _http_url(text: str) -> str:
    problem = http_url_problem(text)
    if problem:
        raise ValueError(f"{problem}; use a full link such as https://app.example.com/billing")
    return text


Id = Annotated[str, Field(min_length=1)]
Price = Annotated[float, Field(ge=0, le=MAX_PRICE, strict=True)]
Count = Annotated[int, Field(ge=0, le=MAX_WHOLE_NUMBER, strict=True)]
Percent = Annotated[float, Field(ge=0, le=100, strict=True)]
EmailAddress = Annotated[str, AfterValidator(_email)]
HttpLink = Annotated[str, AfterValidator(_http_url)]


class _Strict(BaseModel):
    """Unknown fields, NaN, infinities and numbers written as text are errors, not guesses."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Plan(_Strict):
    """A tier. ``limits`` maps a metric (seats, reports, storage_gb, api_calls, …) to its cap; null = unlimited.
    ``solves`` names frictions moving up to it removes (like an add-on's, e.g. ``trigger:<kind>``)."""

    id: Id
    name: str
    price_monthly: Price
    limits: dict[str, Count | None] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=list)
    solves: list[str] = Field(default_factory=list)

    def limit(self, metric: str) -> int | None:
        """The cap for ``metric``; None when the plan does not cap it (unlimited or not metered)."""
        return self.limits.get(metric)


class Addon(_Strict):
    """An add-on. ``solves`` lists the frictions it removes (``integration:salesforce``, ``topic:permissions``,
    ``trigger:<kind>``; docs/data-formats.md), matched case-insensitively."""

    id: Id
    name: str
    price_monthly: Price
    solves: list[str] = Field(default_factory=list)
    requires_plan: str | None = None
    outcome: str = ""
    features: list[str] = Field(default_factory=list)


class SeatPack(_Strict):
    id: Id
    name: str
    seats: int = Field(gt=0, le=MAX_WHOLE_NUMBER, strict=True)
    price_monthly: Price


class Bundle(_Strict):
    id: Id
    name: str
    plan: str | None = None
    addons: list[str] = Field(default_factory=list)
    discount_pct: Percent = 0


class Policy(_Strict):
    max_discount_pct: Percent = 0
    thresholds: dict[str, float] = Field(default_factory=dict, description="Overrides of rules thresholds.")


class Company(_Strict):
    name: str
    postal_address: str
    sender_name: str
    sender_email: EmailAddress
    sender_title: str | None = Field(default=None, description="Signs under sender_name when no owner signs.")
    phone: str | None = Field(default=None, description="The only phone number a draft may give.")
    upgrade_url: HttpLink
    unsubscribe_url: HttpLink
    domains: list[str] = Field(default_factory=list, description="Domains links in drafts may point to.")
    product_name: str | None = None


class Metric(_Strict):
    """How a limit reads to the customer: ``storage_gb`` → "GB of storage"."""

    label: str = Field(min_length=1)


class Catalog(_Strict):
    plans: list[Plan] = Field(min_length=1)
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
        """Ids are unique across the catalog (offers name them) and every reference names an existing id;
        each problem blames the value at fault, so the error names its own line and dotted field."""
        owner: dict[str, str] = {}
        sections: tuple[tuple[str, Sequence[Plan | Addon | SeatPack | Bundle]], ...] = (
            ("plans", self.plans),
            ("addons", self.addons),
            ("seat_packs", self.seat_packs),
            ("bundles", self.bundles),
        )
        for section, items in sections:
            for index, item in enumerate(items):
                if item.id in owner:
                    raise FieldProblem(
                        (section, index, "id"), f"id '{item.id}' is already used by {owner[item.id]}"
                    )
                owner[item.id] = f"{section}.{index}"
        plan_ids = self.plan_ids()
        limits = {metric for plan in self.plans for metric in plan.limits}
        for metric in self.metrics:
            if metric not in limits:
                raise FieldProblem(
                    ("metrics", metric), f"'{metric}' is a limit no plan has (limits: {', '.join(sorted(limits))})"
                )
        addon_ids = {addon.id for addon in self.addons}
        known_plans = ", ".join(plan.id for plan in self.plans)
        for index, addon in enumerate(self.addons):
            if addon.requires_plan and addon.requires_plan not in plan_ids:
                raise FieldProblem(
                    ("addons", index, "requires_plan"),
                    f"unknown plan '{addon.requires_plan}' (plans: {known_plans})",
                )
        for index, bundle in enumerate(self.bundles):
            if bundle.plan and bundle.plan not in plan_ids:
                raise FieldProblem(
                    ("bundles", index, "plan"), f"unknown plan '{bundle.plan}' (plans: {known_plans})"
                )
            for position, addon_id in enumerate(bundle.addons):
                if addon_id not in addon_ids:
                    raise FieldProblem(
                        ("bundles", index, "addons", position),
                        f"unknown add-on '{addon_id}' (add-ons: {', '.join(sorted(addon_ids)) or 'none'})",
                    )
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
    return load_yaml_model(
        Catalog, path, missing_hint="a data directory needs catalog.yaml (plans, addons, seat packs, bundles, company)"
    )
