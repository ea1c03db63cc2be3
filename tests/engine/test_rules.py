"""The rules model is the one source of every threshold: the bundled rules.yaml writes it out exactly, and bad
rules are reported with the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from outreach import bundled
from outreach.engine.rules import Rules, load_rules
from outreach.errors import ConfigError, DataError


def test_bundled_rules_yaml_holds_every_rule_with_its_default() -> None:
    written = yaml.safe_load(bundled.RULES.read_text(encoding="utf-8"))
    assert written == Rules().model_dump(mode="json")


def test_bundled_rules_yaml_loads_to_the_defaults() -> None:
    assert load_rules(bundled.RULES) == Rules()


def test_bundled_rules_yaml_links_to_docs_that_exist() -> None:
    text = bundled.RULES.read_text(encoding="utf-8")
    root = bundled.RULES.parents[2]
    for link in {word.rstrip(".,;:)") for word in text.split() if word.startswith("docs/")}:
        assert (root / link).exists(), link


def _write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unknown_disabled_kind_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "gate:\n  onboarding_days: 30\ntriggers:\n  disabled: [strong_nps, strong_nsp]\n")
    with pytest.raises(DataError) as raised:
        load_rules(path)
    error = raised.value
    assert (error.line, error.field) == (4, "triggers.disabled.1")
    assert error.message == (
        f"{path}:4: field 'triggers.disabled.1': unknown trigger kind 'strong_nsp' (did you mean 'strong_nps'?)"
    )
    assert error.hint is not None and "strong_nps" in error.hint and error.exit_code == 2


def test_disabled_may_name_a_custom_trigger_defined_in_another_file(tmp_path: Path) -> None:
    first = _write(tmp_path, CUSTOM, "a.yaml")
    second = _write(tmp_path, "triggers:\n  disabled: [reports_shared]\n", "b.yaml")
    assert load_rules(first, second).triggers.disabled == ["reports_shared"]


CUSTOM = """\
custom_triggers:
  reports_shared:
    motion: cross_sell
    event: Report Shared
    where: {channel: email}
    at_least: 5
    window_days: 30
    statement: "shared {count} reports by email in the last {window_days} days"
"""


def test_custom_trigger_loads_with_defaults(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, CUSTOM))
    trigger = rules.custom_triggers["reports_shared"]
    assert (trigger.sum_of, trigger.weight, trigger.plan_limit) == (None, 0.7, None)
    assert rules.trigger_kinds()[-1] == "reports_shared"
    spec, settings = rules.enabled_triggers()[-1]
    assert spec.kind == "reports_shared" and settings is trigger and spec.problems(settings) == []
    assert spec.example.statement == "shared 5 reports by email in the last 30 days"


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("shared {reports} reports", "unknown placeholder {reports}; use {count}, {window_days}"),
        ("summed {sum} rows", "unknown placeholder {sum}"),
        ("shared {count.__class__} reports", "unknown placeholder {count.__class__}"),
        ("shared {count:>10} reports", "{count}: format specs and conversions are not supported"),
        ("shared {count!r} reports", "{count}: format specs and conversions are not supported"),
        ("shared {count reports", "write {{ and }} for a literal brace"),
    ],
)
def test_custom_statement_placeholders_are_checked_at_load_time(
    tmp_path: Path, statement: str, problem: str
) -> None:
    text = CUSTOM.replace('"shared {count} reports by email in the last {window_days} days"', repr(statement))
    with pytest.raises(DataError) as raised:
        load_rules(_write(tmp_path, text))
    assert (raised.value.line, raised.value.field) == (8, "custom_triggers.reports_shared.statement")
    assert problem in raised.value.problem


def test_sum_placeholder_needs_sum_of(tmp_path: Path) -> None:
    text = CUSTOM.replace("at_least: 5", "at_least: 5000\n    sum_of: rows").replace("{count}", "{sum}")
    trigger = load_rules(_write(tmp_path, text)).custom_triggers["reports_shared"]
    assert trigger.sum_of == "rows" and trigger.value_figure == "sum"


@pytest.mark.parametrize(
    ("replace", "line", "field", "problem"),
    [
        (("motion: cross_sell", "motion: upsell_ish"), 3, "custom_triggers.reports_shared.motion", "Input should be"),
        (("at_least: 5", "at_least: 0"), 6, "custom_triggers.reports_shared.at_least", "greater than 0"),
        (("where: {channel: email}", "where: {channel: []}"), 5, "custom_triggers.reports_shared.where",
         "an empty list matches no event"),
        (("where: {channel: email}", "where: {$.x: 1}"), 5, "custom_triggers.reports_shared.where",
         "is not a property name"),
        (("window_days: 30", "window_days: 30\n    plan_limit: reports"), 8,
         "custom_triggers.reports_shared.plan_limit", "plan_limit needs motion: upsell"),
        (("reports_shared:", "Reports Shared:"), 2, "custom_triggers.Reports Shared", "is not a snake_case name"),
        (("reports_shared:", "strong_nps:"), 2, "custom_triggers.strong_nps", "is a built-in trigger"),
        (("window_days: 30", "window_days: 30\n    colour: blue"), 8, "custom_triggers.reports_shared.colour",
         "unknown field"),
    ],
)
def test_bad_custom_trigger_is_reported_with_its_line(
    tmp_path: Path, replace: tuple[str, str], line: int, field: str, problem: str
) -> None:
    with pytest.raises(DataError) as raised:
        load_rules(_write(tmp_path, CUSTOM.replace(*replace)))
    assert (raised.value.line, raised.value.field) == (line, field)
    assert problem in raised.value.problem


def test_a_later_file_replaces_a_custom_trigger_whole(tmp_path: Path) -> None:
    first = _write(tmp_path, CUSTOM, "a.yaml")
    second = _write(tmp_path, CUSTOM.replace("at_least: 5", "at_least: 9").replace("    where: {channel: email}\n", ""),
                    "b.yaml")
    trigger = load_rules(first, second).custom_triggers["reports_shared"]
    assert (trigger.at_least, trigger.where) == (9, {})


def test_catalog_thresholds_reach_custom_triggers(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, CUSTOM), policy_overrides={"reports_shared.at_least": 7})
    assert rules.custom_triggers["reports_shared"].at_least == 7


def test_health_champion_days_must_be_ordered(tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        load_rules(_write(tmp_path, "health:\n  champion_recent_days: 30\n  champion_stale_days: 7\n"))
    assert "champion_stale_days must be more than champion_recent_days" in raised.value.problem


def test_a_bad_catalog_threshold_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"policy\.thresholds"):
        load_rules(policy_overrides={"nonsense.value": 1})
