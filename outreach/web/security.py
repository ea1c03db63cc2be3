"""What every response and every login attempt goes through: security headers and the login throttle.

Headers: a Content-Security-Policy that allows scripts, styles, images, fonts and connections from this origin
only (no inline script, no ``eval``), ``frame-ancestors 'none'`` plus ``X-Frame-Options: DENY`` against
clickjacking, ``nosniff``, ``Referrer-Policy: no-referrer`` (unsubscribe links carry a token in the path), a
closed ``Permissions-Policy`` and, with ``OUTREACH_SECURE_COOKIES``, HSTS. Pages behind the login are
``Cache-Control: no-store``: the browser keeps no copy of a draft after logout, and Back reloads the page the
URL names instead of showing a stale one.

Throttle: failed logins are counted per account and per client address in moving windows (the ``limits``
library); several windows of growing length make the wait grow with the failures (backoff). While a key is
over a limit every attempt — even with the right password — is refused with 429 and ``Retry-After``, and the
refusal is written to the audit log like every failure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Failed logins allowed per account and per address in each window; the longer windows are the backoff.
ACCOUNT_LIMITS = "5/minute;10/15 minutes;20/hour"
ADDRESS_LIMITS = "20/minute;60/15 minutes;200/hour"


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` to every response (static files and errors included)."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = dict(HEADERS)
        if hsts:
            self.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if not path.startswith("/static/") and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def client_address(request: Request) -> str:
    """The peer address (the app is served directly or behind a proxy that owns the throttling)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Throttled:
    """Why an attempt is refused and for how long (whole seconds, at least 1)."""

    scope: str
    retry_after: int

    def message(self) -> str:
        minutes = math.ceil(self.retry_after / 60)
        wait = f"{self.retry_after} seconds" if self.retry_after < 120 else f"{minutes} minutes"
        return f"too many failed logins for this {self.scope}; try again in {wait}"


class LoginThrottle:
    """Failed-login counters per account (email) and per client address, in moving windows."""

    def __init__(self, storage_uri: str = "memory://", *, account_limits: str = ACCOUNT_LIMITS,
                 address_limits: str = ADDRESS_LIMITS) -> None:
        # The limits storages keep time with time.time(); waits are computed against the same clock.
        self.clock: Callable[[], float] = time.time
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.account_limits = parse_many(account_limits)
        self.address_limits = parse_many(address_limits)

    def _keys(self, email: str, address: str) -> Iterable[tuple[str, list[RateLimitItem], str]]:
        yield "account", self.account_limits, email.strip().lower()
        yield "address", self.address_limits, address

    def check(self, email: str, address: str) -> Throttled | None:
        """The longest wait among the exhausted windows, or None when an attempt may go ahead."""
        worst: Throttled | None = None
        for scope, items, key in self._keys(email, address):
            for item in items:
                if self.limiter.test(item, "login", scope, key):
                    continue
                reset, _ = self.limiter.get_window_stats(item, "login", scope, key)
                wait = max(1, math.ceil(reset - self.clock()))
                if worst is None or wait > worst.retry_after:
                    worst = Throttled(scope, wait)
        return worst

    def failed(self, email: str, address: str) -> None:
        for scope, items, key in self._keys(email, address):
            for item in items:
                self.limiter.hit(item, "login", scope, key)

    def succeeded(self, email: str) -> None:
        """A correct password clears the account's counters (the address keeps its count)."""
        for item in self.account_limits:
            self.limiter.clear(item, "login", "account", email.strip().lower())

