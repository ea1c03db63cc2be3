"""The trigger registry: every built-in spec is complete, owns its kind, has its tests, and the docs follow it."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

import outreach
from outreach.engine.triggers import registry
from outreach.engine.triggers.registry import BUILTIN, builtin_table, solves_entry
from outreach.engine.triggers.spec import EventNames, TriggerSpec
from tests.datadir import AS_OF, DataDir

PACKAGE = Path(outreach.__file__).resolve().parent
ROOT = PACKAGE.parent
BUILTIN_DIR = PACKAGE / "engine" / "triggers" / "builtin"
SPECS = pytest.mark.parametrize("spec", BUILTIN, ids=lambda spec: spec.kind)


def test_the_registry_holds_every_builtin_module() -> None:
    modules = {path.stem for path in BUILTIN_DIR.glob("*.py") if path.stem != "__init__"}
    assert {spec.kind for spec in BUILTIN} == modules
    assert len(BUILTIN) == len(modules) == 12


@SPECS
def test_spec_is_complete(spec: TriggerSpec[Any]) -> None:
    assert spec.problems() == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"statement": " "}, "statement is empty"),
        ({"summary": "≥ {min_nothing} times"}, "summary does not format"),
        ({"figures": ()}, "figures is empty"),
        ({"offer_keys": ("topic:{nothing}",)}, "offer key 'topic:{nothing}' uses figures not listed"),
        ({"limit_figure": "nothing"}, "limit_figure 'nothing' is not one of the figures"),
        ({"kind": "Not A Kind"}, "is not snake_case"),
        ({"prepares": ("stray_table",)}, "prepare and prepares go together"),
    ],
)
def test_an_incomplete_spec_is_reported(change: dict[str, Any], problem: str) -> None:
    broken = dataclasses.replace(BUILTIN[0], **change)
    assert any(problem in found for found in broken.problems()), broken.problems()


@SPECS
def test_each_builtin_has_its_own_tests(spec: TriggerSpec[Any]) -> None:
    tests = Path(__file__).parent / f"test_{spec.kind}.py"
    assert tests.exists(), f"add {tests.relative_to(ROOT)}: firing rules and statements of {spec.kind}"
    assert "def test_statement_and_strength" in tests.read_text()


@SPECS
def test_headline_and_consequence_word_the_example(spec: TriggerSpec[Any]) -> None:
    from tests.engine.triggers.helpers import CATALOG

    signal = _signal(spec)
    headline = spec.wording.headline(signal, CATALOG)
    assert headline and "{" not in headline and "None" not in headline
    assert "{" not in spec.wording.consequence_for("Ledgerly")


def _signal(spec: TriggerSpec[Any]) -> Any:
    from outreach.engine.triggers.spec import ExampleSignal

    return ExampleSignal(spec.example.statement, spec.example.figures, spec.example.window_days)


def _library_sources() -> dict[Path, str]:
    """Every Python file of the library, the EventNames class blanked out: its keys are event names (the
    `Workflow Abandoned` event), not trigger kinds."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name == "spec.py" and path.parent.name == "triggers":
            lines = text.splitlines()
            for node in ast.parse(text).body:
                if isinstance(node, ast.ClassDef) and node.name == "EventNames":
                    for index in range(node.lineno - 1, node.end_lineno or node.lineno):
                        lines[index] = ""
            text = "\n".join(lines)
        found[path] = text
    return found


def test_each_kind_appears_in_its_own_spec_module_and_nowhere_else_in_the_library() -> None:
    sources = _library_sources()
    misplaced = {}
    for spec in BUILTIN:
        pattern = re.compile(rf"\b{re.escape(spec.kind)}\b")
        where = {path.relative_to(ROOT).as_posix() for path, text in sources.items() if pattern.search(text)}
        own = (BUILTIN_DIR / f"{spec.kind}.py").relative_to(ROOT).as_posix()
        assert own in where, f"{spec.kind} is not named in {own}"
        if where != {own}:
            misplaced[spec.kind] = sorted(where - {own})
    assert misplaced == {}, "kinds named outside their spec module (read them from the registry instead)"


def test_docs_trigger_table_is_the_registry() -> None:
    docs = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
    marker = docs.index("<!-- generated from the trigger registry")
    table = docs[docs.index("\n", marker) + 1 :].split("\n\n", 1)[0].strip()
    assert table == builtin_table(), "docs/engine.md: paste the output of registry.builtin_table()"


def test_docs_solves_vocabulary_names_every_offer_key() -> None:
    docs = (ROOT / "docs" / "data-formats.md").read_text(encoding="utf-8")
    vocabulary = docs[docs.index("The `solves` vocabulary") :].split("\n\n", 2)[1]
    entries = set(re.findall(r"`([^`]+)`", "\n".join(row.split("|")[1] for row in vocabulary.splitlines()[2:])))
    keys = {solves_entry(key) for spec in BUILTIN for key in spec.offer_keys} | {"trigger:<kind>"}
    assert entries == keys


def test_summaries_name_the_configured_events() -> None:
    renamed = EventNames(limit_reached="Quota Hit")
    spec = next(spec for spec in BUILTIN if "{events.limit_reached}" in spec.summary)
    assert "`Quota Hit`" in spec.describe(spec.settings(), renamed)


def test_custom_kinds_are_worded_from_their_statement() -> None:
    from outreach.engine.triggers.spec import ExampleSignal

    wording = registry.wording("reports_shared")
    assert wording.headline(ExampleSignal("shared 6 reports by email", {}, 30), _catalog()) == "Shared 6 reports by email"
    assert wording.consequence_for("Ledgerly") == "" and wording.speaker == "Your team"


def _catalog() -> Any:
    from tests.engine.triggers.helpers import CATALOG

    return CATALOG


def test_the_tables_a_trigger_prepares_are_gone_once_the_signals_are_found(datadir: DataDir, tmp_path: Path) -> None:
    """Read by the queries alone: at a million accounts ``ticket_topic`` alone held two million rows through the
    offers and the JSON."""
    from outreach.engine.data import load_dataset
    from outreach.engine.decisions import rules_for
    from outreach.engine.tables import engine_session
    from outreach.engine.triggers.detection import detect, prepare_triggers

    datadir.account("acme").active("acme")
    datadir.ticket("acme", 3, "Can we connect Salesforce? Integration wanted", tags=["exports"])
    dataset = load_dataset(datadir.write(tmp_path / "data"))
    rules = rules_for(dataset)
    prepared = {table for spec, _ in rules.enabled_triggers() for table in spec.prepares}
    assert {"ticket_topic", "ticket_mention"} <= prepared

    def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
        return {str(row[0]) for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}

    with engine_session(dataset.events) as con:
        prepare_triggers(con, dataset, rules, AS_OF)
        assert {"ticket_topic", "ticket_mention"} <= tables(con)
        detect(con, dataset, rules, AS_OF)
        assert not prepared & tables(con) and "signal_rows" in tables(con)
