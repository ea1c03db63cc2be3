"""The same workflow abandoned again and again: something in a step stops people from finishing."""

from __future__ import annotations

from pydantic import Field

from outreach.engine.catalog import Catalog
from outreach.engine.names import label
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import Detection, Example, SignalView, TriggerSpec, WindowSettings, Wording


class WorkflowAbandoned(WindowSettings):
    min_abandons: int = Field(default=3, gt=0)
    weight: float = Field(default=0.65, ge=0)


def query(ctx: Detection, s: WorkflowAbandoned) -> str:
    return f"""
        SELECT account_id, workflow AS subject,
               json_merge_patch(json_object('workflow', workflow, 'abandons', n, 'window_days', {s.window_days}),
                                json_object('step', nullif(step, ''))) AS figures,
               evidence, {s.window_days} AS window_days
        FROM (
            SELECT account_id, props->>'workflow' AS workflow, coalesce(props->>'step', '') AS step, count(*) AS n,
                   {ctx.newest("message_id", "(ts, line)")} AS evidence
            FROM events
            WHERE event = {sql.text(ctx.events.workflow_abandoned)} AND ts >= {ctx.since(s.window_days)}
              AND ts < {ctx.end_sql} AND props->>'workflow' IS NOT NULL
            GROUP BY ALL HAVING count(*) >= {s.min_abandons}
        )"""


def _workflow(signal: SignalView) -> str:
    return label(str(signal.figures["workflow"]))


def headline(signal: SignalView, _catalog: Catalog) -> str:
    return f"Getting the {_workflow(signal)} done"


def opening(signal: SignalView, _catalog: Catalog, _plan: str) -> str:
    step = str(signal.figures.get("step") or "")
    at = f" at the {label(step)} step" if step else ""
    return f"Setting up the {_workflow(signal)} can get stuck{at}. Until it is done, the team cannot rely on it."


SPEC = TriggerSpec(
    kind="workflow_abandoned",
    motion="cross_sell",
    settings=WorkflowAbandoned,
    summary="`{events.workflow_abandoned}` for the same workflow and step ≥ {min_abandons} times in {window_days} days",
    figures=("workflow", "abandons", "window_days", "step"),
    query=query,
    statement=(
        f"'abandoned the ' || {sql.label(sql.fig('workflow'))} || ' workflow' || "
        f"CASE WHEN coalesce({sql.fig('step')}, '') <> '' THEN ' at the ' || {sql.label(sql.fig('step'))} || ' step' "
        f"ELSE '' END || ' ' || {sql.times(sql.fig_int('abandons'))} || ' ' || {sql.WINDOW}"
    ),
    strength=lambda s: sql.ratio("abandons", s.min_abandons),
    offer_keys=("workflow:{workflow}",),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: (_workflow(s),), bridge=lambda s, c: f"For the {_workflow(s)}", consequence="Something in that step is stopping people from finishing."),
    example=Example(
        subject="report_builder",
        figures={"workflow": "report_builder", "abandons": 3, "window_days": 30, "step": "share_link"},
        window_days=30,
        statement="abandoned the report builder workflow at the share link step 3 times in the last 30 days",
        strength=0.65,
    ),
)
