"""Learning from SDR edits: aggregation over a seeded review history, and follow-up auto-approval."""

from __future__ import annotations

import pytest

from outreach.drafting.registry import AutoApprovePolicy
from outreach.review.feedback import auto_approval, phrase_changes, template_feedback
from tests.tuning_helpers import Seeded, seed_history


def test_phrase_changes_ignore_case_and_punctuation() -> None:
    deleted, added = phrase_changes("Hi Dana, Unlock premium features today. It is $299.",
                                    "Hi Dana, it is $299 when you are ready.")
    assert "unlock premium features today" in deleted
    assert "when you are ready" in added


def test_feedback_aggregates_a_seeded_history(sqlite_url: str) -> None:
    history = (
        [Seeded("1", "approved", edit=("Unlock premium features today. ", ""))] * 4
        + [Seeded("1", "approved", edit=("Would a short call this week help?",
                                         "Would a short call this week help? Happy to walk your team through it."))] * 2
        + [Seeded("1", "rejected", reason="tone", note="too pushy")] * 3
        + [Seeded("1", "rejected", reason="wrong_offer")]
        + [Seeded("2", "approved")] * 5
    )
    found = {f.version: f for f in template_feedback(seed_history(sqlite_url, history), "upsell")}
    one, two = found["1"], found["2"]
    assert (one.drafts, one.approved, one.rejected, one.edited) == (10, 6, 4, 6)
    assert [(r.phrase, r.count) for r in one.rejection_reasons] == [("tone", 3), ("wrong_offer", 1)]
    assert one.rejection_notes == ["too pushy"] * 3
    assert one.deleted[0].phrase == "unlock premium features today" and one.deleted[0].count == 4
    assert one.added[0].phrase == "happy to walk your team through it" and one.added[0].count == 2
    assert one.median_length_change_words == -4  # four drafts lost 4 words, two gained 7
    assert one.mean_edit_distance is not None and one.mean_edit_distance > 0
    assert (two.edited, two.deleted, two.median_length_change_words) == (0, [], None)


def test_auto_approval_is_earned_and_lost(sqlite_url: str) -> None:
    policy = AutoApprovePolicy(enabled=True, min_approvals=5, max_mean_edit_distance=10, max_rejection_rate=0.2,
                               window=10)
    earned = [Seeded("1", "approved", template="followup")] * 6
    factory = seed_history(sqlite_url, earned)
    assert not auto_approval(factory, "followup", "1", AutoApprovePolicy(), kind="followup").eligible  # off
    assert not auto_approval(factory, "followup", "1", policy, kind="first_touch").eligible
    verdict = auto_approval(factory, "followup", "1", policy)
    assert verdict.eligible and verdict.approvals == 6


@pytest.mark.parametrize("extra, reason", [
    ([Seeded("1", "rejected", reason="tone", template="followup")] * 3, "rejection rate 33%"),
    ([Seeded("1", "approved", edit=("Unlock premium features today. ", ""), template="followup")] * 6,
     "mean edit distance"),
])
def test_auto_approval_lost(sqlite_url: str, extra: list[Seeded], reason: str) -> None:
    policy = AutoApprovePolicy(enabled=True, min_approvals=5, max_mean_edit_distance=10, max_rejection_rate=0.2,
                               window=20)
    factory = seed_history(sqlite_url, [Seeded("1", "approved", template="followup")] * 6 + extra)
    verdict = auto_approval(factory, "followup", "1", policy)
    assert not verdict.eligible and reason in verdict.reason
