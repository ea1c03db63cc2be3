"""One typed settings object, read from the environment (``OUTREACH_*``) and an optional ``.env`` file.

``OUTREACH_HOME`` is the workspace: the directory ``outreach init`` writes the editable prompts, sequences
and rules into, and where everything the tool writes goes (database, outbox, caches), so tests point it at a
temporary directory and never touch a user's data.

Every field is one environment variable, documented in docs/configuration.md; tests/test_docs.py fails when
a field has no row there (or a row names no field), so add the row with the field.
"""

from __future__ import annotations

import os
import threading
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTREACH_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path("."),
        description="The workspace: editable prompts, sequences and rules (`outreach init`), the database, "
        "outbox and caches.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file outreach.db in OUTREACH_HOME."
    )
    rules_path: Path | None = Field(
        default=None, description="YAML file overriding the rules (after the workspace's and the data directory's "
        "rules.yaml); `--rules` wins over it."
    )
    prompts_dir: Path | None = Field(
        default=None, description="Directory of prompt templates with their registry; default the workspace's "
        "prompts/, else the packaged ones."
    )
    raise_errors: bool = Field(default=False, description="Re-raise unexpected errors with a traceback.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="WARNING", description="Log level for the command line and the web app; `-v`, `-q` and "
        "`--log-level` override it."
    )
    user: str | None = Field(
        default=None, description="Email of the person running commands, when `--as` is not given (recorded in "
        "the audit log)."
    )

    # LLM provider. The OpenAI values are read without the OUTREACH_ prefix, as every OpenAI tool does.
    provider: str | None = Field(
        default=None,
        description="offline, openai, anthropic or NAME:MODEL (e.g. openai:gpt-4.1-mini, ollama:llama3.1); "
        "default openai when OPENAI_API_KEY is set, else offline.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias="OPENAI_API_KEY", description="API key for the openai provider (never logged)."
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias="OPENAI_BASE_URL",
        description="OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp); default api.openai.com.",
    )
    openai_model: str = Field(default="gpt-4o-mini", description="Model name for the openai provider.")
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias="ANTHROPIC_API_KEY",
        description="API key for the anthropic provider (--provider anthropic:MODEL; never logged).",
    )
    structured_output: Literal["auto", "json_schema", "json_object", "tools"] = Field(
        default="auto",
        description="How LLM providers return drafts: auto negotiates json_schema, then json_object (schema in the "
        "prompt), then tool calling; or fix one method.",
    )

    # Sequences and sending (docs/sequences.md).
    sequences_dir: Path | None = Field(
        default=None, description="Directory of sequence YAML files; default the workspace's sequences/, else the packaged ones."
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
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server for the smtp transport.")
    smtp_port: int = Field(default=587, description="SMTP port (587 starttls, 465 ssl).")
    smtp_user: str | None = Field(default=None, description="SMTP login; none: send without authenticating.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password (never logged).")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls (port 587), ssl (implicit TLS, port 465) or none (local relay)."
    )
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, description="Seconds before an SMTP connection or "
                                        "command gives up: before DATA the send is retried, after DATA it is held as "
                                        "unknown outcome.")
    imap_host: str = Field(default="127.0.0.1", description="IMAP server `outreach replies poll` reads.")
    imap_port: int = Field(default=993, description="IMAP port (993 ssl, 143 starttls).")
    imap_user: str | None = Field(default=None, description="IMAP login.")
    imap_password: SecretStr | None = Field(default=None, description="IMAP password (never logged).")
    imap_security: Literal["ssl", "starttls", "none"] = Field(default="ssl", description="ssl, starttls or none.")
    imap_folder: str = Field(default="INBOX", description="Mailbox folder with replies and bounces.")
    send_daily_cap_per_sender: int = Field(default=50, ge=0, description="Emails per sender per UTC day.")
    send_hourly_cap: int = Field(default=200, ge=0, description="Global throttle: emails per rolling hour.")
    send_stale_hours: float = Field(
        default=24.0, gt=0, description="A step overdue by more than this goes back to review instead of out."
    )
    worker_interval_seconds: float = Field(default=30.0, gt=0, description="Pause between worker passes.")
    worker_batch_size: int = Field(default=100, gt=0, description="Enrollments claimed per transaction.")
    worker_lease_seconds: float = Field(
        default=600.0, gt=0,
        description="Lease on a claimed step and on a send in flight: when it runs out (a crashed worker), another "
        "worker may take the step, and a send still marked in flight is checked. Must exceed the longest single send.",
    )
    send_retry_limit: int = Field(
        default=5, ge=1,
        description="Attempts for a send that certainly did not go out (relay down, 4xx, timeout before DATA) "
        "before the step is held with the reason.",
    )
    send_retry_backoff_seconds: float = Field(
        default=60.0, gt=0, description="Wait before the first retry of such a send; it doubles after each attempt."
    )
    send_gate_max_age_seconds: float = Field(
        default=300.0, ge=0,
        description="A health-gate decision the scheduler computed (one engine run per claimed batch) is reused "
        "for this long; a changed data file always means a fresh one.",
    )
    default_timezone: str = Field(default="UTC", description="Timezone for contacts whose account has none.")

    # Metrics (docs/metrics.md).
    attribution_window_days: int = Field(
        default=60, ge=0, le=3650, description="Days after a send in which a matching expansion counts as the "
        "email's (`outreach report --window` overrides it)."
    )

    # The review web app (docs/review-queue.md).
    secret_key: SecretStr | None = Field(
        default=None, description="Signs session cookies; default: a random key kept in OUTREACH_HOME."
    )
    data_dir: Path | None = Field(
        default=None, description="Data directory when `--data` is not given (default the workspace's data/); "
        "the web app re-checks gates and regenerates drafts against it."
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

    # Expansion metrics: currencies (docs/metrics.md).
    rates_path: Path | None = Field(
        default=None, description="CSV of exchange rates (currency,rate) converting MRR into the reporting currency."
    )
    reporting_currency: str | None = Field(
        default=None, description="Currency the metrics are reported in; default the one currency in the data."
    )

    # Integrations (docs/integrations.md): the event store and intake, Zendesk, CRM, Slack, webhooks, ESPs.
    event_store_path: Path | None = Field(
        default=None,
        description="DuckDB file of stored events (with PostgreSQL: the local columnar copy of them); "
        "default OUTREACH_HOME/events.duckdb.",
    )
    intake_react: bool = Field(
        default=True,
        description="Re-decide the accounts events arrive for through /v1/* and queue drafts for newly ready ones "
        "(needs OUTREACH_DATA_DIR / serve --data).",
    )
    zendesk_subdomain: str | None = Field(default=None, description="Zendesk subdomain (acme for acme.zendesk.com).")
    zendesk_email: str | None = Field(default=None, description="Zendesk agent email for API token auth.")
    zendesk_api_token: SecretStr | None = Field(default=None, description="Zendesk API token.")
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="Slack incoming webhook URL for ready accounts, held sends and replies."
    )
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Slack bot token (xoxb-…): messages go to the account owner by email, else slack_channel."
    )
    slack_channel: str | None = Field(default=None, description="Slack channel for the bot token when no owner matches.")
    crm: Literal["hubspot", "salesforce"] | None = Field(
        default=None, description="CRM to log approved and sent emails in: hubspot or salesforce."
    )
    hubspot_access_token: SecretStr | None = Field(default=None, description="HubSpot private app access token.")
    salesforce_username: str | None = Field(default=None, description="Salesforce API user.")
    salesforce_password: SecretStr | None = Field(default=None, description="Salesforce API user's password.")
    salesforce_security_token: SecretStr | None = Field(default=None, description="Salesforce security token.")
    salesforce_domain: str = Field(default="login", description="login (production) or test (sandbox).")
    webhook_url: str | None = Field(default=None, description="Generic outbound webhook for every notification.")
    webhook_secret: SecretStr | None = Field(
        default=None, description="Signs outbound webhooks: X-Outreach-Signature: sha256=HMAC(secret, t.body)."
    )
    notify_attempts: int = Field(default=3, ge=1, le=10, description="Delivery attempts per notification.")
    sendgrid_webhook_public_key: str | None = Field(
        default=None, description="SendGrid Event Webhook verification key (base64, from the SendGrid settings)."
    )
    postmark_webhook_user: str | None = Field(default=None, description="Basic-auth user in the Postmark webhook URL.")
    postmark_webhook_password: SecretStr | None = Field(
        default=None, description="Basic-auth password in the Postmark webhook URL."
    )
    ses_topic_arns: str | None = Field(
        default=None, description="Comma-separated SNS topic ARNs whose SES notifications are accepted."
    )

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home() / 'outreach.db'}"


_read: tuple[tuple[object, ...], Settings] | None = None
_read_lock = threading.Lock()


def get_settings() -> Settings:
    """The settings for the environment as it is now (a copy the caller may change).

    Reading them costs 15–20 ms (pydantic-settings looks at every field), and one command asks several times,
    so the last reading is kept for as long as what it was read from is unchanged: the environment, the
    working directory and its ``.env`` file. A test that changes a variable gets the new value."""
    global _read
    try:
        directory = os.getcwd()
    except OSError:  # the working directory was removed: nothing to key the reading on
        return Settings()
    try:
        dotenv: bytes | None = Path(".env").read_bytes()
    except OSError:
        dotenv = None
    key = (directory, tuple(sorted(os.environ.items())), dotenv)
    with _read_lock:
        if _read is None or _read[0] != key:
            _read = (key, Settings())
        return _read[1].model_copy()
