"""Sequence files: the bundled ones load; mistakes name the file, line and field; time arithmetic is right."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from outreach.cli.sequences import register
from outreach.errors import DataError
from outreach.sending.sequences import (
    Duration,
    Window,
    add_business_days,
    bundled_dir,
    for_motion,
    load_sequence,
    load_sequences,
    template_kinds,
)

KINDS = template_kinds(None)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "seq.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_sequences_load_and_cover_every_motion() -> None:
    sequences = load_sequences(bundled_dir(), templates=KINDS)
    assert {"upsell", "cross-sell", "demo"} <= set(sequences)
    assert for_motion(sequences, "upsell").id == "upsell"  # the demo one is never a default
    assert for_motion(sequences, "cross_sell").id == "cross-sell"
    upsell = sequences["upsell"]
    assert upsell.window.days == ("tue", "wed", "thu") and upsell.window.end == time(11, 30)


@pytest.mark.parametrize(
    ("body", "line", "field", "problem"),
    [
        ("  - kind: sms\n", 6, "steps.1.kind", "unknown step kind 'sms'"),
        ("  - kind: email\n", 6, "steps.1.prompt", "missing prompt"),
        ("  - kind: wait\n    duration: 3 bizdays\n", 7, "steps.1.duration", "'3 bizdays' is not a duration"),
        ("  - kind: wait\n    duration: 3\n", 7, "steps.1.duration", "has no unit"),
        ("  - kind: email\n    prompt: nope\n", 7, "steps.1.prompt", "'nope' is not a template"),
        ("  - kind: email\n    prompt: upsell\n", 7, "steps.1.prompt", "is a first_touch template"),
        ("  - kind: branch\n    if: replied\n    then: nowhere\n", 8, "steps.1.then", "'nowhere' is not a step id"),
        ("  - kind: branch\n    if: smiled\n    then: exit\n", 7, "steps.1.if", "unknown branch condition"),
    ],
)
def test_a_bad_step_names_file_line_and_field(tmp_path: Path, body: str, line: int, field: str, problem: str) -> None:
    path = write(tmp_path, "id: s\nmotions: [upsell]\nsteps:\n  - id: first\n    kind: email\n" + body)
    with pytest.raises(DataError) as caught:
        load_sequence(path, templates=KINDS)
    error = caught.value
    assert (error.path, error.line, error.field) == (path, line, field)
    assert problem in error.message
    assert str(error).startswith(f"{path}:{line}: field '{field}'")


def test_bad_window_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "id: s\nmotions: [upsell]\nwindow: {start: '12:00', end: '09:00'}\n"
                 "steps:\n  - kind: email\n")
    with pytest.raises(DataError, match="window end 09:00 must be after start 12:00"):
        load_sequence(path, templates=KINDS)


def cli() -> typer.Typer:
    """The sequence commands on their own app (the lead wires ``register`` into the main CLI)."""
    local = typer.Typer()
    register(local)
    return local


def test_sequences_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    app = cli()
    good = runner.invoke(app, ["sequences", "check", "--dir", str(bundled_dir())])
    assert good.exit_code == 0, good.output
    assert "upsell" in good.output and "cross-sell" in good.output
    write(tmp_path, "id: s\nmotions: [upsell]\nsteps:\n  - kind: email\n  - kind: pause\n")
    bad = runner.invoke(app, ["sequences", "check", "--dir", str(tmp_path)])
    assert bad.exit_code == 2
    assert "seq.yaml:5: field 'steps.1.kind': unknown step kind 'pause'" in bad.output


def test_durations_parse() -> None:
    assert Duration.parse("3 business days") == Duration(amount=3, unit="business_days")
    assert Duration.parse("48 hours") == Duration(amount=48, unit="hours")
    assert Duration.parse("2 days") == Duration(amount=2, unit="days")
    assert Duration.parse("30 min") == Duration(amount=30, unit="minutes")


def reference_business_days(start: date, days: int) -> date:
    """The plain definition: step one calendar day at a time, counting Mondays to Fridays."""
    current, counted = start, 0
    while counted < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            counted += 1
    return current


ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)), st.integers(min_value=0, max_value=60))
def test_business_days_agree_with_the_reference(start: date, days: int) -> None:
    assert add_business_days(start, days) == reference_business_days(start, days)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1),
    st.integers(min_value=0, max_value=22 * 60),
    st.integers(min_value=15, max_value=12 * 60),
)
def test_next_window_opening_is_never_outside_the_window(
    zone_name: str, naive: datetime, days: set[str], start_minute: int, length: int
) -> None:
    tz = ZoneInfo(zone_name)
    end_minute = min(start_minute + length, 23 * 60 + 59)
    window = Window.model_validate({"days": sorted(days), "start": time(start_minute // 60, start_minute % 60),
                                    "end": time(end_minute // 60, end_minute % 60)})
    when = naive.replace(tzinfo=UTC)
    opening = window.next_open(when, tz)
    assert opening >= when
    assert window.contains(opening, tz)
    local = opening.astimezone(tz)
    assert window.start <= local.time().replace(tzinfo=None) < window.end


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["America/New_York", "Europe/Berlin", "Australia/Sydney", "America/Santiago", "Asia/Tokyo"]),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
    st.integers(min_value=1, max_value=10),
)
def test_business_day_waits_keep_local_time_across_dst(zone_name: str, naive: datetime, days: int) -> None:
    tz = ZoneInfo(zone_name)
    start = naive.replace(tzinfo=UTC)
    end = Duration(amount=days, unit="business_days").after(start, tz)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    assert local_end.date() == reference_business_days(local_start.date(), days)
    if local_end.replace(tzinfo=None).time() != local_start.time().replace(tzinfo=None):
        # Only a wall-clock time that does not exist on the target day (spring-forward gap) may move.
        gap = datetime.combine(local_end.date(), local_start.time().replace(tzinfo=None)).replace(tzinfo=tz)
        assert gap.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != gap.replace(tzinfo=None)
