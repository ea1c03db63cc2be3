"""The JSON API under ``/api/``: the same review actions as the web pages, for integrations and chat-style
approvals. Bearer tokens only (``outreach tokens create``); cookies are ignored here, so CSRF cannot apply.
Errors are ``{"detail": ..., "hint": ...}`` with 401/403/404/409/422 as the problem warrants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
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
    BulkResult,
    DraftDetail,
    DraftStatus,
    QueueFilter,
    QueuePage,
    RejectReason,
    ReviewQueue,
)
from outreach.review.users import Principal, principal_for_token

router = APIRouter(prefix="/api", tags=["review"])


def api_user(request: Request) -> Principal:
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


class BulkItem(BaseModel):
    id: int
    version: int


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
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> QueuePage:
    flt = QueueFilter(
        status=None if all_statuses else status,
        motion=motion,
        trigger=trigger,
        owner=user.email if owner == "me" else owner,
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
    return queue.regenerate(user, draft_id, body.version, body.instructions)


@router.post("/drafts/bulk-approve", response_model=BulkResult, summary="Approve several drafts")
def bulk_approve(body: BulkBody, user: User, queue: Queue) -> BulkResult:
    return queue.bulk_approve(user, [(item.id, item.version) for item in body.items])
