"""Health-gate decisions for the scheduler: one engine run per claimed batch, reused while fresh.

Before an email or a task the scheduler asks whether the account still passes the health gate and still has
the friction the email is about. Deciding one account costs about as much as deciding a hundred (the engine
is SQL over the whole data set), so a worker never decides account by account: when a claimed batch first
needs a decision, :meth:`GateDecisions.prime` decides every account of the batch in one engine run
(:func:`outreach.engine.decisions.decide` with ``account_ids``), and a decision is reused by later batches
until it is older than ``OUTREACH_SEND_GATE_MAX_AGE_SECONDS``. A changed data file (a new CS veto, a new
export) always means a fresh decision: data sets come from :meth:`Application.dataset`, which reloads when a
file changes, and a decision is only reused for the data set object it was computed from.

The contact cooldown across motions is part of the gate: the engine reads it from ``last_contacted`` (the
account's latest email from *another* enrollment), which is part of the key, so a send that changes it is
never answered by a decision made before.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from outreach.application import Application
from outreach.engine.data import Dataset
from outreach.engine.decisions import Decision, decide
from outreach.errors import OutreachError

log = logging.getLogger(__name__)

# (data directory, account, last contacted by another enrollment, analysis date)
GateKey = tuple[str, str, date | None, date]


@dataclass(frozen=True)
class _Entry:
    dataset: Dataset
    computed_at: datetime
    decision: Decision | None  # None: the account is no longer in the data


class GateDecisions:
    """Decisions cached by :data:`GateKey`, computed in as few engine runs as the keys allow."""

    def __init__(self, application: Application, *, max_age: timedelta, clock: Callable[[], datetime]) -> None:
        self.application = application
        self.max_age = max_age
        self.clock = clock
        self.engine_runs = 0
        self._entries: dict[GateKey, _Entry] = {}
        self._datasets: dict[str, Dataset] = {}

    def refresh(self) -> None:
        """Look at the data files again at the next use (the scheduler calls this for every claimed batch)."""
        self._datasets.clear()

    def dataset(self, data_dir: str) -> Dataset:
        """The data set in ``data_dir`` as of the last :meth:`refresh` (reloaded when a file changed)."""
        if data_dir not in self._datasets:
            self._datasets[data_dir] = self.application.dataset(Path(data_dir))
        return self._datasets[data_dir]

    def cached(self, key: GateKey) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry.computed_at > self.max_age:
            return None
        if entry.dataset is not self.dataset(key[0]):
            return None
        return entry

    def get(self, key: GateKey) -> Decision | None:
        """The decision for one key, deciding (with any other keys primed since) when it is not cached."""
        entry = self.cached(key)
        if entry is None:
            self.prime([key])
            entry = self._entries[key]
        return entry.decision

    def prime(self, keys: Iterable[GateKey]) -> None:
        """Decide every key that is not cached: one engine run per data directory and analysis date, or a few
        more when an account appears with different ``last_contacted`` dates (the engine takes one per
        account per run)."""
        groups: dict[tuple[str, date], dict[str, set[date | None]]] = defaultdict(lambda: defaultdict(set))
        for key in set(keys):
            if self.cached(key) is None:
                data_dir, account_id, contacted, as_of = key
                groups[(data_dir, as_of)][account_id].add(contacted)
        for (data_dir, as_of), wanted in groups.items():
            if len(groups) > 1:
                try:  # one unreadable data directory must not stop the batch's other accounts
                    self._decide(data_dir, as_of, wanted)
                except OutreachError as error:
                    log.warning("gate decisions for %s: %s", data_dir, error.message)
            else:
                self._decide(data_dir, as_of, wanted)

    def _decide(self, data_dir: str, as_of: date, wanted: dict[str, set[date | None]]) -> None:
        """One data directory's missing keys: an engine run per round of distinct accounts."""
        dataset = self.dataset(data_dir)
        rules = self.application.rules(dataset)
        known = {account.account_id for account in dataset.accounts}
        now = self.clock()
        rounds: list[dict[str, date | None]] = []
        for account_id, dates in wanted.items():
            if account_id not in known:
                for contacted in dates:
                    self._entries[(data_dir, account_id, contacted, as_of)] = _Entry(dataset, now, None)
                continue
            for index, contacted in enumerate(sorted(dates, key=lambda d: (d is not None, d))):
                if index == len(rounds):
                    rounds.append({})
                rounds[index][account_id] = contacted
        for accounts in rounds:
            contacted_on = {account_id: day for account_id, day in accounts.items() if day is not None}
            decisions = decide(dataset, rules, as_of, last_contacted=contacted_on or None,
                               account_ids=set(accounts))
            self.engine_runs += 1
            for decision in decisions:
                key = (data_dir, decision.account_id, accounts[decision.account_id], as_of)
                self._entries[key] = _Entry(dataset, now, decision)


    def forget_stale(self) -> None:
        """Drop entries past their age (called once per pass, so a long-running worker stays small)."""
        now = self.clock()
        for key in [k for k, e in self._entries.items() if now - e.computed_at > self.max_age]:
            del self._entries[key]
