"""The gate blocks a pitch for each documented rule, with a reason; the score follows its components."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.engine.data import load_dataset
from outreach.engine.decisions import Decision, decide, rules_for
from tests.datadir import AS_OF, DataDir


def decide_one(data: DataDir, tmp_path: Path, **kwargs: object) -> Decision:
    dataset = load_dataset(data.write(tmp_path / "data"))
    [decision] = decide(dataset, rules_for(dataset), AS_OF, **kwargs)  # type: ignore[arg-type]
    return decision


def with_signal(data: DataDir, account_id: str = "acme") -> DataDir:
    for days in (1, 2, 3):
        data.event(account_id, "Limit Reached", days, limit="reports", used=50, cap=50)
    return data


def rules_fired(decision: Decision) -> list[str]:
    return [reason.rule for reason in decision.gate.reasons]


def test_healthy_account_with_signal_is_ready(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    decision = decide_one(with_signal(datadir), tmp_path)
    assert decision.gate.allowed and decision.cohort == "ready"
    assert decision.health.band == "green" and decision.health.score >= 70


def test_no_signal_is_not_fit_even_when_healthy(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    decision = decide_one(datadir, tmp_path)
    assert decision.cohort == "not_fit" and decision.offer is None and decision.gate.allowed


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"activated_at": ""}, "not_activated"),
        ({"activated_at": "2026-12-01"}, "not_activated"),
        ({"contract_start": "2026-10-01", "activated_at": "2026-10-10"}, "onboarding"),
        ({"cs_veto": "true", "cs_veto_reason": "pricing dispute"}, "cs_veto"),
        ({"last_contacted_at": "2026-11-12"}, "recently_contacted"),
    ],
)
def test_account_column_rules(overrides: dict[str, str], rule: str, datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", **overrides).active("acme")
    decision = decide_one(with_signal(datadir), tmp_path)
    assert rule in rules_fired(decision)
    assert decision.cohort == "nurture" and not decision.gate.allowed


def test_onboarding_ends_after_60_days(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", contract_start="2026-09-21", activated_at="2026-09-25").active("acme")  # 60 days
    assert "onboarding" not in rules_fired(decide_one(with_signal(datadir), tmp_path))


def test_contact_older_than_cooldown_does_not_block(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", last_contacted_at="2026-11-06").active("acme")  # 14 days ago
    assert decide_one(with_signal(datadir), tmp_path).gate.allowed


def test_last_contacted_hook_from_scheduler(datadir: DataDir, tmp_path: Path) -> None:
    from datetime import date

    datadir.account("acme").active("acme")
    decision = decide_one(with_signal(datadir), tmp_path, last_contacted={"acme": date(2026, 11, 18)})
    assert rules_fired(decision) == ["recently_contacted"]


def test_usage_declining(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme", users=8, prior_users=10)  # -20%
    decision = decide_one(with_signal(datadir), tmp_path)
    assert "usage_declining" in rules_fired(decision)
    assert decision.health.usage_change_pct == -20.0


def test_small_dip_is_not_decline(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme", users=9, prior_users=10)  # -10%
    assert "usage_declining" not in rules_fired(decide_one(with_signal(datadir), tmp_path))


def test_champion_silent(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", champion_user_id="acme-u9").active("acme")
    datadir.event("acme", "Signed In", 25, "acme-u9")
    decision = decide_one(with_signal(datadir), tmp_path)
    assert "champion_silent" in rules_fired(decision)
    assert decision.health.champion_silent_days == 25


def test_champion_seen_recently_passes(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", champion_user_id="acme-u9").active("acme")
    datadir.event("acme", "Signed In", 20, "acme-u9")
    assert "champion_silent" not in rules_fired(decide_one(with_signal(datadir), tmp_path))


def test_open_priority_ticket(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    ticket = datadir.ticket("acme", 3, "Dashboards down for everyone", status="open", priority="urgent")
    decision = decide_one(with_signal(datadir), tmp_path)
    assert "open_priority_ticket" in rules_fired(decision)
    assert ticket in decision.gate.reasons[0].message


def test_solved_urgent_ticket_does_not_block(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.ticket("acme", 3, "Dashboards down", status="solved", priority="urgent")
    assert decide_one(with_signal(datadir), tmp_path).gate.allowed


def test_red_health(datadir: DataDir, tmp_path: Path) -> None:
    # Not activated, champion never seen, no users, NPS 0: every component scores low.
    datadir.account("acme", activated_at="", nps=0, champion_user_id="ghost")
    for days in (1, 2, 3):
        datadir.event("acme", "Limit Reached", days, "acme-u2", limit="reports", used=50, cap=50)
    decision = decide_one(datadir, tmp_path)
    assert decision.health.band == "red" and decision.health.score < 40
    assert "red_health" in rules_fired(decision)


def test_held_out_control_group(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    decision = decide_one(with_signal(datadir), tmp_path, held_out=lambda account: True)
    assert rules_fired(decision) == ["held_out"]


def test_score_components_sum_to_score(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=6).active("acme")
    health = decide_one(datadir, tmp_path).health
    assert round(sum(health.components.values())) == health.score
    assert health.components["nps"] == 6.0 and health.components["activation"] == 20.0


def test_every_gate_reason_is_readable(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", activated_at="", cs_veto="true", cs_veto_reason="exec escalation").active("acme")
    decision = decide_one(with_signal(datadir), tmp_path)
    assert rules_fired(decision) == ["not_activated", "cs_veto"]
    assert all(len(reason.message) > 10 for reason in decision.gate.reasons)
    assert "exec escalation" in " ".join(r.message for r in decision.gate.reasons)
