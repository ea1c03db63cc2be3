"""new_department: invites from a department the account has not had before: a new team, maybe a new budget line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of

CASES: list[StatementCase] = [
    (
        "new_department",
        "sales_ops",
        {"department": "sales_ops", "invites": 1, "window_days": 30},
        30,
        "invited 1 user from Sales Ops, a department new to the account, in the last 30 days",
        0.5,
    ),
    (
        "new_department",
        "Finance",
        {"department": "Finance", "invites": 3, "window_days": 30},
        30,
        "invited 3 users from Finance, a department new to the account, in the last 30 days",
        1.5,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_new_department(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "User Invited", 200, department="Marketing")
    datadir.event("acme", "User Invited", 5, department="Marketing")  # known department
    datadir.event("acme", "User Invited", 4, department="Finance")
    datadir.event("acme", "User Invited", 3, department="Finance")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "new_department" and signal.figures == {
        "department": "Finance",
        "invites": 2,
        "window_days": 30,
    }


def test_first_ever_invites_are_not_a_new_department(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "User Invited", 4, department="Finance")
    assert signals_of(datadir, tmp_path) == []
