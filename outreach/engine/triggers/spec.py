"""What a trigger is: one :class:`TriggerSpec` holds everything every stage needs to know about one kind.

A spec names its kind and motion, its settings (a pydantic model whose defaults are the documented
thresholds; ``rules.yaml`` overrides them under ``triggers.<kind>``), the DuckDB query that finds it for every
account at once, the statement and strength the friction stage computes in DuckDB, the catalog ``solves``
keys and plan routes the offer stage matches, the wording drafting uses (headline, the offline drafter's
sentence) and its row in the docs. The stages iterate over the registry
(:mod:`outreach.engine.triggers.registry`); none of them names a kind.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, Protocol, TypeVar

import duckdb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from outreach.engine.catalog import Catalog
from outreach.engine.triggers import sql
from outreach.types import Motion
from outreach.yamlfile import FieldProblem

Figure = int | float | str

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


MAX_WINDOW_DAYS = 3650
MAX_WEIGHT = 1000.0


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventNames(StrictModel):
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


class TriggerSettings(StrictModel):
    """A trigger's thresholds. ``weight`` ranks its frictions: strength = weight × how far past the threshold
    (capped by ``strength_cap``)."""

    weight: float = Field(default=1.0, ge=0, description="Kind weight in the friction strength.")

    @model_validator(mode="after")
    def _in_range(self) -> TriggerSettings:
        """Every trigger's windows and weight stay in a range SQL can compute with (a mistyped 1000000 is an
        error naming its line, not an overflow)."""
        for name, value in self:
            if name.endswith("_days") and isinstance(value, int) and value > MAX_WINDOW_DAYS:
                raise FieldProblem((name,), f"{value} days is more than {MAX_WINDOW_DAYS} (ten years)")
        if self.weight > MAX_WEIGHT:
            raise FieldProblem(("weight",), f"{self.weight:g} is more than the largest weight, {MAX_WEIGHT:g}")
        return self


class WindowSettings(TriggerSettings):
    window_days: int = Field(default=30, gt=0)


@dataclass(frozen=True)
class Detection:
    """What a trigger's query may use: the engine session (with ``events``, ``account_dim``, ``plan_limit``,
    ``ticket_rows`` and the shared ``usage_snapshot``), the catalog, the event names and the analysis window."""

    con: duckdb.DuckDBPyConnection
    catalog: Catalog
    events: EventNames
    as_of: date
    evidence_cap: int

    @property
    def end(self) -> datetime:
        """Midnight at the start of the analysis date: every window ends just before it."""
        return datetime(self.as_of.year, self.as_of.month, self.as_of.day)

    @property
    def end_sql(self) -> str:
        return f"TIMESTAMP '{self.end.isoformat(sep=' ')}'"

    def since(self, days: int) -> str:
        return sql.since(self.end, days)

    def newest(self, ids: str, order: str) -> str:
        """The ``evidence_cap`` ids that come first by ``order``, descending: a top-n aggregate, no sorted list."""
        return f"arg_max({ids}, {order}, {self.evidence_cap})"

    def grouped(self, event: str, prop: str, days: int, minimum: int) -> str:
        """Per account and value of ``prop``: ``n`` events named ``event`` in the window, at least ``minimum``."""
        return f"""
            SELECT account_id, props->>'{prop}' AS subject, count(*) AS n,
                   {self.newest("message_id", "(ts, line)")} AS evidence
            FROM events
            WHERE event = {sql.text(event)} AND ts >= {self.since(days)} AND ts < {self.end_sql}
              AND props->>'{prop}' IS NOT NULL
            GROUP BY ALL HAVING count(*) >= {minimum}"""


class SignalView(Protocol):
    """What wording reads from a friction (an engine ``Friction`` or drafting's facts)."""

    @property
    def statement(self) -> str: ...

    @property
    def figures(self) -> Mapping[str, Figure]: ...

    @property
    def window_days(self) -> int | None: ...


@dataclass(frozen=True)
class ExampleSignal:
    statement: str
    figures: Mapping[str, Figure]
    window_days: int | None


Headline = Callable[[SignalView, Catalog], str]
Opening = Callable[[SignalView, Catalog, str], str]
"""The email's opening for a friction: (signal, catalog, the name of the account's current plan) → sentences."""
Terms = Callable[[SignalView, Catalog], tuple[str, ...]]


def _no_terms(_signal: SignalView, _catalog: Catalog) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Wording:
    """How drafting words a friction of this kind. The copy rules (docs/drafting.md): lead with what the team is
    trying to get done and what the limit costs them; quote only figures the customer knows themselves (plan
    caps, seats, headcount), never what was counted (clicks, visits, exports, rows, tickets); tie the offer to
    the friction.

    ``headline``: a short subject-line phrase. ``opening``: the email's first sentences (what the team is trying
    to do, what the limit costs; without one, drafting writes ``speaker`` + the statement). ``terms``: the words
    that name what the friction is about: the paragraph naming the offer must use one. ``bridge``: the phrase
    that ties an offer to this friction when the catalog's outcome does not name it ("For more seats").
    ``consequence``: the sentence after a statement (``{product_name}`` is the product's name). ``speaker``: who
    a statement is about ("Your team hit the reports limit…").
    """

    headline: Headline
    consequence: str = ""
    speaker: str = "Your team"
    opening: Opening | None = None
    terms: Terms = _no_terms
    bridge: Callable[[SignalView, Catalog], str] | None = None

    def consequence_for(self, product_name: str) -> str:
        return self.consequence.format(product_name=product_name)


def product_name(catalog: Catalog) -> str:
    """The product's name in a sentence (the company's when the catalog gives none)."""
    return catalog.company.product_name or catalog.company.name


def figure_text(value: Figure | None) -> str:
    """A figure as an email writes it: whole numbers grouped (1,000,000), others as given."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,g}"


@dataclass(frozen=True)
class Example:
    """A typical fired signal and what the friction stage makes of it with the default settings: a test checks
    the statement and strength against the SQL, and drafting's template check renders it."""

    subject: str | None
    figures: dict[str, Figure]
    window_days: int | None
    statement: str
    strength: float


SettingsT = TypeVar("SettingsT", bound=TriggerSettings)


@dataclass(frozen=True, kw_only=True)
class TriggerSpec(Generic[SettingsT]):
    """One trigger, complete: detection, friction, offer, wording and docs.

    SQL fragments are DuckDB expressions. ``query`` selects ``account_id, subject, figures (JSON), evidence
    (VARCHAR[]), window_days`` per fired signal; ``statement`` and ``strength`` are expressions over a
    ``signal_rows`` row (``figures``, ``window_days`` and ``name``, the display name of the subject);
    ``offer_keys`` are :mod:`string` templates over the figures (``integration:{integration}``) matched
    against the catalog's ``solves`` lists, case-insensitively; ``trigger:<kind>`` always matches too.
    """

    kind: str
    motion: Motion
    settings: type[SettingsT]
    summary: str
    figures: tuple[str, ...]
    query: Callable[[Detection, SettingsT], str]
    statement: str
    strength: Callable[[SettingsT], str]
    wording: Wording
    example: Example
    offer_keys: tuple[str, ...] = ()
    prepare: Callable[[Detection, SettingsT], None] | None = None
    # The working tables ``prepare`` creates for ``query`` alone: dropped once ``signal_rows`` holds the signals
    # (a million accounts' tickets are two million ``ticket_topic`` rows that would sit through the offers).
    prepares: tuple[str, ...] = ()
    subject_name: Callable[[str, Catalog], str] | None = None
    # Offer routes besides the catalog's ``solves`` (see outreach.engine.offers):
    limit_figure: str | None = None  # the figure naming the plan limit pressed: a higher plan that covers it
    usage_figures: tuple[str, ...] = ()  # figures holding the use a higher plan's limit must cover
    seat_demand: str | None = None  # seats needed before growth (SQL): a seat pack or a plan with the seats
    feature_figure: str | None = None  # the figure naming a locked feature: a plan, else an add-on, with it
    next_plan: str | None = None  # the next plan up, with this rationale
    # The shared ``usage_snapshot`` (latest ``Usage Reported`` per account and metric, with its ``cap``):
    snapshot_days: Callable[[SettingsT], int] | None = None  # how far back this trigger reads it
    snapshot_claim: Callable[[SettingsT], str] | None = None  # snapshot rows only this trigger reports (SQL)

    @property
    def has_plan_route(self) -> bool:
        return bool(self.limit_figure or self.seat_demand or self.feature_figure or self.next_plan)

    def settings_in(self, section: BaseModel) -> SettingsT:
        """This trigger's settings inside a ``triggers`` section of the rules."""
        found = getattr(section, self.kind)
        assert isinstance(found, self.settings)
        return found

    def describe(self, settings: SettingsT, events: EventNames) -> str:
        """``summary`` with the thresholds filled in (docs and ``outreach rules check``)."""
        return self.summary.format(**dict(settings), events=events)

    def key_sql(self) -> str:
        """``offer_keys`` as a DuckDB ``VARCHAR[]`` over ``f.figures``, then ``trigger:<kind>``."""
        keys = [_template_sql(key) for key in self.offer_keys]
        keys.append(sql.text(f"trigger:{self.kind}"))
        return "[" + ", ".join(keys) + "]::VARCHAR[]"

    def problems(self, settings: SettingsT | None = None) -> list[str]:
        """What is missing or inconsistent in this spec (empty when complete), checked with ``settings`` (by
        default the settings model's defaults, which a built-in must have)."""
        found: list[str] = []
        if not KIND_PATTERN.match(self.kind):
            found.append(f"kind '{self.kind}' is not snake_case")
        if self.motion not in ("upsell", "cross_sell"):
            found.append(f"motion '{self.motion}' is neither upsell nor cross_sell")
        for name, value in (("summary", self.summary), ("statement", self.statement)):
            if not value.strip():
                found.append(f"{name} is empty")
        if not self.figures:
            found.append("figures is empty")
        if (self.prepare is None) != (not self.prepares):
            found.append("prepare and prepares go together: name the tables prepare creates in prepares")
        try:
            defaults = settings if settings is not None else self.settings()
        except Exception as error:
            return [*found, f"settings have no complete defaults: {error}"]
        try:
            self.describe(defaults, EventNames())
        except (KeyError, AttributeError, IndexError, ValueError) as error:
            found.append(f"summary does not format with the settings: {error!r}")
        unknown = set(self.example.figures) - set(self.figures)
        if unknown:
            found.append(f"example uses figures not listed in figures: {sorted(unknown)}")
        for key in self.offer_keys:
            names = {name for _, name, _, _ in string.Formatter().parse(key) if name}
            if names - set(self.figures):
                found.append(f"offer key '{key}' uses figures not listed in figures: {sorted(names - set(self.figures))}")
        for name, figure in (("limit_figure", self.limit_figure), ("feature_figure", self.feature_figure)):
            if figure is not None and figure not in self.figures:
                found.append(f"{name} '{figure}' is not one of the figures")
        if set(self.usage_figures) - set(self.figures):
            found.append("usage_figures must be figures")
        try:
            example = ExampleSignal(self.example.statement, self.example.figures, self.example.window_days)
            headline = self.wording.headline(example, _EMPTY_CATALOG)
        except Exception as error:
            found.append(f"headline fails on the example: {error!r}")
        else:
            if not headline.strip():
                found.append("headline is empty for the example")
        try:
            self.wording.consequence_for("Product")
        except (KeyError, IndexError, ValueError) as error:
            found.append(f"consequence does not format: {error!r}")
        try:
            opening = self.wording.opening(example, _EMPTY_CATALOG, "Starter") if self.wording.opening else "-"
            self.wording.terms(example, _EMPTY_CATALOG)
            bridge = self.wording.bridge(example, _EMPTY_CATALOG) if self.wording.bridge else "-"
        except Exception as error:
            found.append(f"opening, terms or bridge fail on the example: {error!r}")
        else:
            if not opening.strip() or not bridge.strip():
                found.append("opening or bridge is empty for the example")
        return found


def _template_sql(template: str) -> str:
    """``"integration:{integration}"`` → ``'integration:' || (f.figures->>'integration')`` (NULL if the figure is)."""
    parts: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(sql.text(literal))
        if name:
            parts.append(f"(f.figures->>{sql.text(name)})")
    return " || ".join(parts) or "''"


def _empty_catalog() -> Catalog:
    company = {
        "name": "Example Co",
        "postal_address": "1 Example Street",
        "sender_name": "Sam",
        "sender_email": "sam@example.com",
        "upgrade_url": "https://example.com/upgrade",
        "unsubscribe_url": "https://example.com/unsubscribe",
    }
    return Catalog.model_validate({"plans": [{"id": "p", "name": "P", "price_monthly": 0}], "company": company})


_EMPTY_CATALOG = _empty_catalog()
