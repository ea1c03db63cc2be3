"""Learning from SDR edits: what reviewers change in each template version's drafts, and auto-approval.

Every edit in the review queue is stored as a new draft version with its diff against the model's text, and
every rejection carries a reason code. Aggregated per template version, that tells marketing what to fix in
the prompt: the reasons drafts get rejected, the phrases reps delete or add most often, and whether reps
lengthen or shorten the emails. The same figures decide auto-approval for follow-ups: a version earns it
only after enough approvals with small edits, and loses it as soon as its recent rejection rate rises —
it is recomputed from the queue every time, so there is no stale flag to forget to clear.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from statistics import median

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach.drafting.registry import AutoApprovePolicy
from outreach.review.storage import APPROVED_STATUSES, DraftRow, DraftVersionRow

MAX_PHRASE_WORDS = 8
_TOKEN = re.compile(r"\S+")
_EDGE = re.compile(r"^[^\w$%]+|[^\w%]+$")


class PhraseCount(BaseModel):
    phrase: str
    count: int


class VersionFeedback(BaseModel):
    """What reviewers did with one version's drafts."""

    template: str
    version: str
    drafts: int
    decided: int = Field(description="Approved (incl. scheduled/sent) + rejected.")
    approved: int
    rejected: int
    edited: int = Field(description="Drafts with at least one SDR edit.")
    rejection_reasons: list[PhraseCount]
    rejection_notes: list[str] = Field(description="Most recent free-text rejection notes (up to 5).")
    deleted: list[PhraseCount] = Field(description="Phrases reps deleted from the model's text, most often first.")
    added: list[PhraseCount] = Field(description="Phrases reps added, most often first.")
    median_length_change_words: float | None = Field(description="Edited body words minus the model's, median.")
    mean_edit_distance: float | None


class AutoApproval(BaseModel):
    template: str
    version: str
    eligible: bool
    reason: str
    approvals: int
    rejection_rate: float | None
    mean_edit_distance: float | None


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _phrase(tokens: list[str]) -> str:
    cleaned = [_EDGE.sub("", t).lower() for t in tokens]
    cleaned = [t for t in cleaned if t]
    if not cleaned:
        return ""
    if len(cleaned) > MAX_PHRASE_WORDS:
        cleaned = [*cleaned[:MAX_PHRASE_WORDS], "…"]
    return " ".join(cleaned)


def phrase_changes(before: str, after: str) -> tuple[list[str], list[str]]:
    """(deleted, added) phrases between two texts, by a word-level diff; punctuation and case are ignored so
    "Act now!" and "act now" count as the same phrase."""
    a, b = _words(before), _words(after)
    deleted: list[str] = []
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=[_EDGE.sub("", w.lower()) for w in a],
                                      b=[_EDGE.sub("", w.lower()) for w in b], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("delete", "replace") and (phrase := _phrase(a[i1:i2])):
            deleted.append(phrase)
        if op in ("insert", "replace") and (phrase := _phrase(b[j1:j2])):
            added.append(phrase)
    return deleted, added


def _top(counter: Counter[str], limit: int) -> list[PhraseCount]:
    return [PhraseCount(phrase=p, count=c) for p, c in sorted(counter.items(), key=lambda i: (-i[1], i[0]))[:limit]]


def template_feedback(factory: sessionmaker[Session], name: str, *, top: int = 10) -> list[VersionFeedback]:
    """Per version of ``name`` (attributed by each draft's first version), what reviewers changed."""
    with factory() as session:
        drafts = session.execute(
            select(DraftRow.id, DraftRow.status, DraftRow.reject_reason, DraftRow.reject_text, DraftRow.updated_at,
                   DraftVersionRow.template_version)
            .join(DraftVersionRow, DraftVersionRow.draft_id == DraftRow.id)
            .where(DraftVersionRow.template_name == name, DraftVersionRow.number == 1)
            .order_by(DraftRow.id)
        ).all()
        ids = [int(row[0]) for row in drafts]
        versions: dict[int, list[DraftVersionRow]] = defaultdict(list)
        if ids:
            for row in session.scalars(
                select(DraftVersionRow).where(DraftVersionRow.draft_id.in_(ids))
                .order_by(DraftVersionRow.draft_id, DraftVersionRow.number)
            ):
                versions[row.draft_id].append(row)

    by_version: dict[str, list[tuple[int, str, str | None, str | None]]] = defaultdict(list)
    for draft_id, status, reason, note, _updated, version in drafts:
        by_version[str(version)].append((int(draft_id), str(status), reason, note))
    result = []
    for version in sorted(by_version, key=lambda v: (not v.isdigit(), v.zfill(8))):
        rows = by_version[version]
        reasons: Counter[str] = Counter(reason or "unspecified" for _, status, reason, _ in rows if status == "rejected")
        notes = [note for _, status, _, note in reversed(rows) if status == "rejected" and note][:5]
        deleted: Counter[str] = Counter()
        added: Counter[str] = Counter()
        length_changes: list[int] = []
        distances: list[int] = []
        edited = 0
        for draft_id, _status, _reason, _note in rows:
            texts = versions.get(draft_id, [])
            final_edit = next((v for v in reversed(texts) if v.source == "edit"), None)
            if final_edit is None:
                continue
            edited += 1
            model = next((v for v in reversed(texts) if v.source != "edit" and v.number < final_edit.number), texts[0])
            gone, new = phrase_changes(f"{model.subject}\n{model.body}", f"{final_edit.subject}\n{final_edit.body}")
            deleted.update(set(gone))  # a phrase counts once per draft: "how many drafts lost it"
            added.update(set(new))
            length_changes.append(len(_words(final_edit.body)) - len(_words(model.body)))
            distances.append(int(final_edit.edit_distance or 0))
        approved = sum(1 for _, status, _, _ in rows if status in APPROVED_STATUSES)
        rejected = sum(1 for _, status, _, _ in rows if status == "rejected")
        result.append(VersionFeedback(
            template=name, version=version, drafts=len(rows), decided=approved + rejected, approved=approved,
            rejected=rejected, edited=edited, rejection_reasons=_top(reasons, top), rejection_notes=notes,
            deleted=_top(deleted, top), added=_top(added, top),
            median_length_change_words=float(median(length_changes)) if length_changes else None,
            mean_edit_distance=round(sum(distances) / len(distances), 1) if distances else None,
        ))
    return result


def auto_approval(
    factory: sessionmaker[Session], name: str, version: str, policy: AutoApprovePolicy, *, kind: str = "followup"
) -> AutoApproval:
    """Whether drafts of ``name`` v``version`` may skip review, judged on its ``policy.window`` most recent
    decided drafts: at least ``min_approvals`` approvals, mean edit distance of approved drafts below the
    threshold, and a rejection rate no higher than ``max_rejection_rate``. Follow-ups only; off by default."""

    def verdict(eligible: bool, reason: str, approvals: int = 0, rejection_rate: float | None = None,
                mean_distance: float | None = None) -> AutoApproval:
        return AutoApproval(template=name, version=version, eligible=eligible, reason=reason, approvals=approvals,
                            rejection_rate=rejection_rate, mean_edit_distance=mean_distance)

    if not policy.enabled:
        return verdict(False, "auto-approval is off (auto_approve.enabled in prompts/registry.yaml)")
    if kind != "followup":
        return verdict(False, "only follow-up templates can earn auto-approval")
    with factory() as session:
        rows = session.execute(
            select(DraftRow.id, DraftRow.status)
            .join(DraftVersionRow, DraftVersionRow.draft_id == DraftRow.id)
            .where(DraftVersionRow.template_name == name, DraftVersionRow.template_version == version,
                   DraftVersionRow.number == 1,
                   DraftRow.status.in_((*APPROVED_STATUSES, "rejected")))
            .order_by(DraftRow.updated_at.desc(), DraftRow.id.desc())
            .limit(policy.window)
        ).all()
        approved_ids = [int(i) for i, status in rows if status in APPROVED_STATUSES]
        distances: dict[int, int] = {}
        if approved_ids:
            for draft_id, distance in session.execute(
                select(DraftVersionRow.draft_id, DraftVersionRow.edit_distance)
                .where(DraftVersionRow.draft_id.in_(approved_ids), DraftVersionRow.source == "edit")
                .order_by(DraftVersionRow.number)
            ):
                distances[int(draft_id)] = int(distance or 0)
    approvals = len(approved_ids)
    rejection_rate = (len(rows) - approvals) / len(rows) if rows else None
    mean_distance = sum(distances.get(i, 0) for i in approved_ids) / approvals if approvals else None
    if approvals < policy.min_approvals:
        return verdict(False, f"{approvals} approvals of {policy.min_approvals} needed", approvals, rejection_rate,
                       mean_distance)
    assert rejection_rate is not None and mean_distance is not None
    if rejection_rate > policy.max_rejection_rate:
        return verdict(False, f"rejection rate {rejection_rate:.0%} is above {policy.max_rejection_rate:.0%} "
                       "(auto-approval lost)", approvals, rejection_rate, mean_distance)
    if mean_distance >= policy.max_mean_edit_distance:
        return verdict(False, f"mean edit distance {mean_distance:.1f} is not below "
                       f"{policy.max_mean_edit_distance:g}", approvals, rejection_rate, mean_distance)
    return verdict(True, f"{approvals} approvals, mean edit distance {mean_distance:.1f}, rejection rate "
                   f"{rejection_rate:.0%} over the last {len(rows)} decided drafts", approvals, rejection_rate,
                   mean_distance)
