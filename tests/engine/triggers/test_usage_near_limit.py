"""usage_near_limit: the latest usage snapshot of a metric is close to the plan's limit: the cap is about to get
in the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of

CASES: list[StatementCase] = [
    (
        "usage_near_limit",
        "storage_gb",
        {"metric": "storage_gb", "used": 12.5, "cap": 15, "pct": 83},
        30,
        "is using 12.5 of 15 storage gb allowed by the plan (83%)",
        0.9338,
    ),
    (
        "usage_near_limit",
        "api_calls",
        {"metric": "api_calls", "used": 12345.67, "cap": 15000, "pct": 82},
        30,
        "is using 12,345.67 of 15,000 api calls allowed by the plan (82%)",
        0.9225,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_usage_near_limit_uses_latest_snapshot(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "Usage Reported", 20, metric="storage_gb", used=20)
    latest = datadir.event("acme", "Usage Reported", 2, metric="storage_gb", used=42)
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "usage_near_limit"
    assert signal.figures == {"metric": "storage_gb", "used": 42, "cap": 50, "pct": 84}
    assert signal.evidence == [latest]


def test_usage_below_threshold_and_stale_snapshots_are_ignored(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "Usage Reported", 2, metric="storage_gb", used=39)  # 78%
    datadir.event("acme", "Usage Reported", 45, metric="api_calls", used=99000)  # stale
    assert signals_of(datadir, tmp_path) == []
