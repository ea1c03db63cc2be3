"""Shared fixtures. Every test runs with OUTREACH_HOME in a temp dir and no LLM credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.datadir import DataDir


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("OUTREACH_HOME", str(home))
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OUTREACH_PROVIDER",
        "OUTREACH_DATABASE_URL",
        "OUTREACH_RULES_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(home)
    yield home


@pytest.fixture
def datadir() -> DataDir:
    return DataDir()
