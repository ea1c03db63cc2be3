"""One decision per account: signals → friction → health gate → offer → cohort.

This is what ``outreach explain`` shows and what drafting consumes. The cohort is ``ready`` (a signal and
the gate passes), ``nurture`` (a signal, but gated) or ``not_fit`` (no signal: never pitched just because
the account bought one thing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypedDict, cast

import orjson
from pydantic import BaseModel, ConfigDict

from outreach.data import Account, Dataset, load_dataset, paused_gc
from outreach.friction import Friction, FrictionRecord, frictions
from outreach.health import Gate, GateRecord, Health, HealthRecord, check_gate, open_tickets, score_health
from outreach.offers import Offer, OfferRecord, choose_offer
from outreach.rules import Rules, load_rules
from outreach.signals import detect
from outreach.types import Cohort


class DecisionRecord(TypedDict):
    """A :class:`Decision` without its account, as the plain records the engine computes."""

    cohort: Cohort
    health: HealthRecord
    gate: GateRecord
    frictions: list[FrictionRecord]
    offer: OfferRecord | None


def json_row(account: Account, record: DecisionRecord) -> dict[str, Any]:
    """One element of the documented ``explain --json`` array (docs/engine.md)."""
    health, offer = record["health"], record["offer"]
    return {
        "account_id": account.account_id,
        "name": account.name,
        "plan": account.plan,
        "owner_email": account.owner_email,
        "cohort": record["cohort"],
        "health": {"score": health["score"], "band": health["band"], "components": health["components"]},
        "signals": record["frictions"],
        "gate": record["gate"],
        "offer": None
        if offer is None
        else {
            "id": offer["id"],
            "kind": offer["kind"],
            "motion": offer["motion"],
            "name": offer["name"],
            "price_monthly": offer["price_monthly"],
            "quantity": offer["quantity"],
            "discount_pct": offer["discount_pct"],
            "friction": offer["friction"],
            "supporting": offer["supporting"],
        },
    }


class Decision(BaseModel):
    """Everything the engine concluded about one account on one analysis date."""

    model_config = ConfigDict(frozen=True)

    account: Account
    as_of: date
    cohort: Cohort
    health: Health
    gate: Gate
    frictions: list[Friction]
    offer: Offer | None

    @property
    def account_id(self) -> str:
        return self.account.account_id

    def primary_friction(self) -> Friction | None:
        if self.offer is not None:
            for friction in self.frictions:
                if friction.id == self.offer.friction:
                    return friction
        return self.frictions[0] if self.frictions else None

    def to_json(self) -> dict[str, Any]:
        """The documented ``explain --json`` shape (docs/engine.md)."""
        record = cast(DecisionRecord, self.model_dump(include=set(DecisionRecord.__annotations__)))
        return json_row(self.account, record)


def decide(
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    *,
    last_contacted: Mapping[str, date] | None = None,
    held_out: Callable[[Account], bool] | None = None,
    account_ids: set[str] | None = None,
) -> list[Decision]:
    """Decide every account (or those in ``account_ids``), in accounts.csv order.

    ``last_contacted`` (from the sequence scheduler) and ``held_out`` (the A/B control group) feed the gate.
    """
    records = decide_records(
        dataset, rules, as_of, last_contacted=last_contacted, held_out=held_out, account_ids=account_ids
    )
    with paused_gc():
        return [Decision(account=account, as_of=as_of, **record) for account, record in records]


def decide_records(
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    *,
    last_contacted: Mapping[str, date] | None = None,
    held_out: Callable[[Account], bool] | None = None,
    account_ids: set[str] | None = None,
) -> list[tuple[Account, DecisionRecord]]:
    """:func:`decide` as plain records, for callers that serialise every account (``explain --json``).

    Validating a Decision costs more than deciding it (about 20 µs for a typical account), so the engine
    computes plain dicts and only :func:`decide` validates them into models.
    """
    with paused_gc():
        return _decide(dataset, rules, as_of, last_contacted or {}, held_out, account_ids)


def _decide(
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    last_contacted: Mapping[str, date],
    held_out: Callable[[Account], bool] | None,
    account_ids: set[str] | None,
) -> list[tuple[Account, DecisionRecord]]:
    accounts = [a for a in dataset.accounts if account_ids is None or a.account_id in account_ids]
    usage = detect(dataset, rules, as_of, accounts=accounts)
    catalog = dataset.catalog
    found = frictions(dataset.events, catalog, rules)
    feature_counts = {plan.id: len(plan.features) for plan in catalog.plans}
    tickets_by_account = dataset.tickets_by_account
    records: list[tuple[Account, DecisionRecord]] = []
    for account in accounts:
        account_id = account.account_id
        open_now = open_tickets(tickets_by_account.get(account_id, []), as_of)
        health = score_health(
            account, usage[account_id], open_now, feature_counts[account.plan], rules, as_of
        )
        gate = check_gate(
            account,
            health,
            open_now,
            rules,
            as_of,
            last_contacted=last_contacted.get(account_id),
            held_out=held_out(account) if held_out else False,
        )
        ranked = found.get(account_id, [])
        offer = choose_offer(ranked, account, catalog, health["band"], rules) if ranked else None
        cohort: Cohort = "not_fit" if not ranked else "ready" if gate["allowed"] else "nurture"
        records.append(
            (account, {"cohort": cohort, "health": health, "gate": gate, "frictions": ranked, "offer": offer})
        )
    return records


def decisions_to_json(decisions: list[Decision]) -> list[dict[str, Any]]:
    """The ``explain --json`` payload for many decisions (GC paused: see :func:`outreach.data.paused_gc`)."""
    with paused_gc():
        return [decision.to_json() for decision in decisions]


def explain_rows(
    dataset: Dataset, rules: Rules, as_of: date, *, cohort: Cohort | None = None
) -> list[dict[str, Any]]:
    """The ``explain --json`` payload straight from the engine's records, optionally one cohort only."""
    return _rows(decide_records(dataset, rules, as_of), cohort)


def explain_json(dataset: Dataset, rules: Rules, as_of: date, *, cohort: Cohort | None = None) -> bytes:
    """``explain --json`` output: :func:`explain_rows` as an indented JSON array (UTF-8, newline-terminated)."""
    return records_to_json(decide_records(dataset, rules, as_of), cohort=cohort)


def records_to_json(records: list[tuple[Account, DecisionRecord]], *, cohort: Cohort | None = None) -> bytes:
    """Serialise :func:`decide_records` output the way ``explain --json`` prints it."""
    rows = _rows(records, cohort)
    with paused_gc():
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def _rows(records: list[tuple[Account, DecisionRecord]], cohort: Cohort | None) -> list[dict[str, Any]]:
    with paused_gc():
        return [
            json_row(account, record) for account, record in records if cohort in (None, record["cohort"])
        ]


def rules_for(dataset: Dataset, rules_path: Path | None = None) -> Rules:
    """Defaults < ``<data dir>/rules.yaml`` < ``rules_path`` < catalog ``policy.thresholds``."""
    local = dataset.root / "rules.yaml"
    return load_rules(
        local if local.exists() else None,
        rules_path,
        policy_overrides=dataset.catalog.policy.thresholds,
    )


def explain(data_dir: Path | str, as_of: date, *, rules_path: Path | None = None) -> list[Decision]:
    """Load a data directory and decide every account: the library behind ``outreach explain``."""
    dataset = load_dataset(data_dir)
    return decide(dataset, rules_for(dataset, rules_path), as_of)
