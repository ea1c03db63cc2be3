"""Decisions within a minute of the event: re-decide the accounts new events concern, queue drafts for the ones
that became ready, and tell their owners.

The intake (:mod:`outreach.web.intake`) hands each stored request's accounts to :meth:`Reactor.notify`. A
background thread waits a moment for more (requests come in bursts), then:

1. takes the new events into the served data set without reading the history again
   (:meth:`outreach.application.Application.refresh_events`);
2. decides only those accounts, as of the end of the current UTC day (so today's events count) unless the app
   serves a fixed ``--as-of``;
3. compares each cohort with the one stored in ``account_states``: an account that is ``ready`` now and was
   not before gets its draft written (the configured provider; offline without a key) and queued for review,
   merged into an open draft of the same motion as ``outreach draft`` does; a Slack message to its owner is
   queued in the notifications outbox and delivered after the commit.

The first pass over a data directory records every account's cohort without acting, so only changes that
happen while outreach watches count as "became ready".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach.application import Application
from outreach.drafting.drafts import DraftingContext
from outreach.engine.data import Dataset
from outreach.engine.decisions import Decision, decide, rules_for
from outreach.engine.focus import Focus
from outreach.integrations.tables import AccountStateRow
from outreach.review.queue import EnqueueResult

log = logging.getLogger(__name__)


@dataclass
class ReactorPass:
    """What one pass did."""

    accounts: int = 0
    decided: int = 0
    became_ready: list[str] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    new_events: int = 0
    reloaded: bool = False
    seconds: float = 0.0
    error: str | None = None


class Reactor:
    """Re-decides the accounts events arrive for, on a background thread (``start``/``close``), or one pass at a
    time (:meth:`run_pending`, for tests and benchmarks)."""

    def __init__(
        self,
        application: Application,
        data_dir: Path,
        *,
        as_of: date | None = None,
        debounce: float = 0.2,
        provider_name: str | None = None,
        clock: type[datetime] = datetime,
    ) -> None:
        self.application = application
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.fixed_as_of = as_of
        self.debounce = debounce
        self.provider_name = provider_name
        self.clock = clock
        self._pending: set[str] = set()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._baseline_done = False
        self.passes: list[ReactorPass] = []
        self._drafting: tuple[Dataset, DraftingContext] | None = None
        self._focused: Focus | None = None

    # ------------------------------------------------------------------------------------------ thread

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="outreach-reactor", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._focused is not None:
            self._focused.close()
            self._focused = None

    def notify(self, accounts: Iterable[str]) -> None:
        with self._condition:
            self._pending.update(accounts)
            self._condition.notify_all()

    def idle(self) -> bool:
        with self._condition:
            return not self._pending and not self._busy

    _busy = False

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopping and self._baseline_done:
                    self._condition.wait(timeout=60)
                if self._stopping:
                    return
            if self._baseline_done:
                time.sleep(self.debounce)  # let the rest of a burst arrive
            try:
                self.run_pending()
            except Exception:  # pragma: no cover - logged, the loop keeps serving
                log.exception("re-deciding accounts failed")
                time.sleep(1.0)

    # ------------------------------------------------------------------------------------------ passes

    def as_of(self) -> date:
        return self.fixed_as_of or (self.clock.now(UTC).date() + timedelta(days=1))

    def run_pending(self) -> ReactorPass:
        """One pass: the baseline first (once), then the accounts notified since the last pass."""
        started = time.perf_counter()
        with self._condition:
            accounts, self._pending = self._pending, set()
            self._busy = True
        report = ReactorPass(accounts=len(accounts))
        try:
            refresh = self.application.refresh_events(self.data_dir)
            report.new_events, report.reloaded = refresh.rows, refresh.reload
            dataset = self.application.dataset(self.data_dir)
            if not self._baseline_done:
                self._baseline(dataset)
                self._warm(dataset)
                self._baseline_done = True
            known = {str(r[0]) for r in dataset.events.execute(
                "SELECT account_id FROM account_rows WHERE list_contains(?::VARCHAR[], account_id)",
                [sorted(accounts | refresh.accounts)]).fetchall()}
            if known:
                self._react(dataset, known, report)
        except Exception as error:
            report.error = f"{type(error).__name__}: {error}"
            log.exception("re-deciding %d accounts failed", len(accounts))
        finally:
            with self._condition:
                self._busy = False
            report.seconds = time.perf_counter() - started
            self.passes.append(report)
            del self.passes[:-100]
        return report

    def _decide(self, dataset: Dataset, account_ids: set[str] | None) -> list[Decision]:
        from outreach.drafting.routing import TrafficRouter

        settings = self.application.settings
        router = TrafficRouter.for_directory(settings.prompts_dir)
        return decide(dataset, rules_for(dataset, settings.rules_path), self.as_of(),
                      last_contacted=self._last_contacted(account_ids),
                      held_out=router.held_out if router else None, account_ids=account_ids)

    def _last_contacted(self, account_ids: set[str] | None) -> dict[str, date]:
        from outreach.sending.tables import OutboxRow

        sent = func.max(func.coalesce(OutboxRow.sent_at, OutboxRow.created_at))
        query = select(OutboxRow.account_id, sent).where(
            OutboxRow.kind == "email", OutboxRow.state.in_(("sending", "sent", "held"))
        ).group_by(OutboxRow.account_id)
        if account_ids is not None:
            query = query.where(OutboxRow.account_id.in_(sorted(account_ids)))
        with self.application.sessions() as session:
            return {str(a): s.astimezone(UTC).date() for a, s in session.execute(query) if s is not None}

    def _baseline(self, dataset: Dataset) -> None:
        """Record every account's cohort once, without acting: "became ready" means while outreach watched."""
        root = str(self.data_dir)
        with self.application.transaction() as session:
            if session.scalar(select(AccountStateRow.id).where(AccountStateRow.data_dir == root).limit(1)):
                return
        decisions = self._decide(dataset, None)
        now = self.clock.now(UTC)
        with self.application.transaction() as session:
            session.add_all(AccountStateRow(data_dir=root, account_id=d.account_id, cohort=d.cohort, decided_at=now)
                            for d in decisions)

    def _react(self, dataset: Dataset, account_ids: set[str], report: ReactorPass) -> None:
        from outreach.integrations.notify import deliver_pending, enqueue_ready

        decisions = self._decide(self._focus(dataset)(account_ids), account_ids)
        report.decided = len(decisions)
        now = self.clock.now(UTC)
        root = str(self.data_dir)
        with self.application.transaction() as session:
            previous = self._states(session, root, account_ids)
            ready: list[Decision] = []
            for decision in decisions:
                row = previous.get(decision.account_id)
                if decision.cohort == "ready" and decision.offer is not None and (row is None or row.cohort != "ready"):
                    ready.append(decision)
                if row is None:
                    session.add(AccountStateRow(data_dir=root, account_id=decision.account_id,
                                                cohort=decision.cohort, decided_at=now))
                else:
                    row.cohort, row.decided_at = decision.cohort, now
        if not ready:
            return
        report.became_ready = [d.account_id for d in ready]
        results = self._draft_and_queue(dataset, ready)
        report.queued = [r.draft_id for r in results if r.draft_id is not None]
        drafts = {r.account_id: r.draft_id for r in results}
        with self.application.transaction() as session:
            for decision in ready:
                enqueue_ready(session, self.application.settings, decision, drafts.get(decision.account_id), now)
        deliver_pending(self.application)

    def _focus(self, dataset: Dataset) -> Focus:
        """The narrowing for this data set (made again when the data set is reloaded)."""
        if self._focused is None or self._focused.dataset is not dataset:
            if self._focused is not None:
                self._focused.close()
            rules = rules_for(dataset, self.application.settings.rules_path)
            self._focused = Focus(dataset, rules.events.integration_requested)
        return self._focused

    def _warm(self, dataset: Dataset) -> None:
        """Build what the first reaction would otherwise wait for: records, the narrowing, the drafting context."""
        _ = dataset.accounts, dataset.tickets
        self._focus(dataset)
        self._context(dataset)

    @staticmethod
    def _states(session: Session, root: str, account_ids: set[str]) -> dict[str, AccountStateRow]:
        rows = session.scalars(select(AccountStateRow).where(
            AccountStateRow.data_dir == root, AccountStateRow.account_id.in_(sorted(account_ids))))
        return {row.account_id: row for row in rows}

    def _context(self, dataset: Dataset) -> DraftingContext:
        from outreach.drafting.registry import load_templates
        from outreach.drafting.routing import TrafficRouter

        settings = self.application.settings
        if self._drafting is None or self._drafting[0] is not dataset:
            config = self.application.drafting_config(dataset)
            context = DraftingContext.from_dataset(dataset, load_templates(settings.prompts_dir), config)
            router = TrafficRouter.for_directory(settings.prompts_dir)
            context.variant = router.template_for if router else None
            self._drafting = (dataset, context)
        return self._drafting[1]

    def _draft_and_queue(self, dataset: Dataset, decisions: list[Decision]) -> list[EnqueueResult]:
        from outreach.drafting.drafts import run_drafts
        from outreach.review.queue import ReviewQueue
        from outreach.review.redraft import inputs_by_account
        from outreach.review.users import sender_source

        context = self._context(dataset)
        context.senders = sender_source(self.application.sessions)()  # signed by each account's owner, as named now
        provider = self.application.provider(self.provider_name, context.config)
        records, _ = run_drafts(decisions, context, provider)
        queue = ReviewQueue(self.application.sessions)
        return queue.fill(decisions, inputs_by_account([r for r in records if r.draft is not None]), dataset=dataset)
