"""Shared fixtures. Every test runs with OUTREACH_HOME in a temp dir and no LLM credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.datadir import DataDir

# Property tests are bounded and keep no example database, so a test run writes nothing into the repository.
hypothesis_settings.register_profile("outreach", database=None, deadline=None)
hypothesis_settings.load_profile("outreach")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-screenshots", action="store_true", default=False,
        help="write the browser tests' screenshots to docs/screenshots (default: a temp dir)",
    )


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
        "OUTREACH_PROMPTS_DIR",
        "OUTREACH_SEQUENCES_DIR",
        "OUTREACH_DATA_DIR",
        "OUTREACH_USER",
        "OUTREACH_LOG_LEVEL",
        "OUTREACH_STRUCTURED_OUTPUT",
        "ANTHROPIC_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(home)
    yield home


@pytest.fixture
def datadir() -> DataDir:
    return DataDir()


# ---------------------------------------------------------------------------------------------- review queue
# Storage and queue tests run against SQLite and, when OUTREACH_TEST_POSTGRES_URL points at a server, Postgres.

import os  # noqa: E402

from tests.review_world import ReviewWorld, postgres_url_or_skip, reset_postgres  # noqa: E402


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL at the latest migration, empty, and private to this test."""
    from outreach import db

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'queue.db'}"
    else:
        url = postgres_url_or_skip()
        reset_postgres(url)
    db.upgrade(url)
    yield url
    if request.param == "postgres":
        reset_postgres(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from outreach import db

    url = f"sqlite:///{tmp_path / 'queue.db'}"
    db.upgrade(url)
    return url


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    """Three accounts with frictions, drafted and queued, plus an sdr, a second sdr, marketing and an admin."""
    built = ReviewWorld.build(db_url, tmp_path)
    yield built
    built.close()


@pytest.fixture
def sqlite_world(sqlite_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    built = ReviewWorld.build(sqlite_url, tmp_path)
    yield built
    built.close()


def pytest_report_header() -> str:
    url = os.environ.get("OUTREACH_TEST_POSTGRES_URL")
    return f"postgres: {url}" if url else "postgres: OUTREACH_TEST_POSTGRES_URL not set (postgres tests skip)"
