"""One typed settings object, read from the environment (``OUTREACH_*``) and an optional ``.env`` file.

``OUTREACH_HOME`` is the working directory for everything the tool writes (database, outbox, caches), so
tests point it at a temporary directory and never touch a user's data.
"""

from __future__ import annotations

from pathlib import Path

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

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home() / 'outreach.db'}"


def get_settings() -> Settings:
    """Read settings fresh from the environment (cheap; keeps tests that change env vars honest)."""
    return Settings()
