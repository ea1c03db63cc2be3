"""locked_feature: a feature of a higher plan clicked again and again: the team wants to use it for real work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of

CASES: list[StatementCase] = [
    (
        "locked_feature",
        "sso",
        {"feature": "sso", "clicks": 4, "window_days": 30},
        30,
        "clicked the locked SSO feature 4 times in the last 30 days",
        1.0667,
    ),
    (
        "locked_feature",
        "custom_roles",
        {"feature": "custom_roles", "clicks": 2, "window_days": 30},
        30,
        "clicked the locked custom roles feature twice in the last 30 days",
        0.5333,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_locked_feature(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (1, 2, 3, 4):
        datadir.event("acme", "Locked Feature Clicked", days, feature="sso")
    datadir.event("acme", "Locked Feature Clicked", 2, feature="audit_log")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "locked_feature" and signal.subject == "sso" and signal.figures["clicks"] == 4
