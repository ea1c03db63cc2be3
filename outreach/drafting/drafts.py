"""Drafts: one friction-led email per ``ready`` account, written by a provider and checked by the validators.

Writing an email and sending it are separate: this module only writes. Each :class:`DraftRecord` keeps what
a reviewer needs to trust it: the template (name, version, file hash), provider and model, token usage and
cost, and every validation issue. An LLM draft that breaks a rule gets one repair attempt with the reasons;
if it still fails (or the provider gives up after its retries), the offline drafter writes the email from
the same facts and the record is flagged as a fallback, keeping the LLM's reasons. A provider error that no
retry can fix (a bad key, insufficient quota) stops the run and is reported once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from outreach.drafting.claims import AccountIndex
from outreach.drafting.config import DraftingConfig
from outreach.drafting.examples import catalog_examples
from outreach.drafting.facts import DraftFacts, PromptKind, SenderFacts, build_facts, catalog_sender
from outreach.drafting.ledger import TokenUsage, total
from outreach.drafting.providers.base import Draft, Provider, ProviderFailure, RepairRequest
from outreach.drafting.templates import PromptTemplate, RenderedPrompt, render, select_template
from outreach.drafting.validation import Issue, account_index, validate_draft
from outreach.engine.catalog import Catalog
from outreach.engine.data import Account, Dataset, Ticket
from outreach.engine.decisions import Decision
from outreach.engine.offers import Offer
from outreach.errors import ProviderError

logger = logging.getLogger(__name__)

DraftStatus = Literal["ok", "flagged", "failed"]


class Attempt(BaseModel):
    """One provider attempt at a draft: what it produced (if anything) and why it was not accepted."""

    provider: str
    model: str
    draft: Draft | None = None
    issues: list[Issue] = Field(default_factory=list)
    error: str | None = None
    cached: bool = False
    usage: TokenUsage = Field(default_factory=TokenUsage)


class SteeringNote(BaseModel):
    """A ticket in the prompt whose text looks written to steer the model (see outreach.drafting.spotlight)."""

    ticket_id: str
    reason: str


class DraftRecord(BaseModel):
    """A written draft with everything a reviewer needs to trust it (one line of drafts.jsonl)."""

    id: str
    account_id: str
    account_name: str
    as_of: date
    kind: PromptKind
    motion: str
    offer: Offer | None
    friction_ids: list[str] = Field(default_factory=list)
    template: str | None = None
    template_version: str | None = None
    template_sha256: str | None = None
    provider: str
    model: str
    status: DraftStatus
    draft: Draft | None = None
    issues: list[Issue] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    fallback: bool = Field(default=False, description="The offline drafter wrote it after the LLM failed.")
    cached: bool = False
    usage: TokenUsage = Field(default_factory=TokenUsage)
    error: str | None = None
    steering: list[SteeringNote] = Field(default_factory=list, description="Tickets that tried to steer the model.")
    sender: str | None = Field(default=None, description="Who signs: the account owner's email, else the catalog's.")
    created_at: datetime

    def review_notes(self) -> list[str]:
        """Why a reviewer should look, in plain words: the final draft's issues, what the model's rejected or
        repaired attempts got wrong, a provider failure, and tickets that tried to steer the model."""
        notes = [issue.line() for issue in self.issues]
        llm = [a for a in self.attempts if a.provider != "offline"]
        rejected = [a for a in llm if a.issues]
        if self.fallback:
            last = llm[-1] if llm else None
            if last is not None and last.error:
                notes.append(f"The model gave no usable draft ({last.error}); the offline draft replaced it.")
            elif last is not None and last.issues:
                notes.append("The model's draft was replaced by the offline draft because it broke these rules: "
                             + "; ".join(issue.line() for issue in last.issues))
            for number, attempt in enumerate(rejected[:-1] if last is not None and last.issues else rejected, 1):
                notes.append(f"Attempt {number} was sent back for repair: "
                             + "; ".join(issue.line() for issue in attempt.issues))
        elif rejected:
            notes.append("The model's first draft was repaired after it broke these rules: "
                         + "; ".join(issue.line() for issue in rejected[0].issues))
        for note in self.steering:
            notes.append(f"Ticket {note.ticket_id} tried to steer the model ({note.reason}); it was treated as data.")
        if self.error and not self.draft:
            notes.append(self.error)
        return notes


class RunSummary(BaseModel):
    total: int
    drafted: int = Field(description="Status ok: passed every rule.")
    flagged: int = Field(description="Written but needs a reviewer's eye (issues or offline fallback).")
    failed: int = Field(description="No draft written.")
    fallbacks: int
    cache_hits: int
    usage: TokenUsage
    error: str | None = None

    @classmethod
    def of(cls, records: Sequence[DraftRecord], error: str | None = None) -> RunSummary:
        return cls(
            total=len(records),
            drafted=sum(r.status == "ok" for r in records),
            flagged=sum(r.status == "flagged" for r in records),
            failed=sum(r.status == "failed" for r in records),
            fallbacks=sum(r.fallback for r in records),
            cache_hits=sum(r.cached for r in records),
            usage=total(r.usage for r in records),
            error=error,
        )

    def line(self) -> str:
        u = self.usage
        return (
            f"{self.total} drafts: {self.drafted} ok, {self.flagged} flagged, {self.failed} failed"
            f" ({self.fallbacks} offline fallbacks, {self.cache_hits} from cache);"
            f" tokens {u.prompt_tokens} prompt + {u.completion_tokens} completion ({u.cached_tokens} cached),"
            f" est. cost ${u.cost_usd:.4f}"
        )


@dataclass
class DraftingContext:
    """What drafting needs besides the decision: catalog, tickets, the other accounts, templates, config."""

    catalog: Catalog
    templates: dict[str, PromptTemplate]
    config: DraftingConfig
    accounts: list[Account] = field(default_factory=list)
    tickets_by_account: dict[str, list[Ticket]] = field(default_factory=dict)
    # A/B tests: picks the template version for (template, account id); see outreach.metrics.experiments.
    variant: Callable[[PromptTemplate, str], PromptTemplate] | None = None
    # Who signs for each owner email (the users table, via outreach.review.users.senders); others: the catalog.
    senders: Mapping[str, SenderFacts] = field(default_factory=dict)

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, templates: dict[str, PromptTemplate], config: DraftingConfig
    ) -> DraftingContext:
        return cls(
            catalog=dataset.catalog,
            templates=templates,
            config=config,
            accounts=list(dataset.accounts),
            tickets_by_account=dataset.tickets_by_account,
        )

    def sender(self, decision: Decision) -> SenderFacts | None:
        """The account owner when the users table knows them (or they are the catalog's sender), else None."""
        owner = (decision.account.owner_email or "").strip().lower()
        if not owner:
            return None
        if owner in self.senders:
            return self.senders[owner]
        if owner == self.catalog.company.sender_email.lower():
            return catalog_sender(self.catalog, owner=True)
        return None

    def facts(self, decision: Decision, kind: PromptKind = "first_touch") -> DraftFacts:
        return build_facts(
            decision,
            self.catalog,
            self.tickets_by_account.get(decision.account_id, []),
            budget=self.config.untrusted,
            kind=kind,
            sender=self.sender(decision),
            examples=catalog_examples(self.catalog),
        )

    @functools.cached_property
    def account_index(self) -> AccountIndex:
        return account_index(self.accounts)

    def validate(self, draft: Draft, facts: DraftFacts) -> list[Issue]:
        return validate_draft(draft, facts, self.catalog, self.config.validation, other_accounts=self.account_index)


def _created_at(as_of: date) -> datetime:
    """Deterministic: drafts for the same analysis date carry the same timestamp."""
    return datetime.combine(as_of, time(0, 0), tzinfo=UTC)


def _record(
    decision: Decision,
    facts: DraftFacts | None,
    prompt: RenderedPrompt | None,
    kind: PromptKind,
    provider: str,
    model: str,
    status: DraftStatus,
    **values: object,
) -> DraftRecord:
    template = prompt.template if prompt else None
    return DraftRecord.model_validate(
        {
            "id": f"{decision.account_id}:{decision.as_of.isoformat()}:{kind}",
            "account_id": decision.account_id,
            "account_name": decision.account.name,
            "as_of": decision.as_of,
            "kind": kind,
            "motion": decision.offer.motion if decision.offer else "none",
            "offer": decision.offer,
            "friction_ids": [f.id for f in facts.frictions] if facts else [],
            "template": template,
            "template_version": prompt.version if prompt else None,
            "template_sha256": prompt.sha256 if prompt else None,
            "steering": [{"ticket_id": t.id, "reason": t.steering} for t in facts.tickets if t.steering]
            if facts else [],
            "sender": facts.sender.email if facts else None,
            "provider": provider,
            "model": model,
            "status": status,
            "created_at": _created_at(decision.as_of),
            **values,
        }
    )


async def write_draft(
    decision: Decision,
    context: DraftingContext,
    provider: Provider,
    *,
    kind: PromptKind = "first_touch",
) -> DraftRecord:
    """Draft one decided account. Raises :class:`ProviderError` only for failures no retry can fix."""
    from outreach.drafting.providers.offline import OfflineProvider

    facts = context.facts(decision, kind)
    assert decision.offer is not None  # build_facts refuses decisions without an offer
    template = select_template(context.templates, decision.offer.motion, kind)
    if context.variant is not None:
        template = context.variant(template, decision.account_id)
    prompt = render(template, facts)

    attempts: list[Attempt] = []
    repair: RepairRequest | None = None
    rounds = 1 if provider.name == "offline" else 1 + context.config.openai.repair_attempts
    for _ in range(rounds):
        try:
            result = await provider.generate(prompt, facts, repair=repair)
        except ProviderFailure as failure:
            attempts.append(
                Attempt(provider=provider.name, model=provider.model, error=failure.message, usage=failure.usage)
            )
            break
        issues = context.validate(result.draft, facts)
        attempts.append(
            Attempt(
                provider=provider.name, model=result.model, draft=result.draft, issues=issues,
                cached=result.cached, usage=result.usage,
            )
        )
        if not issues:
            return _record(
                decision, facts, prompt, kind, provider.name, result.model, "ok",
                draft=result.draft, attempts=attempts if len(attempts) > 1 else [],
                cached=result.cached, usage=total(a.usage for a in attempts),
            )
        if provider.name == "offline":
            return _record(
                decision, facts, prompt, kind, provider.name, result.model, "flagged",
                draft=result.draft, issues=issues, usage=result.usage,
            )
        repair = RepairRequest(previous=result.draft, issues=issues)

    offline = OfflineProvider()
    fallback = await offline.generate(prompt, facts)
    issues = context.validate(fallback.draft, facts)
    return _record(
        decision, facts, prompt, kind, offline.name, fallback.model, "flagged",
        draft=fallback.draft, issues=issues, attempts=attempts, fallback=True,
        usage=total(a.usage for a in attempts),
    )


ProgressCallback = Callable[[DraftRecord], None]


async def draft_all(
    decisions: Sequence[Decision],
    context: DraftingContext,
    provider: Provider,
    *,
    concurrency: int | None = None,
    limit: int | None = None,
    kind: PromptKind = "first_touch",
    progress: ProgressCallback | None = None,
) -> tuple[list[DraftRecord], RunSummary]:
    """Draft every ``ready`` decision (at most ``limit``), ``concurrency`` at a time, in input order.

    A :class:`ProviderError` stops new requests: the drafts still waiting are recorded as failed with the
    error, and the summary carries it so the caller can report it once.
    """
    ready = [d for d in decisions if d.cohort == "ready" and d.offer is not None]
    if limit is not None:
        ready = ready[: max(limit, 0)]
    width = concurrency or (context.config.openai.concurrency if provider.name != "offline" else 1)
    gate = asyncio.Semaphore(max(width, 1))
    stop: list[ProviderError] = []

    async def one(decision: Decision) -> DraftRecord:
        async with gate:
            if stop:
                record = _record(
                    decision, None, None, kind, provider.name, provider.model, "failed",
                    error=f"not attempted: {stop[0].message}",
                )
            else:
                try:
                    record = await write_draft(decision, context, provider, kind=kind)
                except ProviderError as error:
                    logger.warning("provider %s failed; remaining drafts not attempted: %s", provider.name, error.message)
                    stop.append(error)
                    record = _record(
                        decision, None, None, kind, provider.name, provider.model, "failed", error=error.message
                    )
        logger.debug("draft %s (%s): %s", record.account_id, record.motion, record.status)
        if progress is not None:
            progress(record)
        return record

    records = list(await asyncio.gather(*(one(d) for d in ready)))
    summary = RunSummary.of(records, error=stop[0].message if stop else None)
    logger.info("drafted with %s: %s", provider.name, summary.line())
    return records, summary


def run_drafts(
    decisions: Sequence[Decision],
    context: DraftingContext,
    provider: Provider,
    *,
    concurrency: int | None = None,
    limit: int | None = None,
    kind: PromptKind = "first_touch",
    progress: ProgressCallback | None = None,
) -> tuple[list[DraftRecord], RunSummary]:
    """Synchronous wrapper around :func:`draft_all` for the CLI, scripts and sync web handlers.

    When this thread already runs an event loop (a sync handler under an async server, Playwright's sync
    API), ``asyncio.run`` would refuse, so the batch runs on its own loop in a worker thread instead.
    """
    work = draft_all(decisions, context, provider, concurrency=concurrency, limit=limit, kind=kind, progress=progress)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass
class Workspace:
    """A data directory loaded and decided, ready to draft or preview."""

    dataset: Dataset
    decisions: list[Decision]
    context: DraftingContext

    def decision(self, account_id: str) -> Decision:
        self.dataset.account(account_id)  # NotFoundError with a hint when the id is unknown
        return next(d for d in self.decisions if d.account_id == account_id)


def open_workspace(
    data_dir: Path,
    as_of: date,
    *,
    rules_path: Path | None = None,
    config_path: Path | None = None,
    prompts_dir: Path | None = None,
    label: str | None = None,
    dataset: Dataset | None = None,
    senders: Mapping[str, SenderFacts] | None = None,
) -> Workspace:
    """Load the data, decide every account, load templates and drafting.yaml (data dir, then ``config_path``).

    ``senders`` maps owner emails to who signs (``outreach.review.users.senders``); without an entry the
    catalog's sender signs. Templates are the versions ``label`` (default ``production``) points at in the
    prompt registry; when that
    label splits traffic (an A/B test), each account drafts with its arm's version and the control share is
    held out by the gate, so it is never contacted.
    """
    from outreach.drafting.config import load_drafting_config
    from outreach.drafting.registry import load_templates
    from outreach.drafting.routing import TrafficRouter
    from outreach.engine.data import load_dataset
    from outreach.engine.decisions import decide, rules_for

    dataset = dataset or load_dataset(data_dir)  # ``dataset``: already loaded (with stored events)
    router = TrafficRouter.for_directory(prompts_dir, label)
    decisions = decide(dataset, rules_for(dataset, rules_path), as_of,
                       held_out=router.held_out if router else None)
    config = load_drafting_config(dataset.root / "drafting.yaml", config_path)
    templates = load_templates(prompts_dir, label=label)
    context = DraftingContext.from_dataset(dataset, templates, config)
    context.variant = router.template_for if router else None
    context.senders = dict(senders or {})
    return Workspace(dataset, decisions, context)


def write_jsonl(records: Sequence[DraftRecord], path: Path) -> Path:
    """Write the drafts as JSON lines (the review queue's import format until the queue owns storage)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.model_dump(mode="json"), ensure_ascii=False, sort_keys=False) + "\n")
    return path


def read_jsonl(path: Path) -> list[DraftRecord]:
    with path.open(encoding="utf-8") as handle:
        return [DraftRecord.model_validate_json(line) for line in handle if line.strip()]
