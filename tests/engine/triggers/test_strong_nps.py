"""strong_nps: a promoter on an activated account: a good moment to talk about the next tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datadir import DataDir
from tests.engine.triggers.helpers import StatementCase, check_statement, kinds, signals_of

CASES: list[StatementCase] = [
    ("strong_nps", "nps", {"nps": 10}, None, "gave an NPS score of 10", 0.3),
]


@pytest.mark.parametrize("case", CASES)
def test_statement_and_strength(case: StatementCase) -> None:
    check_statement(case)


def test_strong_nps_needs_activation(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=9).active("acme")
    datadir.account("beta", nps=10, activated_at="").active("beta")
    assert kinds(signals_of(datadir, tmp_path)) == ["strong_nps"]
    assert signals_of(datadir, tmp_path / "b", "beta") == []
