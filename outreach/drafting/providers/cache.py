"""The response cache: a draft already paid for is not paid for again.

Keyed by provider, endpoint (base URL), model, structured-output method, template name, version and hash,
the rendered prompt, the parameters and any repair context; see
:meth:`outreach.drafting.templates.RenderedPrompt.cache_key`. Switching ``OPENAI_BASE_URL`` to another server
or the provider to another vendor therefore never serves the first one's drafts. The same database remembers
which structured-output method each endpoint and model accepted (:mod:`outreach.drafting.providers.chat`).
Stored in SQLite under ``OUTREACH_HOME/cache`` so it survives between runs and is safe to delete at any time.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from outreach.settings import Settings


def default_cache_path(settings: Settings | None = None) -> Path:
    return (settings or Settings()).resolved_home() / "cache" / "drafts.sqlite"


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, value TEXT NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS methods (endpoint TEXT PRIMARY KEY, method TEXT NOT NULL)")
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        value: dict[str, Any] = json.loads(row[0])
        return value

    def put(self, key: str, model: str, value: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, model, value) VALUES (?, ?, ?)",
            (key, model, json.dumps(value, sort_keys=True)),
        )
        self._db.commit()

    def method_for(self, endpoint: str) -> str | None:
        """The structured-output method that last worked for ``endpoint`` (provider|base URL|model)."""
        row = self._db.execute("SELECT method FROM methods WHERE endpoint = ?", (endpoint,)).fetchone()
        return str(row[0]) if row else None

    def remember_method(self, endpoint: str, method: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO methods (endpoint, method) VALUES (?, ?)", (endpoint, method))
        self._db.commit()

    def __len__(self) -> int:
        row = self._db.execute("SELECT count(*) FROM responses").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()
