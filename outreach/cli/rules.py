"""``outreach rules check``: validate the rules a data directory runs with and list every trigger.

Thin on purpose: load the rules (defaults, ``<data dir>/rules.yaml``, ``--rules``, the catalog's
``policy.thresholds``) through the library, which reports any problem with its file, line and field, and print
each trigger, built-in and custom, with its motion, state and thresholds. ``register(app)`` adds the command.
"""


import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from outreach import bundled
from outreach.cli.common import DataOption, JsonOption, RulesOption, console, get_settings, run
from outreach.errors import InputError

if TYPE_CHECKING:
    from outreach.engine.rules import ProjectRules

rules_app = typer.Typer(help="Rules: check rules.yaml and list every trigger with its thresholds.", no_args_is_help=True)


def _value(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return ", ".join(f"{name} = {_value(item)}" for name, item in value.items())
    if isinstance(value, list):
        return " or ".join(_value(item) for item in value)
    return str(value)


def _thresholds(values: dict[str, object]) -> str:
    return "\n".join(f"{name}: {_value(value)}" for name, value in values.items() if value not in (None, {}))


def trigger_table(project: "ProjectRules") -> Table:
    table = Table(title="Triggers", show_lines=True)
    table.add_column("Kind", no_wrap=True)
    table.add_column("Motion", no_wrap=True)
    table.add_column("Thresholds", no_wrap=True)
    table.add_column("Fires when", overflow="fold", ratio=1)
    for row in project.trigger_rows():
        kind = f"[bold]{escape(row.kind)}[/]" if row.enabled else f"[dim]{escape(row.kind)} (disabled)[/]"
        if row.source != "built-in":
            kind += f"\n[dim]custom: {escape(row.source)}[/]"
        table.add_row(kind, row.motion.replace("_", "-"), escape(_thresholds(row.thresholds)), escape(row.fires_when))
    return table


def _data_dir(option: Path | None) -> Path | None:
    """``--data`` as every command resolves it; without it, the default data directory if there is one (the rules
    alone are checked otherwise)."""
    try:
        return bundled.data_dir(option).path
    except InputError:
        if option is not None:
            raise
        return None


@rules_app.command("check")
def check_command(data: DataOption = None, rules: RulesOption = None, as_json: JsonOption = False) -> None:
    """Validate the rules (defaults, the workspace's and the data directory's rules.yaml, --rules, the catalog's
    policy.thresholds and its trigger:<kind> solves) and list every trigger, built-in and custom, with its
    thresholds. Reads no events."""
    from outreach.engine.rules import load_project_rules

    def check() -> "ProjectRules":
        return load_project_rules(
            _data_dir(data), rules or get_settings().rules_path, workspace=bundled.workspace_layer("rules")
        )

    project = run(check)
    if as_json:
        payload = [row.model_dump() for row in project.trigger_rows()]
        sys.stdout.write(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
        return
    console.print(trigger_table(project))
    console.print(project.summary(), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
