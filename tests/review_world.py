"""A small, exact review-queue world for tests: real data directory → real decisions → queued drafts.

Every figure a test asserts is put into the data here. Draft texts are written by :func:`draft_text`, which
quotes the friction statement the way a model-written draft would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from outreach import db
from outreach.engine.data import Dataset, load_dataset
from outreach.engine.decisions import Decision, decide, rules_for
from outreach.review.queue import DatasetGateCheck, DraftInput, ReviewQueue, fill_from_decisions
from outreach.review.users import Principal, add_user
from tests.datadir import AS_OF, DataDir

PASSWORD = "correct horse battery"
MAYA = "maya@ledgerly.example"
SAM = "sam@ledgerly.example"
MARKETING = "mo@ledgerly.example"
ADMIN = "ada@ledgerly.example"


def postgres_url_or_skip() -> str:
    """The test Postgres URL; skips with the reason outside CI, fails under CI=true (CI must test Postgres)."""
    url = os.environ.get("OUTREACH_TEST_POSTGRES_URL")
    in_ci = os.environ.get("CI", "").lower() == "true"
    problem = None
    if not url:
        problem = "OUTREACH_TEST_POSTGRES_URL is not set"
    else:
        try:
            engine = db.make_engine(url)
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as error:  # any connection failure means "no server here"
            problem = f"PostgreSQL at {url} is not reachable ({type(error).__name__})"
    if problem:
        if in_ci:
            pytest.fail(f"{problem}; CI must run the storage and queue tests against PostgreSQL")
        pytest.skip(f"{problem}: skipping the PostgreSQL variant (set it to run against Postgres)")
    assert url is not None
    return _private_database(url)


_PRIVATE: dict[str, str] = {}


def _private_database(url: str) -> str:
    """A database of this test process's own on the same server, so concurrent runs (two checkouts, CI next
    to a developer) never drop each other's schema. Created once per process, dropped at exit."""
    if url in _PRIVATE:
        return _PRIVATE[url]
    import atexit

    from sqlalchemy.engine import make_url

    base = make_url(db.normalize_url(url))
    name = f"{base.database or 'outreach_test'}_{os.getpid()}"
    admin = db.make_engine(base.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()

    def drop() -> None:
        engine = db.make_engine(base.set(database="postgres").render_as_string(hide_password=False))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    atexit.register(drop)
    private = base.set(database=name).render_as_string(hide_password=False)
    _PRIVATE[url] = private
    return private


def reset_postgres(url: str) -> None:
    """Drop everything in the public schema so each test starts from an empty database."""
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def build_data() -> DataDir:
    data = DataDir()
    data.account("acme", name="Acme Corp", owner_email=MAYA).active("acme")
    for days in (3, 10, 25):
        data.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
    data.account("globex", name="Globex", owner_email=SAM).active("globex")
    for days in (2, 6, 12, 20):
        data.event("globex", "Limit Reached", days, limit="reports", used=50, cap=50)
    data.account("initech", name="Initech", owner_email="").active("initech")
    for days in (4, 8, 16):
        data.event("initech", "Limit Reached", days, limit="reports", used=50, cap=50)
    return data


def draft_text(decision: Decision, *, extra: str = "") -> DraftInput:
    friction = decision.primary_friction()
    assert friction is not None and decision.offer is not None
    offer = decision.offer
    return DraftInput(
        subject=f"{decision.account.name}: more room for reports",
        body=(
            f"Hi Dana,\n\nYour team {friction.statement}. {offer.name} lifts that cap for "
            f"${offer.price_monthly:,.0f}/month.{extra}\n\nMaya"
        ),
        call_to_action="Reply and I'll set up the upgrade.",
        friction_ids=[friction.id],
        offer_id=offer.id,
        template_name="upsell",
        template_version="1",
        template_hash="abc123",
        provider="offline",
        model="template",
    )


@dataclass
class ReviewWorld:
    url: str
    data_dir: Path
    dataset: Dataset
    decisions: dict[str, Decision]
    factory: sessionmaker[Session]
    queue: ReviewQueue
    users: dict[str, Principal] = field(default_factory=dict)
    draft_ids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, url: str, tmp_path: Path, data: DataDir | None = None) -> ReviewWorld:
        data = data or build_data()
        data_dir = tmp_path / "data"
        data.write(data_dir)
        dataset = load_dataset(data_dir)
        decisions = {d.account_id: d for d in decide(dataset, rules_for(dataset), AS_OF)}
        engine = db.make_engine(url)
        factory = db.session_factory(engine)
        queue = ReviewQueue(factory, gate_check=DatasetGateCheck(data_dir, AS_OF))
        world = cls(url=url, data_dir=data_dir, dataset=dataset, decisions=decisions, factory=factory, queue=queue)
        with db.transaction(factory) as session:
            for email, role in ((MAYA, "sdr"), (SAM, "sdr"), (MARKETING, "marketing"), (ADMIN, "admin")):
                world.users[role if role != "sdr" or email == MAYA else "sdr2"] = add_user(
                    session, email, role, PASSWORD
                )
            results = fill_from_decisions(
                session,
                list(decisions.values()),
                {a: draft_text(d) for a, d in decisions.items() if d.cohort == "ready"},
                dataset=dataset,
            )
        world.draft_ids = {r.account_id: r.draft_id for r in results if r.draft_id is not None}
        return world

    @property
    def maya(self) -> Principal:
        return self.users["sdr"]

    @property
    def sam(self) -> Principal:
        return self.users["sdr2"]

    @property
    def admin(self) -> Principal:
        return self.users["admin"]

    @property
    def marketing(self) -> Principal:
        return self.users["marketing"]

    def version(self, account_id: str) -> int:
        return self.queue.show(self.admin, self.draft_ids[account_id]).summary.version

    def close(self) -> None:
        bind = self.factory.kw.get("bind")
        if bind is not None:
            bind.dispose()
