"""Start-up stays cheap: the CLI's modules (and ``outreach`` itself) import no heavy library until a command
runs (docs/BENCHMARKS.md, "Start-up"; issue 16 item 5). Not timed — which modules are loaded is what a merge
breaks, so that is what is pinned."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each of these costs tens of milliseconds or more to import; none is needed to parse options or print help.
HEAVY = ("alembic", "argon2", "duckdb", "fastapi", "jinja2", "langchain_core", "pyarrow", "pydantic",
         "pydantic_settings", "sqlalchemy", "yaml")


def _loaded_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    output = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return [name for name in json.loads(output.splitlines()[-1]) if name in heavy]


@pytest.mark.parametrize("code", ["import outreach", "import outreach.cli.main"])
def test_importing_loads_no_heavy_library(code: str) -> None:
    assert _loaded_after(code) == []


def test_help_loads_no_heavy_library() -> None:
    code = (
        "import contextlib, io, sys\nfrom outreach.cli.main import app\nsys.argv = ['outreach', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    app()"
    )
    assert _loaded_after(code) == []


# A demo `explain` needs DuckDB, pydantic and the settings; not the database, drafting or web stacks, nor PyArrow
# (small tables go to DuckDB as list parameters: outreach.engine.tables.create_table).
NOT_FOR_EXPLAIN = ("alembic", "argon2", "fastapi", "jinja2", "langchain_core", "pyarrow", "sqlalchemy")


@pytest.mark.parametrize("json_flag", ["", ", '--json'"])
def test_a_demo_explain_loads_no_database_drafting_or_arrow(json_flag: str) -> None:
    code = (
        "import contextlib, io, sys\nfrom outreach.cli.main import app\n"
        f"sys.argv = ['outreach', 'explain', '--data', 'demo', '--as-of', '2026-11-20'{json_flag}]\n"
        "with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO())), contextlib.suppress(SystemExit):\n"
        "    app()"
    )
    assert _loaded_after(code, NOT_FOR_EXPLAIN) == []


def test_a_lazy_name_still_resolves() -> None:
    import outreach

    assert outreach.InputError.__module__ == "outreach.errors"
    assert "load_dataset" in dir(outreach)
    with pytest.raises(AttributeError):
        _ = outreach.no_such_name  # type: ignore[attr-defined]


def test_command_signatures_are_not_strings() -> None:
    """typer evaluates a string annotation twice per parameter (inspect.signature, then get_type_hints): with
    ``from __future__ import annotations`` in the command modules, building the commands took 40-50 ms instead of
    10-20. The command modules evaluate their annotations when they are defined instead."""
    import typer

    from outreach.cli.main import app

    def callbacks(group: typer.Typer) -> list[object]:
        found: list[object] = [info.callback for info in group.registered_commands]
        if group.registered_callback is not None:
            found.append(group.registered_callback.callback)
        for sub in group.registered_groups:
            assert sub.typer_instance is not None
            found.extend(callbacks(sub.typer_instance))
        return found

    stringly = [
        f"{getattr(callback, '__module__', '?')}.{getattr(callback, '__name__', '?')}"
        for callback in callbacks(app)
        if any(isinstance(annotation, str) for annotation in getattr(callback, "__annotations__", {}).values())
    ]
    assert len(callbacks(app)) > 40
    assert stringly == []


def test_the_console_script_collects_garbage_less_often() -> None:
    import tomllib
    from pathlib import Path

    from outreach.cli import PROCESS_GC_THRESHOLD

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["outreach"] == "outreach.cli:main"
    code = (
        "import contextlib, gc, io, sys\nfrom outreach.cli import main\nsys.argv = ['outreach', '--version']\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main()\n"
        "print(gc.get_threshold()[0])"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert int(output.split()[-1]) == PROCESS_GC_THRESHOLD


def test_the_console_script_freezes_what_is_left_when_the_command_is_done() -> None:
    """Shutdown's full collections would trace every object the command built (0.09 s of a demo `explain`);
    :func:`outreach.cli.main` freezes them once the command is done, whether it exits or returns."""
    code = (
        "import contextlib, gc, io, sys\nfrom outreach.cli import main\nsys.argv = ['outreach', '--version']\n"
        "before = gc.get_freeze_count()\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main()\n"
        "print(before, gc.get_freeze_count())"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    before, after = map(int, output.split()[-2:])
    assert before == 0 and after > 0
