"""One decision per account: signals → friction → health gate → offer → cohort.

This is what ``outreach explain`` shows and what drafting consumes. The cohort is ``ready`` (a signal and
the gate passes), ``nurture`` (a signal, but gated) or ``not_fit`` (no signal: never pitched just because
the account bought one thing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from outreach.data import Account, Dataset, load_dataset, paused_gc
from outreach.friction import Friction, enrich, rank
from outreach.health import Gate, Health, check_gate, score_health
from outreach.offers import Offer, choose_offer
from outreach.rules import Rules, load_rules
from outreach.signals import detect_signals
from outreach.types import Cohort


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
        return {
            "account_id": self.account.account_id,
            "name": self.account.name,
            "plan": self.account.plan,
            "owner_email": self.account.owner_email,
            "cohort": self.cohort,
            "health": {
                "score": self.health.score,
                "band": self.health.band,
                "components": self.health.components,
            },
            "signals": [
                {
                    "kind": f.kind,
                    "motion": f.motion,
                    "subject": f.subject,
                    "statement": f.statement,
                    "figures": f.figures,
                    "window_days": f.window_days,
                    "strength": f.strength,
                    "evidence": f.evidence,
                }
                for f in self.frictions
            ],
            "gate": {
                "allowed": self.gate.allowed,
                "reasons": [{"rule": r.rule, "message": r.message} for r in self.gate.reasons],
            },
            "offer": None
            if self.offer is None
            else {
                "id": self.offer.id,
                "kind": self.offer.kind,
                "motion": self.offer.motion,
                "name": self.offer.name,
                "price_monthly": self.offer.price_monthly,
                "quantity": self.offer.quantity,
                "discount_pct": self.offer.discount_pct,
                "friction": self.offer.friction,
                "supporting": self.offer.supporting,
            },
        }


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
    with paused_gc():
        return _decide(dataset, rules, as_of, last_contacted, held_out, account_ids)


def _decide(
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    last_contacted: Mapping[str, date] | None,
    held_out: Callable[[Account], bool] | None,
    account_ids: set[str] | None,
) -> list[Decision]:
    accounts = [a for a in dataset.accounts if account_ids is None or a.account_id in account_ids]
    found = detect_signals(dataset, rules, as_of, accounts=accounts)
    catalog = dataset.catalog
    decisions: list[Decision] = []
    for account in accounts:
        detected = found[account.account_id]
        tickets = dataset.tickets_by_account.get(account.account_id, [])
        plan = catalog.plan(account.plan)
        health = score_health(account, detected.usage, tickets, len(plan.features), rules, as_of)
        gate = check_gate(
            account,
            health,
            tickets,
            rules,
            as_of,
            last_contacted=(last_contacted or {}).get(account.account_id),
            held_out=held_out(account) if held_out else False,
        )
        frictions = rank([enrich(signal, catalog, rules) for signal in detected.signals])
        offer = choose_offer(frictions, account, catalog, health, rules) if frictions else None
        cohort: Cohort = "not_fit" if not frictions else "ready" if gate.allowed else "nurture"
        decisions.append(
            Decision(
                account=account,
                as_of=as_of,
                cohort=cohort,
                health=health,
                gate=gate,
                frictions=frictions,
                offer=offer,
            )
        )
    return decisions


def decisions_to_json(decisions: list[Decision]) -> list[dict[str, Any]]:
    """The ``explain --json`` payload for many decisions (GC paused: see :func:`outreach.data.paused_gc`)."""
    with paused_gc():
        return [decision.to_json() for decision in decisions]


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
