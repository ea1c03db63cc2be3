"""The ``outreach`` command line: parses input, calls the library, prints results.

Library errors (:class:`outreach.errors.OutreachError`) become one readable line plus a hint and the
error's exit code. Anything else is a bug: it re-raises when ``OUTREACH_RAISE_ERRORS`` is set or under
pytest, and otherwise prints one line asking for a bug report.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from outreach.decisions import Decision, explain
from outreach.errors import OutreachError
from outreach.settings import get_settings

app = typer.Typer(
    name="outreach",
    help="Turn product-usage and support signals into reviewed, friction-led expansion emails.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DEMO_DATA = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
DEMO_AS_OF = date(2026, 11, 20)

T = TypeVar("T")


def _raise_unexpected() -> bool:
    return get_settings().raise_errors or "PYTEST_CURRENT_TEST" in os.environ or "pytest" in sys.modules


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library errors into one line plus a hint and the right exit code."""
    try:
        yield
    except OutreachError as error:
        err_console.print(f"[bold red]Error:[/] {error.message}", highlight=False, soft_wrap=True)
        if error.hint:
            err_console.print(f"[dim]Hint:[/] {error.hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as error:
        if _raise_unexpected():
            raise
        err_console.print(f"[bold red]Unexpected error:[/] {type(error).__name__}: {error}", highlight=False)
        err_console.print("[dim]Hint:[/] set OUTREACH_RAISE_ERRORS=1 for the traceback and report it as a bug")
        raise typer.Exit(70) from None


def run(action: Callable[[], T]) -> T:
    with user_errors():
        return action()


def parse_as_of(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise OutreachError(f"--as-of '{value}' is not a date", hint="use YYYY-MM-DD, e.g. --as-of 2026-11-20") from None


DataOption = Annotated[Path, typer.Option("--data", help="Data directory (accounts.csv, events, tickets, catalog).")]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Analysis date YYYY-MM-DD (default: today). Same inputs, same output.")
]
RulesOption = Annotated[Path | None, typer.Option("--rules", help="YAML file overriding the default rules.")]


def _decisions(data: Path, as_of: str | None, rules: Path | None) -> list[Decision]:
    settings = get_settings()
    return explain(data, parse_as_of(as_of), rules_path=rules or settings.rules_path)


def explain_table(decisions: list[Decision], title: str = "Expansion readiness") -> Table:
    table = Table(title=title, show_lines=True, expand=False)
    table.add_column("Account", style="bold", no_wrap=True)
    table.add_column("Cohort")
    table.add_column("Health", justify="right")
    table.add_column("Friction (strongest first)", overflow="fold", ratio=3)
    table.add_column("Gate", overflow="fold", ratio=2)
    table.add_column("Offer", overflow="fold")
    cohort_style = {"ready": "green", "nurture": "yellow", "not_fit": "dim"}
    band_style = {"green": "green", "yellow": "yellow", "red": "red"}
    for decision in decisions:
        frictions = "\n".join(f"[{f.motion}] {f.statement}" for f in decision.frictions) or "—"
        gate = "passes" if decision.gate.allowed else "\n".join(f"{r.rule}: {r.message}" for r in decision.gate.reasons)
        offer = "—"
        if decision.offer is not None:
            o = decision.offer
            quantity = f"{o.quantity}× " if o.quantity > 1 else ""
            discount = f", −{o.discount_pct:g}%" if o.discount_pct else ""
            offer = f"{quantity}{o.name} ({o.id})\n{o.motion}, ${o.price_monthly:,.0f}/mo{discount}"
        health = decision.health
        table.add_row(
            f"{decision.account.name}\n[dim]{decision.account.account_id}[/]",
            f"[{cohort_style[decision.cohort]}]{decision.cohort}[/]",
            f"[{band_style[health.band]}]{health.score}[/]",
            frictions,
            gate,
            offer,
        )
    return table


def cohort_summary(decisions: list[Decision]) -> str:
    counts = {cohort: 0 for cohort in ("ready", "nurture", "not_fit")}
    for decision in decisions:
        counts[decision.cohort] += 1
    return (
        f"{len(decisions)} accounts: {counts['ready']} ready, {counts['nurture']} nurture, "
        f"{counts['not_fit']} not fit"
    )


@app.command("explain")
def explain_command(
    data: DataOption,
    as_of: AsOfOption = None,
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array instead of a table.")] = False,
    cohort: Annotated[
        str | None, typer.Option("--cohort", help="Only accounts in this cohort: ready, nurture or not_fit.")
    ] = None,
) -> None:
    """Show, per account, the signals that fired, the friction, the health gate and the offer."""

    def action() -> list[Decision]:
        if cohort is not None and cohort not in ("ready", "nurture", "not_fit"):
            raise OutreachError(f"--cohort '{cohort}' is not a cohort", hint="use ready, nurture or not_fit")
        decisions = _decisions(data, as_of, rules)
        return [d for d in decisions if cohort is None or d.cohort == cohort]

    decisions = run(action)
    if as_json:
        payload: list[dict[str, Any]] = [d.to_json() for d in decisions]
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    console.print(explain_table(decisions))
    console.print(cohort_summary(decisions))


@app.command("demo")
def demo_command(
    as_of: Annotated[str, typer.Option("--as-of", help="Analysis date for the demo data.")] = DEMO_AS_OF.isoformat(),
) -> None:
    """Run the whole job on the bundled demo data (fixtures/demo) with the embedded defaults."""
    decisions = run(lambda: _decisions(DEMO_DATA, as_of, None))
    console.print(explain_table(decisions, title=f"Demo: expansion readiness on {as_of}"))
    console.print(cohort_summary(decisions))


def main() -> None:  # pragma: no cover - console script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
