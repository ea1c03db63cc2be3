"""What the web app's routers share: the per-app state object, the auth exceptions and error statuses.

Routers import this module, never :mod:`outreach.web.app` (which imports the routers), so the web package has
no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from outreach.application import Application
from outreach.errors import ConflictError, NotFoundError, OutreachError, PermissionDeniedError
from outreach.review.queue import ReviewQueue
from outreach.settings import Settings
from outreach.web.security import LoginThrottle

WEB_DIR = Path(__file__).resolve().parent


class LoginRequired(Exception):
    """Raised by page dependencies when no one is logged in; answered with the login page."""


class ApiAuthRequired(Exception):
    """Raised by API dependencies without a valid bearer token; answered with 401 JSON."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class ReviewApp:
    """What every route needs, stored on ``app.state.review``: the application (settings, database, data)
    and the review queue built on it."""

    application: Application
    queue: ReviewQueue
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    @property
    def settings(self) -> Settings:
        return self.application.settings

    @property
    def engine(self) -> Engine:
        return self.application.engine

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.application.sessions

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.settings.session_hours)

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.settings.session_idle_minutes)


def status_for(error: OutreachError) -> int:
    """The HTTP status for a library error."""
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    if isinstance(error, PermissionDeniedError):
        return 403
    return 422
