"""``outreach events ingest``: one JSONL file of mail events and expansion outcomes, each stored where it belongs.

Mail events (replies, bounces, unsubscribes, clicks, meetings, conversions) go to
:mod:`outreach.sending.engagement`; outcomes — ``kind`` upgrade, seat_add, addon_purchase, expansion,
contraction, downgrade or churn — go to the outcomes table (:mod:`outreach.metrics.outcomes`). Both are
stored once, so re-ingesting a file is harmless.

The whole file is parsed and checked before anything is written; then events are written a few at a time,
each batch its own short transaction, so a large file never holds the database's write lock for long (a
sending worker hands over its next message in between) and a reply is in effect as soon as its batch commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from outreach import db
from outreach.engine.data import json_lines
from outreach.errors import DataError
from outreach.metrics.outcomes import OutcomeEvent, is_outcome, record_outcome
from outreach.sending.engagement import MailEvent, record


class IngestReport(BaseModel):
    read: int = 0
    created: int = 0
    duplicates: int = 0
    unmatched: int = 0
    suppressed: int = 0
    outcomes: int = 0

    def line(self) -> str:
        text = (f"{self.read} events read: {self.created} recorded, {self.duplicates} already known, "
                f"{self.unmatched} not matched to an enrollment, {self.suppressed} addresses suppressed")
        return text + (f", {self.outcomes} of them expansion outcomes" if self.outcomes else "")


def known_accounts(data_dir: Path | None) -> set[str] | None:
    """The account ids of a data directory's accounts.csv (None without a data directory)."""
    if data_dir is None:
        return None
    from outreach.engine.catalog import load_catalog
    from outreach.engine.data import load_accounts

    catalog = load_catalog(data_dir / "catalog.yaml")
    return {account.account_id for account in load_accounts(data_dir / "accounts.csv", catalog)}


def parse_events(path: Path, *, accounts_dir: Path | None = None) -> list[MailEvent | OutcomeEvent]:
    """Read a JSONL file of events (mail events and outcomes); a bad line stops with the file, line and field.

    With ``accounts_dir`` (``OUTREACH_DATA_DIR``) an outcome for an account that is not in its accounts.csv
    is refused the same way, so it can never be counted as someone's expansion or churn."""
    if not path.exists():
        raise DataError(path, "file not found")
    accounts = known_accounts(accounts_dir)
    events: list[MailEvent | OutcomeEvent] = []
    for number, data in json_lines(path):
        try:
            event = OutcomeEvent.model_validate(data) if is_outcome(data) else MailEvent.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise DataError(path, first["msg"], line=number, field=field) from None
        if accounts is not None and isinstance(event, OutcomeEvent) and event.account_id not in accounts:
            raise DataError(path, f"no account '{event.account_id}' in {accounts_dir}/accounts.csv", line=number,
                            field="account_id")
        events.append(event)
    return events


EVENTS_PER_TRANSACTION = 50


def ingest(factory: sessionmaker[Session], events: Sequence[MailEvent | OutcomeEvent], clock: Callable[[], datetime], *,
           source: str) -> IngestReport:
    report = IngestReport()
    for start in range(0, len(events), EVENTS_PER_TRANSACTION):
        with db.transaction(factory) as session:
            for event in events[start:start + EVENTS_PER_TRANSACTION]:
                _ingest_one(session, event, clock(), source, report)
    return report


def _ingest_one(session: Session, event: MailEvent | OutcomeEvent, now: datetime, source: str,
                report: IngestReport) -> None:
    report.read += 1
    if isinstance(event, OutcomeEvent):
        created = record_outcome(session, event, now, source=source)
        report.created += created
        report.duplicates += not created
        report.outcomes += created
        return
    result = record(session, event, now, source=source)
    if not result.created:
        report.duplicates += 1
        return
    report.created += 1
    report.unmatched += result.enrollment_id is None and result.account_id is None
    report.suppressed += result.suppressed
