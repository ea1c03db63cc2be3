"""workflow_abandoned: the same workflow abandoned again and again: something in a step stops people from
finishing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of

CASES: list[StatementCase] = [
    (
        "workflow_abandoned",
        "report_builder",
        {"workflow": "report_builder", "abandons": 3, "window_days": 30, "step": "share_link"},
        30,
        "abandoned the report builder workflow at the share link step 3 times in the last 30 days",
        0.65,
    ),
    (
        "workflow_abandoned",
        "onboarding",
        {"workflow": "onboarding", "abandons": 5, "window_days": 30},
        30,
        "abandoned the onboarding workflow 5 times in the last 30 days",
        1.0833,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_workflow_abandoned_at_same_step(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (2, 6, 11):
        datadir.event("acme", "Workflow Abandoned", days, workflow="report_builder", step="permissions")
    datadir.event("acme", "Workflow Abandoned", 3, workflow="report_builder", step="layout")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "workflow_abandoned"
    assert signal.figures == {
        "workflow": "report_builder",
        "abandons": 3,
        "window_days": 30,
        "step": "permissions",
    }
