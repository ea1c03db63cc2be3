"""Shared by the bad-input tests: a private copy of the demo data, the CLI run on it, and its one error line."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from outreach import bundled
from outreach.cli.main import app

DEMO = bundled.DEMO_DATA
AS_OF = "2026-11-20"
FILES = ("accounts.csv", "events.jsonl", "events.parquet", "events.csv", "tickets.jsonl", "catalog.yaml", "rules.yaml")

# The documented form: ``Error: FILE:LINE: field 'X': problem``; the line and the field only when there are
# ones to name (a file-level problem names the file alone).
ERROR_LINE = re.compile(
    r"Error: (?P<path>.+?/(?P<file>[^/:]+))(?::(?P<line>\d+))?: (?:field '(?P<field>[^']*)': )?(?P<problem>\S.*)"
)

runner = CliRunner()


def demo_copy(root: Path) -> Path:
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("README.md", "expected.json", "outcomes.jsonl"))
    return root


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: bytes
    error: re.Match[str] | None
    stderr: str


def explain(root: Path) -> Outcome:
    """``outreach explain --json`` on ``root``: exit 0 with the decisions, or exit 2 with exactly one error line
    (and at most one hint line after it) and nothing on stdout. Anything else, a traceback included, fails."""
    result = runner.invoke(app, ["explain", "--data", str(root), "--as-of", AS_OF, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback reaching a user is a bug
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    if result.exit_code == 0:
        assert result.stderr == "", result.stderr
        return Outcome(0, result.stdout_bytes, None, "")
    lines = result.stderr.splitlines()
    assert result.stdout_bytes == b"", "nothing may be half-written"
    assert 1 <= len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("Hint: ")), lines
    match = ERROR_LINE.fullmatch(lines[0])
    assert match is not None, lines[0]
    assert match["file"] in FILES and Path(match["path"]).parent == root, lines[0]
    return Outcome(2, b"", match, result.stderr)
