"""Outcome records: validation, ingest from a file (mixed with mail events) and attribution edge cases."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from typer.testing import CliRunner

from outreach import db
from outreach.errors import DataError
from outreach.metrics.ingest import ingest, parse_events
from outreach.metrics.outcomes import Outcome, OutcomeEvent, Touch, attribute
from outreach.metrics.tables import OutcomeRow
from outreach.sending.engagement import MailEvent
from outreach.sending.tables import MailEventRow

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def touch(draft_id: int, offer: str, kind: str, sent: date | None, account: str = "acme") -> Touch:
    motion = "upsell" if kind in ("plan", "seat_pack") else "cross_sell"
    return Touch(draft_id, account, offer, kind, motion, "seat_pressure", "maya", "upsell@1", date(2026, 1, 1),
                 True, sent, False)


def expansion(type_: str, day: date, offer: str | None, account: str = "acme") -> Outcome:
    return Outcome(1, account, "expansion", type_, offer, 100.0, day)


def test_attribution_picks_the_touch_whose_offer_was_bought() -> None:
    plan = touch(1, "business", "plan", date(2026, 9, 1))
    addon = touch(2, "salesforce-sync", "addon", date(2026, 9, 10))
    touches = [plan, addon]
    assert attribute(expansion("upgrade", date(2026, 9, 20), "business"), touches) == plan
    assert attribute(expansion("addon_purchase", date(2026, 9, 20), "salesforce-sync"), touches) == addon
    # An offer we never pitched is organic, even with our emails in the window.
    assert attribute(expansion("addon_purchase", date(2026, 9, 20), "hubspot-sync"), touches) is None


def test_attribution_window_edges() -> None:
    sent = touch(1, "business", "plan", date(2026, 7, 1))
    assert attribute(expansion("upgrade", date(2026, 8, 30), "business"), [sent]) == sent      # day 60
    assert attribute(expansion("upgrade", date(2026, 8, 31), "business"), [sent]) is None      # day 61
    assert attribute(expansion("upgrade", date(2026, 8, 31), "business"), [sent], window_days=90) == sent
    assert attribute(expansion("upgrade", date(2026, 7, 1), "business"), [sent]) == sent       # same day
    assert attribute(expansion("upgrade", date(2026, 6, 30), "business"), [sent]) is None      # before the send


def test_attribution_needs_a_send_of_the_same_account() -> None:
    unsent = touch(1, "business", "plan", None)
    other = touch(2, "business", "plan", date(2026, 7, 1), account="globex")
    assert attribute(expansion("upgrade", date(2026, 7, 5), "business"), [unsent, other]) is None


def test_attribution_prefers_the_latest_matching_send() -> None:
    first, second = touch(1, "seats-10", "seat_pack", date(2026, 7, 1)), touch(2, "seats-10", "seat_pack",
                                                                               date(2026, 7, 20))
    assert attribute(expansion("seat_add", date(2026, 8, 1), "seats-10"), [second, first]) == second


def test_attribution_without_an_offer_id_matches_the_mechanism() -> None:
    plan = touch(1, "business", "plan", date(2026, 7, 1))
    seats = touch(2, "seats-10", "seat_pack", date(2026, 7, 2))
    assert attribute(expansion("upgrade", date(2026, 7, 9), None), [plan, seats]) == plan
    assert attribute(expansion("seat_add", date(2026, 7, 9), None), [plan, seats]) == seats
    assert attribute(expansion("addon_purchase", date(2026, 7, 9), None), [plan, seats]) is None


def test_churn_and_contraction_are_never_attributed() -> None:
    plan = touch(1, "business", "plan", date(2026, 7, 1))
    churn = Outcome(2, "acme", "churn", "churn", None, None, date(2026, 7, 10))
    downgrade = Outcome(3, "acme", "contraction", "downgrade", "business", -100.0, date(2026, 7, 10))
    assert attribute(churn, [plan]) is None and attribute(downgrade, [plan]) is None


def test_outcome_event_validation_and_signs() -> None:
    up = OutcomeEvent.model_validate({"kind": "upgrade", "account_id": "a", "occurred_at": "2026-07-01T10:00:00Z",
                                      "offer_id": "business", "mrr_delta": 400})
    assert up.occurred_at == date(2026, 7, 1) and up.signed_delta == 400 and up.mechanism == "upgrade"
    down = OutcomeEvent.model_validate({"kind": "downgrade", "account_id": "a", "date": "2026-07-02",
                                        "mrr_delta": 150})
    assert down.signed_delta == -150  # the kind gives the sign
    churn = OutcomeEvent.model_validate({"kind": "churn", "account_id": "a", "occurred_at": "2026-07-03"})
    assert churn.signed_delta is None
    generic = OutcomeEvent.model_validate({"kind": "expansion", "account_id": "a", "occurred_at": "2026-07-03",
                                           "mrr_delta": 60, "detail": {"type": "seat_add"}})
    assert generic.mechanism == "seat_add"
    for bad in ({"kind": "upgrade", "account_id": "a", "occurred_at": "2026-07-01"},
                {"kind": "seat_add", "account_id": "a", "occurred_at": "2026-07-01", "mrr_delta": -5},
                {"kind": "expansion", "account_id": "a", "occurred_at": "2026-07-01", "mrr_delta": 5},
                {"kind": "churn", "account_id": "", "occurred_at": "2026-07-01"},
                {"kind": "contraction", "account_id": "a", "occurred_at": "soon", "mrr_delta": 5}):
        with pytest.raises(ValidationError):
            OutcomeEvent.model_validate(bad)


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


ROWS: list[dict[str, object]] = [
    {"kind": "reply", "occurred_at": "2026-07-01T10:00:00Z", "email": "dana@acme.example", "account_id": "acme",
     "external_id": "mail-1"},
    {"kind": "addon_purchase", "account_id": "acme", "offer_id": "salesforce-sync", "mrr_delta": 99,
     "occurred_at": "2026-07-02", "external_id": "crm-1"},
    {"kind": "churn", "account_id": "globex", "occurred_at": "2026-07-03"},
]


def test_file_ingest_routes_outcomes_and_keeps_mail_events(db_url: str, tmp_path: Path) -> None:
    events = parse_events(_write(tmp_path / "events.jsonl", ROWS))
    assert [type(e) for e in events] == [MailEvent, OutcomeEvent, OutcomeEvent]
    factory = db.session_factory(db.make_engine(db_url))
    report = ingest(factory, events, lambda: NOW, source="file")
    assert (report.read, report.created, report.duplicates, report.outcomes) == (3, 3, 0, 2)
    assert "2 of them expansion outcomes" in report.line()
    again = ingest(factory, events, lambda: NOW, source="file")
    assert (again.created, again.duplicates, again.outcomes) == (0, 3, 0)
    with factory() as session:
        rows = list(session.scalars(select(OutcomeRow).order_by(OutcomeRow.occurred_on)))
        assert [(r.kind, r.type, r.account_id, r.offer_id, r.mrr_delta, r.occurred_on, r.source) for r in rows] == [
            ("expansion", "addon_purchase", "acme", "salesforce-sync", 99.0, date(2026, 7, 2), "file"),
            ("churn", "churn", "globex", None, None, date(2026, 7, 3), "file"),
        ]
        assert rows[0].external_id == "crm-1" and rows[1].external_id.startswith("sha256:")
        assert [r.kind for r in session.scalars(select(MailEventRow))] == ["reply"]
    bind = factory.kw["bind"]
    bind.dispose()


def test_a_bad_outcome_line_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", [ROWS[0], {"kind": "upgrade", "account_id": "acme",
                                                     "occurred_at": "2026-07-01"}])
    with pytest.raises(DataError) as error:
        parse_events(path)
    assert "bad.jsonl:2" in str(error.value) and "mrr_delta" in str(error.value)


def test_events_ingest_command_records_outcomes(sqlite_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from outreach.cli.main import app

    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(app, ["events", "ingest", str(_write(tmp_path / "e.jsonl", ROWS))])
    assert result.exit_code == 0, result.output
    assert "3 events read: 3 recorded" in result.stdout and "2 of them expansion outcomes" in result.stdout
    engine = db.make_engine(sqlite_url)
    with db.session_factory(engine)() as session:
        assert len(list(session.scalars(select(OutcomeRow)))) == 2
    engine.dispose()
