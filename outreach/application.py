"""The application object: one per process, shared by the CLI, the web app and the scheduler.

It owns what those entry points used to wire up each on their own: the :class:`~outreach.settings.Settings`,
the database engine and its session factory (created on first use, checked against the migrations once),
loaded data sets (cached by directory, reloaded when a file changes), the rules for a data set, the drafting
configuration and the draft provider. Entry points build one with :meth:`Application.from_settings` (or
:func:`get_application`) and pass it down; library functions take the pieces they need, never the
environment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from outreach.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from outreach.drafting.config import DraftingConfig
    from outreach.drafting.providers.base import Provider
    from outreach.engine.data import Dataset
    from outreach.engine.rules import Rules
    from outreach.engine.store import EventStore, Refresh


def _fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and mtime of every file of a data directory, so an edited file means a fresh load."""
    entries = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.is_file():
            stat = path.stat()
            entries.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


def _fingerprint_file(path: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        stat = path.stat()
    except OSError:
        return ()
    return ((str(path), stat.st_size, stat.st_mtime_ns),)


@dataclass
class Application:
    """Settings plus the shared, lazily created resources built from them."""

    settings: Settings
    _engine: Engine | None = None
    _sessions: sessionmaker[Session] | None = None
    _checked: bool = False
    _datasets: dict[Path, tuple[tuple[tuple[str, int, int], ...], Dataset]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Application:
        return cls(settings or get_settings())

    # ---------------------------------------------------------------------------------------------- database

    @property
    def database_url(self) -> str:
        from outreach import db

        return db.database_url(self.settings)

    @property
    def engine(self) -> Engine:
        """The engine for ``OUTREACH_DATABASE_URL`` (SQLite in ``OUTREACH_HOME`` by default)."""
        with self._lock:
            if self._engine is None:
                from outreach import db

                self._engine = db.make_engine(self.database_url)
            return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, for a database at the latest migration (checked once; a clear error if not)."""
        if self._sessions is None:
            from outreach import db

            engine = self.engine
            if not self._checked:
                db.require_current(engine)
                self._checked = True
            self._sessions = db.session_factory(engine)
        return self._sessions

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        from outreach import db

        with db.transaction(self.sessions) as session:
            yield session

    def upgrade_database(self) -> None:
        """Bring the schema to the latest migration (``outreach db upgrade``)."""
        from outreach import db

        db.upgrade(self.database_url, engine=self.engine)
        self._checked = True

    # ---------------------------------------------------------------------------------------------- data

    def event_store(self, *, create: bool = False, in_place: bool = False) -> EventStore | None:
        """The workspace's event store (docs/integrations.md), or None while it has none and ``create`` is False.
        ``in_place``: data sets read the store's file where it is (one-shot commands) instead of copying it."""
        from outreach.engine.store import EventStore

        return EventStore.open(self.settings, lambda: self.engine, create=create, in_place=in_place)

    def dataset(self, data_dir: Path, *, in_place: bool = False) -> Dataset:
        """The data set in ``data_dir`` with the workspace's stored events, loaded once and reused until one of
        its files (or the event store's file) changes. ``in_place`` is for one-shot commands: the events are
        read from the store's file where it is, which stays open (read-only) while the data set lives."""
        from outreach.engine.data import load_dataset

        root = Path(data_dir).expanduser().resolve()
        store = self.event_store(in_place=in_place)
        fingerprint = _fingerprint(root) + (_fingerprint_file(store.path) if store is not None else ())
        with self._lock:
            cached = self._datasets.get(root)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
        dataset = load_dataset(data_dir, events=store)
        with self._lock:
            self._datasets[root] = (fingerprint, dataset)
        return dataset

    def refresh_events(self, data_dir: Path) -> Refresh:
        """Take the events stored since ``data_dir``'s data set was loaded into it, in place (the intake's
        reactor calls this after new events arrive): far cheaper than loading the history again. When rows
        stored earlier changed account (a late ``group`` call) the data set is loaded afresh instead."""
        from outreach.engine.store import Refresh

        root = Path(data_dir).expanduser().resolve()
        dataset = self.dataset(root)
        store = self.event_store(create=True)
        assert store is not None
        with self._lock:
            result = store.refresh(dataset.events)
            if result.reload:
                self._datasets.pop(root, None)
            else:  # the store's file changed under the cached data set only by what it just took in
                self._datasets[root] = (_fingerprint(root) + _fingerprint_file(store.path), dataset)
        if result.reload:
            self.dataset(root)
            return Refresh(result.rows, result.accounts, reload=True)
        return result

    def rules(self, dataset: Dataset, rules_path: Path | None = None) -> Rules:
        """Defaults < the data directory's rules.yaml < ``rules_path`` (or ``OUTREACH_RULES_PATH``)."""
        from outreach.engine.decisions import rules_for

        return rules_for(dataset, rules_path or self.settings.rules_path)

    def project_rules(self) -> Rules:
        """The rules without loading a data set: defaults < the workspace's rules.yaml < the served data
        directory's (``OUTREACH_DATA_DIR``) < ``OUTREACH_RULES_PATH``, with its catalog's thresholds."""
        from outreach import bundled
        from outreach.engine.rules import load_project_rules

        settings = self.settings
        workspace = bundled.workspace_layer("rules", settings)
        return load_project_rules(settings.data_dir, settings.rules_path, workspace=workspace).rules

    def drafting_config(self, dataset: Dataset | None = None, config_path: Path | None = None) -> DraftingConfig:
        from outreach.drafting.config import load_drafting_config

        return load_drafting_config(dataset.root / "drafting.yaml" if dataset else None, config_path)

    def provider(self, name: str | None = None, config: DraftingConfig | None = None) -> Provider:
        """The draft provider ``name`` (default: ``OUTREACH_PROVIDER``, else openai with a key, else offline)."""
        from outreach.drafting.providers import get_provider

        return get_provider(name, self.settings, config)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
            self._sessions = None
            self._checked = False
            self._datasets.clear()


def get_application(settings: Settings | None = None) -> Application:
    """A new application for these settings (default: read from the environment now)."""
    return Application.from_settings(settings)


def as_application(value: Application | Settings | None) -> Application:
    """An :class:`Application` for library functions that accept either one or plain settings."""
    if isinstance(value, Application):
        return value
    return Application.from_settings(value)


@contextmanager
def application_for(value: Application | Settings | None) -> Iterator[Application]:
    """The given application, or one made for plain settings and closed when the block ends."""
    if isinstance(value, Application):
        yield value
        return
    application = Application.from_settings(value)
    try:
        yield application
    finally:
        application.close()
