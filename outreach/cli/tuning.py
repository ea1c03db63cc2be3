"""Prompt-tuning commands: ``outreach eval`` and the ``prompts`` registry subcommands.

Thin on purpose: each command parses its options, calls :mod:`outreach.drafting.registry`, :mod:`outreach.drafting.evaluation`,
:mod:`outreach.metrics.experiments` or :mod:`outreach.review.feedback`, and prints the result. ``register(app, prompts_app)``
adds them to the main CLI.
"""


import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from outreach import bundled
from outreach.cli.common import (
    ActorOption,
    console,
    deprecated_alias,
    err_console,
    get_settings,
    optional_actor,
    run,
)
from outreach.errors import InputError, OutreachError
from outreach.types import DEFAULT_LABEL

if TYPE_CHECKING:
    from outreach.drafting.evaluation import EvalReport
    from outreach.drafting.registry import Registry
    from outreach.drafting.templates import PromptTemplate
    from outreach.settings import Settings

PromptsDir = Annotated[
    Path | None, typer.Option("--prompts", help="Prompt directory (default: OUTREACH_PROMPTS_DIR, else the "
                              "workspace's prompts/, else the packaged defaults, which are read-only).")
]
AuthorAlias = Annotated[str | None, typer.Option("--author", hidden=True, help="Deprecated spelling of --as.")]


def _registry(prompts: Path | None) -> "Registry":
    from outreach.drafting.registry import Registry

    return Registry.open(prompts or get_settings().prompts_dir)


def _factory(settings: "Settings") -> Any:
    from outreach.application import Application

    return Application.from_settings(settings).sessions


# ------------------------------------------------------------------------------------------------ registry


def versions_command(name: Annotated[str, typer.Argument(help="Template name.")], prompts: PromptsDir = None) -> None:
    """List the saved versions of a template with their labels, hashes and change notes."""

    def action() -> "tuple[Registry, list[Any], str | None]":
        registry = _registry(prompts)
        infos = registry.versions(name)
        try:
            working = registry.working(name).sha256
        except OutreachError:
            working = None
        return registry, infos, working

    registry, infos, working = run(action)
    table = Table(title=f"Versions of {name}")
    for column in ("Version", "Labels", "SHA-256", "Saved", "By", "Change note"):
        table.add_column(column, overflow="fold")
    for info in infos:
        table.add_row(info.version, ", ".join(info.labels), info.sha256[:12],
                      info.created_at.date().isoformat() if info.created_at else "", info.author or "",
                      escape(info.note))
    console.print(table)
    for key, split in registry.splits().items():
        if key.startswith(f"{name}:"):
            weights = ", ".join(f"v{v}: {w}" for v, w in split.weights.items())
            console.print(f"Split on label {key.split(':', 1)[1]}: experiment {split.experiment} ({weights}; "
                          f"control {split.control_pct:g}%)", highlight=False)
    if working is not None and working not in {i.sha256 for i in infos}:
        console.print(f"[yellow]The working copy of {name} has unsaved changes[/] "
                      f"(`outreach prompts save {name} --note …`).", highlight=False)


def diff_command(
    name: Annotated[str, typer.Argument(help="Template name.")],
    first: Annotated[str, typer.Argument(help="Version, label or 'working'.")],
    second: Annotated[str, typer.Argument(help="Version, label or 'working'.")],
    prompts: PromptsDir = None,
) -> None:
    """Show a unified diff between two versions (or labels, or the working copy) of a template."""
    text = run(lambda: _registry(prompts).diff(name, first, second))
    sys.stdout.write(text or f"{name}@{first} and {name}@{second} are identical\n")


def save_command(
    name: Annotated[str, typer.Argument(help="Template name.")],
    note: Annotated[str, typer.Option("--note", "-m", help="What changed and why (required).")],
    source: Annotated[
        Path | None, typer.Option("--from", help="File to save (default: the working copy prompts/NAME.md.j2).")
    ] = None,
    as_option: ActorOption = None,
    author_alias: AuthorAlias = None,
    prompts: PromptsDir = None,
) -> None:
    """Save the working copy (or --from FILE) as the next immutable version of a template."""
    author = optional_actor(deprecated_alias("--author", "--as", author_alias, as_option))

    def action() -> str:
        registry = _registry(prompts)
        path = source or registry.working_path(name)
        saved = registry.save(name, path.read_text(encoding="utf-8"), note=note, author=author)
        return saved.version

    version = run(action)
    console.print(f"Saved {name} version {version}. Promote it with "
                  f"`outreach prompts promote {name} {version} --label staging`.", highlight=False)


def promote_command(
    name: Annotated[str, typer.Argument(help="Template name.")],
    version: Annotated[str, typer.Argument(help="Version to point the label at.")],
    label: Annotated[str, typer.Option("--label", "-l", help="Label to move (production, staging, any name).")],
    as_option: ActorOption = None,
    author_alias: AuthorAlias = None,
    prompts: PromptsDir = None,
) -> None:
    """Point a label at a version; `production` is what the pipeline drafts with."""
    author = optional_actor(deprecated_alias("--author", "--as", author_alias, as_option))
    run(lambda: _registry(prompts).promote(name, version, label, author=author))
    console.print(f"{name}: {label} → version {version}", highlight=False)


def _weights(text: str) -> dict[str, int]:
    weights: dict[str, int] = {}
    for part in text.split(","):
        version, _, weight = part.strip().partition("=")
        if not version or not weight.strip().isdigit():
            raise InputError(f"--weights '{text}' is not VERSION=WEIGHT,…", hint="e.g. --weights 1=50,2=50")
        weights[version.strip()] = int(weight)
    return weights


def split_command(
    name: Annotated[str, typer.Argument(help="Template name.")],
    experiment: Annotated[str, typer.Option("--experiment", help="Experiment id (salts the assignment).")],
    weights: Annotated[str, typer.Option("--weights", help="VERSION=WEIGHT,… e.g. 1=50,2=50.")],
    control: Annotated[float, typer.Option("--control", min=0, max=50, help="Percent of accounts held out.")] = 0,
    min_sample: Annotated[int, typer.Option("--min-sample", min=1, help="Decided drafts per arm before rates.")] = 30,
    label: Annotated[str, typer.Option("--label", "-l", help="Label that splits.")] = DEFAULT_LABEL,
    as_option: ActorOption = None,
    author_alias: AuthorAlias = None,
    prompts: PromptsDir = None,
) -> None:
    """Split a label's traffic between versions (an A/B test) with an optional held-out control share."""
    author = optional_actor(deprecated_alias("--author", "--as", author_alias, as_option))

    def action() -> None:
        from outreach.drafting.registry import Split

        split = Split(experiment=experiment, weights=_weights(weights), control_pct=control, min_sample=min_sample)
        _registry(prompts).set_split(name, label, split, author=author)

    run(action)
    console.print(f"{name}: {label} now splits {weights} (experiment {experiment}, control {control:g}%)",
                  highlight=False)


def results_command(
    name: Annotated[str, typer.Argument(help="Template name.")],
    label: Annotated[str, typer.Option("--label", help="Label whose split to report.")] = DEFAULT_LABEL,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Data directory, to count the control group ('demo' for the packaged demo data).")] = None,
    prompts: PromptsDir = None,
) -> None:
    """Per-version results from the review queue: approval, edits, rejections, sends, replies (A/B view)."""
    from outreach.engine.data import load_dataset
    from outreach.metrics.experiments import experiment_report

    def action() -> Any:
        accounts = load_dataset(bundled.data_dir(data).path).accounts if data else []
        return experiment_report(_factory(get_settings()), _registry(prompts), name, label=label, accounts=accounts)

    report = run(action)
    title = f"{name}: results per version" + (f" (experiment {report.split.experiment})" if report.split else "")
    table = Table(title=title)
    for column in ("Version", "Drafts", "Approval", "Mean edit dist.", "Edited", "Rejections", "Sent", "Replied",
                   "Converted"):
        table.add_column(column, overflow="fold")
    for arm in report.arms:
        reasons = ", ".join(f"{k} {v}" for k, v in arm.rejection_reasons.items()) or "—"
        table.add_row(
            arm.version + (f" (w {arm.arm_weight})" if arm.arm_weight else ""), str(arm.drafts), arm.approval.text(),
            f"{arm.mean_edit_distance:.1f}" if arm.mean_edit_distance is not None else "—",
            arm.edited_share.text(), reasons, arm.send.text(),
            arm.reply.text() if arm.reply else "no data yet", arm.conversion.text() if arm.conversion else "no data yet",
        )
    console.print(table)
    if report.split is not None:
        control = f"{report.control_accounts} accounts" if report.control_accounts is not None else "pass --data"
        console.print(f"Control (held out, never contacted): {report.split.control_pct:g}% — {control}",
                      highlight=False)


def feedback_command(
    name: Annotated[str, typer.Argument(help="Template name.")],
    top: Annotated[int, typer.Option("--top", min=1, max=50, help="Phrases and reasons to show.")] = 8,
    prompts: PromptsDir = None,
) -> None:
    """What reviewers changed in each version's drafts: rejection reasons, phrases deleted/added, length."""
    from outreach.review.feedback import auto_approval, template_feedback

    def action() -> tuple[list[Any], list[Any]]:
        factory = _factory(get_settings())
        found = template_feedback(factory, name, top=top)
        registry = _registry(prompts)
        verdicts = []
        for item in found:
            kind = "first_touch"
            with contextlib.suppress(OutreachError):
                kind = registry.get(f"{name}@{item.version}").meta.kind
            verdicts.append(auto_approval(factory, name, item.version, registry.data.auto_approve, kind=kind))
        return found, verdicts

    found, verdicts = run(action)
    if not found:
        console.print(f"No drafts of {name} in the review queue yet.", highlight=False)
        return
    for item, verdict in zip(found, verdicts, strict=True):
        console.rule(f"{name} v{item.version}")
        change = item.median_length_change_words
        console.print(
            f"{item.drafts} drafts · {item.approved} approved · {item.rejected} rejected · {item.edited} edited · "
            f"mean edit distance {item.mean_edit_distance if item.mean_edit_distance is not None else '—'} · "
            f"median length change {f'{change:+g} words' if change is not None else '—'}", highlight=False)
        for title, rows in (("Rejection reasons", item.rejection_reasons), ("Most deleted", item.deleted),
                            ("Most added", item.added)):
            text = "; ".join(f"{escape(r.phrase)} ({r.count})" for r in rows) or "—"
            console.print(f"[bold]{title}:[/] {text}", highlight=False)
        if item.rejection_notes:
            console.print("[bold]Recent notes:[/] " + " | ".join(escape(n) for n in item.rejection_notes),
                          highlight=False)
        console.print(f"[bold]Auto-approval:[/] {'yes' if verdict.eligible else 'no'} — {escape(verdict.reason)}",
                      highlight=False)


# ------------------------------------------------------------------------------------------------ eval


def print_eval_summary(report: "EvalReport") -> None:
    from outreach.drafting.evaluation import REQUIRED

    table = Table(title=f"Evaluation: {report.set_name} ({len(report.cases)} cases, {report.provider})")
    table.add_column("Check")
    for variant in report.variants:
        table.add_column(variant.variant, justify="right")
    for check in report.checks:
        label = check + (" *" if check in REQUIRED else "")
        table.add_row(label, *[f"{v.pass_rates.get(check, 0):.0%}" for v in report.variants])
    table.add_row("[bold]all required[/]", *[f"[bold]{v.all_required:.0%}[/]" for v in report.variants])
    table.add_row("cases", *[str(v.cases) for v in report.variants])
    table.add_row("mean words / grade", *[f"{v.mean_words} / {v.mean_grade}" for v in report.variants])
    table.add_row("from cache", *[str(v.cached) for v in report.variants])
    console.print(table)
    console.print("* required check", style="dim")
    for regression in report.regressions:
        err_console.print(
            f"[bold red]Regression:[/] {regression.variant} passes {regression.check} on {regression.rate:.0%} of "
            f"cases vs {regression.baseline_rate:.0%} for {regression.baseline}"
            + (f" (newly failing: {', '.join(regression.cases[:8])})" if regression.cases else ""), highlight=False)


def _default_variants(registry: "Registry") -> "list[list[PromptTemplate]]":
    """Without --prompt: each template's production version, followed by its working copy when that was
    edited since (the check to run before `prompts save`)."""
    groups = []
    for name in registry.names():
        production = registry.get(name)
        group = [production]
        with contextlib.suppress(OutreachError):
            working = registry.working(name)
            if working.sha256 != production.sha256:
                group.append(working)
        groups.append(group)
    return groups


def _numbered(path: Path, name: str, many: bool) -> Path:
    return path.with_name(f"{path.stem}-{name}{path.suffix}") if many else path


def eval_command(
    prompt: Annotated[list[str] | None, typer.Option("--prompt", help="NAME@VERSION, NAME@LABEL, NAME@working or a "
                                                     "file; repeat to compare (the first is the baseline). Default: "
                                                     "every template's production version, and its working copy "
                                                     "when edited, one report each.")] = None,
    eval_set: Annotated[Path | None, typer.Option("--set", help="Evaluation set directory (default: the workspace's "
                                                  "eval/, else the packaged set).")] = None,
    provider: Annotated[str | None, typer.Option("--provider", "-p", help="offline or openai (default as for draft).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML report (default OUTREACH_HOME/reports/eval.html).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the full results as JSON.")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", min=0, max=1,
                                             help="Allowed drop in a required pass rate (0.05 = 5 points).")] = 0.0,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse drafts per (version, case, provider).")] = True,
    judge: Annotated[bool, typer.Option("--judge", help="Add an LLM-as-judge rubric score (needs OPENAI_API_KEY).")] = False,
    prompts: PromptsDir = None,
) -> None:
    """Score prompt versions on an evaluation set and write an HTML report.

    Drafts every case with each prompt version, scores the drafts and compares later versions with the first.
    Exit code 3 when a later version regresses on a required check against the first (for CI)."""
    from outreach.drafting.evaluation import (
        REGRESSION_EXIT_CODE,
        EvalCache,
        applies,
        load_eval_set,
        run_eval,
        write_html_report,
    )
    from outreach.drafting.providers import get_provider

    settings = get_settings()

    def action() -> "list[tuple[EvalReport, Path]]":
        registry = _registry(prompts)
        groups = [[registry.get(ref) for ref in prompt]] if prompt else _default_variants(registry)
        source = bundled.locate("eval", settings, eval_set)
        err_console.print(f"Evaluation set: {source.describe()}", highlight=False, markup=False, soft_wrap=True)
        loaded = load_eval_set(source.path)
        chosen = get_provider(provider, settings, loaded.config)
        store = EvalCache(settings.resolved_home() / "cache" / "eval") if cache else None
        grader = None
        if judge:
            from outreach.drafting.evaluation import LLMJudge
            from outreach.drafting.providers.openai import OpenAIProvider

            grader = LLMJudge(OpenAIProvider(settings, loaded.config))  # raises a clear error without a key
        done = []
        many = len(groups) > 1
        for variants in groups:
            if many and not any(applies(t, c) for t in variants for c in loaded.cases):
                continue  # a template this set has no case for
            report = run_eval(loaded, variants, chosen, cache=store, judge=grader, tolerance=tolerance,
                              concurrency=loaded.config.openai.concurrency)
            name = variants[0].name
            target = _numbered(out or settings.resolved_home() / "reports" / "eval.html", name, many)
            write_html_report(report, target)
            if json_out is not None:
                json_path = _numbered(json_out, name, many)
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(report.model_dump_json(indent=1), encoding="utf-8")
            done.append((report, target))
        return done

    done = run(action)
    for report, target in done:
        print_eval_summary(report)
        console.print(f"Report: {target}", highlight=False)
    if any(report.regressed for report, _ in done):
        raise typer.Exit(REGRESSION_EXIT_CODE)


def register(app: typer.Typer, prompts_app: typer.Typer) -> None:
    """Add ``eval`` to the main CLI and the registry commands to the ``prompts`` group."""
    app.command("eval")(eval_command)
    prompts_app.command("versions")(versions_command)
    prompts_app.command("diff")(diff_command)
    prompts_app.command("save")(save_command)
    prompts_app.command("promote")(promote_command)
    prompts_app.command("split")(split_command)
    prompts_app.command("results")(results_command)
    prompts_app.command("feedback")(feedback_command)
