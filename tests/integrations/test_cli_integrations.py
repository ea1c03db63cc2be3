"""The integration commands as a user types them: events load/status/compact, intake key/revoke, notify."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from outreach import bundled
from outreach.cli.main import app as cli

runner = CliRunner()


def _out(result: object) -> str:
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def test_events_load_status_and_explain_from_the_store(tmp_path: Path) -> None:
    demo = Path(shutil.copytree(bundled.DEMO_DATA, tmp_path / "demo"))
    explain = ["explain", "--data", str(demo), "--as-of", "2026-11-20", "--json"]
    before = runner.invoke(cli, explain)
    assert runner.invoke(cli, ["events", "status"]).exit_code == 1  # no store yet
    loaded = runner.invoke(cli, ["events", "load", str(demo / "events.jsonl")])
    assert loaded.exit_code == 0 and "7,918 events stored, 0 duplicates skipped" in _out(loaded)
    assert "already stored, unchanged" in _out(runner.invoke(cli, ["events", "load", str(demo / "events.jsonl")]))
    status = _out(runner.invoke(cli, ["events", "status"]))
    assert "7,918 messages, 7,918 product events for 40 accounts, 2026-07-25 – 2026-11-19" in status
    (demo / "events.jsonl").unlink()  # the store alone now
    after = runner.invoke(cli, explain)
    assert after.exit_code == 0 and after.stdout == before.stdout
    assert "0 events moved" in _out(runner.invoke(cli, ["events", "compact"]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event": "X", "timestamp": "yesterday", "context": {"groupId": "a"}}\n')
    failed = runner.invoke(cli, ["events", "load", str(bad)])
    assert failed.exit_code == 2 and f"{bad}:1: field 'timestamp'" in _out(failed)


def test_intake_key_revoke_and_notify(tmp_path: Path) -> None:
    created = runner.invoke(cli, ["intake", "key"])
    assert created.exit_code == 0 and created.output.startswith("wk_")
    assert "1 key(s) revoked" in _out(runner.invoke(cli, ["intake", "revoke"]))
    notified = runner.invoke(cli, ["notify"])
    assert notified.exit_code == 0 and "0 delivered, 0 failed, 0 skipped" in _out(notified)
    assert _out(runner.invoke(cli, ["notify", "--list"])) == "Id Channel Kind Account State Attempts Error"  # piped: TSV
