"""``outreach rules check``: validate the rules a data directory runs with and list every trigger.

Thin on purpose: load the rules (defaults, ``<data dir>/rules.yaml``, ``--rules``, the catalog's
``policy.thresholds``) through the library, which reports any problem with its file, line and field, and print
each trigger, built-in and custom, with its motion, state and thresholds. ``register(app)`` adds the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from outreach.cli.common import RulesOption, run
from outreach.engine.rules import ProjectRules, load_project_rules
from outreach.settings import get_settings

console = Console()

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


def trigger_table(project: ProjectRules) -> Table:
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


@rules_app.command("check")
def check_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="Data directory: its rules.yaml and catalog.yaml are checked too.")
    ] = None,
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the triggers as JSON instead of a table.")] = False,
) -> None:
    """Validate the rules (defaults, the data directory's rules.yaml, --rules, the catalog's policy.thresholds and
    its trigger:<kind> solves) and list every trigger, built-in and custom, with its thresholds."""
    project = run(lambda: load_project_rules(data, rules or get_settings().rules_path))
    if as_json:
        payload = [row.model_dump() for row in project.trigger_rows()]
        typer.echo(json.dumps(payload, indent=1, ensure_ascii=False))
        return
    console.print(trigger_table(project))
    console.print(project.summary(), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
