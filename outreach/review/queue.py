"""The review queue: drafts waiting for an SDR, and everything a reviewer can do to them.

States: ``pending_review → approved | rejected``, ``approved → scheduled → sent``, and ``expired`` when the
account's gate no longer passes (checked when the queue is read and again before an approval is accepted,
so a draft never goes out to an account that slid into a red state overnight).

One open draft per account and motion: a new trigger for an account that already has a pending draft merges
its facts into that draft instead of producing a second email (a unique partial index backs this up).
Every change bumps the draft's ``version``; callers send the version they saw, so when two reviewers act on
one draft, one wins and the other gets a :class:`~outreach.errors.ConflictError` — nothing is lost or
approved twice. Every change writes a review action and an append-only audit row with before/after.

Edits keep a unified diff and the Levenshtein distance against the model's text: that figure says how much
reps had to rewrite, which is what prompt tuning needs. A regeneration keeps the rep's edits unless they say
otherwise: a provider that follows instructions rewrites from the rep's text; the offline drafter's new text
gets the rep's changes merged back in (a three-way merge against the text they edited).

The queue's order is stable and explicit (:data:`SORTS`: priority = the strongest friction's strength × the
account's MRR, age, health, MRR, offer price), so editing a draft never moves it and "next" after an action is
the next row of the same order. Reps can snooze a draft, hand it to another rep, reject several at once with one
reason, and undo an approval or rejection for :data:`UNDO_SECONDS`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz.distance import Levenshtein
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, selectinload, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from outreach.drafting.spotlight import steering_attempt
from outreach.engine.catalog import Catalog
from outreach.engine.data import Dataset, load_dataset
from outreach.engine.decisions import Decision, decide, rules_for
from outreach.engine.friction import Friction
from outreach.engine.health import Gate
from outreach.engine.offers import Offer
from outreach.engine.triggers.registry import builtin_kinds
from outreach.errors import ConflictError, InputError, NotFoundError, OutreachError, PermissionDeniedError
from outreach.review.storage import (
    OPEN_STATUSES,
    AccountRow,
    AuditRow,
    DraftRow,
    DraftVersionRow,
    EvidenceRow,
    FrictionRow,
    ReviewActionRow,
)
from outreach.review.users import Principal

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
Quality = Literal["ok", "flagged", "failed"]
VersionSource = Literal["model", "edit", "regeneration", "merge"]

# Transitions a reviewer or the scheduler may make; expiry is the system's, from any not-yet-scheduled state.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending_review": ("approved", "rejected", "expired"),
    "approved": ("scheduled", "expired"),
    # expired: the sequence exited before the first send; pending_review: a step found stale after an outage
    "scheduled": ("sent", "expired", "pending_review"),
    "rejected": (),
    "sent": (),
    "expired": (),
}

MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 5000
MAX_CTA_CHARS = 500
MAX_NOTE_CHARS = 1000
MAX_INSTRUCTIONS_CHARS = 500
MAX_BULK = 200
MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL; anything larger cannot exist
UNDO_SECONDS = 15
MAX_SNOOZE_DAYS = 90
SYSTEM = "system"

# An approval or rejection can be taken back for a few seconds (a mis-pressed key); the action → the status it set.
UNDOABLE: dict[str, str] = {"approve": "approved", "reject": "rejected"}

SortKey = Literal["priority", "age", "health", "mrr", "price", "updated"]
# One place for the queue's orders: label, the column (NULLs sort as -1) and whether it runs high to low.
# Every order ends with the draft id (in the same direction), so rows never swap places between two reads.
SORTS: dict[SortKey, tuple[str, Any, bool]] = {
    "priority": ("Priority (friction strength × MRR)", DraftRow.priority, True),
    "age": ("Waiting longest", DraftRow.created_at, False),
    "health": ("Health score", func.coalesce(DraftRow.health_score, -1), True),
    "mrr": ("Account MRR", DraftRow.account_mrr, True),
    "price": ("Offer price", func.coalesce(DraftRow.offer_price, -1.0), True),
    "updated": ("Last change", DraftRow.updated_at, True),
}
Q = TypeVar("Q", bound="Select[*tuple[Any, ...]]")


def utcnow() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------------ inputs


class DraftInput(BaseModel):
    """The text and provenance of one model-written draft, as the queue stores it.

    :func:`outreach.review.redraft.draft_input` builds it from the drafting library's result record.
    """

    model_config = ConfigDict(frozen=True)

    subject: str
    body: str
    call_to_action: str = ""
    friction_ids: list[str] = Field(default_factory=list)
    offer_id: str | None = None
    template_name: str | None = None
    template_version: str | None = None
    template_hash: str | None = None
    provider: str | None = None
    model: str | None = None
    quality: Quality = "ok"
    issues: list[str] = Field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    fallback: bool = False


class EvidenceItem(BaseModel):
    """An event or ticket behind a friction, resolved from the data directory when the draft is queued."""

    model_config = ConfigDict(frozen=True)

    ref: str
    source: Literal["event", "ticket", "unknown"]
    occurred_at: datetime | None = None
    summary: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)


class RegenerationRequest(BaseModel):
    """What a regeneration gets: the decision the draft rests on, its current text and the rep's instructions."""

    model_config = ConfigDict(frozen=True)

    draft_id: int
    decision: Decision
    subject: str
    body: str
    call_to_action: str
    instructions: str


GateCheck = Callable[[Sequence[str]], Mapping[str, Gate]]
Regenerator = Callable[[RegenerationRequest], DraftInput]


class QueueFilter(BaseModel):
    """What the queue page and ``queue list`` ask for. ``owner`` is an email, or None for every owner.

    ``search`` matches account name, account id, subject and owner (case-insensitive). ``snoozed``: False hides
    snoozed drafts (the default), True shows only them, None shows both. ``descending`` None means the sort's
    own direction."""

    status: DraftStatus | None = "pending_review"
    motion: str | None = None
    trigger: str | None = None
    owner: str | None = None
    account: str | None = None
    search: str | None = Field(default=None, max_length=200)
    snoozed: bool | None = False
    sort: SortKey = "priority"
    descending: bool | None = None
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=10**9)


# ------------------------------------------------------------------------------------------------ views


class DraftSummary(BaseModel):
    """One row of the queue table."""

    id: int
    version: int
    account_id: str
    account_name: str
    motion: str
    trigger: str
    status: DraftStatus
    owner_email: str | None
    subject: str
    quality: Quality
    offer_name: str | None
    offer_price: float | None
    health_score: int | None
    health_band: str | None
    updated_at: datetime
    created_at: datetime | None = None
    priority: float = 0.0
    account_mrr: float = 0.0
    snoozed_until: datetime | None = None
    actionable: bool = Field(default=False, description="The viewer may act on it now (pending, and theirs).")


class QueueCounts(BaseModel):
    """Drafts per status under the current non-status filters (the tabs above the table). Snoozed pending
    drafts are counted apart (``snoozed``), not under pending_review, unless the filter includes them."""

    by_status: dict[str, int]
    total: int
    snoozed: int = 0


class QueuePage(BaseModel):
    rows: list[DraftSummary]
    counts: QueueCounts
    matching: int
    filter: QueueFilter
    expired_now: list[int] = Field(default_factory=list, description="Drafts this read found gated and expired.")


class TextSegment(BaseModel):
    """A piece of draft text; numbers carry the anchor of the friction (or offer) that backs them."""

    text: str
    kind: Literal["text", "number", "unverified"] = "text"
    anchor: str | None = None
    title: str | None = None


class EvidenceView(BaseModel):
    ref: str
    source: str
    occurred_at: datetime | None
    summary: str
    detail: dict[str, Any]


class FrictionView(BaseModel):
    anchor: str
    friction_id: str
    kind: str
    motion: str
    statement: str
    figures: dict[str, Any]
    window_days: int | None
    strength: float
    evidence: list[EvidenceView]


class VersionView(BaseModel):
    number: int
    source: VersionSource
    author: str | None
    subject: str
    body: str
    call_to_action: str
    template: str | None
    provider: str | None
    model: str | None
    quality: Quality
    issues: list[str]
    instructions: str | None
    diff: str | None
    edit_distance: int | None
    fallback: bool
    cost_usd: float | None
    created_at: datetime


class ActionView(BaseModel):
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    reason_code: str | None
    note: str | None
    draft_version: int | None
    created_at: datetime


class DraftDetail(BaseModel):
    """Everything the detail page shows: the draft beside its frictions, evidence, health and gate."""

    summary: DraftSummary
    recipient: str | None = Field(default=None, description="Who the email goes to (the account's champion).")
    recipient_name: str | None = None
    account: dict[str, Any]
    as_of: date
    current: VersionView
    versions: list[VersionView]
    actions: list[ActionView]
    frictions: list[FrictionView]
    offer: dict[str, Any] | None
    health: dict[str, Any]
    gate: dict[str, Any]
    reject_reason: str | None
    reject_text: str | None
    expired_reason: str | None
    subject_segments: list[TextSegment]
    body_segments: list[TextSegment]
    cta_segments: list[TextSegment]


class EnqueueResult(BaseModel):
    account_id: str
    outcome: Literal["created", "merged", "skipped"]
    draft_id: int | None = None
    reason: str | None = None


class BulkResult(BaseModel):
    approved: list[int]
    failed: dict[int, str]


class BulkActionResult(BaseModel):
    """A bulk reject, reassign or snooze: each draft succeeds (``done``) or fails on its own, with the reason."""

    done: list[int]
    failed: dict[int, str]


# ------------------------------------------------------------------------------------------------ helpers


def _full_text(subject: str, body: str, cta: str) -> str:
    return f"{subject}\n\n{body}\n\n{cta}".rstrip() + "\n"


def edit_stats(original: tuple[str, str, str], edited: tuple[str, str, str]) -> tuple[str, int]:
    """Unified diff and character-level Levenshtein distance between two (subject, body, cta) texts."""
    before, after = _full_text(*original), _full_text(*edited)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), "model", "edited", n=1
        )
    )
    return diff, int(Levenshtein.distance(before, after))


def _draft_state(row: DraftRow) -> dict[str, Any]:
    return {
        "status": row.status,
        "version": row.version,
        "current_version": row.current_version,
        "subject": row.subject,
        "owner_email": row.owner_email,
        "reject_reason": row.reject_reason,
        "expired_reason": row.expired_reason,
    }


def _number_value(token: str) -> float | None:
    cleaned = token.replace("$", "").replace(",", "").replace("%", "").rstrip(".")
    try:
        return float(cleaned)
    except ValueError:
        return None


_NUMBER = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)?%?(?![\w])")


def segment_numbers(text: str, index: Mapping[float, tuple[str, str]]) -> list[TextSegment]:
    """Split text so every number is its own segment, linked to the fact it quotes or marked unverified."""
    segments: list[TextSegment] = []
    cursor = 0
    for match in _NUMBER.finditer(text):
        token = match.group(0).rstrip(",")
        if match.start() > cursor:
            segments.append(TextSegment(text=text[cursor : match.start()]))
        value = _number_value(token)
        found = index.get(value) if value is not None else None
        if found is not None:
            segments.append(TextSegment(text=token, kind="number", anchor=found[0], title=found[1]))
        else:
            segments.append(
                TextSegment(text=token, kind="unverified", title="not among this draft's figures: check it")
            )
        cursor = match.start() + len(token)
    if cursor < len(text):
        segments.append(TextSegment(text=text[cursor:]))
    return segments


def _figure_index(frictions: list[FrictionView], offer: Mapping[str, Any] | None) -> dict[float, tuple[str, str]]:
    # Friction figures first: when a number is both a figure and a catalog value, the figure is the source.
    index: dict[float, tuple[str, str]] = {}
    for friction in frictions:
        for name, value in friction.figures.items():
            number = value if isinstance(value, int | float) else _number_value(str(value))
            if number is not None and not isinstance(number, bool):
                index.setdefault(float(number), (friction.anchor, f"{friction.friction_id}: {name} = {value}"))
    if offer:
        price = float(offer.get("price_monthly") or 0)
        discount = float(offer.get("discount_pct") or 0)
        for name, value in (
            ("price per month", price),
            ("price after discount", round(price * (1 - discount / 100), 2)),
            ("discount %", discount),
            ("quantity", offer.get("quantity") if (offer.get("quantity") or 0) > 1 else None),
        ):
            if isinstance(value, int | float) and value:
                index.setdefault(float(value), ("offer", f"offer {name}"))
        details = offer.get("catalog") or {}
        for metric, limit in (details.get("limits") or {}).items():
            if isinstance(limit, int | float):
                index.setdefault(float(limit), ("offer", f"catalog: {metric} limit {limit}"))
        for item in details.get("items") or []:
            price_of = item.get("price_monthly")
            if isinstance(price_of, int | float) and price_of:
                index.setdefault(float(price_of), ("offer", f"catalog: {item.get('name')} price"))
    return index


def _summary(row: DraftRow, account_name: str) -> DraftSummary:
    offer = row.offer or {}
    return DraftSummary(
        id=row.id,
        version=row.version,
        account_id=row.account_id,
        account_name=account_name,
        motion=row.motion,
        trigger=row.trigger,
        status=row.status,
        owner_email=row.owner_email,
        subject=row.subject,
        quality=row.quality,
        offer_name=offer.get("name"),
        offer_price=offer.get("price_monthly"),
        health_score=row.health.get("score"),
        health_band=row.health.get("band"),
        updated_at=row.updated_at,
        created_at=row.created_at,
        priority=row.priority or 0.0,
        account_mrr=row.account_mrr or 0.0,
        snoozed_until=row.snoozed_until,
    )


def _version_view(row: DraftVersionRow) -> VersionView:
    template = None
    if row.template_name:
        template = f"{row.template_name}@{row.template_version or '?'}"
    return VersionView(
        number=row.number,
        source=row.source,
        author=row.author,
        subject=row.subject,
        body=row.body,
        call_to_action=row.call_to_action,
        template=template,
        provider=row.provider,
        model=row.model,
        quality=row.quality,
        issues=[str(issue) for issue in row.issues],
        instructions=row.instructions,
        diff=row.diff,
        edit_distance=row.edit_distance,
        fallback=row.fallback,
        cost_usd=row.cost_usd,
        created_at=row.created_at,
    )


# ------------------------------------------------------------------------------------------------ evidence


def collect_evidence(dataset: Dataset, decision: Decision) -> dict[str, list[EvidenceItem]]:
    """Resolve each friction's evidence ids to the event or ticket rows they name, so the queue can show them
    without the data directory."""
    tickets = {t.id: t for t in dataset.tickets_by_account.get(decision.account_id, [])}
    wanted = sorted({ref for f in decision.frictions for ref in f.evidence if ref not in tickets})
    events: dict[str, EvidenceItem] = {}
    if wanted:
        placeholders = ", ".join("?" for _ in wanted)
        rows = dataset.events.execute(
            f"SELECT message_id, event, user_id, ts, CAST(props AS VARCHAR) FROM events "
            f"WHERE account_id = ? AND message_id IN ({placeholders})",
            [decision.account_id, *wanted],
        ).fetchall()
        for message_id, name, user_id, ts, props in rows:
            properties = json.loads(props) if props else {}
            shown = ", ".join(f"{k}={v}" for k, v in sorted(properties.items()))
            when = ts.replace(tzinfo=UTC) if isinstance(ts, datetime) else None
            events[str(message_id)] = EvidenceItem(
                ref=str(message_id),
                source="event",
                occurred_at=when,
                summary=f"{name} by {user_id or 'unknown user'}" + (f" ({shown})" if shown else ""),
                detail={"event": name, "user_id": user_id, "properties": properties},
            )
    result: dict[str, list[EvidenceItem]] = {}
    for friction in decision.frictions:
        items: list[EvidenceItem] = []
        for ref in friction.evidence:
            if ref in tickets:
                t = tickets[ref]
                steering = steering_attempt(f"{t.subject}\n{t.description}")
                items.append(
                    EvidenceItem(
                        ref=ref,
                        source="ticket",
                        occurred_at=t.created_at,
                        summary=f"Ticket {t.id}: {t.subject} ({t.status}, {t.priority})",
                        detail={"subject": t.subject, "status": t.status, "priority": t.priority,
                                "tags": list(t.tags), "description": t.description[:500], "steering": steering},
                    )
                )
            elif ref in events:
                items.append(events[ref])
            else:
                items.append(EvidenceItem(ref=ref, source="unknown", summary="not found in the data directory"))
        result[friction.id] = items
    return result


def offer_details(catalog: Catalog, offer: Offer) -> dict[str, Any]:
    """The catalog entries behind an offer (limits, features, included items), kept with the draft so the
    reviewer sees what the email may promise and numbers like a plan's cap link to their source."""
    details: dict[str, Any] = {"limits": {}, "features": [], "items": []}
    for item_id in [offer.id, *offer.includes]:
        if item_id in catalog.plan_ids():
            plan = catalog.plan(item_id)
            details["limits"].update({k: v for k, v in plan.limits.items() if v is not None})
            details["features"] += plan.features
            details["items"].append({"id": plan.id, "name": plan.name, "price_monthly": plan.price_monthly})
        elif item_id in {a.id for a in catalog.addons}:
            addon = catalog.addon(item_id)
            details["features"] += addon.features
            details["items"].append({"id": addon.id, "name": addon.name, "price_monthly": addon.price_monthly,
                                     "outcome": addon.outcome})
        else:
            for pack in catalog.seat_packs:
                if pack.id == item_id:
                    details["limits"]["seats"] = pack.seats * offer.quantity
                    details["items"].append({"id": pack.id, "name": pack.name, "price_monthly": pack.price_monthly})
    return details


def _friction_rows(frictions: Iterable[Friction], evidence: Mapping[str, list[EvidenceItem]]) -> list[FrictionRow]:
    rows = []
    for position, friction in enumerate(frictions):
        items = evidence.get(friction.id) or [
            EvidenceItem(ref=ref, source="unknown", summary="") for ref in friction.evidence
        ]
        rows.append(
            FrictionRow(
                position=position,
                friction_id=friction.id,
                kind=friction.kind,
                motion=friction.motion,
                statement=friction.statement,
                figures=dict(friction.figures),
                window_days=friction.window_days,
                strength=friction.strength,
                evidence=[
                    EvidenceRow(
                        position=i,
                        ref=item.ref,
                        source=item.source,
                        occurred_at=item.occurred_at,
                        summary=item.summary,
                        detail=item.detail,
                    )
                    for i, item in enumerate(items)
                ],
            )
        )
    return rows


# ------------------------------------------------------------------------------------------------ enqueue


def sort_keys(decision: Decision) -> dict[str, Any]:
    """The columns the queue sorts by: priority (the strongest friction's strength × the account's MRR), the
    account's MRR, its health score and the offer's monthly price."""
    mrr = float(decision.account.mrr or 0.0)
    strength = max((f.strength for f in decision.frictions), default=0.0)
    return {
        "priority": round(strength * mrr, 4),
        "account_mrr": mrr,
        "health_score": decision.health.score,
        "offer_price": decision.offer.price_monthly if decision.offer is not None else None,
    }


def can_act(actor: Principal, owner_email: str | None) -> bool:
    """Whether ``actor`` may act on a draft owned by ``owner_email`` (the rule :func:`authorize` enforces)."""
    if actor.is_manager:
        return True
    return actor.can_review and (not owner_email or owner_email.lower() == actor.email)


def recipient_of(snapshot: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(name, email) of who a draft goes to: the account's champion, as the sequence scheduler sends it."""
    email = snapshot.get("champion_email")
    return snapshot.get("champion_name"), str(email) if email else None


def merge_edits(base: str, edited: str, new: str) -> tuple[str, int]:
    """Three-way merge by line: the rep's changes (``base`` → ``edited``) applied to ``new``. Where both sides
    changed the same lines, the rep's lines win. Returns the text and how many such conflicts there were."""
    from merge3 import Merge3

    lines: list[str] = []
    conflicts = 0
    merger = Merge3(base.splitlines(), edited.splitlines(), new.splitlines())
    for group in merger.merge_groups():
        if group[0] == "conflict":
            conflicts += 1
            lines.extend(group[2])
        else:
            lines.extend(group[1])
    return "\n".join(lines), conflicts


def _version_row(number: int, source: VersionSource, draft: DraftInput, now: datetime, *,
                 author: str | None = None, instructions: str | None = None) -> DraftVersionRow:
    return DraftVersionRow(
        number=number,
        source=source,
        author=author,
        subject=draft.subject[:MAX_SUBJECT_CHARS],
        body=draft.body,
        call_to_action=draft.call_to_action,
        friction_ids=list(draft.friction_ids),
        offer_id=draft.offer_id,
        template_name=draft.template_name,
        template_version=draft.template_version,
        template_hash=draft.template_hash,
        provider=draft.provider,
        model=draft.model,
        quality=draft.quality,
        issues=list(draft.issues),
        prompt_tokens=draft.prompt_tokens,
        completion_tokens=draft.completion_tokens,
        cost_usd=draft.cost_usd,
        fallback=draft.fallback,
        instructions=instructions,
        created_at=now,
    )


def _upsert_account(session: Session, decision: Decision, now: datetime) -> None:
    account = decision.account
    row = session.get(AccountRow, account.account_id)
    snapshot = account.model_dump(mode="json")
    if row is None:
        session.add(
            AccountRow(account_id=account.account_id, name=account.name, plan=account.plan,
                       owner_email=account.owner_email, snapshot=snapshot, updated_at=now)
        )
    else:
        row.name, row.plan, row.owner_email = account.name, account.plan, account.owner_email
        row.snapshot, row.updated_at = snapshot, now


def enqueue(
    session: Session,
    decision: Decision,
    draft: DraftInput,
    *,
    evidence: Mapping[str, list[EvidenceItem]] | None = None,
    catalog: Catalog | None = None,
    now: datetime | None = None,
) -> EnqueueResult:
    """Put one drafted decision in the queue, or merge it into the account's open draft for that motion.

    Skips gated decisions and failed drafts. A pending draft takes the new facts (frictions, figures,
    evidence, gate, offer); its text is replaced by the new model text only if no rep has edited it, so a
    rep's work is never overwritten. An approved or scheduled draft is left alone: the account already has
    an email on the way.
    """
    now = now or utcnow()
    account_id = decision.account_id
    if not decision.gate.allowed:
        reasons = "; ".join(r.message for r in decision.gate.reasons)
        return EnqueueResult(account_id=account_id, outcome="skipped", reason=f"gate: {reasons}")
    if draft.quality == "failed":
        return EnqueueResult(account_id=account_id, outcome="skipped", reason="draft failed validation")
    motion = decision.motion
    _upsert_account(session, decision, now)
    session.flush()
    existing = session.scalar(
        select(DraftRow)
        .where(DraftRow.account_id == account_id, DraftRow.motion == motion, DraftRow.status.in_(OPEN_STATUSES))
        .options(selectinload(DraftRow.versions), selectinload(DraftRow.frictions))
    )
    facts: dict[str, Any] = {
        "trigger": decision.trigger,
        "owner_email": decision.account.owner_email,
        "as_of": decision.as_of,
        "offer_id": decision.offer.id if decision.offer else None,
        "offer": None
        if decision.offer is None
        else {
            **decision.offer.model_dump(mode="json"),
            "catalog": offer_details(catalog, decision.offer) if catalog is not None else None,
        },
        "health": decision.health.model_dump(mode="json"),
        "gate": decision.gate.model_dump(mode="json"),
        "decision": decision.model_dump(mode="json"),
        **sort_keys(decision),
    }
    if existing is not None and existing.status != "pending_review":
        return EnqueueResult(account_id=account_id, outcome="skipped", draft_id=existing.id,
                             reason=f"draft {existing.id} is already {existing.status}")
    if existing is not None:
        before = _draft_state(existing)
        known = {f.friction_id for f in existing.frictions}
        new_ids = [f.id for f in decision.frictions if f.id not in known]
        # Merge = the newest facts for every friction, the union of frictions, strongest first.
        merged = {f.friction_id: f for f in existing.frictions}
        fresh = _friction_rows(decision.frictions, evidence or {})
        for fresh_row in fresh:
            merged[fresh_row.friction_id] = fresh_row
        ordered = sorted(merged.values(), key=lambda r: (-r.strength, r.kind, r.friction_id))
        existing.frictions.clear()
        session.flush()
        for position, old in enumerate(ordered):
            keep = FrictionRow(
                position=position, friction_id=old.friction_id, kind=old.kind, motion=old.motion,
                statement=old.statement, figures=dict(old.figures), window_days=old.window_days,
                strength=old.strength,
                evidence=[EvidenceRow(position=e.position, ref=e.ref, source=e.source, occurred_at=e.occurred_at,
                                      summary=e.summary, detail=dict(e.detail)) for e in old.evidence],
            )
            existing.frictions.append(keep)
        reassigned = session.scalar(select(ReviewActionRow.id).where(
            ReviewActionRow.draft_id == existing.id, ReviewActionRow.action == "reassign").limit(1))
        for key, value in facts.items():
            if key == "owner_email" and reassigned is not None:
                continue  # a rep handed this draft on; new facts do not take it back
            setattr(existing, key, value)
        current = existing.versions[-1]
        edited = any(v.source == "edit" for v in existing.versions)
        note = f"merged new facts: {', '.join(new_ids) or 'updated figures'}"
        if not edited:
            number = current.number + 1
            existing.versions.append(_version_row(number, "merge", draft, now))
            existing.current_version = number
            existing.subject = draft.subject[:MAX_SUBJECT_CHARS]
            existing.quality = draft.quality
        else:
            note += " (kept the rep's edited text; regenerate to use them)"
        existing.updated_at = now
        session.add(ReviewActionRow(draft_id=existing.id, actor=SYSTEM, action="merge", from_status="pending_review",
                                    to_status="pending_review", note=note, draft_version=existing.current_version,
                                    created_at=now))
        session.flush()
        session.add(AuditRow(at=now, actor=SYSTEM, action="draft.merge", entity="draft", entity_id=str(existing.id),
                             before=before, after={**_draft_state(existing), "new_frictions": new_ids}))
        return EnqueueResult(account_id=account_id, outcome="merged", draft_id=existing.id, reason=note)
    row = DraftRow(
        account_id=account_id,
        motion=motion,
        status="pending_review",
        current_version=1,
        subject=draft.subject[:MAX_SUBJECT_CHARS],
        quality=draft.quality,
        created_at=now,
        updated_at=now,
        **facts,
    )
    row.versions.append(_version_row(1, "model", draft, now))
    row.frictions.extend(_friction_rows(decision.frictions, evidence or {}))
    session.add(row)
    session.flush()
    session.add(ReviewActionRow(draft_id=row.id, actor=SYSTEM, action="create", from_status=None,
                                to_status="pending_review", draft_version=1, created_at=now))
    session.add(AuditRow(at=now, actor=SYSTEM, action="draft.create", entity="draft", entity_id=str(row.id),
                         before=None, after=_draft_state(row)))
    return EnqueueResult(account_id=account_id, outcome="created", draft_id=row.id)


def fill_from_decisions(
    session: Session,
    decisions: Sequence[Decision],
    drafts: Mapping[str, DraftInput],
    *,
    dataset: Dataset | None = None,
    now: datetime | None = None,
) -> list[EnqueueResult]:
    """Queue every decision that has a draft (``drafts`` is keyed by account id), merging per account+motion.

    With ``dataset`` the evidence ids are resolved to their event and ticket rows. Does not commit.
    """
    results = []
    for decision in decisions:
        draft = drafts.get(decision.account_id)
        if draft is None:
            continue
        evidence = collect_evidence(dataset, decision) if dataset is not None else None
        catalog = dataset.catalog if dataset is not None else None
        results.append(enqueue(session, decision, draft, evidence=evidence, catalog=catalog, now=now))
    return results


# ------------------------------------------------------------------------------------------------ the queue


class ReviewQueue:
    """Reads and review actions, each one transaction. Used by the web app, the API and the CLI alike.

    ``gate_check`` re-checks accounts' gates (see :class:`DatasetGateCheck`); without
    it the gate stored at enqueue time stands. ``regenerator`` re-drafts through the drafting library.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        gate_check: GateCheck | None = None,
        regenerator: Regenerator | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.factory = factory
        self.gate_check = gate_check
        self.regenerator = regenerator
        self.clock = clock

    @contextmanager
    def _unit(self) -> Iterator[Session]:
        with self.factory() as session:
            try:
                with session.begin():
                    yield session
            except StaleDataError:
                raise ConflictError(
                    "someone else changed this draft at the same moment",
                    hint="reload the draft and try again",
                ) from None
            except IntegrityError as error:
                raise ConflictError(f"the change conflicts with another record ({error.orig})") from None

    # ---------------------------------------------------------------------------------------- writing

    def fill(self, decisions: Sequence[Decision], drafts: Mapping[str, DraftInput], *,
             dataset: Dataset | None = None) -> list[EnqueueResult]:
        with self._unit() as session:
            return fill_from_decisions(session, decisions, drafts, dataset=dataset, now=self.clock())

    # ---------------------------------------------------------------------------------------- reading

    def _filtered(self, query: Q, flt: QueueFilter, *, with_status: bool) -> Q:
        if with_status and flt.status is not None:
            query = query.where(DraftRow.status == flt.status)
        if with_status and flt.snoozed is not None and flt.status in (None, "pending_review"):
            snoozed = self._snoozed_now()
            query = query.where(snoozed if flt.snoozed else ~snoozed)
        if flt.motion:
            query = query.where(DraftRow.motion == flt.motion)
        if flt.trigger:
            query = query.where(DraftRow.trigger == flt.trigger)
        if flt.owner:
            query = query.where(DraftRow.owner_email == flt.owner.lower())
        if flt.account:
            query = query.where(DraftRow.account_id == flt.account)
        if flt.search and flt.search.strip():
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", flt.search.strip().lower()) + "%"
            names = select(AccountRow.account_id).where(func.lower(AccountRow.name).like(pattern, escape="\\"))
            query = query.where(or_(
                DraftRow.account_id.in_(names),
                func.lower(DraftRow.account_id).like(pattern, escape="\\"),
                func.lower(DraftRow.subject).like(pattern, escape="\\"),
                func.lower(func.coalesce(DraftRow.owner_email, "")).like(pattern, escape="\\"),
            ))
        return query

    def _snoozed_now(self) -> ColumnElement[bool]:
        return and_(DraftRow.status == "pending_review", DraftRow.snoozed_until.is_not(None),
                    DraftRow.snoozed_until > self.clock())

    @staticmethod
    def _order(flt: QueueFilter) -> tuple[Any, bool]:
        _, column, descending = SORTS[flt.sort]
        return column, descending if flt.descending is None else flt.descending

    def _ordered(self, query: Q, flt: QueueFilter) -> Q:
        # The id breaks ties in the same direction as the sort, so an index on (…, column, id) serves it in one scan.
        column, descending = self._order(flt)
        if descending:
            return query.order_by(column.desc(), DraftRow.id.desc())
        return query.order_by(column.asc(), DraftRow.id.asc())

    def owners(self) -> list[str]:
        """Every owner email with at least one draft (the owner filter's choices)."""
        with self.factory() as session:
            query = select(AccountRow.owner_email).where(AccountRow.owner_email.is_not(None)).distinct()
            return sorted(str(email) for email in session.scalars(query))

    def triggers(self) -> list[str]:
        """The trigger filter's choices: every built-in kind, then the custom kinds that have drafts."""
        builtins = builtin_kinds()
        with self.factory() as session:
            found = {str(kind) for kind in session.scalars(select(DraftRow.trigger).distinct()) if kind}
        return [*builtins, *sorted(found - set(builtins))]

    def counts(self, flt: QueueFilter) -> QueueCounts:
        with self.factory() as session:
            return self._counts(session, flt)

    def _counts(self, session: Session, flt: QueueFilter) -> QueueCounts:
        query = self._filtered(select(DraftRow.status, func.count()).group_by(DraftRow.status), flt,
                               with_status=False)
        found = {str(status): int(count) for status, count in session.execute(query)}
        # Few drafts are snoozed: find them through the snoozed_until index alone, then apply the filters to those
        # ids (with the filters in one query, SQLite walks an owner or status index over the whole table instead).
        asleep = list(session.scalars(select(DraftRow.id).where(DraftRow.snoozed_until > self.clock())))
        snoozed = 0
        if asleep:
            snoozed = int(session.scalar(self._filtered(
                select(func.count()).select_from(DraftRow).where(DraftRow.id.in_(asleep),
                                                                 DraftRow.status == "pending_review"),
                flt, with_status=False)) or 0)
        by_status = {status: found.get(status, 0) for status in STATUSES}
        if flt.snoozed is False:
            by_status["pending_review"] -= snoozed
        return QueueCounts(by_status=by_status, total=sum(by_status.values()), snoozed=snoozed)

    def page(self, viewer: Principal, flt: QueueFilter) -> QueuePage:
        """One page of the queue in the filter's order (:data:`SORTS`), with counts per status. Re-checks the
        gate of the open drafts on the page and expires those whose account no longer passes."""
        expired: list[int] = []
        if self.gate_check is not None:
            with self._unit() as session:
                rows = session.execute(
                    self._ordered(self._filtered(select(DraftRow), flt, with_status=True), flt)
                    .where(DraftRow.status.in_(("pending_review", "approved")))
                    .limit(flt.limit)
                    .offset(flt.offset)
                ).scalars().all()
                expired = self._expire_gated(session, list(rows))
        with self.factory() as session:
            query = (
                self._ordered(self._filtered(select(DraftRow, AccountRow.name).join(AccountRow), flt,
                                             with_status=True), flt)
                .options(defer(DraftRow.decision), defer(DraftRow.gate))
                .limit(flt.limit)
                .offset(flt.offset)
            )
            page = []
            for row, name in session.execute(query):
                summary = _summary(row, name)
                summary.actionable = summary.status == "pending_review" and can_act(viewer, summary.owner_email)
                page.append(summary)
            counts = self._counts(session, flt)
            if flt.status is None:
                matching = counts.total + (counts.snoozed if flt.snoozed is None else 0)
            elif flt.snoozed and flt.status == "pending_review":
                matching = counts.snoozed
            else:
                matching = counts.by_status.get(flt.status, 0) + (
                    counts.snoozed if flt.snoozed is None and flt.status == "pending_review" else 0)
            return QueuePage(rows=page, counts=counts, matching=matching, filter=flt, expired_now=expired)

    def neighbours(self, flt: QueueFilter, draft_id: int) -> tuple[int | None, int | None]:
        """Previous and next draft ids around ``draft_id`` in the queue's order (j/k on the detail page, and
        the draft that opens after an action). Keyset queries, so they cost the same on any page."""
        if not 1 <= draft_id <= MAX_ID:
            return None, None
        column, descending = self._order(flt)
        with self.factory() as session:
            value = session.scalar(select(column).where(DraftRow.id == draft_id))
            if value is None and session.get(DraftRow, draft_id) is None:
                return None, None
            base = self._filtered(select(DraftRow.id), flt, with_status=True)
            if descending:
                after_rows = or_(column < value, and_(column == value, DraftRow.id < draft_id))
                before_rows = or_(column > value, and_(column == value, DraftRow.id > draft_id))
                forward, backward = (column.desc(), DraftRow.id.desc()), (column.asc(), DraftRow.id.asc())
            else:
                after_rows = or_(column > value, and_(column == value, DraftRow.id > draft_id))
                before_rows = or_(column < value, and_(column == value, DraftRow.id < draft_id))
                forward, backward = (column.asc(), DraftRow.id.asc()), (column.desc(), DraftRow.id.desc())
            after = session.scalar(base.where(after_rows).order_by(*forward).limit(1))
            before = session.scalar(base.where(before_rows).order_by(*backward).limit(1))
            return before, after

    def show(self, viewer: Principal, draft_id: int) -> DraftDetail:
        """The draft with its frictions, evidence, versions and timeline (re-checking the gate if open)."""
        del viewer
        if self.gate_check is not None and 1 <= draft_id <= MAX_ID:
            with self._unit() as session:
                row = session.get(DraftRow, draft_id)
                if row is not None and row.status in ("pending_review", "approved"):
                    self._expire_gated(session, [row])
        with self.factory() as session:
            return self._detail(session, self._load(session, draft_id))

    def _load(self, session: Session, draft_id: int) -> DraftRow:
        if not 1 <= draft_id <= MAX_ID:
            raise NotFoundError(f"no draft {draft_id}", hint="list drafts with `outreach queue list`")
        row = session.scalar(
            select(DraftRow)
            .where(DraftRow.id == draft_id)
            .options(
                selectinload(DraftRow.versions),
                selectinload(DraftRow.frictions).selectinload(FrictionRow.evidence),
            )
        )
        if row is None:
            raise NotFoundError(f"no draft {draft_id}", hint="list drafts with `outreach queue list`")
        return row

    def _detail(self, session: Session, row: DraftRow) -> DraftDetail:
        account = session.get(AccountRow, row.account_id)
        actions = session.scalars(
            select(ReviewActionRow).where(ReviewActionRow.draft_id == row.id).order_by(ReviewActionRow.id)
        ).all()
        frictions = [
            FrictionView(
                anchor=f"friction-{f.position + 1}",
                friction_id=f.friction_id,
                kind=f.kind,
                motion=f.motion,
                statement=f.statement,
                figures=dict(f.figures),
                window_days=f.window_days,
                strength=f.strength,
                evidence=[
                    EvidenceView(ref=e.ref, source=e.source, occurred_at=e.occurred_at, summary=e.summary,
                                 detail=dict(e.detail))
                    for e in f.evidence
                ],
            )
            for f in row.frictions
        ]
        versions = [_version_view(v) for v in row.versions]
        current = next(v for v in versions if v.number == row.current_version)
        index = _figure_index(frictions, row.offer)
        snapshot = account.snapshot if account else {}
        recipient_name, recipient = recipient_of(snapshot)
        return DraftDetail(
            summary=_summary(row, account.name if account else row.account_id),
            recipient=recipient,
            recipient_name=recipient_name,
            account=snapshot,
            as_of=row.as_of,
            current=current,
            versions=versions,
            actions=[
                ActionView(actor=a.actor, action=a.action, from_status=a.from_status, to_status=a.to_status,
                           reason_code=a.reason_code, note=a.note, draft_version=a.draft_version,
                           created_at=a.created_at)
                for a in actions
            ],
            frictions=frictions,
            offer=row.offer,
            health=row.health,
            gate=row.gate,
            reject_reason=row.reject_reason,
            reject_text=row.reject_text,
            expired_reason=row.expired_reason,
            subject_segments=segment_numbers(current.subject, index),
            body_segments=segment_numbers(current.body, index),
            cta_segments=segment_numbers(current.call_to_action, index),
        )

    # ---------------------------------------------------------------------------------------- acting

    def _expire_gated(self, session: Session, rows: list[DraftRow]) -> list[int]:
        if self.gate_check is None or not rows:
            return []
        gates = self.gate_check(sorted({r.account_id for r in rows}))
        expired = []
        now = self.clock()
        for row in rows:
            gate = gates.get(row.account_id)
            if gate is None or gate.allowed:
                continue
            reason = "; ".join(f"{r.rule}: {r.message}" for r in gate.reasons)
            self._transition(session, row, "expired", SYSTEM, now, action="expire", note=reason)
            row.expired_reason = reason
            row.gate = gate.model_dump(mode="json")
            expired.append(row.id)
        return expired

    def _transition(self, session: Session, row: DraftRow, to: str, actor: str, now: datetime, *,
                    action: str, reason_code: str | None = None, note: str | None = None) -> None:
        transition_draft(session, row, to, actor, now, action=action, reason_code=reason_code, note=note)

    def _for_action(self, session: Session, actor: Principal, draft_id: int, version: int, verb: str) -> DraftRow:
        """Load a draft for an action and check, in order: it exists, the actor may act on it, and the
        version they saw is still current."""
        row = self._load(session, draft_id)
        authorize(actor, row.owner_email, verb, draft_id)
        if row.version != version:
            raise ConflictError(
                f"draft {draft_id} changed since you opened it (you saw version {version}, it is now "
                f"{row.version}, {row.status.replace('_', ' ')})",
                hint="reload to see the latest text and status, then decide again",
            )
        return row

    def approve(self, actor: Principal, draft_id: int, version: int) -> DraftDetail:
        """Approve a pending draft after re-checking the account's gate; a gated draft expires instead."""
        gated: str | None = None
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "approve")
            if row.status != "pending_review":
                raise ConflictError(f"draft {draft_id} is {row.status.replace('_', ' ')}; only pending drafts "
                                    "can be approved")
            if self._expire_gated(session, [row]):
                gated = row.expired_reason
            else:
                row.snoozed_until = None
                self._transition(session, row, "approved", actor.email, self.clock(), action="approve")
                session.flush()
                return self._detail(session, row)
        raise ConflictError(f"draft {draft_id} expired: the account no longer passes the gate ({gated})",
                            hint="nothing was approved; the draft stays in the queue as expired")

    def reject(self, actor: Principal, draft_id: int, version: int, reason: str, note: str = "") -> DraftDetail:
        if reason not in REJECT_REASONS:
            raise InputError(f"'{reason}' is not a reject reason",
                                hint=f"use one of: {', '.join(REJECT_REASONS)}")
        text = note.strip()
        if reason == "other" and not text:
            raise InputError("say why in a few words when the reason is 'other'")
        if len(text) > MAX_NOTE_CHARS:
            raise InputError(f"the note is {len(text)} characters; the limit is {MAX_NOTE_CHARS}")
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "reject")
            if row.status != "pending_review":
                raise ConflictError(f"draft {draft_id} is {row.status.replace('_', ' ')}; only pending drafts "
                                    "can be rejected")
            row.reject_reason = reason
            row.reject_text = text or None
            row.snoozed_until = None
            self._transition(session, row, "rejected", actor.email, self.clock(), action="reject",
                             reason_code=reason, note=text or None)
            session.flush()
            return self._detail(session, row)

    def edit(self, actor: Principal, draft_id: int, version: int, *, subject: str, body: str,
             call_to_action: str = "") -> DraftDetail:
        """Save a rep's text as a new version, with its diff and edit distance against the model's text."""
        subject, body, call_to_action = subject.strip(), body.strip(), call_to_action.strip()
        check_text(subject, body, call_to_action)
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "edit")
            if row.status != "pending_review":
                raise ConflictError(f"draft {draft_id} is {row.status.replace('_', ' ')}; only pending drafts "
                                    "can be edited")
            current = row.versions[-1]
            if (current.subject, current.body, current.call_to_action) == (subject, body, call_to_action):
                raise OutreachError("nothing changed", hint="edit the text before saving")
            model = next((v for v in reversed(row.versions) if v.source != "edit"), row.versions[0])
            diff, distance = edit_stats((model.subject, model.body, model.call_to_action),
                                        (subject, body, call_to_action))
            now = self.clock()
            number = current.number + 1
            version_row = DraftVersionRow(
                number=number, source="edit", author=actor.email, subject=subject, body=body,
                call_to_action=call_to_action, friction_ids=list(current.friction_ids), offer_id=current.offer_id,
                template_name=current.template_name, template_version=current.template_version,
                template_hash=current.template_hash, provider=current.provider, model=current.model,
                quality=current.quality, issues=[], fallback=current.fallback, diff=diff, edit_distance=distance,
                created_at=now,
            )
            before = _draft_state(row)
            row.versions.append(version_row)
            row.current_version = number
            row.subject = subject
            row.updated_at = now
            session.add(ReviewActionRow(draft_id=row.id, actor=actor.email, action="edit",
                                        from_status=row.status, to_status=row.status,
                                        note=f"edit distance {distance}", draft_version=number, created_at=now))
            session.flush()
            session.add(AuditRow(at=now, actor=actor.email, action="draft.edit", entity="draft",
                                 entity_id=str(row.id), before={**before, "body": current.body},
                                 after={**_draft_state(row), "body": body}))
            session.flush()
            return self._detail(session, row)

    def regenerate(self, actor: Principal, draft_id: int, version: int, instructions: str = "", *,
                   keep_edits: bool = True) -> DraftDetail:
        """Re-draft through the drafting library; the result is a new version.

        With ``keep_edits`` (the default) the rep's edits survive: a provider that follows instructions is
        given the rep's text to revise; one that cannot (the offline drafter) has the rep's changes merged
        into its new text (:func:`merge_edits`). Without it, the regeneration starts from the model's text."""
        text = instructions.strip()
        if len(text) > MAX_INSTRUCTIONS_CHARS:
            raise InputError(f"instructions are {len(text)} characters; the limit is {MAX_INSTRUCTIONS_CHARS}")
        if self.regenerator is None:
            raise OutreachError("regeneration is not available here",
                                hint="configure a drafting provider (OUTREACH_PROVIDER) and restart")
        follows = self.follows_instructions
        if text and not follows:
            raise OutreachError("this drafter cannot follow instructions",
                                hint="regenerate without instructions (it re-drafts from the latest facts), or "
                                "set OPENAI_API_KEY for instructed rewrites")
        with self.factory() as session:
            row = self._for_action(session, actor, draft_id, version, "regenerate")
            if row.status != "pending_review":
                raise ConflictError(f"draft {draft_id} is {row.status.replace('_', ' ')}; only pending drafts "
                                    "can be regenerated")
            current = row.versions[-1]
            base = next((v for v in reversed(row.versions) if v.source != "edit"), row.versions[0])
            edited = current.source == "edit" and keep_edits
            start = current if keep_edits else base
            request = RegenerationRequest(
                draft_id=draft_id, decision=Decision.model_validate(row.decision), subject=start.subject,
                body=start.body, call_to_action=start.call_to_action, instructions=text,
            )
            base_text = (base.subject, base.body, base.call_to_action)
            edited_text = (current.subject, current.body, current.call_to_action)
        # The model call happens outside any transaction: it can take seconds and must not hold locks.
        new = self.regenerator(request)
        note = None
        if edited and not follows:
            subject = edited_text[0] if edited_text[0] != base_text[0] else new.subject
            cta = edited_text[2] if edited_text[2] != base_text[2] else new.call_to_action
            body, conflicts = merge_edits(base_text[1], edited_text[1], new.body)
            new = new.model_copy(update={"subject": subject, "body": body, "call_to_action": cta})
            note = "kept your edits" + (f" ({conflicts} passage(s) where the new text differed: yours kept)"
                                        if conflicts else "")
        elif edited:
            note = "rewrote your edited text"
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "regenerate")
            if row.status != "pending_review":
                raise ConflictError(f"draft {draft_id} is {row.status.replace('_', ' ')}; it was not regenerated")
            now = self.clock()
            before = _draft_state(row)
            number = row.versions[-1].number + 1
            version_row = _version_row(number, "regeneration", new, now, author=actor.email,
                                       instructions=text or None)
            if edited:
                model = base_text
                version_row.diff, version_row.edit_distance = edit_stats(
                    model, (new.subject, new.body, new.call_to_action))
            row.versions.append(version_row)
            row.current_version = number
            row.subject = new.subject[:MAX_SUBJECT_CHARS]
            row.quality = new.quality
            row.updated_at = now
            summary = "; ".join(part for part in (text, note) if part) or None
            session.add(ReviewActionRow(draft_id=row.id, actor=actor.email, action="regenerate",
                                        from_status=row.status, to_status=row.status, note=summary,
                                        draft_version=number, created_at=now))
            session.flush()
            session.add(AuditRow(at=now, actor=actor.email, action="draft.regenerate", entity="draft",
                                 entity_id=str(row.id), before=before,
                                 after={**_draft_state(row), "instructions": text, "keep_edits": keep_edits}))
            session.flush()
            return self._detail(session, row)

    @property
    def follows_instructions(self) -> bool:
        """Whether the regenerator can follow a rep's instructions (the offline drafter cannot)."""
        return self.regenerator is not None and bool(getattr(self.regenerator, "follows_instructions", True))

    def bulk_approve(self, actor: Principal, items: Sequence[tuple[int, int]]) -> BulkResult:
        """Approve several (draft id, version) pairs; each succeeds or fails on its own, with its reason."""
        if len(items) > MAX_BULK:
            raise InputError(f"{len(items)} drafts selected; bulk approve takes at most {MAX_BULK}")
        approved: list[int] = []
        failed: dict[int, str] = {}
        for draft_id, version in items:
            try:
                self.approve(actor, draft_id, version)
                approved.append(draft_id)
            except OutreachError as error:
                failed[draft_id] = error.message
        return BulkResult(approved=approved, failed=failed)

    def _bulk(self, items: Sequence[tuple[int, int]], verb: str,
              act: Callable[[int, int], object]) -> BulkActionResult:
        if len(items) > MAX_BULK:
            raise OutreachError(f"{len(items)} drafts selected; bulk {verb} takes at most {MAX_BULK}")
        done: list[int] = []
        failed: dict[int, str] = {}
        for draft_id, version in items:
            try:
                act(draft_id, version)
                done.append(draft_id)
            except OutreachError as error:
                failed[draft_id] = error.message
        return BulkActionResult(done=done, failed=failed)

    def bulk_reject(self, actor: Principal, items: Sequence[tuple[int, int]], reason: str,
                    note: str = "") -> BulkActionResult:
        """Reject several drafts with one reason; each succeeds or fails on its own."""
        if reason not in REJECT_REASONS:
            raise OutreachError(f"'{reason}' is not a reject reason", hint=f"use one of: {', '.join(REJECT_REASONS)}")
        if reason == "other" and not note.strip():
            raise OutreachError("say why in a few words when the reason is 'other'")
        return self._bulk(items, "reject", lambda d, v: self.reject(actor, d, v, reason, note))

    def bulk_reassign(self, actor: Principal, items: Sequence[tuple[int, int]], owner: str) -> BulkActionResult:
        return self._bulk(items, "reassign", lambda d, v: self.reassign(actor, d, v, owner))

    def bulk_snooze(self, actor: Principal, items: Sequence[tuple[int, int]], until: datetime) -> BulkActionResult:
        return self._bulk(items, "snooze", lambda d, v: self.snooze(actor, d, v, until))

    def reassign(self, actor: Principal, draft_id: int, version: int, owner: str) -> DraftDetail:
        """Hand a pending draft to another rep (an active sdr or admin login). An SDR can hand on their own and
        unassigned drafts; a manager any. A later merge of new facts keeps the new owner."""
        from outreach.review.storage import UserRow
        from outreach.review.users import normalize_email

        address = normalize_email(owner)
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "reassign")
            if row.status != "pending_review":
                raise ConflictError(f"draft {draft_id} is {row.status.replace('_', ' ')}; only pending drafts "
                                    "can be reassigned")
            target = session.scalar(select(UserRow).where(UserRow.email == address))
            if target is None or not target.active or target.role not in ("sdr", "admin"):
                raise OutreachError(f"{address} is not an active rep", hint="pick an sdr or admin login")
            if row.owner_email == address:
                raise OutreachError(f"draft {draft_id} is already assigned to {address}")
            before = _draft_state(row)
            previous = row.owner_email
            row.owner_email = address
            now = self.clock()
            row.updated_at = now
            session.add(ReviewActionRow(draft_id=row.id, actor=actor.email, action="reassign",
                                        from_status=row.status, to_status=row.status,
                                        note=f"{previous or 'unassigned'} → {address}",
                                        draft_version=row.current_version, created_at=now))
            session.flush()
            session.add(AuditRow(at=now, actor=actor.email, action="draft.reassign", entity="draft",
                                 entity_id=str(row.id), before=before, after=_draft_state(row)))
            session.flush()
            return self._detail(session, row)

    def snooze(self, actor: Principal, draft_id: int, version: int, until: datetime | None) -> DraftDetail:
        """Hide a pending draft from the queue until ``until`` (None wakes it now). The gate is re-checked
        as for every open draft, so a snoozed draft still expires if the account turns red."""
        now = self.clock()
        if until is not None:
            until = until if until.tzinfo else until.replace(tzinfo=UTC)
            if until <= now:
                raise OutreachError("snooze until a time in the future")
            if until > now + timedelta(days=MAX_SNOOZE_DAYS):
                raise OutreachError(f"snooze for at most {MAX_SNOOZE_DAYS} days")
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "snooze")
            if row.status != "pending_review":
                raise ConflictError(f"draft {draft_id} is {row.status.replace('_', ' ')}; only pending drafts "
                                    "can be snoozed")
            before = _draft_state(row)
            row.snoozed_until = until
            row.updated_at = now
            action = "snooze" if until is not None else "unsnooze"
            session.add(ReviewActionRow(draft_id=row.id, actor=actor.email, action=action, from_status=row.status,
                                        to_status=row.status, note=until.isoformat() if until else None,
                                        draft_version=row.current_version, created_at=now))
            session.flush()
            session.add(AuditRow(at=now, actor=actor.email, action=f"draft.{action}", entity="draft",
                                 entity_id=str(row.id), before=before,
                                 after={**_draft_state(row), "snoozed_until": until.isoformat() if until else None}))
            session.flush()
            return self._detail(session, row)

    def undo(self, actor: Principal, draft_id: int, version: int) -> DraftDetail:
        """Take back your own approval or rejection within :data:`UNDO_SECONDS`: the draft is pending again.
        Refused once the window has passed, after someone else acted, or when the sender has scheduled it."""
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "undo")
            last = session.scalar(select(ReviewActionRow).where(ReviewActionRow.draft_id == row.id)
                                  .order_by(ReviewActionRow.id.desc()).limit(1))
            now = self.clock()
            if (last is None or last.action not in UNDOABLE or last.actor != actor.email
                    or row.status != UNDOABLE[last.action]):
                raise ConflictError(f"draft {draft_id} has no approval or rejection of yours to undo",
                                    hint="it may have moved on (scheduled, or acted on by someone else)")
            if now - last.created_at > timedelta(seconds=UNDO_SECONDS):
                raise ConflictError(f"the {UNDO_SECONDS}-second undo window for draft {draft_id} has passed")
            before = _draft_state(row)
            from_status = row.status
            row.status = "pending_review"
            row.reject_reason = row.reject_text = None
            row.updated_at = now
            session.add(ReviewActionRow(draft_id=row.id, actor=actor.email, action="undo", from_status=from_status,
                                        to_status="pending_review", note=f"undid {last.action}",
                                        draft_version=row.current_version, created_at=now))
            session.flush()
            session.add(AuditRow(at=now, actor=actor.email, action="draft.undo", entity="draft",
                                 entity_id=str(row.id), before=before, after=_draft_state(row)))
            session.flush()
            return self._detail(session, row)

    def schedule(self, actor: Principal, draft_id: int, version: int, when: datetime) -> DraftDetail:
        """Hand an approved draft to the sender for ``when`` (the sequence scheduler calls this)."""
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "schedule")
            self._transition(session, row, "scheduled", actor.email, self.clock(), action="schedule",
                             note=when.isoformat())
            row.scheduled_for = when
            session.flush()
            return self._detail(session, row)

    def mark_sent(self, actor: Principal, draft_id: int, version: int, when: datetime | None = None) -> DraftDetail:
        with self._unit() as session:
            row = self._for_action(session, actor, draft_id, version, "send")
            sent = when or self.clock()
            self._transition(session, row, "sent", actor.email, self.clock(), action="send", note=sent.isoformat())
            row.sent_at = sent
            session.flush()
            return self._detail(session, row)

    def expire_gated(self, draft_ids: Sequence[int] | None = None) -> list[int]:
        """Expire every open (or the given) draft whose account no longer passes the gate."""
        with self._unit() as session:
            query = select(DraftRow).where(DraftRow.status.in_(("pending_review", "approved")))
            if draft_ids is not None:
                query = query.where(DraftRow.id.in_(list(draft_ids)))
            return self._expire_gated(session, list(session.scalars(query)))


def transition_draft(session: Session, row: DraftRow, to: str, actor: str, now: datetime, *,
                     action: str, reason_code: str | None = None, note: str | None = None) -> None:
    """Move a draft along :data:`TRANSITIONS` with a review action and an audit row, inside the caller's
    transaction: the sequence scheduler moves approved → scheduled → sent in the same transaction as its claim."""
    if to not in TRANSITIONS[row.status]:
        raise ConflictError(
            f"draft {row.id} is {row.status.replace('_', ' ')}; it cannot move to {to.replace('_', ' ')}"
        )
    before = _draft_state(row)
    from_status = row.status
    row.status = to
    row.updated_at = now
    session.add(ReviewActionRow(draft_id=row.id, actor=actor, action=action, from_status=from_status,
                                to_status=to, reason_code=reason_code, note=note,
                                draft_version=row.current_version, created_at=now))
    session.flush()
    session.add(AuditRow(at=now, actor=actor, action=f"draft.{action}", entity="draft", entity_id=str(row.id),
                         before=before, after={**_draft_state(row), "note": note, "reason": reason_code}))


def authorize(actor: Principal, owner_email: str | None, verb: str, draft_id: int) -> None:
    """Managers act on every draft; an SDR on their own and unassigned drafts; marketing only reads."""
    if actor.is_manager:
        return
    if not actor.can_review:
        raise PermissionDeniedError(f"the {actor.role} role can read the queue but not {verb} drafts",
                                    hint="ask an SDR or an admin")
    if owner_email and owner_email.lower() != actor.email:
        raise PermissionDeniedError(f"draft {draft_id} is assigned to {owner_email}; only they or a manager can "
                                    f"{verb} it")


def check_text(subject: str, body: str, call_to_action: str) -> None:
    """Length limits for rep edits: a clear error instead of a silently truncated email."""
    if not subject:
        raise InputError("the subject is empty")
    if not body:
        raise InputError("the body is empty")
    for name, value, limit in (("subject", subject, MAX_SUBJECT_CHARS), ("body", body, MAX_BODY_CHARS),
                               ("call to action", call_to_action, MAX_CTA_CHARS)):
        if len(value) > limit:
            raise InputError(f"the {name} is {len(value):,} characters; the limit is {limit:,}",
                                hint="shorten it; nothing was saved")


class DatasetGateCheck:
    """Re-checks gates against a data directory: the account's current health, tickets and vetoes.

    The dataset is loaded once (on first use) and kept: the web app re-checks the accounts on each page it
    shows, so loading per request would be far too slow. ``reload()`` picks up a new export.
    """

    def __init__(self, data_dir: str | Path, as_of: date, *, rules_path: Path | None = None,
                 dataset: Dataset | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.as_of = as_of
        self.rules_path = rules_path
        self._dataset: Dataset | None = dataset

    def reload(self) -> None:
        self._dataset = None

    def __call__(self, account_ids: Sequence[str]) -> Mapping[str, Gate]:
        if self._dataset is None:
            self._dataset = load_dataset(self.data_dir)
        dataset = self._dataset
        known = {a.account_id for a in dataset.accounts}
        wanted = {a for a in account_ids if a in known}
        if not wanted:
            return {}
        decisions = decide(dataset, rules_for(dataset, self.rules_path), self.as_of, account_ids=wanted)
        return {d.account_id: d.gate for d in decisions}
