"""Small shared vocabulary: motions, cohorts, bands, gate rules. Trigger kinds live in the trigger registry
(:mod:`outreach.engine.triggers.registry`); stage records live in their own modules."""

from __future__ import annotations

from typing import Literal

Motion = Literal["upsell", "cross_sell"]
OfferMotion = Literal["upsell", "cross_sell", "bundle"]
Cohort = Literal["ready", "nurture", "not_fit"]
Band = Literal["green", "yellow", "red"]

GateRule = Literal[
    "not_activated",
    "onboarding",
    "usage_declining",
    "champion_silent",
    "open_priority_ticket",
    "red_health",
    "cs_veto",
    "recently_contacted",
    "held_out",
    "no_offer",
]
GATE_RULES: tuple[GateRule, ...] = (
    "not_activated",
    "onboarding",
    "usage_declining",
    "champion_silent",
    "open_priority_ticket",
    "red_health",
    "cs_veto",
    "recently_contacted",
    "held_out",
    "no_offer",
)
