"""The event store: files and API events stored once, read back exactly as the file reader makes them."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from outreach import bundled, db
from outreach.engine import data as data_module
from outreach.engine.data import load_dataset
from outreach.engine.decisions import explain_json, rules_for
from outreach.engine.store import EventStore
from outreach.errors import DataError, OutreachError
from outreach.integrations.intake import parse_request, store_messages
from outreach.settings import Settings
from tests.datadir import AS_OF, DataDir
from tests.review_world import postgres_url_or_skip, reset_postgres


def _explain(root: Path, store: EventStore | None = None) -> bytes:
    dataset = load_dataset(root, events=store)
    return explain_json(dataset, rules_for(dataset), AS_OF)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the bundled demo data (its events file gets a fresh path and mtime)."""
    return Path(shutil.copytree(bundled.DEMO_DATA, tmp_path / "demo"))


def _store(tmp_path: Path, url: str | None = None) -> EventStore:
    settings = Settings(home=tmp_path, database_url=url, event_store_path=tmp_path / "store" / "events.duckdb")
    if url:
        db.upgrade(url)
    engine = db.make_engine(db.database_url(settings)) if url else None
    store = EventStore.open(settings, (lambda: engine) if engine is not None else None, create=True)
    assert store is not None
    return store


def test_demo_decisions_are_byte_for_byte_the_same_from_the_store(demo: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from_file = _explain(demo)
    store = _store(tmp_path)
    report = store.load_file(demo / "events.jsonl")
    assert (report.stored, report.duplicates) == (7918, 0)
    read: list[Path | None] = []
    original = data_module._read_events
    monkeypatch.setattr(data_module, "_read_events", lambda con, path: (read.append(path), original(con, path))[1])
    assert _explain(demo, store) == from_file
    assert read == [None]  # the events file was not parsed again: the store held it
    assert store.load_file(demo / "events.jsonl").already_stored
    in_place = EventStore(store.path, in_place=True)  # one-shot commands read the file where it is
    assert _explain(demo, in_place) == from_file


def test_without_the_file_the_store_alone_gives_the_same_decisions(demo: Path, tmp_path: Path) -> None:
    from_file = _explain(demo)
    store = _store(tmp_path)
    store.load_file(demo / "events.jsonl")
    (demo / "events.jsonl").unlink()
    assert _explain(demo, store) == from_file


def test_an_unstored_file_joins_the_store_without_counting_twice(demo: Path, tmp_path: Path) -> None:
    from_file = _explain(demo)
    store = _store(tmp_path)
    store.load_file(demo / "events.jsonl")
    events = demo / "events.jsonl"
    events.write_bytes(events.read_bytes())  # same events, new mtime: no longer "held" as it is
    assert not store.holds(events)
    assert _explain(demo, store) == from_file


def test_a_file_that_grew_stores_only_its_new_lines(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    root = datadir.write(tmp_path / "data")
    events = root / "events.jsonl"
    lines = events.read_text().splitlines()
    events.write_text("\n".join(lines[:5]) + "\n")
    store = _store(tmp_path)
    assert store.load_file(events).stored == 5
    extra = json.loads(lines[5])
    del extra["messageId"]  # evidence id from its line: events.jsonl#6
    events.write_text("\n".join(lines[:5]) + "\n" + json.dumps(extra) + "\n" + "\n".join(lines[6:]) + "\n")
    report = store.load_file(events)
    assert (report.stored, report.appended_from_line) == (len(lines) - 5, 6)
    dataset = load_dataset(root, events=store)
    ids = [row[0] for row in dataset.events.execute("SELECT message_id FROM events ORDER BY line").fetchall()]
    assert ids[5] == "events.jsonl#6" and len(ids) == len(lines)


def test_a_changed_file_needs_replace(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    root = datadir.write(tmp_path / "data")
    events = root / "events.jsonl"
    store = _store(tmp_path)
    first = store.load_file(events).stored
    events.write_text("".join(events.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(OutreachError, match="changed since it was stored"):
        store.load_file(events)
    report = store.load_file(events, replace=True)
    assert (report.replaced, report.stored) == (first, first - 1)
    assert load_dataset(root, events=store).event_count == first - 1


def test_a_bad_line_is_a_file_line_error_and_nothing_is_stored(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    root = datadir.write(tmp_path / "data")
    events = root / "events.jsonl"
    lines = events.read_text().splitlines()
    lines[2] = lines[2].replace('"timestamp": "2026', '"timestamp": "yesterday')
    events.write_text("\n".join(lines) + "\n")
    store = _store(tmp_path)
    with pytest.raises(DataError) as caught:
        store.load_file(events)
    assert caught.value.message.startswith(f"{events}:3: field 'timestamp'")
    assert store.status().events == 0


def test_repeated_message_ids_are_stored_once(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    root = datadir.write(tmp_path / "data")
    events = root / "events.jsonl"
    text = events.read_text()
    events.write_text(text + text.splitlines(keepends=True)[0])
    other = tmp_path / "more.jsonl"
    other.write_text(text.splitlines(keepends=True)[1])
    store = _store(tmp_path)
    total = len(text.splitlines())
    report = store.load_file(events)
    assert (report.stored, report.duplicates) == (total, 1)
    assert store.load_file(other).duplicates == 1


def _api(store: EventStore, messages: list[dict[str, object]]) -> set[str]:
    assert store.database is not None
    now = datetime.now(UTC)
    return store_messages(store.database, parse_request({"batch": messages}, "batch", now), now).accounts


def _limit(user: str, days: float, message_id: str, **context: str) -> dict[str, object]:
    stamp = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) - timedelta(days=days)
    return {"type": "track", "event": "Limit Reached", "userId": user, "messageId": message_id,
            "timestamp": stamp.isoformat(), "properties": {"limit": "reports", "used": 50, "cap": 50},
            "context": dict(context)}


def _hits(root: Path, store: EventStore, account: str) -> int:
    rows = json.loads(_explain(root, store))
    signals = next(r for r in rows if r["account_id"] == account)["signals"]
    return next((s["figures"]["hits"] for s in signals if s["kind"] == "repeated_limit_hits"), 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_api_events_reach_runs_and_late_group_calls_place_them(backend: str, datadir: DataDir,
                                                               tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outreach.db'}" if backend == "sqlite" else postgres_url_or_skip()
    if backend == "postgres":
        reset_postgres(url)
    datadir.account("acme").active("acme")
    root = datadir.write(tmp_path / "data")
    store = _store(tmp_path, url)
    store.load_file(root / "events.jsonl")
    assert _api(store, [_limit("acme-u1", d, f"m{d}", groupId="acme") for d in (1, 2)]) == {"acme"}
    assert _hits(root, store, "acme") == 0  # two hits: not yet a trigger
    # a user no group call has placed yet: stored, counted for no account
    assert _api(store, [_limit("acme-u9", 3, "m3")]) == set()
    dataset = load_dataset(root, events=store)
    assert store.status().unresolved == 1
    # the group call places acme-u9 in acme; the earlier hit now counts (resolved in the store)
    assert _api(store, [{"type": "group", "userId": "acme-u9", "groupId": "acme", "timestamp": "2026-11-19T00:00:00Z"}])
    refresh = store.refresh(dataset.events)
    assert refresh.reload or refresh.accounts == {"acme"}
    assert _hits(root, store, "acme") == 3
    # retried messages (same messageId) are stored once, also after they moved into the file
    _api(store, [_limit("acme-u1", 1, "m1", groupId="acme")])
    assert _hits(root, store, "acme") == 3
    status = store.status()
    assert (status.unresolved, status.pending) == (0, 0)
    if backend == "postgres":
        reset_postgres(url)


def test_refresh_takes_in_only_the_new_events(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    root = datadir.write(tmp_path / "data")
    store = _store(tmp_path, f"sqlite:///{tmp_path / 'outreach.db'}")
    store.load_file(root / "events.jsonl")
    dataset = load_dataset(root, events=store)
    before = dataset.event_count
    _api(store, [_limit("acme-u1", d, f"m{d}", groupId="acme") for d in (1, 2, 3)])
    refresh = store.refresh(dataset.events)
    assert (refresh.rows, refresh.accounts, refresh.reload) == (3, {"acme"}, False)
    assert dataset.events.execute("SELECT count(*) FROM event_rows").fetchone() == (before + 3,)
    assert store.refresh(dataset.events).rows == 0


def test_postgres_store_gives_the_demo_decisions(demo: Path, tmp_path: Path) -> None:
    url = postgres_url_or_skip()
    reset_postgres(url)
    try:
        from_file = _explain(demo)
        store = _store(tmp_path, url)
        assert store.load_file(demo / "events.jsonl").stored == 7918
        (demo / "events.jsonl").unlink()
        assert _explain(demo, store) == from_file
        # another machine: no local copy yet, the same decisions from PostgreSQL
        fresh = _store(tmp_path / "other", url)
        assert _explain(demo, fresh) == from_file
    finally:
        reset_postgres(url)


def test_a_bad_number_is_named_by_its_file_line_and_stored_rows_are_not_blamed_on_the_file(
    datadir: DataDir, tmp_path: Path
) -> None:
    """With the product's own event names (rules.yaml), numbers are checked on the data directory's file rows:
    a stored event has no line in that file, so it is never reported as one."""
    from outreach.engine.decisions import decide

    datadir.account("acme").active("acme")
    root = datadir.write(tmp_path / "data")
    (root / "rules.yaml").write_text("events:\n  limit_reached: Quota Hit\n")
    elsewhere = tmp_path / "api.jsonl"
    stored = json.loads((root / "events.jsonl").read_text().splitlines()[0])
    stored |= {"messageId": "api-1", "event": "Quota Hit", "properties": {"limit": "reports", "used": -1}}
    elsewhere.write_text(json.dumps(stored) + "\n")
    store = _store(tmp_path)
    store.load_file(elsewhere)
    dataset = load_dataset(root, events=store)  # events.jsonl is not stored: read, then the store's rows join
    assert dataset.event_count == len((root / "events.jsonl").read_text().splitlines()) + 1
    decide(dataset, rules_for(dataset), AS_OF)  # the stored row is not a line of events.jsonl

    events = root / "events.jsonl"
    lines = events.read_text().splitlines()
    bad = json.loads(lines[0]) | {"messageId": "file-1", "event": "Quota Hit", "properties": {"used": -2}}
    events.write_text("\n".join([*lines, json.dumps(bad)]) + "\n")
    dataset = load_dataset(root, events=store)
    with pytest.raises(DataError) as caught:
        decide(dataset, rules_for(dataset), AS_OF)
    assert (caught.value.path, caught.value.line, caught.value.field) == (events, len(lines) + 1, "properties.used")
