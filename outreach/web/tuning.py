"""Prompt tuning in the web app: templates and versions, edit → save as a new version, live preview, promote.

Everyone who can log in may read (SDRs see why a draft reads the way it does); ``marketing`` and ``admin``
may save versions and move labels — marketing owns the voice. Every form carries the session's CSRF token
like the review forms. Preview renders the edited text without saving it, on an account from the configured
data directory (``OUTREACH_DATA_DIR``) or, without one, on the cases of the shipped evaluation set, and shows
the rendered prompt, the offline draft and — when an LLM provider is configured — the model's draft.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError

from outreach import bundled
from outreach.drafting.evaluation import EvalSet, load_eval_set, score_draft
from outreach.drafting.facts import DraftFacts, fact_variables
from outreach.drafting.providers.base import Draft
from outreach.drafting.providers.offline import draft_offline
from outreach.drafting.registry import DEFAULT_LABEL, MAX_NOTE_CHARS, MAX_SOURCE_CHARS, WORKING, Registry
from outreach.drafting.templates import PromptTemplate, load_template, render
from outreach.errors import OutreachError, PermissionDeniedError
from outreach.metrics.experiments import experiment_report
from outreach.review.users import Principal
from outreach.web.pages import CsrfField, User, _context, _render, check_csrf, flash
from outreach.web.state import ReviewApp

router = APIRouter(include_in_schema=False)
EDITORS = ("marketing", "admin")


@dataclass
class PreviewAccount:
    id: str
    label: str
    facts: DraftFacts


@dataclass
class PreviewSource:
    """Accounts to preview on, with what validation needs; built once per app (loading data is slow)."""

    origin: str
    accounts: list[PreviewAccount]
    eval_set: EvalSet | None
    catalog: Any
    config: Any
    others: list[Any]

    def account(self, account_id: str) -> PreviewAccount:
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise OutreachError(f"no preview account '{account_id}'", hint="pick one from the list")


def _review(request: Request) -> ReviewApp:
    review: ReviewApp = request.app.state.review
    return review


def _registry(request: Request) -> Registry:
    return Registry.open(_review(request).settings.prompts_dir)


def _require_editor(user: Principal) -> None:
    if user.role not in EDITORS:
        raise PermissionDeniedError(f"the {user.role} role can read prompts but not change them",
                                    hint="ask marketing or an admin")


def _preview_source(request: Request) -> PreviewSource:
    cached: PreviewSource | None = getattr(request.app.state, "tuning_preview", None)
    if cached is not None:
        return cached
    review = _review(request)
    source: PreviewSource
    if review.settings.data_dir is not None:
        from outreach.drafting.drafts import open_workspace

        workspace = open_workspace(review.settings.data_dir, review.settings.as_of or date.today(),
                                   rules_path=review.settings.rules_path, prompts_dir=review.settings.prompts_dir)
        accounts = []
        for decision in workspace.decisions:
            if decision.offer is None or not decision.frictions:
                continue
            facts = workspace.context.facts(decision)
            accounts.append(PreviewAccount(decision.account_id, f"{decision.account.name} · {decision.cohort} · "
                                           f"{decision.offer.motion}", facts))
        source = PreviewSource("data", accounts, None, workspace.dataset.catalog, workspace.context.config,
                               list(workspace.dataset.accounts))
    else:
        eval_set = load_eval_set(bundled.locate("eval", review.settings).path)
        accounts = [PreviewAccount(case.id, f"{case.facts.account.name} · {case.facts.kind} · "
                                   f"{case.expected.motion}", case.facts) for case in eval_set.cases]
        source = PreviewSource("eval", accounts, eval_set, eval_set.catalog, eval_set.config,
                               eval_set.other_accounts)
    request.app.state.tuning_preview = source
    return source


def _matching(template: PromptTemplate, source: PreviewSource) -> list[PreviewAccount]:
    meta = template.meta
    return [a for a in source.accounts
            if meta.motion in ("any", a.facts.offer.motion) and (meta.kind == "followup" or a.facts.kind == meta.kind)]


@router.get("/prompts", response_class=HTMLResponse)
def prompts_page(request: Request, user: User) -> HTMLResponse:
    registry = _registry(request)
    rows = []
    for name in registry.names():
        entry = registry.data.templates.get(name)
        description, motion, kind = "", "", ""
        try:
            meta = registry.working(name).meta
            description, motion, kind = meta.description, str(meta.motion), str(meta.kind)
        except OutreachError:
            pass
        labels = {label: (t if isinstance(t, str) else f"split {t.experiment}") for label, t in
                  (entry.labels.items() if entry else [])}
        rows.append({"name": name, "versions": len(entry.versions) if entry else 0, "labels": labels,
                     "description": description, "motion": motion, "kind": kind})
    return _render(request, "prompts.html", _context(request, user, rows=rows, can_edit=user.role in EDITORS))


@router.get("/prompts/{name}", response_class=HTMLResponse)
def prompt_page(request: Request, name: str, user: User, version: str = "") -> HTMLResponse:
    return _prompt_page(request, user, name, version=version)


def _prompt_page(request: Request, user: Principal, name: str, *, version: str = "", status: int = 200,
                 form: dict[str, str] | None = None, error: OutreachError | None = None) -> HTMLResponse:
    registry = _registry(request)
    versions = registry.versions(name) if name in registry.data.templates else []
    shown = registry.get(f"{name}@{version}" if version else name)
    working = registry.working(name)
    unsaved = working.sha256 not in {v.sha256 for v in versions}
    review = _review(request)
    report = experiment_report(review.factory, registry, name)
    source = _preview_source(request)
    extra = []
    if error is not None:
        extra.append({"kind": "error", "text": error.message + (f" — {error.hint}" if error.hint else "")})
    entry = registry.data.templates.get(name)
    return _render(request, "prompt.html", _context(
        request, user, name=name, versions=versions, shown=shown, working=working, unsaved=unsaved,
        labels=entry.labels if entry else {}, promotions=list(reversed(entry.promotions))[:10] if entry else [],
        report=report, variables=fact_variables(), accounts=_matching(shown, source), origin=source.origin,
        can_edit=user.role in EDITORS, form=form or {}, extra_flashes=extra, default_label=DEFAULT_LABEL,
        max_note=MAX_NOTE_CHARS, max_source=MAX_SOURCE_CHARS,
    ), status=status)


@router.post("/prompts/{name}/versions", response_model=None)
def save_version(request: Request, name: str, user: User, csrf_token_field: CsrfField = None,
                 source: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token_field)
    try:
        _require_editor(user)
        saved = _registry(request).save(name, source, note=note, author=user.email)
    except OutreachError as error:
        from outreach.web.state import status_for

        return _prompt_page(request, user, name, status=status_for(error), form={"source": source, "note": note},
                            error=error)
    flash(request, "success", f"Saved {name} version {saved.version}. Preview it, then promote it to a label.")
    return RedirectResponse(f"/prompts/{name}?version={saved.version}", status_code=303)


@router.post("/prompts/{name}/promote", response_model=None)
def promote(request: Request, name: str, user: User, csrf_token_field: CsrfField = None,
            version: Annotated[str, Form()] = "", label: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token_field)
    try:
        _require_editor(user)
        _registry(request).promote(name, version, label.strip(), author=user.email)
    except OutreachError as error:
        from outreach.web.state import status_for

        return _prompt_page(request, user, name, status=status_for(error), error=error)
    flash(request, "success", f"{name}: {label.strip()} → version {version}")
    return RedirectResponse(f"/prompts/{name}", status_code=303)


def _template_from_source(name: str, source: str) -> PromptTemplate:
    if len(source) > MAX_SOURCE_CHARS:
        raise OutreachError(f"the template is {len(source):,} characters; the limit is {MAX_SOURCE_CHARS:,}")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"{name}.md.j2"
        path.write_text(source.replace("\r\n", "\n"), encoding="utf-8")
        return load_template(path)


@router.post("/prompts/{name}/preview", response_class=HTMLResponse)
def preview(request: Request, name: str, user: User, csrf_token_field: CsrfField = None,
            account: Annotated[str, Form()] = "", source: Annotated[str, Form()] = "",
            version: Annotated[str, Form()] = "") -> HTMLResponse:
    """Render the (possibly unsaved) template for one account: prompt, offline draft, LLM draft if configured."""
    check_csrf(request, csrf_token_field)
    context: dict[str, Any] = {"request": request}
    try:
        template = (_template_from_source(name, source) if source.strip()
                    else _registry(request).get(f"{name}@{version or WORKING}"))
        chosen = _preview_source(request).account(account)
        facts = chosen.facts
        if template.meta.kind == "followup" and facts.kind != "followup":
            facts = facts.model_copy(update={"kind": "followup", "previous_subject": facts.primary.headline})
        prompt = render(template, facts)
        drafts: list[tuple[str, dict[str, Any] | None, str | None]] = [
            ("Offline drafter", _scored(draft_offline(facts), facts, _preview_source(request)), None)
        ]
        drafts.append(_llm_draft(request, prompt, facts))
        context.update(prompt=prompt, drafts=drafts, account=chosen, error=None)
    except OutreachError as error:
        context.update(error=error)
    except TemplateError as error:  # the sandbox refused something the template tried (SecurityError), or a bug
        blocked = isinstance(error, SecurityError)
        context.update(error=OutreachError(
            f"{'the sandbox blocked the template' if blocked else 'the template failed'}: {error}",
            hint="templates may only use the documented variables (outreach prompts list --variables)"))
    return _render(request, "_prompt_preview.html", context)


def _scored(draft: Draft, facts: DraftFacts, source: PreviewSource) -> dict[str, Any]:
    from outreach.drafting.evaluation import EvalCase, Expected

    case = EvalCase(id="preview", facts=facts, expected=Expected(
        motion=facts.offer.motion, offer_id=facts.offer.id, offer_name=facts.offer.name,
        friction_kind=facts.primary.kind))
    checks, _ = score_draft(draft, case, source.catalog, source.config.validation, other_accounts=source.others)
    return {"draft": draft, "checks": checks}


def _llm_draft(request: Request, prompt: Any, facts: DraftFacts) -> tuple[str, dict[str, Any] | None, str | None]:
    settings = _review(request).settings
    if settings.openai_api_key is None:
        return "LLM", None, "No LLM provider configured (set OPENAI_API_KEY to see the model's draft here)."
    from outreach.drafting.providers import get_provider
    from outreach.drafting.providers.base import ProviderFailure

    source = _preview_source(request)
    try:
        provider = get_provider("openai", settings, source.config)
        result = asyncio.run(provider.generate(prompt, facts))
    except (ProviderFailure, OutreachError) as error:
        return f"LLM ({settings.openai_model})", None, f"The model did not answer: {error}"
    return f"LLM ({result.model})", _scored(result.draft, facts, source), None
