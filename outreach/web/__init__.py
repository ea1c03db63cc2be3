"""The SDR review web app (FastAPI, server-rendered Jinja2 + htmx) and its JSON API. See :mod:`outreach.web.app`."""

from outreach.web.app import WebSettings, create_app

__all__ = ["WebSettings", "create_app"]
