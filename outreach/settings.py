"""One typed settings object, read from the environment (``OUTREACH_*``) and an optional ``.env`` file.

``OUTREACH_HOME`` is the working directory for everything the tool writes (database, outbox, caches), so
tests point it at a temporary directory and never touch a user's data.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTREACH_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path("."), description="Working directory for the database, outbox and caches."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file outreach.db in OUTREACH_HOME."
    )
    rules_path: Path | None = Field(default=None, description="YAML file overriding the default rules.")
    prompts_dir: Path | None = Field(default=None, description="Directory of prompt templates.")
    raise_errors: bool = Field(default=False, description="Re-raise unexpected errors with a traceback.")

    # LLM provider. The OpenAI values are read without the OUTREACH_ prefix, as every OpenAI tool does.
    provider: str | None = Field(
        default=None, description="offline or openai; default openai when a key is set."
    )
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    openai_model: str = Field(default="gpt-4o-mini", description="Model name for the openai provider.")

    # Sequences and sending (docs/sequences.md).
    sequences_dir: Path | None = Field(
        default=None, description="Directory of sequence YAML files; default ./sequences, then the bundled ones."
    )
    mail_transport: Literal["outbox", "smtp"] = Field(
        default="outbox", description="outbox writes .eml files to outbox_dir; smtp hands mail to smtp_host."
    )
    outbox_dir: Path | None = Field(default=None, description="Where the outbox transport writes; default OUTREACH_HOME/outbox.")
    mail_sender: str | None = Field(
        default=None, description="From address when a draft has no owner; default the catalog's sender_email."
    )
    public_url: str | None = Field(
        default=None,
        description="Public https base URL of the web app, for one-click unsubscribe links (/unsubscribe/<token>); "
        "default the catalog's unsubscribe_url.",
    )
    unsubscribe_mailto: str | None = Field(
        default=None, description="Address for mailto: unsubscribes; default unsubscribe@<sender domain>."
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls (port 587), ssl (implicit TLS, port 465) or none (local relay)."
    )
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    imap_host: str = "127.0.0.1"
    imap_port: int = 993
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    imap_folder: str = "INBOX"
    send_daily_cap_per_sender: int = Field(default=50, ge=0, description="Emails per sender per UTC day.")
    send_hourly_cap: int = Field(default=200, ge=0, description="Global throttle: emails per rolling hour.")
    send_stale_hours: float = Field(
        default=24.0, gt=0, description="A step overdue by more than this goes back to review instead of out."
    )
    worker_interval_seconds: float = Field(default=30.0, gt=0, description="Pause between worker passes.")
    worker_batch_size: int = Field(default=100, gt=0, description="Enrollments claimed per transaction.")
    worker_lease_seconds: float = Field(
        default=600.0, gt=0, description="A send still in flight after this long is treated as crashed."
    )
    default_timezone: str = Field(default="UTC", description="Timezone for contacts whose account has none.")

    # The review web app (docs/review-queue.md).
    secret_key: SecretStr | None = Field(
        default=None, description="Signs session cookies; default: a random key kept in OUTREACH_HOME."
    )
    data_dir: Path | None = Field(
        default=None, description="Data directory the web app re-checks gates and regenerates drafts against."
    )
    as_of: date | None = Field(default=None, description="Analysis date for the web app's gate re-checks (default today).")
    host: str = Field(default="127.0.0.1", description="Address `outreach serve` listens on.")
    port: int = Field(default=8000, description="Port `outreach serve` listens on.")
    session_hours: int = Field(default=12, gt=0, description="How long a login lasts at most (absolute timeout).")
    session_idle_minutes: int = Field(
        default=60, gt=0, description="A login ends after this many minutes without a request (idle timeout)."
    )
    secure_cookies: bool = Field(default=False, description="Mark cookies Secure (set behind HTTPS).")
    login_limits_storage: str = Field(
        default="memory://",
        description="Where failed-login counters live (a `limits` storage URI, e.g. redis://host:6379 when "
        "several app processes share the throttle).",
    )

    # Expansion metrics (docs/metrics.md).
    attribution_window_days: int = Field(
        default=60, ge=0, le=3650, description="Days after a send in which a matching expansion is ours."
    )
    rates_path: Path | None = Field(
        default=None, description="CSV of exchange rates (currency,rate) converting MRR into the reporting currency."
    )
    reporting_currency: str | None = Field(
        default=None, description="Currency the metrics are reported in; default the one currency in the data."
    )

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home() / 'outreach.db'}"


def get_settings() -> Settings:
    """Read settings fresh from the environment (cheap; keeps tests that change env vars honest)."""
    return Settings()
