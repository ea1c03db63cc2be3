"""get_settings keeps its last reading only while the environment, the working directory and its .env file are
unchanged (docs/BENCHMARKS.md, "Start-up"): a command asks several times, a test that changes a variable must
see the change."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach import settings as settings_module
from outreach.settings import get_settings


def test_a_changed_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTREACH_USER", "ana@example.com")
    assert get_settings().user == "ana@example.com"
    monkeypatch.setenv("OUTREACH_USER", "bo@example.com")
    assert get_settings().user == "bo@example.com"
    monkeypatch.delenv("OUTREACH_USER")
    assert get_settings().user is None


def test_the_dotenv_file_and_the_directory_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTREACH_USER", raising=False)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / ".env").write_text("OUTREACH_USER=ana@example.com\n")
    monkeypatch.chdir(first)
    assert get_settings().user == "ana@example.com"
    (first / ".env").write_text("OUTREACH_USER=cy@example.com\n")
    assert get_settings().user == "cy@example.com"
    monkeypatch.chdir(second)
    assert get_settings().user is None


def test_one_reading_per_environment_and_callers_get_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    real = settings_module.Settings

    class Counting(real):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            nonlocal reads
            reads += 1
            super().__init__()

    monkeypatch.setattr(settings_module, "Settings", Counting)
    monkeypatch.setenv("OUTREACH_USER", "dee@example.com")
    first = get_settings()
    first.user = "changed@example.com"
    assert get_settings().user == "dee@example.com"
    assert reads == 1
