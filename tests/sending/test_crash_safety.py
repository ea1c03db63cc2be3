"""Crash safety with real worker processes: SIGKILL at arbitrary moments and exactly between the transport's
answer and recording it, over the outbox transport and over SMTP into a real server (aiosmtpd); four workers
on PostgreSQL (SKIP LOCKED) share the load without a duplicate; a slow batch is never taken over under a
live worker (per-message leases).

Each worker is ``python -m tests.sendload`` (a separate OS process running the library's scheduler on a fixed
fake clock). "Exactly once" is checked where it matters: in what the SMTP server received (or one ``.eml`` per
idempotency key in the outbox directory: a double send would leave two, each file has a random suffix) and one
``sent`` outbox row per enrollment. Only the message a worker was handing over when it died can be in doubt:
the outbox transport resolves it by itself, SMTP holds it for a person, who checks and releases it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from outreach import db
from outreach.sending.scheduler import FakeClock, Scheduler, build_scheduler
from outreach.sending.tables import EnrollmentRow, OutboxRow
from outreach.sending.transports import OutboxTransport
from outreach.settings import Settings
from tests.review_world import postgres_url_or_skip, reset_postgres
from tests.sendload import NOW, eml_counts, populate
from tests.smtpsink import Sink

ROOT = Path(__file__).resolve().parents[2]


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.sendload", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 180) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"worker exited ({process.returncode}) before {what}: {process.stderr.read()[-3000:]}"
                        if process.stderr else f"worker exited before {what}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    process.communicate()


def outbox_state(url: str) -> tuple[dict[str, int], dict[str, int], int]:
    """(outbox rows by state, enrollments by status, largest number of outbox rows for one key)."""
    engine = db.make_engine(url)
    try:
        with db.session_factory(engine)() as session:
            states = dict(session.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)).all())
            statuses = dict(session.execute(select(EnrollmentRow.status, func.count())
                                            .group_by(EnrollmentRow.status)).all())
            per_key = session.scalar(select(func.max(select(func.count()).select_from(OutboxRow)
                                                     .group_by(OutboxRow.idempotency_key).subquery().c[0])))
    finally:
        engine.dispose()
    return states, statuses, int(per_key or 0)


def in_doubt(url: str) -> list[tuple[int, str]]:
    """(enrollment, idempotency key) of every send held with an unknown outcome."""
    engine = db.make_engine(url)
    try:
        with db.session_factory(engine)() as session:
            return [(r.enrollment_id, r.idempotency_key) for r in session.scalars(
                select(OutboxRow).where(OutboxRow.state == "unknown").order_by(OutboxRow.id))]
    finally:
        engine.dispose()


def assert_sent_once_each(url: str, count: int) -> None:
    states, statuses, per_key = outbox_state(url)
    assert states == {"sent": count} and per_key == 1
    assert statuses == {"completed": count}


def settings_of(env: dict[str, str]) -> Settings:
    values = {k.removeprefix("OUTREACH_").lower(): v for k, v in env.items() if k.startswith("OUTREACH_")}
    return Settings(**values)  # type: ignore[arg-type]


def test_sigkill_with_the_outbox_transport_is_repaired_without_a_person(tmp_path: Path) -> None:
    count = 400
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    env = populate(url, tmp_path, count)
    outbox = tmp_path / "outbox"

    # 1. Killed at an arbitrary moment, somewhere in the middle of a batch.
    worker = start_worker(env)
    wait_for(lambda: len(list(outbox.glob("*.eml"))) >= 110, worker, "110 sends")
    kill(worker)

    # 2. Killed exactly between handing a message to the transport and recording it.
    marker = tmp_path / "crashed"
    worker = start_worker(env, "--recover-all", "--crash-after", "60", str(marker))
    wait_for(marker.exists, worker, "the crash point")
    kill(worker)
    states, statuses, _ = outbox_state(url)
    assert eml_counts(outbox)[marker.read_text(encoding="utf-8")] == 1  # handed over, not recorded …
    assert states["sending"] == statuses["sending"] == 1  # … and the only message in flight: the rest of its
    assert statuses["active"] > 0  # claimed batch was never marked sending, it is simply due again

    # 3. Restarted: the file is there, so the send is recorded; everything else goes out once.
    result = finish(start_worker(env, "--recover-all"))
    assert result["recovered"] >= 1 and result["held"] == 0 and result["exited"] == 0
    files = eml_counts(outbox)
    assert len(files) == count and max(files.values()) == 1 and not list(outbox.glob("*.part"))
    assert_sent_once_each(url, count)


def test_kill_9_again_and_again_over_2000_smtp_sends(tmp_path: Path) -> None:
    """The must-show: 0 duplicates, 0 lost, at most one message held per kill (the one being handed over)."""
    count = 2000
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    sink = Sink().start()
    try:
        env = populate(url, tmp_path, count) | sink.env()
        kills = 0
        for target in (120, 480, 830, 1170):  # arbitrary moments, mid-batch
            worker = start_worker(env, "--recover-all")
            wait_for(lambda at=target: sink.count() >= at, worker, f"{target} messages")  # type: ignore[misc]
            kill(worker)
            kills += 1
            states, statuses, _ = outbox_state(url)
            assert states.get("sending", 0) <= 1 and statuses.get("sending", 0) <= 1
        marker = tmp_path / "crashed"  # and exactly after the relay said 250, before it was recorded
        worker = start_worker(env, "--recover-all", "--crash-after", "150", str(marker))
        wait_for(marker.exists, worker, "the crash point")
        kill(worker)
        kills += 1
        assert outbox_state(url)[0]["sending"] == 1

        result = finish(start_worker(env, "--recover-all"))
        assert result["exited"] == 0
        doubtful = in_doubt(url)
        received = sink.keys()
        assert 1 <= len(doubtful) <= kills, doubtful  # at most one per kill, and the last one surely
        assert max(received.values()) == 1  # 0 duplicates so far
        assert len(received) + sum(1 for _, key in doubtful if key not in received) == count  # 0 lost

        # A person checks the relay's log for each message in doubt and says what happened.
        # On the workers' clock: a release due "now" by the wall clock would wait weeks on theirs.
        scheduler = build_scheduler(settings_of(env), clock=FakeClock(NOW))
        for enrollment_id, key in doubtful:
            scheduler.release(enrollment_id, actor="ops@ledgerly.example", was_sent=key in received)
        scheduler.application.close()
        finish(start_worker(env))
        assert sink.keys() == {f"enr{i}-step0": 1 for i in range(1, count + 1)}
        assert_sent_once_each(url, count)
    finally:
        sink.stop()


def test_four_workers_on_postgres_skip_locked_send_each_step_once(tmp_path: Path) -> None:
    count = 400
    url = postgres_url_or_skip()
    reset_postgres(url)
    try:
        env = populate(url, tmp_path, count)
        env["OUTREACH_WORKER_BATCH_SIZE"] = "25"  # small claims, so the workers interleave
        go = tmp_path / "go"
        workers = [start_worker(env, "--go", str(go)) for _ in range(4)]
        wait_for(lambda: len(list(tmp_path.glob("go.*.ready"))) == 4, workers[0], "four ready workers")
        go.touch()
        results = [finish(w) for w in workers]
        assert sum(r["sent"] for r in results) == count
        assert sum(1 for r in results if r["sent"] > 0) >= 2, results  # the load really was shared
        files = eml_counts(tmp_path / "outbox")
        assert len(files) == count and max(files.values()) == 1
        assert_sent_once_each(url, count)
    finally:
        reset_postgres(url)


def test_a_slow_batch_is_never_taken_over_under_a_live_worker(tmp_path: Path) -> None:
    """Per-message leases: worker A's relay takes 400 s per message. While A hands over its second message,
    worker B runs a pass: it must leave that message alone (its own lease is fresh) and may take only the steps
    A claimed but has not started (their claim ran out); A then skips those. Each step goes out once."""
    url = f"sqlite:///{tmp_path / 'slow.db'}"
    settings = settings_of(populate(url, tmp_path, 6))
    clock = FakeClock(NOW)
    outbox = OutboxTransport(tmp_path / "outbox")
    worker_b = build_scheduler(settings, clock=clock, transport=outbox)
    b_passes = []

    class SlowRelay:
        name = "outbox"

        def send(self, key: str, message: EmailMessage) -> None:
            outbox.send(key, message)
            clock.advance(timedelta(seconds=400))
            b_passes.append(worker_b.tick())  # meanwhile, another worker

        def delivered(self, key: str) -> bool | None:
            return outbox.delivered(key)

    worker_a: Scheduler = build_scheduler(settings, clock=clock, transport=SlowRelay())
    a_pass = worker_a.tick()
    assert a_pass.count("sent") == 2 and [p.count("sent") for p in b_passes] == [0, 4]
    assert not any(o.kind in ("held", "recovered") for p in [a_pass, *b_passes] for o in p.outcomes)
    files = eml_counts(tmp_path / "outbox")
    assert len(files) == 6 and max(files.values()) == 1
    assert_sent_once_each(url, 6)
    worker_a.application.close()
    worker_b.application.close()
