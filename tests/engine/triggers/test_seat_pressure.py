"""seat_pressure: seats at the cap, or users removed to make room for new invites: people wait for access or lose
theirs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, kinds, signals_of

CASES: list[StatementCase] = [
    (
        "seat_pressure",
        "seats",
        {"seats_used": 19, "seats": 20, "pct": 95, "swaps": 2},
        30,
        "has 19 of 20 seats in use and removed users to make room for new invites twice in the last 30 days",
        1.0556,
    ),
    (
        "seat_pressure",
        "seats",
        {"swaps": 3, "window_days": 30, "seats": 20},
        30,
        "removed users to make room for new invites 3 times in the last 30 days",
        1.5,
    ),
    (
        "seat_pressure",
        "seats",
        {"seats_used": 18.5, "seats": 20, "pct": 92},
        30,
        "has 18.5 of 20 seats in use",
        1.0222,
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_seat_pressure_from_usage(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", seats_purchased=20).active("acme")
    datadir.event("acme", "Usage Reported", 1, metric="seats", used=19)
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "seat_pressure"
    assert signal.figures == {"seats_used": 19, "seats": 20, "pct": 95}


def test_seats_between_80_and_90_percent_are_usage_near_limit(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", seats_purchased=20).active("acme")
    datadir.event("acme", "Usage Reported", 1, metric="seats", used=17)
    assert kinds(signals_of(datadir, tmp_path)) == ["usage_near_limit"]


def test_seat_pressure_from_removals_to_make_room(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (5, 12):
        datadir.event("acme", "User Removed", days)
        datadir.event("acme", "User Invited", days - 0.5)
    datadir.event("acme", "User Removed", 20)  # no invite after it: not a swap
    [signal] = signals_of(datadir, tmp_path)
    assert signal.kind == "seat_pressure" and signal.figures["swaps"] == 2
