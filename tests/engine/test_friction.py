"""Friction statements and strengths, computed in DuckDB from ``signal_rows``.

Each kind's exact sentences are tested with its trigger (tests/engine/triggers/test_<kind>.py); the expected
sentences were produced by the Python statement builder this SQL replaced: every figure in a sentence comes
from the signal's figures, and numbers of 10,000 or more are grouped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from outreach.engine.friction import frictions
from outreach.engine.rules import load_rules
from outreach.engine.triggers.registry import BUILTIN
from outreach.engine.triggers.spec import TriggerSpec
from tests.engine.triggers.helpers import CATALOG, signal_table, worded


@pytest.mark.parametrize("spec", BUILTIN, ids=lambda spec: spec.kind)
def test_each_trigger_example_is_worded_as_its_spec_says(spec: TriggerSpec[Any]) -> None:
    example = spec.example
    friction = worded(spec.kind, example.subject, example.figures, example.window_days)
    assert (friction["statement"], friction["strength"]) == (example.statement, example.strength)


def test_frictions_are_ranked_strongest_first_then_by_kind_and_subject() -> None:
    con = signal_table(
        [
            ("acme", "strong_nps", "nps", {"nps": 9}, None),
            ("acme", "locked_feature", "sso", {"feature": "sso", "clicks": 3, "window_days": 30}, 30),
            (
                "acme",
                "repeated_limit_hits",
                "reports",
                {"limit": "reports", "hits": 6, "window_days": 30},
                30,
            ),
            (
                "acme",
                "locked_feature",
                "audit_log",
                {"feature": "audit_log", "clicks": 3, "window_days": 30},
                30,
            ),
            ("beta", "strong_nps", "nps", {"nps": 10}, None),
        ]
    )
    found = frictions(con, CATALOG, load_rules())
    assert [(f["kind"], f["subject"]) for f in found["acme"]] == [
        ("repeated_limit_hits", "reports"),
        ("locked_feature", "audit_log"),
        ("locked_feature", "sso"),
        ("strong_nps", "nps"),
    ]
    assert [f["statement"] for f in found["beta"]] == ["gave an NPS score of 10"]


def test_rule_thresholds_scale_strength(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("triggers:\n  repeated_limit_hits:\n    min_hits: 2\n")
    con = signal_table([("acme", "repeated_limit_hits", "reports", {"limit": "reports", "hits": 3}, 30)])
    [friction] = frictions(con, CATALOG, load_rules(rules_file))["acme"]
    assert friction["strength"] == 1.5  # 3 hits against a threshold of 2
