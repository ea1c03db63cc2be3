"""What every trigger shares: windows, disabled kinds, configurable thresholds and event names, and one statement
per kind. Each trigger's own firing rules are tested in tests/engine/triggers/test_<kind>.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.engine.data import load_dataset
from outreach.engine.decisions import decide, rules_for
from outreach.engine.triggers.detection import detect_signals
from outreach.engine.triggers.registry import builtin_kinds
from tests.datadir import AS_OF, DataDir
from tests.engine.triggers.helpers import signals_of

SIGNAL_KINDS = builtin_kinds()


def test_quiet_healthy_account_fires_nothing(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    assert signals_of(datadir, tmp_path) == []


def test_events_on_or_after_as_of_are_ignored(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (-1, -2, -3):
        datadir.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
    assert signals_of(datadir, tmp_path) == []


def test_disabled_trigger_does_not_fire(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=10).active("acme")
    root = datadir.write(tmp_path / "data")
    (root / "rules.yaml").write_text("triggers:\n  disabled: [strong_nps]\n")
    dataset = load_dataset(root)
    assert detect_signals(dataset, rules_for(dataset), AS_OF)["acme"].signals == []


def test_thresholds_are_configurable(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in range(5):
        datadir.event("acme", "Export Created", days + 0.5, format="csv", rows=1)
    root = datadir.write(tmp_path / "data")
    (root / "rules.yaml").write_text("triggers:\n  frequent_exports: {min_exports: 5}\n")
    dataset = load_dataset(root)
    [signal] = detect_signals(dataset, rules_for(dataset), AS_OF)["acme"].signals
    assert signal.kind == "frequent_exports"


def test_custom_event_names(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (1, 2, 3):
        datadir.event("acme", "Quota Hit", days, limit="reports", used=50, cap=50)
    root = datadir.write(tmp_path / "data")
    (root / "rules.yaml").write_text("events:\n  limit_reached: Quota Hit\n")
    dataset = load_dataset(root)
    [signal] = detect_signals(dataset, rules_for(dataset), AS_OF)["acme"].signals
    assert signal.kind == "repeated_limit_hits"


@pytest.mark.parametrize("kind", SIGNAL_KINDS)
def test_every_kind_has_a_motion_and_statement(kind: str, datadir: DataDir, tmp_path: Path) -> None:
    """Smoke check over the vocabulary: a decision for each kind words it without leftovers."""
    datadir.account("acme", nps=10, employees_at_contract=10, employees_now=20, seats_purchased=20).active(
        "acme"
    )
    for days in (1, 2, 3):
        datadir.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
        datadir.event("acme", "Locked Feature Clicked", days, feature="sso")
        datadir.event("acme", "Page Viewed", days, addon="warehouse-sync")
        datadir.event("acme", "Workflow Abandoned", days, workflow="report_builder", step="share")
        datadir.ticket("acme", days, "Viewer permissions", tags=["permissions"])
    datadir.event("acme", "Usage Reported", 1, metric="seats", used=19)
    datadir.event("acme", "Usage Reported", 1, metric="storage_gb", used=45)
    datadir.event("acme", "Integration Requested", 1, integration="salesforce")
    datadir.event("acme", "User Invited", 100, department="Sales")
    datadir.event("acme", "User Invited", 2, department="Finance")
    for day in range(8):
        datadir.event("acme", "Export Created", day + 0.2, rows=10)
    dataset = load_dataset(datadir.write(tmp_path / "data"))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    found = {f.kind: f for f in decision.frictions}
    assert set(found) == set(SIGNAL_KINDS)
    friction = found[kind]  # type: ignore[index]
    assert friction.statement and "{" not in friction.statement and "None" not in friction.statement
