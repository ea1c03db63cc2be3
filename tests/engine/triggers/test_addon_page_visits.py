"""addon_page_visits: repeated visits to the page of an add-on the account does not own: the team is weighing it
up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, signals_of

CASES: list[StatementCase] = [
    (
        "addon_page_visits",
        "hubspot-sync",
        {"addon": "hubspot-sync", "visits": 5, "window_days": 30},
        30,
        "viewed the HubSpot Sync page 5 times in the last 30 days",
        1.0,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_addon_page_visits_ignore_owned_addons(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.account("beta", addons="warehouse-sync").active("beta")
    for account in ("acme", "beta"):
        for days in (1, 4, 9):
            datadir.event(account, "Page Viewed", days, name="Warehouse Sync", addon="warehouse-sync")
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "addon_page_visits" and signal.figures["visits"] == 3
    assert signals_of(datadir, tmp_path / "b", "beta") == []
