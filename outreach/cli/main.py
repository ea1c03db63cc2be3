"""The ``outreach`` command line: parses input, calls the library, prints results.

Conventions every command follows (exit codes, errors, piped output, logging, shared options) are in
:mod:`outreach.cli.common`; its docstring has the short "Adding a command" checklist.
"""


import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from outreach import __version__, bundled
from outreach.cli.common import (
    DEMO_AS_OF,
    DEMO_DATA,
    EXIT_NOTHING_TO_DO,
    AsOfOption,
    DataOption,
    JsonOption,
    LogLevel,
    OutreachGroup,
    RulesOption,
    check_date,
    configure_logging,
    console,
    data_dir,
    err_console,
    get_settings,
    load_data,
    log_level_for,
    parse_as_of,
    print_error,
    run,
)
from outreach.cli.integrations import register as register_integrations
from outreach.cli.metrics import register as register_metrics
from outreach.cli.review import register as register_review
from outreach.cli.rules import register as register_rules
from outreach.cli.sequences import register as register_sequences
from outreach.cli.tuning import register as register_tuning
from outreach.types import Cohort

if TYPE_CHECKING:
    from outreach.drafting.drafts import DraftRecord, RunSummary, Workspace
    from outreach.drafting.templates import RenderedPrompt
    from outreach.engine.data import Account
    from outreach.engine.decisions import Decision

# Each command imports the library it needs when it runs: `outreach --help` and `outreach explain` start
# without the drafting, database and web stacks (docs/BENCHMARKS.md, "Start-up").

app = typer.Typer(
    name="outreach",
    cls=OutreachGroup,
    epilog="Exit codes: 0 ok · 1 nothing to do or partial · 2 bad input or option · 3 evaluation regression · "
    "70 bug. Configuration: OUTREACH_* variables (docs/configuration.md); `outreach init` writes an editable "
    "workspace.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _print_version(value: bool) -> None:
    if value:
        console.print(f"outreach {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="Show what happens: -v info (where prompts, rules and data come "
                                         "from), -vv debug.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    log_level: Annotated[LogLevel | None, typer.Option("--log-level", case_sensitive=False,
                                                       help="Log level (default OUTREACH_LOG_LEVEL or WARNING).")] = None,
) -> None:
    """Turn product-usage and support signals into reviewed, friction-led expansion emails."""
    configure_logging(run(lambda: log_level_for(verbose, quiet, log_level)))
    bundled.forget_logged_sources()


def _held_out() -> "Callable[[Account], bool] | None":
    """The A/B control group of the prompt registry (OUTREACH_PROMPTS_DIR), exactly as ``draft`` and ``report``
    hold it out; None when no experiment splits traffic.

    A registry whose text never says ``experiment`` holds no split (a split cannot be written without that key),
    so it is not parsed: the prompt stack that parses it is a fifth of a demo ``explain`` (docs/BENCHMARKS.md)."""
    directory = bundled.locate("prompts", get_settings()).path
    try:
        if "experiment" not in (directory / "registry.yaml").read_text(encoding="utf-8"):
            return None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        pass  # the registry reports it, with its fix
    from outreach.drafting.routing import TrafficRouter

    router = TrafficRouter.for_directory(directory)
    return router.held_out if router is not None else None


def _decisions(data: Path, as_of: str | None, rules: Path | None, *, stored: bool = True) -> "list[Decision]":
    """Decide every account of ``data`` (already resolved: see :func:`outreach.cli.common.data_dir`), with the
    workspace's stored events unless ``stored`` is False (the demo reads its bundled files only); the A/B
    control group held out as ``draft`` and ``report`` hold it out."""
    from outreach.engine.decisions import decide, explain, rules_for

    settings = get_settings()
    rules_path = rules or settings.rules_path
    if not stored:
        return explain(data, parse_as_of(as_of), rules_path=rules_path, held_out=_held_out())
    dataset = load_data(data)
    return decide(dataset, rules_for(dataset, rules_path), parse_as_of(as_of), held_out=_held_out())


def explain_table(decisions: "list[Decision]", title: str = "Expansion readiness") -> Table:
    table = Table(title=title, show_lines=True, expand=False)
    table.add_column("Account", style="bold", no_wrap=True)
    table.add_column("Cohort")
    table.add_column("Health", justify="right")
    table.add_column("Friction (strongest first)", overflow="fold", ratio=3)
    table.add_column("Gate", overflow="fold", ratio=2)
    table.add_column("Offer", overflow="fold")
    cohort_style = {"ready": "green", "nurture": "yellow", "not_fit": "dim"}
    band_style = {"green": "green", "yellow": "yellow", "red": "red"}
    for decision in decisions:
        frictions = "\n".join(f"[{f.motion}] {f.statement}" for f in decision.frictions) or "—"
        gate = "passes" if decision.gate.allowed else "\n".join(f"{r.rule}: {r.message}" for r in decision.gate.reasons)
        offer = "—"
        if decision.offer is not None:
            o = decision.offer
            quantity = f"{o.quantity}× " if o.quantity > 1 else ""
            discount = f", −{o.discount_pct:g}%" if o.discount_pct else ""
            offer = f"{quantity}{o.name} ({o.id})\n{o.motion}, ${o.price_monthly:,.0f}/mo{discount}"
        health = decision.health
        table.add_row(
            f"{decision.account.name}\n[dim]{decision.account.account_id}[/]",
            f"[{cohort_style[decision.cohort]}]{decision.cohort}[/]",
            f"[{band_style[health.band]}]{health.score}[/]",
            frictions,
            gate,
            offer,
        )
    return table


def cohort_summary(decisions: "list[Decision]") -> str:
    counts = {cohort: 0 for cohort in ("ready", "nurture", "not_fit")}
    for decision in decisions:
        counts[decision.cohort] += 1
    return (
        f"{len(decisions)} accounts: {counts['ready']} ready, {counts['nurture']} nurture, "
        f"{counts['not_fit']} not fit"
    )


@app.command("explain")
def explain_command(
    data_option: DataOption = None,
    as_of: AsOfOption = None,
    rules: RulesOption = None,
    as_json: JsonOption = False,
    cohort: Annotated[Cohort | None, typer.Option("--cohort", "-c", help="Only accounts in this cohort.")] = None,
) -> None:
    """Show, per account, the signals that fired, the friction, the health gate and the offer."""
    data = data_dir(data_option)
    wanted = cohort
    if as_json:

        def payload() -> Iterator[bytes]:
            from outreach.engine.decisions import explain_json_chunks, rules_for

            dataset = load_data(data)
            rules_used = rules_for(dataset, rules or get_settings().rules_path)
            chunks = explain_json_chunks(dataset, rules_used, parse_as_of(as_of), cohort=wanted,
                                         held_out=_held_out())
            return itertools.chain([next(chunks)], chunks)  # every check has run before the first byte is out

        chunks = run(payload)

        def write() -> None:
            sys.stdout.flush()
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()

        run(write)
        return
    decisions = [d for d in run(lambda: _decisions(data, as_of, rules)) if wanted in (None, d.cohort)]
    console.print(explain_table(decisions))
    console.print(cohort_summary(decisions))


@app.command("demo")
def demo_command(
    as_of: Annotated[str, typer.Option("--as-of", "-t", callback=check_date, metavar="YYYY-MM-DD",
                                       help="Analysis date for the demo data.")] = DEMO_AS_OF.isoformat(),
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the review web app when done (Ctrl-C stops it).")
    ] = True,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port for the review web app on 127.0.0.1.")] = 8000,
) -> None:
    """Run the whole job on the packaged demo data, from any directory.

    Explain, draft every ready account, fill the review queue and leave it pending for a demo SDR login, show the
    sending part on its own copy of the drafts (approved and run through a demo sequence into the outbox on a fast
    clock), load six months of outcome history, and serve the review app on localhost."""
    from outreach.application import Application
    from outreach.cli.review import prepare_demo, seed_demo_team
    from outreach.metrics.demo_history import load_demo_history
    from outreach.sending.scheduler import run_demo_sequence
    from outreach.web.app import create_app
    from outreach.web.app import serve as serve_app

    decisions = run(lambda: _decisions(DEMO_DATA, as_of, None, stored=False))
    console.print(explain_table(decisions, title=f"Demo: expansion readiness on {as_of}"))
    console.print(cohort_summary(decisions))
    settings = get_settings()
    out = settings.resolved_home() / "demo-drafts.jsonl"
    run(lambda: seed_demo_team(settings))  # the demo's reps sign their accounts' drafts
    _, records, summary = _draft_run(DEMO_DATA, as_of, None, None, None, None, None, out, progress_bar=False,
                                     stored=False)
    console.print(f"\n[bold]Drafts[/] ({records[0].provider if records else 'no'} provider): {summary.line()}",
                  highlight=False)
    _print_unoffered(decisions)
    for record in [r for r in records if r.draft is not None][:2]:
        console.print(draft_panel(record))
    console.print(f"[dim]All drafts: {out}[/]", highlight=False)
    _report_run_error(summary)
    analysis_date = parse_as_of(as_of)
    application = Application(settings.model_copy(update={"data_dir": DEMO_DATA, "as_of": analysis_date, "port": port}))
    setup = run(lambda: prepare_demo(application, DEMO_DATA, analysis_date))
    console.print(f"\n[bold]Review queue[/] ({settings.resolved_database_url()}): {setup.line()}; all pending, "
                  f"{setup.pending_for_sdr} of them assigned to {setup.email}", highlight=False)
    console.print(f"Demo login (SDR, shown once): [bold]{setup.email}[/] / [bold]{escape(setup.password)}[/]",
                  highlight=False)
    console.print(f"Manager login (admin, shown once): [bold]{setup.admin_email}[/] / "
                  f"[bold]{escape(setup.admin_password)}[/]", highlight=False)
    # The sending part runs on its own copy of the drafts, so the review queue above stays pending for the rep.
    sending_db = settings.resolved_home() / "demo-sending.db"
    sending = Application(application.settings.model_copy(update={"database_url": f"sqlite:///{sending_db}"}))
    run(lambda: prepare_demo(sending, DEMO_DATA, analysis_date))
    report = run(lambda: run_demo_sequence(sending, DEMO_DATA, analysis_date))
    sending.close()
    console.print(f"\n[bold]Sequences[/] (its own copy of the drafts in {sending_db}, approved; demo sequence on a "
                  "fast clock, outbox transport):", highlight=False)
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    history = run(lambda: load_demo_history(application, DEMO_DATA))
    console.print(f"\n[bold]Outcome history[/]: {history.line()} — see /dashboard or `outreach report`",
                  highlight=False)
    if serve:
        console.print(f"Review app: http://127.0.0.1:{port}/  (Ctrl-C to stop)", highlight=False)
        serve_app(run(lambda: create_app(application)), host="127.0.0.1", port=port)
    application.close()


# ---------------------------------------------------------------------------------------------- drafting

ProviderOption = Annotated[
    str | None,
    typer.Option("--provider", "-p", help="offline or openai (default: openai when OPENAI_API_KEY is set, else offline)."),
]
PromptsOption = Annotated[
    Path | None, typer.Option("--prompts", help="Prompt template directory (default: OUTREACH_PROMPTS_DIR, else the "
                              "workspace's prompts/, else the packaged defaults).")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="drafting.yaml overriding validation, limits and prices.")
]


def draft_panel(record: "DraftRecord") -> Panel:
    """One draft as a reviewer sees it: subject, body, status and any issues."""
    draft = record.draft
    style = {"ok": "green", "flagged": "yellow", "failed": "red"}[record.status]
    lines = [f"[bold]Subject:[/] {escape(draft.subject)}", "", escape(draft.body)] if draft else [escape(record.error or "")]
    for issue in record.issues:
        lines.append(f"[yellow]! {issue.rule}: {escape(issue.message)}[/]")
    if record.fallback:
        lines.append("[yellow]! offline fallback: " + escape("; ".join(
            a.error or "; ".join(i.message for i in a.issues) for a in record.attempts)) + "[/]")
    title = f"{escape(record.account_name)} ({record.account_id}) · {record.motion} · [{style}]{record.status}[/]"
    subtitle = f"{record.template} v{record.template_version} · {record.provider}/{record.model}"
    return Panel("\n".join(lines), title=title, subtitle=subtitle, expand=False, width=100)


def _draft_run(
    data: Path,
    as_of: str | None,
    rules: Path | None,
    provider: str | None,
    limit: int | None,
    config: Path | None,
    prompts: Path | None,
    out: Path,
    *,
    progress_bar: bool = True,
    stored: bool = True,
    migrate: bool = False,
) -> "tuple[Workspace, list[DraftRecord], RunSummary]":
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from outreach.cli.review import owner_senders
    from outreach.drafting.drafts import open_workspace, run_drafts, write_jsonl
    from outreach.drafting.providers import get_provider

    settings = get_settings()

    def action() -> "tuple[Workspace, list[DraftRecord], RunSummary]":
        workspace = open_workspace(
            data, parse_as_of(as_of), rules_path=rules or settings.rules_path, config_path=config,
            prompts_dir=prompts or settings.prompts_dir, dataset=load_data(data) if stored else None,
            senders=owner_senders(settings, migrate=migrate),
        )
        chosen = get_provider(provider, settings, workspace.context.config)
        ready = [d for d in workspace.decisions if d.cohort == "ready" and d.offer is not None]
        count = min(len(ready), limit) if limit is not None else len(ready)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err_console, disable=not progress_bar, transient=True,
        ) as bar:
            task = bar.add_task(f"Drafting with {chosen.name}", total=count)
            records, summary = run_drafts(
                workspace.decisions, workspace.context, chosen, limit=limit,
                progress=lambda _record: bar.advance(task),
            )
        write_jsonl(records, out)
        return workspace, records, summary

    return run(action)


def _print_unoffered(decisions: "list[Decision]") -> None:
    from outreach.engine.decisions import unoffered_line

    line = unoffered_line(decisions)
    if line:
        console.print(f"[yellow]{escape(line)}[/]", highlight=False)


def _report_run_error(summary: "RunSummary") -> None:
    if summary.error:
        print_error(summary.error, "drafts not attempted are recorded as failed; fix the provider and re-run "
                    "(finished drafts come from the cache)")
        raise typer.Exit(EXIT_NOTHING_TO_DO)


@app.command("draft")
def draft_command(
    data_option: DataOption = None,
    as_of: AsOfOption = None,
    rules: RulesOption = None,
    provider: ProviderOption = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="Draft at most N ready accounts.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="JSONL file for the drafts (default: OUTREACH_HOME/drafts.jsonl).")
    ] = None,
    config: ConfigOption = None,
    prompts: PromptsOption = None,
    queue: Annotated[
        bool, typer.Option("--queue/--no-queue", help="Also put the drafts into the review queue database.")
    ] = True,
) -> None:
    """Draft a friction-led email for every ready account.

    Each draft is validated, written to a JSONL file and put into the review queue."""
    from outreach.cli.review import enqueue_drafts

    data = data_dir(data_option)
    settings = get_settings()
    target = out or settings.resolved_home() / "drafts.jsonl"
    workspace, records, summary = _draft_run(data, as_of, rules, provider, limit, config, prompts, target,
                                             migrate=queue)
    table = Table(title="Drafts", show_lines=False)
    for column in ("Account", "Status", "Provider", "Subject", "Issues"):
        table.add_column(column, overflow="fold")
    for record in records:
        style = {"ok": "green", "flagged": "yellow", "failed": "red"}[record.status]
        rejected: list[str] = sorted({str(i.rule) for a in record.attempts for i in a.issues}) or [
            a.error or "" for a in record.attempts]
        issues = "; ".join(f"{i.rule}: {i.message}" for i in record.issues) or (
            f"fallback ({', '.join(r for r in rejected if r)})" if record.fallback else "")
        if record.steering:
            issues += ("; " if issues else "") + f"ticket {', '.join(n.ticket_id for n in record.steering)} tried to steer"
        table.add_row(
            f"{escape(record.account_name)}\n[dim]{record.account_id}[/]", f"[{style}]{record.status}[/]",
            record.provider, escape(record.draft.subject if record.draft else record.error or ""), escape(issues),
        )
    console.print(table)
    console.print(summary.line(), highlight=False)
    _print_unoffered(workspace.decisions)
    console.print(f"Wrote {len(records)} drafts to {target}", highlight=False)
    if queue:
        results = run(lambda: enqueue_drafts(settings, workspace, [r for r in records if r.draft is not None]))
        created = sum(r.outcome == "created" for r in results)
        merged = sum(r.outcome == "merged" for r in results)
        console.print(
            f"Review queue ({settings.resolved_database_url()}): {created} new, {merged} merged into open drafts, "
            f"{len(results) - created - merged} skipped — review with `outreach serve` or `outreach queue list`",
            highlight=False,
        )
    _report_run_error(summary)


prompts_app = typer.Typer(help="List and preview prompt templates.", no_args_is_help=True)
app.add_typer(prompts_app, name="prompts")


@prompts_app.command("list")
def prompts_list_command(
    prompts: PromptsOption = None,
    variables: Annotated[bool, typer.Option("--variables", help="List the variables templates can use.")] = False,
) -> None:
    """List the prompt templates (name, version, motion, hash) or the variables they can use."""
    from outreach.drafting.facts import fact_variables
    from outreach.drafting.registry import load_templates

    if variables:
        table = Table(title="Template variables")
        for column in ("Name", "Type", "Description"):
            table.add_column(column, overflow="fold")
        for variable in fact_variables():
            note = " [yellow](untrusted: customer-written)[/]" if variable.untrusted else ""
            table.add_row(variable.name, escape(variable.type), escape(variable.description) + note)
        console.print(table)
        return
    source = run(lambda: bundled.locate("prompts", option=prompts))
    templates = run(lambda: load_templates(source.path))
    err_console.print(f"Prompts: {source.describe()}", highlight=False, markup=False, soft_wrap=True)
    table = Table(title="Prompt templates")
    for column in ("Name", "Version", "Motion", "Kind", "SHA-256", "Description"):
        table.add_column(column, overflow="fold")
    for template in templates.values():
        meta = template.meta
        table.add_row(meta.name, meta.version, meta.motion, meta.kind, template.sha256[:12], escape(meta.description))
    console.print(table)


@prompts_app.command("preview")
def prompts_preview_command(
    name: Annotated[str, typer.Argument(help="Template name (see `outreach prompts list`).")],
    account: Annotated[str, typer.Option("--account", "-a", help="Account id to render the prompt for.")],
    data_option: DataOption = None,
    as_of: AsOfOption = None,
    rules: RulesOption = None,
    prompts: PromptsOption = None,
    config: ConfigOption = None,
    with_draft: Annotated[bool, typer.Option("--draft", help="Also show the offline draft for the account.")] = False,
) -> None:
    """Show the rendered prompt (system, then user) for one account; with --draft, the offline draft too."""
    from outreach.drafting.drafts import open_workspace, run_drafts
    from outreach.drafting.providers.offline import OfflineProvider
    from outreach.drafting.templates import get_template, render
    data = data_dir(data_option)
    settings = get_settings()

    def action() -> "tuple[RenderedPrompt, DraftRecord | None]":
        workspace = open_workspace(
            data, parse_as_of(as_of), rules_path=rules or settings.rules_path, config_path=config,
            prompts_dir=prompts or settings.prompts_dir,
        )
        template = get_template(workspace.context.templates, name)
        decision = workspace.decision(account)
        facts = workspace.context.facts(decision, template.meta.kind)
        prompt = render(template, facts)
        record = None
        if with_draft:
            records, _ = run_drafts([decision], workspace.context, OfflineProvider(), kind=template.meta.kind)
            record = records[0] if records else None
        return prompt, record

    prompt, record = run(action)
    console.print(Panel(escape(prompt.system), title=f"system · {prompt.template} v{prompt.version} "
                        f"({prompt.sha256[:12]})", expand=False))
    console.print(Panel(escape(prompt.user), title="user", expand=False))
    if with_draft:
        if record is None:
            err_console.print(f"account {account} is not ready, so it gets no draft", highlight=False)
        else:
            console.print(draft_panel(record))


@app.command("init")
def init_command(
    directory: Annotated[
        Path | None, typer.Argument(help="Workspace directory (default: OUTREACH_HOME, else the current directory).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing files with the packaged ones.")] = False,
    example_data: Annotated[
        bool, typer.Option("--example-data/--no-example-data", help="Also write data/: the demo's accounts, events, "
                           "tickets and catalog, as an example to replace with yours.")
    ] = True,
) -> None:
    """Write an editable copy of the defaults into a workspace directory.

    Writes prompts/ (with registry and history), sequences/, rules.yaml, drafting.yaml, eval/ and an example
    data/. Commands run there (or with OUTREACH_HOME pointing there) read these instead of the packaged
    defaults. Existing files are kept; exit 1 when everything was already there (nothing to do)."""
    target = directory if directory is not None else bundled.workspace()
    report = run(lambda: bundled.init_workspace(target, force=force, example_data=example_data))
    console.print(report.line(), highlight=False, markup=False)
    if not report.written:
        raise typer.Exit(1)
    here = Path.cwd().resolve() == report.target
    where = "" if here else f"cd {report.target} (or export OUTREACH_HOME={report.target}), then "
    console.print(f"Next: {where}`outreach explain --as-of 2026-11-20` reads data/; edit prompts/, sequences/ and "
                  "rules.yaml to make them yours.", highlight=False, markup=False)


@app.command("config")
def config_command(as_json: JsonOption = False) -> None:
    """Show the effective configuration: every variable's value and where the workspace files come from.

    Secrets are shown as set or not, never their value. The variables are documented in docs/configuration.md."""
    import json
    import os

    from pydantic import SecretStr
    from sqlalchemy.engine import make_url

    from outreach.errors import InputError
    from outreach.settings import Settings

    settings = get_settings()
    rows = []
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias if isinstance(field.validation_alias, str) else f"OUTREACH_{name.upper()}"
        value = getattr(settings, name)
        origin = "environment" if variable in os.environ else "default" if value == field.default else ".env"
        if value is None:
            shown = "—"
        elif isinstance(value, SecretStr):
            shown = "(set)"
        elif name == "database_url":
            shown = make_url(value).render_as_string(hide_password=True)
        else:
            shown = str(value)
        rows.append({"variable": variable, "value": shown, "from": origin})
    sources = []
    resources: tuple[bundled.Resource, ...] = ("prompts", "sequences", "eval", "rules", "drafting", "data")
    for resource in resources:
        try:
            found = bundled.locate(resource, settings)
            sources.append({"resource": resource, "path": str(found.path), "origin": found.origin})
        except InputError:
            sources.append({"resource": resource, "path": "", "origin": "none (give --data or run outreach init)"})
    if as_json:
        sys.stdout.write(json.dumps({"workspace": str(bundled.workspace(settings)), "variables": rows,
                                     "sources": sources}, indent=2) + "\n")
        return
    table = Table(title=f"Workspace {bundled.workspace(settings)}")
    for column in ("Resource", "Origin", "Path"):
        table.add_column(column, overflow="fold")
    for source in sources:
        table.add_row(source["resource"], source["origin"], source["path"])
    console.print(table)
    table = Table(title="Variables (docs/configuration.md)")
    for column in ("Variable", "Value", "From"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["variable"], escape(row["value"]), row["from"])
    console.print(table)


def _register_subcommands() -> None:
    """Review queue, prompt-tuning, sequence, metrics and rules commands live in their own modules; they join the one
    ``outreach`` app."""
    register_review(app)
    register_tuning(app, prompts_app)
    register_sequences(app)
    register_metrics(app)
    register_integrations(app)
    register_rules(app)


_register_subcommands()


def main() -> None:  # pragma: no cover - console script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
