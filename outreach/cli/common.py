"""What every ``outreach`` command shares: the app class, consoles, error handling, exit codes, logging and the
common options.

Exit codes (the README's table; one place): 0 ok · 1 nothing to do, partial success or refused (a conflict,
a permission) · 2 bad input or option (data, configuration, an unknown value or id) · 3 evaluation regression
· 70 a bug. Library errors (:class:`outreach.errors.OutreachError`) carry their code and become one line
``Error: …`` plus a ``Hint: …``; option values click rejects become the same two lines with exit 2 (not
click's usage box); anything else is a bug: it re-raises when ``OUTREACH_RAISE_ERRORS`` is set or under
pytest, and otherwise prints one line asking for a bug report (exit 70).

Adding a command
----------------
- Declare options with the shared types below (:data:`DataOption`, :data:`AsOfOption`, :data:`ActorOption`,
  :data:`JsonOption`, :data:`OutOption`, :data:`LimitOption`, …) so names, short flags and help read the same
  everywhere. Check what can be checked while parsing — a ``Literal[...]`` type for a fixed set (typer turns
  it into a choice), ``min=``/``max=`` for numbers, :func:`check_date` as a callback for dates — so a bad
  value exits 2 before any work starts. Give common options a short flag (``-d -t -u -j -o -n -p -r -m``).
- Resolve defaults with the helpers, not by hand: :func:`data_dir` for ``--data`` (``demo``, OUTREACH_DATA_DIR,
  the workspace's data/), :func:`actor` for ``--as`` (OUTREACH_USER), :func:`outreach.bundled.locate` for
  prompts, sequences, eval sets (workspace copy, else packaged defaults).
- Call the library inside :func:`run` (or ``with user_errors():``) so its errors get the right exit code; raise
  :class:`outreach.errors.InputError` for a bad value found later.
- Print results with :data:`console` (stdout) and messages with :data:`err_console` (stderr). When stdout is
  not a terminal :data:`console` prints tables as TSV (a header line, then a row per line) and panels as plain
  text, never wrapped, so ``outreach … | grep`` works; offer ``--json`` where a script wants structure. A piped
  table has no title: a command that prints several tables prints a heading line before each when
  ``not console.is_terminal`` (see ``outreach report``).
- The library logs with ``logging.getLogger(__name__)`` and never prints; the root callback
  (:func:`configure_logging`) shows those logs on stderr by ``-v``/``-q``/``--log-level``/OUTREACH_LOG_LEVEL.
"""


import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import (  # typer carries its own click
    ClickException,
    NoArgsIsHelpError,
    UsageError,
)
from typer.core import TyperGroup

from outreach import bundled
from outreach.errors import InputError, OutreachError

if TYPE_CHECKING:
    from outreach.settings import Settings

if TYPE_CHECKING:
    from outreach.engine.data import Dataset

DEMO_DATA = bundled.DEMO_DATA
DEMO_AS_OF = date(2026, 11, 20)

T = TypeVar("T")

EXIT_OK, EXIT_NOTHING_TO_DO, EXIT_BAD_INPUT, EXIT_REGRESSION, EXIT_BUG = 0, 1, 2, 3, 70


# ------------------------------------------------------------------------------------------------ output


def _cell_text(cell: Any) -> str:
    if isinstance(cell, Text):
        text = cell.plain
    elif isinstance(cell, str):
        text = Text.from_markup(cell).plain
    else:
        text = str(cell)
    return "; ".join(part.strip() for part in text.replace("\t", " ").splitlines() if part.strip())


def table_rows(table: Table) -> list[list[str]]:
    """A rich table's header and rows as plain strings (markup stripped, multi-line cells joined by '; ')."""
    columns = table.columns
    header = [_cell_text(column.header) for column in columns]
    count = max((len(list(column.cells)) for column in columns), default=0)
    cells = [list(column.cells) for column in columns]
    return [header, *[[_cell_text(column[row]) for column in cells] for row in range(count)]]


class OutputConsole(Console):
    """A console that stays pipe-friendly. On a terminal it renders as rich does; otherwise tables become TSV
    (header, then one line per row), panels plain text, and no line is wrapped at 80 columns."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self.is_terminal:
            super().print(*objects, **kwargs)
            return
        kwargs.setdefault("soft_wrap", True)
        for item in objects:
            if isinstance(item, Table):
                self.file.write("".join("\t".join(row) + "\n" for row in table_rows(item)))
            elif isinstance(item, Panel):
                self._print_panel(item, **kwargs)
            else:
                super().print(item, **kwargs)

    def _print_panel(self, panel: Panel, **kwargs: Any) -> None:
        for part in (panel.title, panel.renderable, panel.subtitle):
            if part is None or part == "":
                continue
            renderable: RenderableType = Text.from_markup(part) if isinstance(part, str) else part
            super().print(renderable, **kwargs)
        super().print()


console = OutputConsole()
err_console = Console(stderr=True)


# ------------------------------------------------------------------------------------------------ errors


def get_settings() -> "Settings":
    """The settings, read when a command runs: importing pydantic-settings is a third of `outreach --help`."""
    from outreach.settings import get_settings as read_settings

    return read_settings()


def _raise_unexpected() -> bool:
    return get_settings().raise_errors or "PYTEST_CURRENT_TEST" in os.environ or "pytest" in sys.modules


def print_error(message: str, hint: str | None = None) -> None:
    """The one error format: ``Error: …`` and, when there is a fix to suggest, ``Hint: …`` (stderr).

    The message quotes the user's data, so it is plain text: no rich markup (``[bold]``), emoji code
    (``:100:`` is a line number) or highlighting rewrites it."""
    err_console.print(Text.assemble(("Error:", "bold red"), " ", message),
                      highlight=False, soft_wrap=True, emoji=False, markup=False)
    if hint:
        err_console.print(Text.assemble(("Hint:", "dim"), " ", hint),
                          highlight=False, soft_wrap=True, emoji=False, markup=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library errors into one line plus a hint and the right exit code."""
    try:
        yield
    except OutreachError as error:
        print_error(error.message, error.hint)
        raise typer.Exit(error.exit_code) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt, ClickException):
        raise
    except Exception as error:
        if _raise_unexpected():
            raise
        _print_bug(error)
        raise typer.Exit(EXIT_BUG) from None


def _print_bug(error: Exception) -> None:
    print_error(f"unexpected {type(error).__name__}: {error}",
                "this is a bug: set OUTREACH_RAISE_ERRORS=1 for the traceback and report it")


def run(action: Callable[[], T]) -> T:
    with user_errors():
        return action()


class OutreachGroup(TyperGroup):
    """The root command group: click's usage errors (bad or missing option values) print as our two lines,
    ``Error: …`` and ``Hint: see 'outreach CMD --help'``, with exit code 2, instead of a usage box."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NoArgsIsHelpError as error:
            if error.format_message().strip():  # rich help printed itself while the error was built
                console.print(error.format_message(), markup=False, highlight=False)
            sys.exit(EXIT_BAD_INPUT)
        except UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "outreach"
            print_error(error.format_message().replace("Value error, ", ""), f"see '{where} --help'")
            sys.exit(EXIT_BAD_INPUT)
        except ClickException as error:
            print_error(error.format_message())
            sys.exit(error.exit_code)
        except typer.Abort:
            err_console.print("Aborted.")
            sys.exit(EXIT_NOTHING_TO_DO)
        except OutreachError as error:  # a command that did not wrap its library call in run()
            print_error(error.message, error.hint)
            sys.exit(error.exit_code)
        except Exception as error:
            if _raise_unexpected():
                raise
            _print_bug(error)
            sys.exit(EXIT_BUG)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


# ------------------------------------------------------------------------------------------------ logging


_HANDLER = "outreach-cli"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def log_level_for(verbose: int, quiet: bool, explicit: str | None) -> str:
    """``--log-level`` wins; else ``-q`` is ERROR, ``-v`` INFO, ``-vv`` DEBUG; else OUTREACH_LOG_LEVEL."""
    if explicit:
        return explicit.upper()
    if quiet:
        return "ERROR"
    if verbose:
        return "DEBUG" if verbose > 1 else "INFO"
    return get_settings().log_level


def configure_logging(level: str) -> None:
    """Show the library's logs (the ``outreach`` logger) on stderr at ``level``: rich on a terminal, one plain
    ``LEVEL name: message`` line otherwise."""
    logger = logging.getLogger("outreach")
    for old in [h for h in logger.handlers if h.name == _HANDLER]:  # a second run in one process replaces it
        logger.removeHandler(old)
    handler: logging.Handler
    if err_console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.name = _HANDLER
    logger.addHandler(handler)
    logger.setLevel(level)


# ------------------------------------------------------------------------------------------------ values


def check_date(value: str | None) -> str | None:
    """Option callback: a YYYY-MM-DD date or nothing (exit 2 otherwise)."""
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise typer.BadParameter(f"'{value}' is not a date; use YYYY-MM-DD, e.g. 2026-11-20") from None
    return value


def parse_as_of(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--as-of '{value}' is not a date", hint="use YYYY-MM-DD, e.g. --as-of 2026-11-20") from None


def data_dir(option: Path | None) -> Path:
    """``--data``: a directory, ``demo`` for the packaged demo data, or (not given) OUTREACH_DATA_DIR, else the
    workspace's ``data/`` (exit 2 with what to do when there is none)."""
    return run(lambda: bundled.data_dir(option).path)


def actor(value: str | None) -> str:
    """``--as``: the acting user, else OUTREACH_USER (exit 2 with what to do when neither is set)."""
    if value:
        return value
    configured = get_settings().user
    if configured:
        return configured
    print_error("who is acting? this command records its user in the audit log",
                "pass --as EMAIL or set OUTREACH_USER=you@yourco.example")
    raise typer.Exit(EXIT_BAD_INPUT)


def optional_actor(value: str | None) -> str | None:
    """``--as`` where naming the user is optional: the value, else OUTREACH_USER, else nobody."""
    return value or get_settings().user


def deprecated_alias(old: str, new: str, value: T | None, current: T | None) -> T | None:
    """Merge a hidden, deprecated option spelling into its new name, with a warning on stderr."""
    if value is None:
        return current
    err_console.print(f"[yellow]Warning:[/] {old} is deprecated; use {new}", highlight=False)
    return current if current is not None else value


DataOption = Annotated[
    Path | None,
    typer.Option("--data", "-d", help="Data directory (accounts.csv, events, tickets, catalog.yaml); 'demo' for "
                 "the packaged demo data. Default: OUTREACH_DATA_DIR, else ./data (`outreach init`)."),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", "-t", callback=check_date, metavar="YYYY-MM-DD",
                 help="Analysis date (default: today). Same inputs, same output."),
]
RulesOption = Annotated[
    Path | None, typer.Option("--rules", "-r", help="YAML file overriding the rules (wins over OUTREACH_RULES_PATH).")
]
ActorOption = Annotated[
    str | None,
    typer.Option("--as", "-u", metavar="EMAIL", help="Who is acting, recorded in the audit log (default: OUTREACH_USER)."),
]
JsonOption = Annotated[bool, typer.Option("--json", "-j", help="Print JSON instead of a table.")]
OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Output file.")]
LimitOption = Annotated[int | None, typer.Option("--limit", "-n", min=0, help="At most this many.")]
DraftVersionOption = Annotated[
    int | None, typer.Option("--draft-version", help="Draft version you reviewed (default: the current one).")
]


def load_data(data: Path) -> "Dataset":
    """The data directory with the workspace's stored events (``outreach events load``, the /v1 API), if any."""
    from outreach.application import application_for

    if data.resolve() == Path(DEMO_DATA).resolve():  # the packaged demo is the demo: the workspace's events stay out
        from outreach.engine.data import load_dataset

        return load_dataset(data)
    with application_for(None) as application:
        return application.dataset(data, in_place=True)  # a one-shot command: read the store where it is
