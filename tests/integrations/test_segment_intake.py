"""The Segment-compatible intake end to end: the real ``segment-analytics-python`` (and ``rudder-sdk-python``)
client sends track, group and batch calls to a running ``outreach serve``, and ``outreach explain`` then shows
the triggers those events fire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from outreach.application import Application
from outreach.cli.main import app as cli
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.datadir import AS_OF, DataDir
from tests.integrations.live import Served

runner = CliRunner()


def _workspace(tmp_path: Path) -> tuple[Path, str]:
    """A data directory with two healthy accounts and no events file, and a write key for the workspace."""
    data = DataDir()
    data.account("acme").account("globex")
    root = data.write(tmp_path / "data")
    (root / "events.jsonl").unlink()
    result = runner.invoke(cli, ["intake", "key"])
    assert result.exit_code == 0, result.output
    return root, result.output.split()[0]


def _stamp(days_ago: float) -> datetime:
    return datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) - timedelta(days=days_ago)


def _explain(root: Path) -> dict[str, dict[str, object]]:
    result = runner.invoke(cli, ["explain", "--data", str(root), "--as-of", AS_OF.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    return {row["account_id"]: row for row in json.loads(result.stdout)}


def _kinds(row: dict[str, object]) -> set[str]:
    return {signal["kind"] for signal in row["signals"]}  # type: ignore[attr-defined, index]


def test_segment_client_track_group_and_batch_reach_explain(tmp_path: Path) -> None:
    from segment.analytics import Client

    root, key = _workspace(tmp_path)
    assert "repeated_limit_hits" not in _kinds(_explain(root)["acme"])
    errors: list[Exception] = []
    settings = Settings(data_dir=root, intake_react=False)
    with Served(create_app(Application.from_settings(settings))) as served:
        client = Client(write_key=key, host=served.url, on_error=lambda error, _batch: errors.append(error),
                        max_retries=1, upload_size=50)
        # group: acme-u7 belongs to acme, so the limit hits below need no context.groupId
        client.group(user_id="acme-u7", group_id="acme", traits={"name": "Acme"}, timestamp=_stamp(9))
        for days in (3, 6, 9, 12):
            client.track(user_id="acme-u7", event="Limit Reached",
                         properties={"limit": "reports", "used": 50, "cap": 50},
                         timestamp=_stamp(days), message_id=f"seg-limit-{days}")
        # a repeated messageId (a retried call) is stored once
        client.track(user_id="acme-u7", event="Limit Reached", properties={"limit": "reports", "used": 50, "cap": 50},
                     timestamp=_stamp(3), message_id="seg-limit-3")
        # locked-feature clicks for globex, its account named in the context as Segment's libraries allow
        for days in (1, 2, 4):
            client.track(user_id="globex-u2", event="Locked Feature Clicked", properties={"feature": "sso"},
                         context={"groupId": "globex"}, timestamp=_stamp(days), message_id=f"seg-sso-{days}")
        client.flush()
        client.shutdown()
    assert errors == []
    decisions = _explain(root)
    acme = decisions["acme"]
    assert "repeated_limit_hits" in _kinds(acme)
    hits = next(s for s in acme["signals"] if s["kind"] == "repeated_limit_hits")  # type: ignore[attr-defined]
    assert hits["figures"]["hits"] == 4
    assert set(hits["evidence"]) <= {f"seg-limit-{d}" for d in (3, 6, 9, 12)}
    assert "locked_feature" in _kinds(decisions["globex"])
    status = runner.invoke(cli, ["events", "status"])
    # 1 group call + 4 limit hits (the repeat stored once) + 3 clicks
    assert "8 messages, 7 product events for 2 accounts" in " ".join(status.output.split())


def test_rudderstack_client_and_raw_batch(tmp_path: Path) -> None:
    """rudder-sdk-python speaks the same API; a raw /v1/batch with gzip, and the 400s a bad request gets."""
    import gzip

    import httpx
    from rudderstack.analytics import Client

    root, key = _workspace(tmp_path)
    settings = Settings(data_dir=root, intake_react=False)
    with Served(create_app(Application.from_settings(settings))) as served:
        client = Client(write_key=key, host=served.url, max_retries=1)
        for days in (2, 5, 8):
            client.track(user_id="acme-u1", event="Limit Reached", properties={"limit": "reports", "used": 50, "cap": 50},
                         context={"groupId": "acme"}, timestamp=_stamp(days))
        client.flush()
        client.shutdown()
        body = {"batch": [{"type": "track", "event": "Limit Reached", "userId": "acme-u2", "messageId": "raw-1",
                           "timestamp": _stamp(1).isoformat(), "context": {"groupId": "acme"},
                           "properties": {"limit": "reports", "used": 50, "cap": 50}}]}
        response = httpx.post(f"{served.url}/v1/batch", content=gzip.compress(json.dumps(body).encode()),
                              headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
                              auth=(key, ""))
        assert response.status_code == 200 and response.json() == {"success": True}
        bad = httpx.post(f"{served.url}/v1/batch", json={"batch": [{"type": "track", "userId": "u"}]}, auth=(key, ""))
        assert bad.status_code == 400
        assert bad.json()["message"] == "batch[0]: field 'event': required for track calls"
        assert httpx.post(f"{served.url}/v1/track", json={"event": "x", "userId": "u"},
                          auth=("wk_wrong", "")).status_code == 401
    hits = next(s for s in _explain(root)["acme"]["signals"] if s["kind"] == "repeated_limit_hits")  # type: ignore[attr-defined]
    assert hits["figures"]["hits"] == 4
