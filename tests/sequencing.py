"""Helpers for sequence/scheduler tests: a review world with approved drafts, a scheduler on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from outreach.application import Application
from outreach.engine.data import Dataset
from outreach.engine.decisions import Decision
from outreach.review.queue import DraftInput
from outreach.sending.scheduler import FakeClock, Scheduler
from outreach.sending.sequences import load_sequences, template_kinds
from outreach.sending.transports import OutboxTransport
from outreach.settings import Settings
from tests.datadir import DataDir
from tests.review_world import ReviewWorld

# Friday 2026-11-20 06:00 UTC: the data's as-of date, before any window opens in Europe/Berlin.
START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

SEQUENCE = """
id: test-upsell
motions: [upsell, bundle, cross_sell]
window: {days: [tue, wed, thu], start: "09:00", end: "11:30"}
steps:
  - id: first
    kind: email
  - kind: wait
    duration: 3 business days
  - id: second
    kind: email
    prompt: followup
  - kind: wait
    duration: 2 business days
  - id: call
    kind: task
    title: Call the champion
"""


class CannedFollowups:
    """A follow-up writer that quotes the refreshed primary friction (used where drafting speed matters)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, decision: Decision, dataset: Dataset, template: str, previous_subject: str) -> DraftInput:
        self.calls.append(decision.account_id)
        friction = decision.primary_friction()
        assert friction is not None and decision.offer is not None
        return DraftInput(subject=f"Re: {previous_subject}", body=f"Hi Dana,\n\nA short follow-up: your team "
                          f"{friction.statement}.\n\nMaya", call_to_action="Reply to set it up.",
                          friction_ids=[friction.id], offer_id=decision.offer.id, template_name=template,
                          provider="canned", model="canned")


@dataclass
class Setup:
    world: ReviewWorld
    scheduler: Scheduler
    clock: FakeClock
    transport: OutboxTransport
    settings: Settings

    def approve_and_enroll(self, account_id: str, sequence_id: str = "test-upsell") -> int:
        self.world.queue.approve(self.world.admin, self.world.draft_ids[account_id], self.world.version(account_id))
        row = self.scheduler.enroll(self.world.draft_ids[account_id], actor="ada@ledgerly.example",
                                    data_dir=self.world.data_dir, sequence_id=sequence_id)
        return row.id


def make_setup(world: ReviewWorld, tmp_path: Path, *, sequence: str = SEQUENCE, followups: object | None = None,
               **settings: object) -> Setup:
    folder = tmp_path / "sequences"
    folder.mkdir(exist_ok=True)
    (folder / "test.yaml").write_text(sequence, encoding="utf-8")
    config = Settings(home=tmp_path, **settings)  # type: ignore[arg-type]
    clock = FakeClock(START)
    world.queue.clock = clock
    transport = OutboxTransport(tmp_path / "outbox")
    scheduler = Scheduler(Application(config), load_sequences(folder, templates=template_kinds(None)), transport,
                          clock=clock, followups=followups, factory=world.factory)  # type: ignore[arg-type]
    return Setup(world, scheduler, clock, transport, config)


def sequence_data() -> DataDir:
    """Like the review world, but the friction is fresh enough to last through a month of sequence time."""
    data = DataDir()
    for account, owner in (("acme", "maya@ledgerly.example"), ("globex", "sam@ledgerly.example"),
                           ("initech", "")):
        data.account(account, name=account.title(), owner_email=owner).active(account)
        for days in (0.5, 1, 2, 3, 4):
            data.event(account, "Limit Reached", days, limit="reports", used=50, cap=50)
    return data


def build_world(url: str, tmp_path: Path) -> ReviewWorld:
    return ReviewWorld.build(url, tmp_path, data=sequence_data())
