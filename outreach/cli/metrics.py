"""``outreach report``: the expansion metrics of :mod:`outreach.metrics.report` as tables, JSON or CSV.

Thin on purpose: parse the period, build the report, print it. ``register(app)`` adds the command.
"""


import csv
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from outreach import bundled
from outreach.cli.common import AsOfOption, JsonOption, RulesOption, check_date, console, parse_as_of, run
from outreach.errors import InputError

if TYPE_CHECKING:
    from outreach.metrics.report import Report


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} '{value}' is not a date", hint="use YYYY-MM-DD") from None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _money(value: float) -> str:
    return f"{value:,.0f}"


def print_report(report: "Report") -> None:
    from outreach.metrics.report import DIMENSIONS

    money = f", amounts in {report.currency}" if report.currency else ""
    console.print(f"[bold]Expansion report {report.period}[/] ({report.start} – {report.end}, as of {report.as_of}, "
                  f"attribution window {report.window_days} days{money})", highlight=False)
    if report.no_data:
        console.print(report.no_data, highlight=False)
    for note in report.notes:
        console.print(f"Note: {note}", highlight=False)
    for dimension in DIMENSIONS:
        table = Table(title=f"Funnel by {dimension.replace('_', ' ')}")
        for column in ("", "Triggered", "Gated out", "Drafted", "Approved", "Sent", "Replied", "Converted",
                       "Conv. rate", "Expansion MRR", "Median days"):
            table.add_column(column, justify="left" if not column else "right")
        for row in [*report.funnel[dimension], report.totals]:
            table.add_row(row.key, str(row.triggered), str(row.gated_out), str(row.drafted), str(row.approved),
                          str(row.sent), str(row.replied), str(row.converted), _pct(row.conversion_rate),
                          _money(row.expansion_mrr),
                          "—" if row.median_days_to_convert is None else f"{row.median_days_to_convert:g}")
        if not console.is_terminal:  # piped tables lose their title: keep the section heading
            console.print(f"Funnel by {dimension.replace('_', ' ')}", highlight=False)
        console.print(table)
    if report.totals.gated_by_reason:
        reasons = ", ".join(f"{k} {v}" for k, v in report.totals.gated_by_reason.items())
        console.print(f"Gated out by reason: {reasons}", highlight=False)
    console.print(f"Expansion MRR: attributed {_money(report.attributed_mrr)}, organic {_money(report.organic.mrr)} "
                  f"({report.organic.expansions} organic expansions)", highlight=False)
    if report.retention is not None and report.retention.no_data:
        console.print(f"NRR/GRR: {report.retention.no_data}", highlight=False)
    elif report.retention is not None:
        r = report.retention
        console.print(f"NRR {_pct(r.nrr)}  GRR {_pct(r.grr)}  (start MRR {_money(r.start_mrr)} over {r.accounts} "
                      f"accounts, +{_money(r.expansion)} expansion, −{_money(r.contraction)} contraction, "
                      f"−{_money(r.churn)} churn; gross loss capped per account {_money(r.lost)})", highlight=False)
    else:
        console.print("NRR/GRR: give --data to read starting MRR from accounts.csv", highlight=False)
    for revert in report.post_expansion:
        console.print(f"Post-expansion churn/downgrade within 90 days ({revert.key}): {revert.reverted} of "
                      f"{revert.expansions - revert.pending} ({_pct(revert.rate)}); {revert.pending} still inside "
                      "90 days", highlight=False)
    if report.lift is not None:
        lift = report.lift
        console.print(f"Lift vs control: contacted {_pct(lift.treated_rate)} expanded (n={lift.treated_accounts}), "
                      f"control {_pct(lift.control_rate)} (n={lift.control_accounts}); {lift.text()}", highlight=False)
    if report.unmatched:
        console.print(f"[bold]Unmatched outcomes[/] (account not in accounts.csv; counted nowhere): "
                      f"{len(report.unmatched)}", highlight=False)
        for item in report.unmatched:
            amount = "" if item.mrr_delta is None else f" {item.mrr_delta:+,.0f}"
            console.print(f"  {item.occurred_on}  {item.account_id}  {item.kind}{amount}  {item.external_id}",
                          highlight=False, markup=False)


def report_command(
    period: Annotated[str | None, typer.Option("--period", help="2026-Q3, 2026-09 or 2026 (default: the quarter "
                                               "of --as-of).")] = None,
    start: Annotated[str | None, typer.Option("--from", callback=check_date, metavar="YYYY-MM-DD",
                                              help="First day (instead of --period).")] = None,
    end: Annotated[str | None, typer.Option("--to", callback=check_date, metavar="YYYY-MM-DD",
                                            help="Last day (instead of --period).")] = None,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Data directory: triggered/gated accounts and "
                                              "starting MRR (accounts.csv) come from it ('demo' for the packaged "
                                              "demo data).")] = None,
    as_of: AsOfOption = None,
    window: Annotated[int | None, typer.Option("--window", min=0, help="Attribution window in days (default "
                                               "OUTREACH_ATTRIBUTION_WINDOW_DAYS or 60).")] = None,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the report as CSV.")] = False,
    rules: RulesOption = None,
    rates: Annotated[Path | None, typer.Option("--rates", help="CSV currency,rate converting every currency into "
                                               "the reporting one (default OUTREACH_RATES_PATH).")] = None,
    currency: Annotated[str | None, typer.Option("--currency", help="Reporting currency (default: the one currency "
                                                 "in the data, or the rates table's rate-1 currency).")] = None,
) -> None:
    """Expansion metrics: funnel by motion, trigger, prompt version and owner; NRR/GRR; post-expansion churn."""
    from outreach import db
    from outreach.metrics.report import build_report, parse_period
    from outreach.settings import get_settings

    def action() -> "Report":
        if as_json and as_csv:
            raise InputError("give --json or --csv, not both")
        analysis = parse_as_of(as_of)
        chosen = parse_period(period, start=_date(start, "--from"), end=_date(end, "--to"), as_of=analysis)
        settings = get_settings()
        data_dir = bundled.data_dir(data, settings).path if data is not None else None
        engine = db.make_engine(db.database_url(settings))
        try:
            db.require_current(engine)
            return build_report(db.session_factory(engine), period=chosen, as_of=analysis, data_dir=data_dir,
                                window_days=window if window is not None else settings.attribution_window_days,
                                rules_path=rules or settings.rules_path, prompts_dir=settings.prompts_dir,
                                rates_path=rates or settings.rates_path,
                                currency=currency or settings.reporting_currency)
        finally:
            engine.dispose()

    report: Report = run(action)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    elif as_csv:
        writer: Any = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows(report.csv_rows())
    else:
        print_report(report)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the main CLI."""
    app.command("report")(report_command)
