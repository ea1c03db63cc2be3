"""What every ``outreach`` command shares: the consoles, error handling, exit codes and common options.

Library errors (:class:`outreach.errors.OutreachError`) become one readable line plus a hint and the
error's exit code. Anything else is a bug: it re-raises when ``OUTREACH_RAISE_ERRORS`` is set or under
pytest, and otherwise prints one line asking for a bug report (exit 70).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from outreach import bundled
from outreach.errors import OutreachError
from outreach.settings import get_settings

if TYPE_CHECKING:
    from outreach.engine.data import Dataset

console = Console()
err_console = Console(stderr=True)

DEMO_DATA = bundled.DEMO_DATA

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


def load_data(data: Path) -> Dataset:
    """The data directory with the workspace's stored events (``outreach events load``, the /v1 API), if any."""
    from outreach.application import application_for

    with application_for(None) as application:
        return application.dataset(data, in_place=True)  # a one-shot command: read the store where it is
