"""Every metric against hand-computed expectations on a small fixture, the NRR/GRR formula, periods, and the
report read back from a database (the seeded demo history) and through ``outreach report``."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
import typer
from typer.testing import CliRunner

from outreach import bundled
from outreach.cli.metrics import register
from outreach.errors import ConfigError
from outreach.metrics.demo_history import load_demo_history
from outreach.metrics.outcomes import Outcome, Touch
from outreach.metrics.report import Inputs, Period, Triggered, build_report, compute, nrr, parse_period
from outreach.settings import Settings

DEMO = bundled.DEMO_DATA
Q3 = Period(date(2026, 7, 1), date(2026, 9, 30), "2026-Q3")
AS_OF = date(2026, 10, 15)


def touch(draft_id: int, account: str, offer: str, kind: str, motion: str, trigger: str, owner: str, prompt: str,
          created: date, *, approved: bool = True, sent: date | None = None, replied: bool = False) -> Touch:
    return Touch(draft_id, account, offer, kind, motion, trigger, owner, prompt, created, approved, sent, replied)


def outcome(id_: int, account: str, type_: str, delta: float | None, day: date, offer: str | None = None) -> Outcome:
    kind = {"upgrade": "expansion", "seat_add": "expansion", "addon_purchase": "expansion",
            "contraction": "contraction", "downgrade": "contraction", "churn": "churn"}[type_]
    return Outcome(id_, account, kind, type_, offer, delta, day)


def fixture() -> Inputs:
    touches = [
        touch(1, "a", "business", "plan", "upsell", "seat_pressure", "maya", "upsell@1", date(2026, 7, 1),
              sent=date(2026, 7, 3), replied=True),
        touch(2, "b", "salesforce-sync", "addon", "cross_sell", "integration_request", "sam", "cross_sell@1",
              date(2026, 7, 10), sent=date(2026, 7, 12)),
        touch(3, "c", "seats-10", "seat_pack", "upsell", "seat_pressure", "maya", "upsell@2", date(2026, 8, 1)),
        touch(4, "d", "growth-bundle", "bundle", "bundle", "frequent_exports", "sam", "bundle@1", date(2026, 8, 5),
              approved=False),
        touch(5, "e", "hubspot-sync", "addon", "cross_sell", "integration_request", "maya", "cross_sell@1",
              date(2026, 6, 20), sent=date(2026, 6, 22)),
    ]
    outcomes = [
        outcome(1, "d", "contraction", -100, date(2026, 6, 10)),
        outcome(2, "a", "upgrade", 400, date(2026, 7, 23), "business"),            # touch 1, 20 days
        outcome(3, "e", "addon_purchase", 79, date(2026, 7, 10), "hubspot-sync"),   # touch 5, 18 days
        outcome(4, "f", "seat_add", 60, date(2026, 8, 15), "seats-5"),              # organic: no touch
        outcome(5, "a", "downgrade", -400, date(2026, 9, 1), "business"),           # undoes outcome 2
        outcome(6, "b", "addon_purchase", 99, date(2026, 9, 15), "salesforce-sync"),  # 65 days: organic
        outcome(7, "g", "churn", None, date(2026, 9, 20)),
        outcome(8, "c", "seat_add", 110, date(2026, 10, 5), "seats-10"),            # after the period
    ]
    triggered = [
        Triggered("a", "upsell", "seat_pressure", "maya", ()),
        Triggered("b", "cross_sell", "integration_request", "sam", ("cs_veto",)),
        Triggered("h", "upsell", "usage_near_limit", "sam", ("open_priority_ticket", "red_health")),
    ]
    baseline = {"a": 199, "b": 199, "c": 199, "d": 599, "e": 199, "f": 199, "g": 49, "h": 0}
    return Inputs(touches=touches, outcomes=outcomes, triggered=triggered, baseline_mrr=baseline,
                  control_accounts={"f", "h"})


def test_funnel_totals_and_splits_match_hand_counts() -> None:
    report = compute(fixture(), Q3, AS_OF, window_days=60)
    t = report.totals
    # Journeys: drafts 1-4 have their analysis date in Q3 (draft 5 is June's), plus h, triggered and gated but not
    # drafted (a and b are triggered too, but their journeys are their drafts). 1-3 approved; 1-2 sent; 1 replied
    # and converted. Every stage is a subset of the one before.
    assert (t.triggered, t.gated_out, t.drafted, t.approved, t.sent, t.replied, t.converted) == (5, 1, 4, 3, 2, 1, 1)
    assert t.expansion_mrr == 400 and t.median_days_to_convert == 20
    assert t.gated_by_reason == {"open_priority_ticket": 1, "red_health": 1}
    assert t.conversion_rate == 0.5
    motion = {row.key: row for row in report.funnel["motion"]}
    assert set(motion) == {"upsell", "cross_sell", "bundle"}
    upsell = motion["upsell"]
    assert (upsell.triggered, upsell.gated_out, upsell.drafted, upsell.approved, upsell.sent, upsell.replied,
            upsell.converted, upsell.expansion_mrr) == (3, 1, 2, 2, 1, 1, 1, 400)  # drafts 1 and 3, and h
    cross = motion["cross_sell"]
    assert (cross.triggered, cross.gated_out, cross.drafted, cross.sent, cross.converted) == (1, 0, 1, 1, 0)
    assert cross.median_days_to_convert is None and cross.conversion_rate == 0
    assert (motion["bundle"].drafted, motion["bundle"].approved, motion["bundle"].sent) == (1, 0, 0)
    trigger = {row.key: row for row in report.funnel["trigger"]}
    assert trigger["seat_pressure"].drafted == 2 and trigger["seat_pressure"].converted == 1
    assert trigger["usage_near_limit"].triggered == 1 and trigger["usage_near_limit"].gated_by_reason == {
        "open_priority_ticket": 1, "red_health": 1}
    prompt = {row.key: row for row in report.funnel["prompt_version"]}
    assert prompt["upsell@1"].converted == 1 and prompt["upsell@2"].sent == 0
    assert prompt["upsell@1"].triggered == prompt["upsell@1"].drafted == 1  # a version row starts at its drafts
    assert (prompt["(not drafted)"].triggered, prompt["(not drafted)"].drafted) == (1, 0)
    for rows in report.funnel.values():
        for row in rows:
            assert row.triggered >= row.drafted >= row.approved >= row.sent >= row.replied
            assert row.sent >= row.converted and row.triggered >= row.gated_out
    owner = {row.key: row for row in report.funnel["owner"]}
    assert (owner["maya"].drafted, owner["maya"].expansion_mrr, owner["sam"].drafted) == (2, 400, 2)


def test_expansion_mrr_attributed_organic_and_reverts() -> None:
    report = compute(fixture(), Q3, AS_OF, window_days=60)
    assert report.attributed_mrr == 400 + 79  # outcome 3 is June's draft converting in July
    assert (report.organic.expansions, report.organic.mrr) == (2, 159)
    assert report.organic.by_motion == {"cross_sell": 99, "upsell": 60}
    reverts = {r.key: r for r in report.post_expansion}
    assert [r.key for r in report.post_expansion] == ["all", "upsell", "cross_sell", "attributed", "organic"]
    # Outcome 2 is undone within 90 days; 3 has passed 90 days; 4 and 6 are still inside their 90 days on Oct 15.
    assert (reverts["all"].expansions, reverts["all"].reverted, reverts["all"].pending) == (4, 1, 2)
    assert reverts["all"].rate == 0.5
    assert reverts["upsell"].rate == 1.0 and reverts["cross_sell"].rate == 0.0
    assert reverts["attributed"].rate == 0.5 and reverts["organic"].rate is None


def test_a_wider_window_attributes_the_late_purchase() -> None:
    report = compute(fixture(), Q3, AS_OF, window_days=70)
    assert report.attributed_mrr == 400 + 79 + 99 and report.organic.mrr == 60
    assert {r.key: r.converted for r in report.funnel["motion"]}["cross_sell"] == 1


def test_nrr_and_grr_follow_the_documented_formula() -> None:
    report = compute(fixture(), Q3, AS_OF, window_days=60)
    r = report.retention
    assert r is not None
    # Start: baseline, with d's June contraction applied; h has no MRR and is not counted.
    start = 199 + 199 + 199 + 499 + 199 + 199 + 49
    assert (r.start_mrr, r.accounts) == (start, 7)
    assert (r.expansion, r.contraction, r.churn) == (400 + 79 + 60 + 99, 400, 49)
    assert r.nrr == pytest.approx((start + 638 - 400 - 49) / start)
    # GRR caps each account's loss at its starting MRR: a's downgrade only undoes its own July upgrade (199 →
    # 599 → 199), so the one gross loss is g's churn (49).
    assert (r.lost, r.grr) == (49, pytest.approx((start - 49) / start))
    months = {p.month: p for p in report.nrr_series}
    assert list(months) == ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]
    assert months["2026-07"].nrr == pytest.approx((start + 479) / start)
    assert months["2026-05"].nrr == 1.0 and months["2026-05"].grr == 1.0


def test_nrr_leaves_new_customers_out_and_caps_grr() -> None:
    outcomes = [outcome(1, "new", "upgrade", 500, date(2026, 7, 5)), outcome(2, "x", "seat_add", 50, date(2026, 7, 6))]
    result = nrr({"x": 100, "new": 0}, outcomes, Q3)
    assert (result.start_mrr, result.expansion, result.nrr, result.grr) == (100, 50, 1.5, 1.0)
    empty = nrr({}, [], Q3)
    assert empty.nrr is None and empty.grr is None


def test_churn_without_amount_loses_what_is_left() -> None:
    outcomes = [outcome(1, "x", "seat_add", 50, date(2026, 7, 1)), outcome(2, "x", "churn", None, date(2026, 8, 1)),
                outcome(3, "x", "contraction", -500, date(2026, 9, 1))]  # nothing left to contract
    result = nrr({"x": 100}, outcomes, Q3)
    assert (result.expansion, result.churn, result.contraction) == (50, 150, 0)
    # The churn took 150, but x only started with 100: GRR 0 %, never below.
    assert result.nrr == 0 and (result.lost, result.grr) == (100, 0)


def test_lift_against_the_control_group() -> None:
    lift = compute(fixture(), Q3, AS_OF).lift
    assert lift is not None
    assert (lift.control_accounts, lift.control_expanded, lift.treated_accounts, lift.treated_expanded) == (2, 1, 2, 2)
    assert lift.lift_pp == pytest.approx(50.0)
    inputs = fixture()
    inputs.control_accounts = None
    assert compute(inputs, Q3, AS_OF).lift is None


def test_what_happens_after_as_of_is_not_known_yet() -> None:
    report = compute(fixture(), Q3, date(2026, 7, 15))
    assert report.totals.sent == 2 and report.totals.converted == 0  # outcome 2 is on Jul 23
    assert report.attributed_mrr == 79
    assert report.totals.drafted == 2  # drafts 3 and 4 are from August


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30)),
    ("2026-q1", date(2026, 1, 1), date(2026, 3, 31)),
    ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
    ("2026", date(2026, 1, 1), date(2026, 12, 31)),
])
def test_periods(text: str, start: date, end: date) -> None:
    period = parse_period(text, as_of=AS_OF)
    assert (period.start, period.end) == (start, end)


def test_period_defaults_and_errors() -> None:
    assert parse_period(None, as_of=AS_OF).label == "2026-Q4"
    custom = parse_period(None, start=date(2026, 8, 1), as_of=AS_OF)
    assert (custom.start, custom.end) == (date(2026, 8, 1), AS_OF)
    for bad in ("2026-13", "Q3", "last year"):
        with pytest.raises(ConfigError):
            parse_period(bad, as_of=AS_OF)
    with pytest.raises(ConfigError):
        parse_period("2026", start=date(2026, 1, 1), as_of=AS_OF)
    with pytest.raises(ConfigError):
        parse_period(None, start=date(2026, 9, 1), end=date(2026, 8, 1), as_of=AS_OF)


def _demo_db(db_url: str) -> Settings:
    settings = Settings(database_url=db_url)
    first = load_demo_history(settings, DEMO)
    assert (first.outcomes, first.sends) == (19, 10)
    again = load_demo_history(settings, DEMO)
    assert (again.outcomes, again.sends) == (0, 0)  # a second demo run adds nothing
    return settings


def test_report_over_the_seeded_demo_history(db_url: str) -> None:
    from outreach import db

    _demo_db(db_url)
    engine = db.make_engine(db_url)
    try:
        report = build_report(db.session_factory(engine), period=parse_period("2026", as_of=date(2026, 11, 20)),
                              as_of=date(2026, 11, 20), data_dir=DEMO, window_days=60)
    finally:
        engine.dispose()
    # Attributed: atlas 99, aurora 575, willow 39, mesa 79, hollow-creek 150, quillstone 99, thistle 400,
    # tidewater 110. Organic: riverbend 400, kestrel 299, lumen 60, granite-works 249 (bought another offer than
    # the seat pack pitched) and stonebridge 129 (78 days after the send: outside the window).
    assert report.attributed_mrr == 1551 and (report.organic.expansions, report.organic.mrr) == (5, 1137)
    assert (report.totals.drafted, report.totals.sent, report.totals.replied, report.totals.converted) == (10, 10, 7, 8)
    # 30 accounts trigger on Nov 20, 5 of them drafted this year: 10 drafted journeys + 25 undrafted ones.
    assert report.totals.triggered == 35 and report.totals.gated_out == 12
    # The starting cohort of 2026: the 30 accounts whose contract started before Jan 1 (17,767 of accounts.csv MRR;
    # no outcome predates the year). marigold-events (contract 2026-02-13) is a new customer: its churn is not in it.
    assert report.retention is not None and (report.retention.start_mrr, report.retention.accounts) == (17767, 30)
    assert report.retention.churn == 599  # riverbend-media after its upgrade (199 + 400)
    reverts = {r.key: r for r in report.post_expansion}
    assert reverts["all"].reverted == 4


def test_report_command_json_and_csv(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _demo_db(sqlite_url)
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    args = ["report", "--data", str(DEMO), "--as-of", "2026-11-20", "--period", "2026-Q3"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["period"] == "2026-Q3" and data["start"] == "2026-07-01" and data["window_days"] == 60
    assert data["attributed_mrr"] == 79 + 150  # mesa-robotics (Aug 27), hollow-creek-farms (Sep 16)
    result = runner.invoke(app, [*args, "--csv", "--window", "90"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][:3] == ["section", "dimension", "key"]
    assert ["retention", "churn", "648"] in rows  # riverbend-media (599 after its upgrade) and marigold-events (49)
    text = runner.invoke(app, [*args])
    assert text.exit_code == 0 and "NRR" in text.stdout and "Funnel by motion" in text.stdout
    bad = runner.invoke(app, ["report", "--period", "2026-Q7"])
    assert bad.exit_code == 2 and "2026-Q7" in bad.output


def test_follow_up_drafts_belong_to_their_touch(sqlite_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from outreach import db
    from outreach.metrics.report import load_touches
    from outreach.review.storage import DraftRow
    from outreach.sending.tables import EnrollmentRow, OutboxRow

    _demo_db(sqlite_url)
    engine = db.make_engine(sqlite_url)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        before = load_touches(session)
        enrollments = list(session.scalars(select(EnrollmentRow).order_by(EnrollmentRow.id)))
        first = session.get(DraftRow, enrollments[0].draft_id)
        assert first is not None
        at = datetime(2026, 11, 1, 15, tzinfo=UTC)
        followups = []
        for _ in range(2):
            row = DraftRow(account_id=first.account_id, motion=first.motion, trigger=first.trigger, status="sent",
                           owner_email=first.owner_email, as_of=at.date(), offer_id=first.offer_id, offer=first.offer,
                           health={}, gate={}, decision={}, created_at=at, updated_at=at)
            session.add(row)
            session.flush()
            followups.append(row.id)
        session.add(OutboxRow(idempotency_key="followup-test", enrollment_id=enrollments[0].id, step_index=2,
                              kind="email", state="sent", account_id=first.account_id, sender="maya@ledgerly.example",
                              recipient="x@example.com", subject="re", body="b", message_id="<f@x>",
                              draft_id=followups[0], due_at=at, created_at=at, sent_at=at))
        enrollments[1].pending_draft_id = followups[1]
    with factory() as session:
        after = load_touches(session)
    engine.dispose()
    assert len(before) == len(after) == 10  # neither the sent nor the pending follow-up is a touch of its own
    assert {t.draft_id: t.sent_on for t in after} == {t.draft_id: t.sent_on for t in before}
