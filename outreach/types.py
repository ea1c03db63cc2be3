"""Small shared vocabulary: motions, cohorts, bands, gate rules. Trigger kinds live in the trigger registry
(:mod:`outreach.engine.triggers.registry`); stage records live in their own modules."""

from __future__ import annotations

from typing import Literal, get_args

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

# The review queue's vocabulary (outreach.review), here so the CLI can name it without loading the database layer.
DraftStatus = Literal["pending_review", "approved", "rejected", "scheduled", "sent", "expired"]
STATUSES: tuple[DraftStatus, ...] = get_args(DraftStatus)
RejectReason = Literal["wrong_offer", "wrong_friction", "tone", "timing", "factual_error", "other"]
REJECT_REASONS: dict[RejectReason, str] = {
    "wrong_offer": "Wrong offer",
    "wrong_friction": "Wrong friction",
    "tone": "Tone",
    "timing": "Timing",
    "factual_error": "Factual error",
    "other": "Other",
}
Role = Literal["sdr", "marketing", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
DEFAULT_TOKEN_DAYS = 90  # an API token's life unless `outreach tokens create --days` says otherwise
MAX_TOKEN_DAYS = 3650

# A sequence enrollment's states (outreach.sending.tables), named by `outreach sequences status --status`.
EnrollmentStatus = Literal["active", "waiting_review", "sending", "held", "exited", "completed"]
ENROLLMENT_STATUSES: tuple[EnrollmentStatus, ...] = get_args(EnrollmentStatus)

# The prompt registry's label for what drafting uses (outreach.drafting.registry), named by CLI option defaults.
DEFAULT_LABEL = "production"
