"""`outreach explain`: the table, the documented JSON shape, determinism and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from outreach.cli.main import app
from tests.datadir import DataDir

runner = CliRunner()


def build(datadir: DataDir, tmp_path: Path) -> Path:
    datadir.account("acme", name="Acme Analytics").active("acme")
    for days in (1, 2, 3):
        datadir.event("acme", "Limit Reached", days, limit="reports", used=50, cap=50)
    datadir.account("beta", activated_at="").active("beta")
    datadir.event("beta", "Integration Requested", 2, integration="salesforce")
    datadir.account("gamma").active("gamma")
    return datadir.write(tmp_path / "data")


def test_explain_json_shape(datadir: DataDir, tmp_path: Path) -> None:
    root = build(datadir, tmp_path)
    result = runner.invoke(app, ["explain", "--data", str(root), "--as-of", "2026-11-20", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["account_id"], r["cohort"]) for r in rows] == [
        ("acme", "ready"),
        ("beta", "nurture"),
        ("gamma", "not_fit"),
    ]
    acme = rows[0]
    assert set(acme) >= {"account_id", "cohort", "health", "signals", "gate", "offer"}
    assert set(acme["health"]) >= {"score", "band"}
    [signal] = acme["signals"]
    assert set(signal) >= {"kind", "motion", "statement", "figures", "evidence"}
    assert signal["statement"] == "hit the reports limit 3 times in the last 30 days (cap 50)"
    assert acme["gate"] == {"allowed": True, "reasons": []}
    assert {k: acme["offer"][k] for k in ("id", "kind", "motion")} == {
        "id": "business",
        "kind": "plan",
        "motion": "upsell",
    }
    assert rows[1]["gate"]["reasons"][0]["rule"] == "not_activated"
    assert rows[2]["offer"] is None and rows[2]["signals"] == []


def test_same_inputs_same_output(datadir: DataDir, tmp_path: Path) -> None:
    root = build(datadir, tmp_path)
    args = ["explain", "--data", str(root), "--as-of", "2026-11-20", "--json"]
    assert runner.invoke(app, args).stdout == runner.invoke(app, args).stdout


def test_as_of_moves_the_window(datadir: DataDir, tmp_path: Path) -> None:
    root = build(datadir, tmp_path)
    result = runner.invoke(app, ["explain", "--data", str(root), "--as-of", "2027-03-01", "--json"])
    assert all(row["signals"] == [] or row["account_id"] == "beta" for row in json.loads(result.stdout))


def test_explain_table(datadir: DataDir, tmp_path: Path) -> None:
    root = build(datadir, tmp_path)
    result = runner.invoke(
        app, ["explain", "--data", str(root), "--as-of", "2026-11-20"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0
    assert "Acme Analytics" in result.stdout and "not_activated" in result.stdout
    assert "3 accounts: 1 ready, 1 nurture, 1 not fit" in result.stdout


def test_cohort_filter(datadir: DataDir, tmp_path: Path) -> None:
    root = build(datadir, tmp_path)
    result = runner.invoke(
        app, ["explain", "--data", str(root), "--as-of", "2026-11-20", "--json", "--cohort", "nurture"]
    )
    assert [r["account_id"] for r in json.loads(result.stdout)] == ["beta"]


def test_bad_input_is_one_line_exit_2(datadir: DataDir, tmp_path: Path) -> None:
    root = build(datadir, tmp_path)
    (root / "events.jsonl").write_text((root / "events.jsonl").read_text() + "{not json\n")
    result = runner.invoke(app, ["explain", "--data", str(root), "--as-of", "2026-11-20"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: ") and "events.jsonl:" in lines[0] and "malformed JSON" in lines[0]
    assert "Traceback" not in result.output


def test_bad_as_of(datadir: DataDir, tmp_path: Path) -> None:
    root = build(datadir, tmp_path)
    result = runner.invoke(app, ["explain", "--data", str(root), "--as-of", "20/11/2026"])
    assert result.exit_code == 2 and "'--as-of'" in result.stderr and "'20/11/2026' is not a date" in result.stderr


def test_missing_data_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not a directory" in result.stderr


def test_demo_runs_the_whole_job_without_serving(isolated_home: Path) -> None:
    result = runner.invoke(app, ["demo", "--no-serve"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "40 accounts: 18 ready, 12 nurture, 10 not fit" in result.stdout
    assert "18 drafts: 18 ok, 0 flagged, 0 failed" in result.stdout
    assert "18 drafts queued" in result.stdout and "Demo login (SDR, shown once)" in result.stdout
    assert "all pending" in result.stdout  # the sending part ran on its own copy: the rep's queue is intact
    assert (isolated_home / "outreach.db").exists() and (isolated_home / "demo-drafts.jsonl").exists()
