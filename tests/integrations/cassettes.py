"""Replaying hand-written cassettes of the services we cannot reach (Slack, HubSpot, Salesforce, Zendesk, AWS).

Each cassette lives at tests/cassettes/<module>/<test>.yaml, follows the service's documented wire format and says
so in its header. ``record_mode="none"``: a missing cassette or an unexpected request fails the test instead of
reaching the network; requests to 127.0.0.1 (the app under test) pass through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import vcr

ROOT = Path(__file__).parents[1] / "cassettes"


def cassette(module: str, name: str, **options: Any) -> Any:
    """Replay ``tests/cassettes/<module>/<name>`` strictly: each interaction once, in order."""
    recorder = vcr.VCR(
        cassette_library_dir=str(ROOT / module),
        record_mode="none",
        ignore_localhost=True,
        match_on=["method", "scheme", "host", "port", "path", "query"],
        filter_headers=["authorization", "cookie", "set-cookie"],
        decode_compressed_response=True,
    )
    return recorder.use_cassette(name, allow_playback_repeats=False, **options)


def capture(into: list[Any]) -> Any:
    """A ``before_record_request`` hook that keeps the body of each request the code under test sends, once, in
    order. vcr runs the hook on the cassette's own requests when loading it (they carry no headers) and several
    times per live request while matching (the same method, URI and body in a row)."""
    last: list[tuple[str, str, Any]] = []

    def keep(request: Any) -> Any:
        key = (request.method, request.uri, request.body)
        if request.headers and (not last or last[-1] != key):
            last[:] = [key]
            into.append(request.body)
        return request

    return keep
