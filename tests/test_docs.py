"""The documentation agrees with the code it describes (datasette's test_docs.py, for our settings).

docs/configuration.md has one row per environment variable; every ``Settings`` field needs a row with its
default, every row must name a field, and there is one settings class only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic.fields import FieldInfo

import outreach
from outreach.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
ROW = re.compile(r"^\| `((?:OUTREACH|OPENAI|ANTHROPIC)_[A-Z0-9_]+)` \| ([^|]*) \| ([^|]+) \|$")


def variable(name: str, field: FieldInfo) -> str:
    return field.validation_alias if isinstance(field.validation_alias, str) else f"OUTREACH_{name.upper()}"


def shown(default: Any) -> str:
    if default is None:
        return "—"
    return default.isoformat() if hasattr(default, "isoformat") else f"`{default}`"


def documented() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} has two rows"
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return rows


FIELDS = {variable(name, field): field for name, field in Settings.model_fields.items()}


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_setting_has_a_row_with_its_default(name: str) -> None:
    rows = documented()
    assert name in rows, f"{name} is a Settings field with no row in docs/configuration.md"
    field = FIELDS[name]
    assert rows[name][0] == shown(field.default), f"{name}: the documented default is not the field's"
    assert field.description, f"{name}: give the Settings field a description"


def test_every_row_names_a_setting() -> None:
    extra = sorted(set(documented()) - set(FIELDS))
    assert not extra, f"docs/configuration.md documents variables Settings does not have: {extra}"


def test_one_settings_class() -> None:
    """Every ``BaseSettings`` subclass in the package is ``outreach.settings.Settings``."""
    package = Path(outreach.__file__).resolve().parent
    found = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(base, ast.Name) and base.id == "BaseSettings")
                or (isinstance(base, ast.Attribute) and base.attr == "BaseSettings")
                for base in node.bases
            ):
                found.append(f"{path.relative_to(package)}:{node.name}")
    assert found == ["settings.py:Settings"]


def test_readme_links_the_configuration_reference() -> None:
    assert "docs/configuration.md" in (ROOT / "README.md").read_text(encoding="utf-8")
