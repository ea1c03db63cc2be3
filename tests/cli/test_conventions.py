"""What every command shares: --version, the exit-code table, one-line errors for bad option values,
logging behind -v/-q/--log-level, and output that stays one line per row when piped."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import outreach
from outreach.cli.main import app

runner = CliRunner()
DEMO = ["--data", "demo", "--as-of", "2026-11-20"]


def test_version() -> None:
    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0 and result.stdout == f"outreach {outreach.__version__}\n"


def test_completion_is_offered() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "--install-completion" in result.stdout


BAD_INPUT = [
    (["explain", "--data", "demo", "--as-of", "2026-13-01"], "'2026-13-01' is not a date"),
    (["explain", *DEMO, "--cohort", "bogus"], "'bogus' is not one of 'ready', 'nurture', 'not_fit'"),
    (["explain", "--as-of", "2026-11-20"], "no data directory given"),
    (["explain", "--data", "nope-not-here"], "not a directory"),
    (["draft", *DEMO, "--limit", "-1"], "--limit"),
    (["draft", *DEMO, "--provider", "bogus"], "unknown provider 'bogus'"),
    (["queue", "list", "--status", "bogus"], "'bogus' is not one of 'all', 'pending_review'"),
    (["queue", "list", "--motion", "bogus"], "'bogus' is not one of 'upsell', 'cross_sell', 'bundle'"),
    (["queue", "reject", "1", "--reason", "bogus", "--as", "a@b.example"], "'bogus' is not one of 'wrong_offer'"),
    (["queue", "approve", "1"], "who is acting?"),
    (["users", "add", "x@example.com", "--role", "boss"], "'boss' is not one of 'sdr', 'marketing', 'admin'"),
    (["sequences", "status", "--status", "bogus"], "'bogus' is not one of 'active'"),
    (["sequences", "stop", "1"], "who is acting?"),
    (["report", "--period", "2026-Q9"], "2026-Q9"),
    (["report", "--from", "2026-02-30"], "'2026-02-30' is not a date"),
    (["serve", "--port", "0"], "--port"),
    (["--log-level", "loud", "explain"], "'loud' is not one of"),
    (["prompts", "split", "upsell", "--experiment", "x", "--weights", "1:50"], "is not VERSION=WEIGHT"),
    (["eval", "--prompt", "Not A Name"], "is not a template reference"),
    (["explain", "--bogus"], "No such option: --bogus"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_with_one_error_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert all(line.startswith("Hint: ") for line in lines[1:]), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_nothing_to_do_exits_1(isolated_home: Path) -> None:
    assert runner.invoke(app, ["init", "--no-example-data"]).exit_code == 0
    again = runner.invoke(app, ["init", "--no-example-data"])
    assert again.exit_code == 1 and "wrote nothing" in again.stdout


def test_piped_tables_are_tsv_one_row_per_line() -> None:
    result = runner.invoke(app, ["explain", *DEMO])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Account\tCohort\tHealth\tFriction (strongest first)\tGate\tOffer"
    rows = [line.split("\t") for line in lines[1:-1]]
    assert len(rows) == 40 and all(len(row) == 6 for row in rows)
    assert rows[0][:3] == ["Northwind Freight; northwind-freight", "ready", "92"]
    assert lines[-1] == "40 accounts: 18 ready, 12 nurture, 10 not fit"


def test_json_output_is_unchanged_by_piping() -> None:
    result = runner.invoke(app, ["explain", *DEMO, "-j", "-c", "ready"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 18


def test_verbose_shows_the_library_logs_and_quiet_hides_them(monkeypatch: pytest.MonkeyPatch) -> None:
    verbose = runner.invoke(app, ["-v", "explain", *DEMO])
    assert verbose.exit_code == 0
    assert "INFO outreach.bundled: data: packaged demo data" in verbose.stderr
    assert "INFO outreach.engine.decisions: decided 40 accounts as of 2026-11-20: 18 ready" in verbose.stderr
    assert "DEBUG" not in verbose.stderr
    debug = runner.invoke(app, ["--log-level", "debug", "draft", *DEMO, "--no-queue", "--limit", "1"])
    assert debug.exit_code == 0 and "DEBUG outreach.drafting.drafts: draft " in debug.stderr
    quiet = runner.invoke(app, ["-q", "explain", *DEMO, "--json"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    monkeypatch.setenv("OUTREACH_LOG_LEVEL", "INFO")
    configured = runner.invoke(app, ["explain", *DEMO])
    assert "INFO outreach.engine.decisions" in configured.stderr


def test_the_library_logs_and_never_prints() -> None:
    package = Path(outreach.__file__).resolve().parent
    printing = []
    for path in package.rglob("*.py"):
        if path.relative_to(package).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{path.relative_to(package)}:{node.lineno}")
    assert printing == []


def test_config_shows_values_and_sources_but_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("OUTREACH_DATABASE_URL", "postgresql+psycopg://rep:hunter2@db.example/outreach")
    monkeypatch.setenv("OUTREACH_USER", "rep@acme.example")
    result = runner.invoke(app, ["config", "--json"])
    assert result.exit_code == 0 and "sk-very-secret" not in result.stdout and "hunter2" not in result.stdout
    shown = json.loads(result.stdout)
    variables = {row["variable"]: row for row in shown["variables"]}
    assert variables["OPENAI_API_KEY"] == {"variable": "OPENAI_API_KEY", "value": "(set)", "from": "environment"}
    assert variables["OUTREACH_USER"]["value"] == "rep@acme.example"
    assert variables["OUTREACH_SMTP_PORT"] == {"variable": "OUTREACH_SMTP_PORT", "value": "587", "from": "default"}
    sources = {row["resource"]: row["origin"] for row in shown["sources"]}
    assert sources["prompts"] == "packaged" and sources["data"].startswith("none")
