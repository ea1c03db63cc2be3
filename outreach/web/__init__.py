"""The SDR review web app (FastAPI, server-rendered Jinja2 + htmx) and its JSON API. See :mod:`outreach.web.app`."""
