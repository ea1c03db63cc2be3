"""Small shared vocabulary: motions, cohorts, bands. Stage records live in their own modules."""

from __future__ import annotations

from typing import Literal

Motion = Literal["upsell", "cross_sell"]
OfferMotion = Literal["upsell", "cross_sell", "bundle"]
Cohort = Literal["ready", "nurture", "not_fit"]
Band = Literal["green", "yellow", "red"]

SignalKind = Literal[
    "usage_near_limit",
    "repeated_limit_hits",
    "locked_feature",
    "seat_pressure",
    "headcount_growth",
    "strong_nps",
    "integration_request",
    "frequent_exports",
    "ticket_topic_cluster",
    "addon_page_visits",
    "new_department",
    "workflow_abandoned",
]

UPSELL_KINDS: tuple[SignalKind, ...] = (
    "usage_near_limit",
    "repeated_limit_hits",
    "locked_feature",
    "seat_pressure",
    "headcount_growth",
    "strong_nps",
)
CROSS_SELL_KINDS: tuple[SignalKind, ...] = (
    "integration_request",
    "frequent_exports",
    "ticket_topic_cluster",
    "addon_page_visits",
    "new_department",
    "workflow_abandoned",
)
SIGNAL_KINDS: tuple[SignalKind, ...] = UPSELL_KINDS + CROSS_SELL_KINDS

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
)


def motion_of(kind: SignalKind) -> Motion:
    return "upsell" if kind in UPSELL_KINDS else "cross_sell"
