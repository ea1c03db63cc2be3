"""Custom triggers: defined only in rules.yaml, they fire, are worded, offered, drafted, queued and measured by
their kind like a built-in one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from outreach.cli.main import app
from outreach.engine.data import load_dataset
from outreach.engine.decisions import decide, rules_for
from outreach.errors import DataError
from outreach.metrics.report import engine_view
from tests.datadir import AS_OF, DataDir

runner = CliRunner()

REPORTS_SHARED = """\
custom_triggers:
  reports_shared:
    motion: cross_sell
    event: Report Shared
    where: {channel: email}
    at_least: 5
    sum_of: null
    window_days: 30
    statement: "shared {count} reports by email in the last {window_days} days"
"""

SHARING_ADDON = {
    "id": "client-portal",
    "name": "Client Portal",
    "price_monthly": 89,
    "solves": ["Trigger:Reports_Shared"],  # matched case-insensitively
    "outcome": "Clients open live reports in a branded portal instead of email attachments.",
}


def _shares(data: DataDir, account_id: str, count: int, channel: str = "email", days: float = 1) -> list[str]:
    return [data.event(account_id, "Report Shared", days + i, channel=channel) for i in range(count)]


def _write(data: DataDir, tmp_path: Path, rules: str = REPORTS_SHARED) -> Path:
    root = data.write(tmp_path / "data")
    (root / "rules.yaml").write_text(rules, encoding="utf-8")
    return root


def test_custom_trigger_fires_with_figures_evidence_and_strength(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    ids = _shares(datadir, "acme", 6)
    _shares(datadir, "acme", 4, channel="slack")  # other channel: not counted
    datadir.event("acme", "Report Shared", 45, channel="email")  # outside 30 days
    datadir.event("acme", "Report Shared", -1, channel="email")  # on or after --as-of
    root = _write(datadir, tmp_path)
    dataset = load_dataset(root)
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    [friction] = decision.frictions
    assert (friction.kind, friction.motion, friction.subject) == ("reports_shared", "cross_sell", None)
    assert friction.figures == {"count": 6, "window_days": 30}
    assert friction.statement == "shared 6 reports by email in the last 30 days"
    assert friction.evidence == ids[:5]  # newest first, evidence_cap 5
    assert friction.strength == round(0.7 * 6 / 5, 4)


def test_below_at_least_it_does_not_fire(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    _shares(datadir, "acme", 4)
    dataset = load_dataset(_write(datadir, tmp_path))
    assert decide(dataset, rules_for(dataset), AS_OF)[0].frictions == []


def test_sum_of_a_property_and_where_on_numbers_booleans_and_lists(datadir: DataDir, tmp_path: Path) -> None:
    rules = """\
custom_triggers:
  rows_synced:
    motion: upsell
    event: Rows Synced
    where: {mode: [full, delta], internal: false, version: 2}
    at_least: 100000
    sum_of: rows
    window_days: 7
    statement: "synced {sum} rows in {count} runs in the last {window_days} days"
"""
    datadir.account("acme").active("acme")
    for rows in (60000, 45000.5):
        datadir.event("acme", "Rows Synced", 1, mode="full", internal=False, version=2, rows=rows)
    datadir.event("acme", "Rows Synced", 1, mode="full", internal="false", version=2, rows=90000)  # a string
    datadir.event("acme", "Rows Synced", 1, mode="other", internal=False, version=2, rows=90000)
    datadir.event("acme", "Rows Synced", 1, mode="delta", internal=False, version=3, rows=90000)
    root = _write(datadir, tmp_path, rules)
    [signal] = signals_of_root(root)
    assert signal.figures == {"count": 2, "window_days": 7, "sum": 105000.5}
    dataset = load_dataset(root)
    [friction] = decide(dataset, rules_for(dataset), AS_OF)[0].frictions
    assert friction.statement == "synced 105,000.5 rows in 2 runs in the last 7 days"


def signals_of_root(root: Path) -> list[Any]:
    from outreach.engine.triggers.detection import detect_signals

    dataset = load_dataset(root)
    return detect_signals(dataset, rules_for(dataset), AS_OF)["acme"].signals


def test_custom_trigger_is_offered_the_addon_that_solves_it(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    _shares(datadir, "acme", 6)
    datadir.catalog["addons"].append(SHARING_ADDON)
    dataset = load_dataset(_write(datadir, tmp_path))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    assert decision.cohort == "ready" and decision.offer is not None
    assert (decision.offer.id, decision.offer.friction, decision.offer.motion) == (
        "client-portal",
        "reports_shared",
        "cross_sell",
    )
    assert (decision.motion, decision.trigger) == ("cross_sell", "reports_shared")


def test_without_a_catalog_item_it_is_reported_not_skipped(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    _shares(datadir, "acme", 6)
    dataset = load_dataset(_write(datadir, tmp_path))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    assert decision.cohort == "nurture" and decision.offer is None and decision.unoffered
    [reason] = decision.gate.reasons
    assert reason.rule == "no_offer"
    assert reason.message == (
        "nothing in the catalog removes reports_shared; add a plan or add-on with solves: [trigger:reports_shared]"
    )


def test_upsell_custom_trigger_with_a_plan_limit_gets_the_plan_that_covers_it(
    datadir: DataDir, tmp_path: Path
) -> None:
    rules = """\
custom_triggers:
  dashboards_built:
    motion: upsell
    event: Dashboard Created
    at_least: 40
    window_days: 30
    plan_limit: reports
    statement: "built {count} dashboards in the last {window_days} days"
"""
    datadir.account("acme").active("acme")  # on team: reports capped at 50, business 200
    for i in range(45):
        datadir.event("acme", "Dashboard Created", 1 + i / 10)
    dataset = load_dataset(_write(datadir, tmp_path, rules))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    [friction] = decision.frictions
    assert friction.figures == {"count": 45, "window_days": 30, "metric": "reports"}
    assert decision.offer is not None and decision.offer.id == "business"  # 45 x 1.2 = 54 > 50
    assert decision.offer.rationale == "Business has a cap of 200 on reports"


def test_a_plan_that_solves_a_trigger_is_offered(datadir: DataDir, tmp_path: Path) -> None:
    rules = REPORTS_SHARED.replace("motion: cross_sell", "motion: upsell")
    datadir.account("acme").active("acme")
    _shares(datadir, "acme", 6)
    datadir.catalog["plans"][3]["solves"] = ["trigger:reports_shared"]
    dataset = load_dataset(_write(datadir, tmp_path, rules))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    assert decision.offer is not None and (decision.offer.id, decision.offer.kind) == ("enterprise", "plan")


def test_builtin_kinds_can_be_solved_by_trigger_key(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", plan="enterprise", nps=10).active("acme")  # top plan: no next tier to offer
    datadir.catalog["addons"].append({**SHARING_ADDON, "solves": ["trigger:strong_nps"]})
    dataset = load_dataset(datadir.write(tmp_path / "data"))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    assert decision.offer is not None and decision.offer.id == "client-portal"


def test_solves_match_case_insensitively(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "User Invited", 100, department="Sales")
    datadir.event("acme", "User Invited", 2, department="Finance")  # the catalog says department:finance
    dataset = load_dataset(datadir.write(tmp_path / "data"))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    assert decision.offer is not None and decision.offer.id == "guided-admin"


def test_an_unknown_trigger_in_the_catalog_is_an_error_with_its_line(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.catalog["addons"].append({**SHARING_ADDON, "solves": ["trigger:report_shared"]})
    root = _write(datadir, tmp_path)
    dataset = load_dataset(root)
    with pytest.raises(DataError) as raised:
        rules_for(dataset)
    assert raised.value.field == "addons.3.solves.0" and raised.value.line is not None
    assert "'trigger:report_shared' names no trigger (did you mean 'trigger:reports_shared'?)" in raised.value.problem
    result = runner.invoke(app, ["rules", "check", "--data", str(root)])
    assert result.exit_code == 2 and "catalog.yaml:" in result.output and "addons.3.solves.0" in result.output


def test_custom_trigger_end_to_end_draft_queue_report_and_rules_check(datadir: DataDir, tmp_path: Path) -> None:
    """The issue's must-show: defined only in rules.yaml, it fires, reaches a draft quoting its statement, is
    offered the add-on that solves it, is listed by `outreach rules check`, and is a key of the queue and metrics."""
    datadir.account("acme").active("acme")
    _shares(datadir, "acme", 6)
    datadir.catalog["addons"].append(SHARING_ADDON)
    root = _write(datadir, tmp_path)

    check = runner.invoke(app, ["rules", "check", "--data", str(root), "--json"])
    assert check.exit_code == 0, check.output
    listed = {row["kind"]: row for row in json.loads(check.output)}
    assert listed["reports_shared"]["source"] == str(root / "rules.yaml")
    assert listed["reports_shared"]["fires_when"] == "`Report Shared` with `channel` = email ≥ 5 times in 30 days"
    assert len(listed) == 13

    out = tmp_path / "drafts.jsonl"
    args = ["draft", "--data", str(root), "--as-of", AS_OF.isoformat(), "--provider", "offline", "--out", str(out)]
    drafted = runner.invoke(app, args)
    assert drafted.exit_code == 0, drafted.output
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["offer"]["id"] == "client-portal" and record["status"] == "ok", record["issues"]
    draft = record["draft"]
    assert "Your team shared 6 reports by email in the last 30 days." in draft["body"]
    assert draft["subject"] == "Shared 6 reports by email in the last 30 days"
    assert "Client Portal" in draft["body"]

    queued = runner.invoke(app, ["queue", "list", "--trigger", "reports_shared", "--json"])
    assert queued.exit_code == 0, queued.output
    assert "acme" in queued.output

    triggered = engine_view(root, AS_OF).triggered
    assert [(t.account_id, t.motion, t.trigger) for t in triggered] == [("acme", "cross_sell", "reports_shared")]


def test_draft_summary_names_accounts_without_an_offer(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    _shares(datadir, "acme", 6)
    root = _write(datadir, tmp_path)
    args = ["draft", "--data", str(root), "--as-of", AS_OF.isoformat(), "--provider", "offline", "--no-queue",
            "--out", str(tmp_path / "d.jsonl")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 triggered account not drafted: nothing in the catalog removes its friction (acme)" in " ".join(
        result.output.split()
    )
