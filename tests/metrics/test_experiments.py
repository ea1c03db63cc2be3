"""A/B tests: deterministic assignment, weights, the control group never contacted, per-version results."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach import bundled, db
from outreach.drafting.drafts import open_workspace, run_drafts
from outreach.drafting.providers.offline import OfflineProvider
from outreach.drafting.registry import Registry, Split
from outreach.drafting.routing import CONTROL, TrafficRouter, assign, bucket
from outreach.metrics.experiments import experiment_report, wilson
from outreach.review.queue import fill_from_decisions
from outreach.review.redraft import inputs_by_account
from tests.helpers import AS_OF, make_data_dir
from tests.tuning_helpers import Seeded, copy_prompts, seed_history


def test_assignment_is_deterministic_and_follows_the_weights() -> None:
    split = Split(experiment="tone", weights={"1": 30, "2": 70}, control_pct=10)
    ids = [f"acct-{i}" for i in range(4000)]
    first = [assign(split, a) for a in ids]
    assert first == [assign(split, a) for a in ids]  # same account, same arm, every time
    assert bucket("tone", "acct-1") == bucket("tone", "acct-1") != bucket("other", "acct-1")
    share = {arm: first.count(arm) / len(ids) for arm in (CONTROL, "1", "2")}
    assert share[CONTROL] == pytest.approx(0.10, abs=0.02)
    assert share["1"] == pytest.approx(0.27, abs=0.03) and share["2"] == pytest.approx(0.63, abs=0.03)
    # a different experiment id reshuffles accounts independently
    other = [assign(split.model_copy(update={"experiment": "tone-2"}), a) for a in ids]
    assert sum(a != b for a, b in zip(first, other, strict=True)) > 1000


def test_wilson_interval() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(8, 10) or (0, 0)
    assert low == pytest.approx(0.490, abs=0.001) and high == pytest.approx(0.943, abs=0.001)
    low, high = wilson(0, 20) or (1, 1)
    assert low == 0 and 0 < high < 0.2


def test_control_group_is_held_out_and_never_drafted(tmp_path: Path) -> None:
    prompts = copy_prompts(tmp_path / "prompts")
    registry = Registry.open(prompts)
    source = (prompts / "upsell.md.j2").read_text().replace("No hype", "Never any hype")
    registry.save("upsell", source, note="v2")
    data = make_data_dir(tmp_path / "data")
    baseline = open_workspace(data, AS_OF, prompts_dir=prompts)
    ready = {d.account_id for d in baseline.decisions if d.cohort == "ready"}
    assert ready
    registry.set_split("upsell", "production", Split(experiment="hype", weights={"1": 1, "2": 1}, control_pct=50))
    router = TrafficRouter.for_directory(prompts)
    assert router is not None
    held = {d.account_id for d in baseline.decisions if router.held_out(d.account)}
    assert held & ready and ready - held  # some ready accounts are held out, some are not
    workspace = open_workspace(data, AS_OF, prompts_dir=prompts)
    for decision in workspace.decisions:
        if decision.account_id in held:
            assert decision.cohort != "ready"
            assert any(reason.rule == "held_out" for reason in decision.gate.reasons)
    records, _ = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
    assert not {r.account_id for r in records} & held
    # the queue skips gated decisions too: a held-out account cannot be queued, so it is never sent
    url = f"sqlite:///{tmp_path / 'q.db'}"
    db.upgrade(url)
    with db.transaction(db.session_factory(db.make_engine(url))) as session:
        results = fill_from_decisions(session, workspace.decisions, inputs_by_account(records))
    assert not {r.account_id for r in results if r.outcome == "created"} & held
    # arms: every drafted upsell used the version its account is assigned to
    for record in records:
        if record.template == "upsell":
            assert record.template_version == router.arm("upsell", record.account_id)


def test_results_per_version_from_the_queue(sqlite_url: str) -> None:
    history = (
        [Seeded("1", "approved")] * 6 + [Seeded("1", "approved", edit=("today", "when you are ready"))] * 2
        + [Seeded("1", "rejected", reason="tone")] * 3 + [Seeded("1", "sent")] * 2
        + [Seeded("2", "approved")] * 3 + [Seeded("2", "pending")]
    )
    factory = seed_history(sqlite_url, history)
    registry = Registry.open(bundled.PROMPTS)
    report = experiment_report(factory, registry, "upsell")
    arms = {arm.version: arm for arm in report.arms}
    one, two = arms["1"], arms["2"]
    assert (one.drafts, one.approved, one.rejected, one.sent) == (13, 10, 3, 2)
    assert one.approval.successes == 10 and one.approval.trials == 13 and not one.approval.enough
    assert one.approval.text() == "not enough data yet (10/13)"
    assert one.rejection_reasons == {"tone": 3}
    assert one.mean_edit_distance is not None and one.mean_edit_distance > 0
    assert one.edited_share.successes == 2
    assert one.reply is not None and (one.reply.successes, one.reply.trials) == (0, 2)
    assert one.reply.text() == "not enough data yet (0/2)"
    assert (two.drafts, two.pending, two.approval.value) == (4, 1, 1.0)
    assert two.mean_edit_distance == 0


def test_replies_and_conversions_count_per_version(sqlite_url: str) -> None:
    """A reply or conversion recorded on a sent draft's sequence enrollment is credited to its version."""
    from datetime import datetime

    from outreach import db as outreach_db
    from outreach.review.storage import DraftRow
    from outreach.sending.tables import EnrollmentRow, MailEventRow

    factory = seed_history(sqlite_url, [Seeded("1", "sent")] * 3)
    now = datetime(2026, 11, 20, 10, 0)
    with outreach_db.transaction(factory) as session:
        drafts = session.query(DraftRow).order_by(DraftRow.id).all()
        for index, draft in enumerate(drafts):
            enrollment = EnrollmentRow(
                sequence_id="upsell", draft_id=draft.id, account_id=draft.account_id, motion="upsell",
                recipient=f"c{index}@example.com", sender="rep@vendor.example", timezone="UTC", subject="s",
                body="b", status="active", step_index=1, thread_references=[], enrolled_by="rep@vendor.example",
                enrolled_at=now, updated_at=now,
            )
            session.add(enrollment)
            session.flush()
            kinds = {0: ["reply", "conversion"], 1: ["auto_reply"]}.get(index, [])
            for kind in kinds:
                session.add(MailEventRow(
                    external_id=f"{kind}-{index}", kind=kind, account_id=draft.account_id,
                    enrollment_id=enrollment.id, detail={}, source="test", occurred_at=now, recorded_at=now,
                ))
    registry = Registry.open(bundled.PROMPTS)
    [arm] = experiment_report(factory, registry, "upsell").arms
    assert arm.reply is not None and (arm.reply.successes, arm.reply.trials) == (1, 3)  # auto-reply is no reply
    assert arm.conversion is not None and (arm.conversion.successes, arm.conversion.trials) == (1, 3)


def test_explain_and_report_hold_out_the_control_group_like_draft(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`explain` (table and --json) shows control accounts as held_out — the accounts `draft` skips — and the
    report counts the same accounts gated out under held_out."""
    import json

    from typer.testing import CliRunner

    from outreach.cli.main import app
    from outreach.metrics.report import engine_view

    prompts = copy_prompts(tmp_path / "prompts")
    registry = Registry.open(prompts)
    registry.save("upsell", (prompts / "upsell.md.j2").read_text().replace("No hype", "Never any hype"), note="v2")
    registry.set_split("upsell", "production", Split(experiment="hype", weights={"1": 1, "2": 1}, control_pct=50))
    data = make_data_dir(tmp_path / "data")
    workspace = open_workspace(data, AS_OF, prompts_dir=prompts)
    skipped = {d.account_id for d in workspace.decisions if any(r.rule == "held_out" for r in d.gate.reasons)}
    assert skipped
    monkeypatch.setenv("OUTREACH_PROMPTS_DIR", str(prompts))
    result = CliRunner().invoke(app, ["explain", "--data", str(data), "--as-of", AS_OF.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    shown = {row["account_id"] for row in json.loads(result.stdout)
             if any(reason["rule"] == "held_out" for reason in row["gate"]["reasons"])}
    assert shown == skipped
    table = CliRunner().invoke(app, ["explain", "--data", str(data), "--as-of", AS_OF.isoformat()],
                               env={"COLUMNS": "250"})
    assert table.stdout.count("held_out") >= 1
    view = engine_view(data, AS_OF, prompts_dir=prompts)
    gated = {t.account_id for t in view.triggered if "held_out" in t.gate_reasons}
    assert gated == {a for a in skipped if a in {t.account_id for t in view.triggered}} and gated
