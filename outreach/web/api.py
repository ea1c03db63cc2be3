"""The JSON API under ``/api/``: the same review actions as the web pages, for integrations and chat-style
approvals. Bearer tokens only (``outreach tokens create``); cookies are ignored here, so CSRF cannot apply.
Errors are ``{"detail": ..., "hint": ...}`` with 401/403/404/409/422 as the problem warrants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from outreach.db import transaction
from outreach.errors import (
    PermissionDeniedError,
)
from outreach.review.queue import (
    MAX_BODY_CHARS,
    MAX_CTA_CHARS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_NOTE_CHARS,
    MAX_SUBJECT_CHARS,
    BulkActionResult,
    BulkResult,
    DraftDetail,
    DraftStatus,
    QueueFilter,
    QueuePage,
    RejectReason,
    ReviewQueue,
    SortKey,
)
from outreach.review.users import Principal, principal_for_token

router = APIRouter(prefix="/api", tags=["review"])
bearer = HTTPBearer(auto_error=False, description="A token from `outreach tokens create EMAIL`.")


def api_user(request: Request,
             _credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    from outreach.web.state import ApiAuthRequired, ReviewApp

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiAuthRequired("authentication required: send Authorization: Bearer <token>")
    review: ReviewApp = request.app.state.review
    try:
        with transaction(review.factory) as session:
            return principal_for_token(session, token)
    except PermissionDeniedError as error:
        raise ApiAuthRequired(error.message) from None


def queue_of(request: Request) -> ReviewQueue:
    queue: ReviewQueue = request.app.state.review.queue
    return queue


User = Annotated[Principal, Depends(api_user)]
Queue = Annotated[ReviewQueue, Depends(queue_of)]


class VersionBody(BaseModel):
    version: int = Field(description="The draft version you reviewed; a newer one means someone else acted.")


class RejectBody(VersionBody):
    reason: RejectReason
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)


class EditBody(VersionBody):
    subject: str = Field(max_length=MAX_SUBJECT_CHARS)
    body: str = Field(max_length=MAX_BODY_CHARS)
    call_to_action: str = Field(default="", max_length=MAX_CTA_CHARS)


class RegenerateBody(VersionBody):
    instructions: str = Field(default="", max_length=MAX_INSTRUCTIONS_CHARS)
    keep_edits: bool = Field(default=True, description="Keep the rep's edits (false: start from the model's text).")


class ReassignBody(VersionBody):
    owner: str = Field(max_length=320, description="Email of an active sdr or admin login.")


class SnoozeBody(VersionBody):
    until: datetime | None = Field(description="Hide the draft until then (UTC); null wakes it now.")


class BulkItem(BaseModel):
    id: int
    version: int


class BulkRejectBody(BaseModel):
    items: list[BulkItem] = Field(max_length=200)
    reason: RejectReason
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)


class BulkBody(BaseModel):
    items: list[BulkItem] = Field(max_length=200)


class Me(BaseModel):
    email: str
    role: str


@router.get("/me", response_model=Me, summary="Who the token belongs to")
def me(user: User) -> Me:
    return Me(email=user.email, role=user.role)


@router.get("/drafts", response_model=QueuePage, summary="List drafts with counts per status")
def list_drafts(
    user: User,
    queue: Queue,
    status: Annotated[DraftStatus | None, Query(description="Default pending_review.")] = "pending_review",
    all_statuses: Annotated[bool, Query(description="Ignore status and list every state.")] = False,
    motion: str | None = None,
    trigger: str | None = None,
    owner: Annotated[str | None, Query(description="Owner email, or 'me'.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Search account, subject and owner.")] = None,
    sort: Annotated[SortKey, Query(description="priority (friction strength × MRR), age, health, mrr, price, "
                                   "updated.")] = "priority",
    descending: Annotated[bool | None, Query(description="Default: the sort's own direction.")] = None,
    snoozed: Annotated[bool | None, Query(description="false hides snoozed drafts, true lists only them, "
                                          "null shows both.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> QueuePage:
    flt = QueueFilter(
        status=None if all_statuses else status,
        motion=motion,
        trigger=trigger,
        owner=user.email if owner == "me" else owner,
        search=q,
        sort=sort,
        descending=descending,
        snoozed=snoozed,
        limit=limit,
        offset=offset,
    )
    return queue.page(user, flt)


@router.get("/drafts/{draft_id}", response_model=DraftDetail, summary="A draft with its evidence")
def show_draft(draft_id: int, user: User, queue: Queue) -> DraftDetail:
    return queue.show(user, draft_id)


@router.post("/drafts/{draft_id}/approve", response_model=DraftDetail, summary="Approve a pending draft")
def approve(draft_id: int, body: VersionBody, user: User, queue: Queue) -> DraftDetail:
    return queue.approve(user, draft_id, body.version)


@router.post("/drafts/{draft_id}/reject", response_model=DraftDetail, summary="Reject with a reason code")
def reject(draft_id: int, body: RejectBody, user: User, queue: Queue) -> DraftDetail:
    return queue.reject(user, draft_id, body.version, body.reason, body.note)


@router.post("/drafts/{draft_id}/edit", response_model=DraftDetail, summary="Save an edited text")
def edit(draft_id: int, body: EditBody, user: User, queue: Queue) -> DraftDetail:
    return queue.edit(user, draft_id, body.version, subject=body.subject, body=body.body,
                      call_to_action=body.call_to_action)


@router.post("/drafts/{draft_id}/regenerate", response_model=DraftDetail, summary="Re-draft with instructions")
def regenerate(draft_id: int, body: RegenerateBody, user: User, queue: Queue) -> DraftDetail:
    return queue.regenerate(user, draft_id, body.version, body.instructions, keep_edits=body.keep_edits)


@router.post("/drafts/{draft_id}/undo", response_model=DraftDetail,
             summary="Undo your approval or rejection (within a few seconds)")
def undo(draft_id: int, body: VersionBody, user: User, queue: Queue) -> DraftDetail:
    return queue.undo(user, draft_id, body.version)


@router.post("/drafts/{draft_id}/reassign", response_model=DraftDetail, summary="Hand a draft to another rep")
def reassign(draft_id: int, body: ReassignBody, user: User, queue: Queue) -> DraftDetail:
    return queue.reassign(user, draft_id, body.version, body.owner)


@router.post("/drafts/{draft_id}/snooze", response_model=DraftDetail, summary="Hide a draft until a time")
def snooze(draft_id: int, body: SnoozeBody, user: User, queue: Queue) -> DraftDetail:
    return queue.snooze(user, draft_id, body.version, body.until)


@router.post("/drafts/bulk-reject", response_model=BulkActionResult, summary="Reject several drafts, one reason")
def bulk_reject(body: BulkRejectBody, user: User, queue: Queue) -> BulkActionResult:
    return queue.bulk_reject(user, [(item.id, item.version) for item in body.items], body.reason, body.note)


@router.post("/drafts/bulk-approve", response_model=BulkResult, summary="Approve several drafts")
def bulk_approve(body: BulkBody, user: User, queue: Queue) -> BulkResult:
    return queue.bulk_approve(user, [(item.id, item.version) for item in body.items])
