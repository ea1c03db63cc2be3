"""Sequences: what happens after a draft is approved, read from ``sequences/*.yaml`` and checked on load.

A sequence names the motions it serves, a send window, and its steps: ``email`` (the first uses the approved
draft; later ones are follow-ups drafted from a prompt), ``wait`` (``3 business days``, ``48 hours``, in the
recipient's timezone), ``task`` (a manual step for the rep) and ``branch`` (jump on replied, opened a link,
friction resolved or motion). Mistakes in a file stop the load with the file, line and field, because a
sequence that silently skips a step sends the wrong email to a customer.

The time arithmetic lives here too (windows, business days) as pure functions of a UTC instant and a
timezone, so the scheduler, the tests and the property checks share one definition.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from outreach import bundled
from outreach.errors import ConfigError, DataError, NotFoundError
from outreach.settings import Settings
from outreach.types import OfferMotion
from outreach.yamlfile import _line_of, parse_yaml

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DurationUnit = Literal["business_days", "days", "hours", "minutes"]
CONDITIONS = ("replied", "opened_link", "friction_resolved")
EXIT = "exit"

_DURATION = re.compile(
    r"^\s*(\d+)\s*(business\s+days?|bd|days?|d|hours?|h|minutes?|min|m)\s*$", re.IGNORECASE
)


def zone(name: str) -> ZoneInfo:
    """A timezone by IANA name, or a clear error (account data often carries typos like 'EST5')."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown timezone '{name}'", hint="use an IANA name such as Europe/Berlin") from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Duration(_Strict):
    """How long a ``wait`` step waits. Business days skip Saturday and Sunday in the recipient's timezone."""

    amount: int = Field(ge=0)
    unit: DurationUnit

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _DURATION.match(text)
        if match is None:
            raise ValueError(
                f"'{text}' is not a duration; write e.g. '3 business days', '2 days', '48 hours' or '30 minutes'"
            )
        amount, word = int(match.group(1)), match.group(2).lower()
        unit: DurationUnit
        if word.startswith("business") or word == "bd":
            unit = "business_days"
        elif word.startswith("d"):
            unit = "days"
        elif word.startswith("h"):
            unit = "hours"
        else:
            unit = "minutes"
        return cls(amount=amount, unit=unit)

    def after(self, start: datetime, tz: ZoneInfo) -> datetime:
        """The instant this wait ends when it starts at ``start`` (UTC out)."""
        if self.unit == "hours":
            return start + timedelta(hours=self.amount)
        if self.unit == "minutes":
            return start + timedelta(minutes=self.amount)
        local = start.astimezone(tz)
        target = (
            add_business_days(local.date(), self.amount)
            if self.unit == "business_days"
            else local.date() + timedelta(days=self.amount)
        )
        # Same wall-clock time on the target day; DST changes shift the UTC instant, not the local time.
        return local_instant(target, local.time().replace(tzinfo=None), tz)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.replace('_', ' ')}"


def add_business_days(start: date, days: int) -> date:
    """``start`` plus ``days`` weekdays (Mon–Fri). From a weekend day, counting starts on the next Monday."""
    if days <= 0:
        return start
    weekday = start.weekday()
    if weekday >= 5:  # Sat/Sun: move to Friday so the first business day counted is Monday
        start -= timedelta(days=weekday - 4)
        weekday = 4
    weeks, rest = divmod(days, 5)
    end = start + timedelta(weeks=weeks)
    if weekday + rest >= 5:
        rest += 2
    return end + timedelta(days=rest)


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time. A time that does not exist (the spring-forward gap) lands
    just after the gap (the pre-transition offset applies); an ambiguous one (fall-back) takes the first."""
    return datetime.combine(day, wall).replace(tzinfo=tz, fold=0).astimezone(UTC)


class Window(_Strict):
    """When emails may go out, in the recipient's local time: weekdays and a start–end time of day."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(9, 0)
    end: time = time(17, 0)

    @field_validator("days", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(str(v).strip().lower()[:3] for v in value)
        return value

    @model_validator(mode="after")
    def _check(self) -> Window:
        if not self.days:
            raise ValueError("a send window needs at least one day")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end:%H:%M} must be after start {self.start:%H:%M}")
        return self

    def contains(self, when: datetime, tz: ZoneInfo) -> bool:
        local = when.astimezone(tz)
        if WEEKDAYS[local.weekday()] not in self.days:
            return False
        wall = local.time().replace(tzinfo=None)
        return self.start <= wall < self.end

    def next_open(self, when: datetime, tz: ZoneInfo) -> datetime:
        """The earliest instant at or after ``when`` inside the window (``when`` itself if it is inside)."""
        if self.contains(when, tz):
            return when
        local_day = when.astimezone(tz).date()
        for offset in range(0, 15):
            day = local_day + timedelta(days=offset)
            if WEEKDAYS[day.weekday()] not in self.days:
                continue
            opening = local_instant(day, self.start, tz)
            if opening >= when and self.contains(opening, tz):
                return opening
            closing = local_instant(day, self.end, tz)
            if opening < when < closing and self.contains(when, tz):  # pragma: no cover - handled above
                return when
        raise ConfigError("the send window never opens")  # pragma: no cover - days is never empty

    def describe(self) -> str:
        days = ", ".join(d.title() for d in self.days)
        return f"{days} {self.start:%H:%M}–{self.end:%H:%M} recipient time"


class EmailStep(_Strict):
    kind: Literal["email"]
    id: str | None = None
    prompt: str | None = Field(
        default=None, description="Follow-up prompt template; the first email uses the approved draft."
    )
    auto_send: bool | None = Field(default=None, description="Send follow-ups without review (default: sequence).")


class WaitStep(_Strict):
    kind: Literal["wait"]
    id: str | None = None
    duration: Duration

    @field_validator("duration", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"'{value}' has no unit; write e.g. '{value} business days' or '{value} hours'")
        if isinstance(value, str):
            return Duration.parse(value)
        return value


class TaskStep(_Strict):
    kind: Literal["task"]
    id: str | None = None
    title: str = Field(min_length=1, description="What the rep should do, e.g. 'Call the champion'.")


class BranchStep(_Strict):
    kind: Literal["branch"]
    id: str | None = None
    condition: str = Field(alias="if", description="replied, opened_link, friction_resolved or motion:<motion>.")
    then: str = Field(description="Step id to jump to, or 'exit'.")
    otherwise: str | None = Field(default=None, alias="else", description="Step id or 'exit'; default next step.")

    @field_validator("condition")
    @classmethod
    def _known(cls, value: str) -> str:
        value = value.strip()
        negated = value.removeprefix("not ").strip()
        if negated in CONDITIONS or negated.startswith("motion:"):
            return value
        raise ValueError(
            f"unknown branch condition '{value}'; use {', '.join(CONDITIONS)} or motion:<motion>, "
            "optionally prefixed with 'not '"
        )


Step = Annotated[EmailStep | WaitStep | TaskStep | BranchStep, Field(discriminator="kind")]
STEP_KINDS = ("email", "wait", "task", "branch")


class Sequence(_Strict):
    """One sequence file. ``path`` is filled in by the loader."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str | None = None
    description: str = ""
    motions: tuple[OfferMotion, ...] = Field(min_length=1)
    auto_send: bool = Field(default=False, description="Follow-ups go out without review.")
    default: bool = Field(default=True, description="Used for its motions when no sequence is named.")
    window: Window = Field(default_factory=Window)
    steps: tuple[Step, ...] = Field(min_length=1)
    path: str | None = None

    def step_index(self, step_id: str) -> int:
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise NotFoundError(f"sequence '{self.id}' has no step '{step_id}'")

    def first_email_index(self) -> int:
        return next(i for i, s in enumerate(self.steps) if isinstance(s, EmailStep))

    def auto_sends(self, step: EmailStep) -> bool:
        return self.auto_send if step.auto_send is None else step.auto_send


def _check(seq: Sequence, node: yaml.Node | None, path: Path, templates: dict[str, str] | None) -> None:
    """Checks pydantic cannot express: ids, branch targets, where follow-ups get their prompt."""

    def fail(problem: str, location: tuple[int | str, ...], field: str) -> DataError:
        return DataError(path, problem, line=_line_of(node, location), field=field)

    seen: set[str] = set()
    for index, step in enumerate(seq.steps):
        if step.id is not None:
            if step.id in seen or step.id == EXIT:
                raise fail(f"step id '{step.id}' is used twice (or is the reserved 'exit')",
                           ("steps", index, "id"), f"steps.{index}.id")
            seen.add(step.id)
    emails = [i for i, s in enumerate(seq.steps) if isinstance(s, EmailStep)]
    if not emails:
        raise fail("a sequence needs at least one email step", ("steps",), "steps")
    for index, step in enumerate(seq.steps):
        if isinstance(step, BranchStep):
            for name, target in (("if", step.then), ("else", step.otherwise)):
                if target is not None and target != EXIT and target not in seen:
                    key = "then" if name == "if" else "else"
                    raise fail(f"branch target '{target}' is not a step id in this sequence",
                               ("steps", index, key), f"steps.{index}.{key}")
        if isinstance(step, EmailStep) and index != emails[0]:
            if not step.prompt:
                raise fail("missing prompt: a follow-up email step needs `prompt: <template name>` "
                           "(only the first email uses the approved draft)",
                           ("steps", index), f"steps.{index}.prompt")
            if templates is not None:
                kind = templates.get(step.prompt)
                if kind is None:
                    raise fail(f"prompt '{step.prompt}' is not a template in the prompts directory "
                               f"(known: {', '.join(sorted(templates))})",
                               ("steps", index, "prompt"), f"steps.{index}.prompt")
                if kind != "followup":
                    raise fail(f"prompt '{step.prompt}' is a {kind} template; follow-ups need a followup one",
                               ("steps", index, "prompt"), f"steps.{index}.prompt")
        if isinstance(step, EmailStep) and index == emails[0] and step.prompt not in (None, "approved"):
            raise fail("the first email sends the approved draft; leave out `prompt` (or write `approved`)",
                       ("steps", index, "prompt"), f"steps.{index}.prompt")


def load_sequence(path: Path, *, templates: dict[str, str] | None = None) -> Sequence:
    """Read and check one sequence file. ``templates`` maps prompt names to their kind, to check prompts."""
    if not path.exists():
        raise DataError(path, "file not found")
    text = path.read_text(encoding="utf-8")
    data, node = parse_yaml(text, path)
    if isinstance(data, dict):
        for index, step in enumerate(data.get("steps") or []):
            if isinstance(step, dict) and step.get("kind") not in STEP_KINDS:
                kind = step.get("kind")
                problem = ("missing `kind`" if kind is None else f"unknown step kind '{kind}'")
                raise DataError(path, f"{problem}; use one of: {', '.join(STEP_KINDS)}",
                                line=_line_of(node, ("steps", index, "kind")), field=f"steps.{index}.kind")
    try:
        seq = Sequence.model_validate(data if data is not None else {})
    except ValidationError as error:
        first = error.errors()[0]
        location = tuple(first["loc"])
        if len(location) > 2 and location[0] == "steps" and location[2] in STEP_KINDS:
            location = location[:2] + location[3:]  # drop the discriminator tag pydantic adds
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/sequences.md)"
        raise DataError(path, message, line=_line_of(node, location),
                        field=".".join(str(p) for p in location) or None) from None
    _check(seq, node, path, templates)
    return seq.model_copy(update={"path": str(path)})


def bundled_dir() -> Path:
    """The sequences shipped in the package."""
    return bundled.SEQUENCES


def sequences_dir(configured: Path | None, settings: Settings | None = None) -> Path:
    """``configured`` (``--dir`` or ``OUTREACH_SEQUENCES_DIR``), else the workspace's ``sequences/``, else the
    packaged sequences."""
    return configured if configured is not None else bundled.locate("sequences", settings).path


def template_kinds(prompts_dir: Path | None) -> dict[str, str]:
    from outreach.drafting.registry import load_templates

    return {name: template.meta.kind for name, template in load_templates(prompts_dir).items()}


def load_sequences(directory: Path, *, templates: dict[str, str] | None = None) -> dict[str, Sequence]:
    """Every ``*.yaml``/``*.yml`` file in ``directory``, keyed by id; stops at the first bad file."""
    if not directory.is_dir():
        raise ConfigError(f"sequence directory {directory} does not exist",
                          hint="set OUTREACH_SEQUENCES_DIR or create sequences/*.yaml")
    found: dict[str, Sequence] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        seq = load_sequence(path, templates=templates)
        if seq.id in found:
            raise DataError(path, f"sequence id '{seq.id}' is also used by {found[seq.id].path}", field="id")
        found[seq.id] = seq
    return found


def check_all(directory: Path, templates: dict[str, str] | None) -> tuple[list[Sequence], list[DataError]]:
    """Validate every file, collecting each file's first error (``outreach sequences check``)."""
    good: list[Sequence] = []
    errors: list[DataError] = []
    if not directory.is_dir():
        raise ConfigError(f"sequence directory {directory} does not exist")
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            good.append(load_sequence(path, templates=templates))
        except DataError as error:
            errors.append(error)
    return good, errors


def for_motion(sequences: dict[str, Sequence], motion: str) -> Sequence:
    """The default sequence for a motion: the first (by id) that lists it."""
    ordered = sorted(sequences.values(), key=lambda s: (not s.default, s.id))
    for seq in ordered:
        if motion in seq.motions:
            return seq
    raise NotFoundError(f"no sequence serves the '{motion}' motion",
                        hint="add the motion to a sequence's `motions:` or pass --sequence")
