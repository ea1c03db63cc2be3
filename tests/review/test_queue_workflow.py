"""A rep's tools on the queue: stable sorts, search, snooze, reassign, bulk reject, undo, and regeneration that
keeps the rep's edits. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from outreach import db
from outreach.errors import ConflictError, NotFoundError, OutreachError, PermissionDeniedError
from outreach.review.queue import (
    MAX_ID,
    SORTS,
    UNDO_SECONDS,
    DraftInput,
    QueueFilter,
    RegenerationRequest,
    ReviewQueue,
    merge_edits,
)
from outreach.review.storage import DraftRow
from tests.review_world import MAYA, SAM, ReviewWorld


def ids(world: ReviewWorld, flt: QueueFilter) -> list[str]:
    return [row.account_id for row in world.queue.page(world.admin, flt).rows]


def test_sorts_are_explicit_and_stable(world: ReviewWorld) -> None:
    with db.transaction(world.factory) as session:  # known sort keys: priority = strength × MRR
        for account, (priority, mrr, health) in {"acme": (10.0, 500.0, 80), "globex": (30.0, 100.0, 40),
                                                 "initech": (10.0, 900.0, None)}.items():
            session.execute(update(DraftRow).where(DraftRow.account_id == account)
                            .values(priority=priority, account_mrr=mrr, health_score=health))
    by_priority = ids(world, QueueFilter())
    assert by_priority[0] == "globex" and sorted(by_priority[1:]) == ["acme", "initech"]  # tie broken by id
    assert ids(world, QueueFilter(sort="mrr")) == ["initech", "acme", "globex"]
    assert ids(world, QueueFilter(sort="health")) == ["acme", "globex", "initech"]  # no score sorts last
    assert ids(world, QueueFilter(sort="mrr", descending=False)) == ["globex", "acme", "initech"]
    # Editing does not move a draft; j/k and "next" follow the same order.
    acme = world.draft_ids["acme"]
    world.queue.edit(world.maya, acme, world.version("acme"), subject="New", body="Edited")
    assert ids(world, QueueFilter(sort="mrr")) == ["initech", "acme", "globex"]
    flt = QueueFilter(sort="mrr")
    assert world.queue.neighbours(flt, acme) == (world.draft_ids["initech"], world.draft_ids["globex"])
    assert world.queue.neighbours(flt, MAX_ID + 1) == (None, None)
    assert set(SORTS) == {"priority", "age", "health", "mrr", "price", "updated"}


def test_search_matches_name_subject_and_owner(world: ReviewWorld) -> None:
    assert ids(world, QueueFilter(search="GLOBEX")) == ["globex"]
    assert ids(world, QueueFilter(search=SAM)) == ["globex"]
    assert ids(world, QueueFilter(search="100%_\\")) == []  # LIKE wildcards are literal


def test_snooze_hides_until_then(world: ReviewWorld) -> None:
    acme = world.draft_ids["acme"]
    world.queue.snooze(world.maya, acme, world.version("acme"), datetime.now(UTC) + timedelta(days=1))
    page = world.queue.page(world.admin, QueueFilter())
    assert "acme" not in [r.account_id for r in page.rows]
    assert (page.counts.by_status["pending_review"], page.counts.snoozed) == (2, 1)
    assert ids(world, QueueFilter(snoozed=True)) == ["acme"]
    with pytest.raises(OutreachError, match="future"):
        world.queue.snooze(world.maya, acme, world.version("acme"), datetime.now(UTC) - timedelta(hours=1))
    world.queue.snooze(world.maya, acme, world.version("acme"), None)
    assert "acme" in ids(world, QueueFilter())


def test_reassign_and_bulk_reject(world: ReviewWorld) -> None:
    initech = world.draft_ids["initech"]
    with pytest.raises(OutreachError, match="not an active rep"):
        world.queue.reassign(world.maya, initech, world.version("initech"), "mo@ledgerly.example")
    detail = world.queue.reassign(world.maya, initech, world.version("initech"), SAM)
    assert detail.summary.owner_email == SAM
    with pytest.raises(PermissionDeniedError):  # now Sam's
        world.queue.reassign(world.maya, initech, detail.summary.version, MAYA)
    # a merge of new facts keeps the new owner
    decision = world.decisions["initech"]
    world.queue.fill([decision], {"initech": DraftInput(subject="s", body="b")})
    assert world.queue.show(world.admin, initech).summary.owner_email == SAM
    page = world.queue.page(world.maya, QueueFilter())
    assert {r.account_id: r.actionable for r in page.rows} == {"acme": True, "globex": False, "initech": False}
    items = [(world.draft_ids[a], world.version(a)) for a in ("acme", "globex")]
    result = world.queue.bulk_reject(world.maya, items, "timing", "renewal next month")
    assert result.done == [world.draft_ids["acme"]] and "assigned to" in result.failed[world.draft_ids["globex"]]
    with pytest.raises(OutreachError, match="'other'"):
        world.queue.bulk_reject(world.admin, items, "other")


def test_undo_within_the_window(world: ReviewWorld) -> None:
    acme = world.draft_ids["acme"]
    approved = world.queue.approve(world.maya, acme, world.version("acme"))
    with pytest.raises(ConflictError):  # only the rep who acted
        world.queue.undo(world.admin, acme, approved.summary.version)
    undone = world.queue.undo(world.maya, acme, approved.summary.version)
    assert undone.summary.status == "pending_review" and undone.actions[-1].action == "undo"
    rejected = world.queue.reject(world.maya, acme, undone.summary.version, "tone")
    late = ReviewQueue(world.factory, clock=lambda: datetime.now(UTC) + timedelta(seconds=UNDO_SECONDS + 1))
    with pytest.raises(ConflictError, match="undo window"):
        late.undo(world.maya, acme, rejected.summary.version)
    back = world.queue.undo(world.maya, acme, rejected.summary.version)
    assert (back.summary.status, back.reject_reason) == ("pending_review", None)
    with pytest.raises(NotFoundError):
        world.queue.show(world.admin, 10**30)


def test_merge_edits_keeps_the_reps_lines() -> None:
    base = "Hi Dana,\nYou hit the limit 3 times.\nThanks"
    edited = "Hi Dana,\nYou hit the limit 3 times.\nThanks\nP.S. Call Thursday?"
    new = "Hi Dana,\nYou hit the limit 4 times.\nThanks"
    assert merge_edits(base, edited, new) == ("Hi Dana,\nYou hit the limit 4 times.\nThanks\nP.S. Call Thursday?", 0)
    clash = "Hello Dana,\nYou hit the limit 3 times.\nThanks"
    assert merge_edits(base, clash, "Hey Dana,\nYou hit the limit 3 times.\nThanks")[0].startswith("Hello Dana")


class Offline:
    """A regenerator that cannot follow instructions: returns the same model text every time."""

    follows_instructions = False

    def __init__(self, body: str) -> None:
        self.body = body
        self.seen: list[RegenerationRequest] = []

    def __call__(self, request: RegenerationRequest) -> DraftInput:
        self.seen.append(request)
        return DraftInput(subject="Model subject", body=self.body, provider="offline")


def test_regenerate_keeps_edits_unless_asked_not_to(world: ReviewWorld) -> None:
    acme = world.draft_ids["acme"]
    model = world.queue.show(world.admin, acme).current
    regenerator = Offline(model.body.replace("3 times", "4 times"))
    queue = ReviewQueue(world.factory, regenerator=regenerator)
    edited = queue.edit(world.maya, acme, world.version("acme"), subject=model.subject,
                        body=model.body + "\n\nP.S. Call Thursday?")
    with pytest.raises(OutreachError, match="cannot follow instructions"):
        queue.regenerate(world.maya, acme, edited.summary.version, "shorter")
    kept = queue.regenerate(world.maya, acme, edited.summary.version)
    assert kept.current.body.endswith("P.S. Call Thursday?") and "4 times" in kept.current.body
    assert kept.current.subject == "Model subject"  # the rep had not changed the subject: the new one is used
    assert "kept your edits" in (kept.actions[-1].note or "")
    redone = queue.edit(world.maya, acme, kept.summary.version, subject="Rep subject", body=kept.current.body)
    fresh = queue.regenerate(world.maya, acme, redone.summary.version, keep_edits=False)
    assert fresh.current.body == regenerator.body and fresh.current.subject == "Model subject"
    assert regenerator.seen[-1].body == kept.current.body  # started from the last model text, not the rep's
