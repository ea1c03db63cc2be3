"""Replaying hand-written cassettes of the services we cannot reach (Slack, HubSpot, Salesforce, Zendesk, AWS).

Each cassette lives at tests/cassettes/<module>/<test>.yaml, follows the service's documented wire format and says
so in its header. ``record_mode="none"``: a missing cassette or an unexpected request fails the test instead of
reaching the network; requests to 127.0.0.1 (the app under test) pass through.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vcr

ROOT = Path(__file__).parents[1] / "cassettes"


@contextmanager
def cassette(module: str, name: str, *, fill: Mapping[str, str] | None = None, **options: Any) -> Iterator[Any]:
    """Replay ``tests/cassettes/<module>/<name>`` strictly: each interaction once, in order. ``fill`` replaces
    ``{{NAME}}`` placeholder lines with text the test made (a certificate for a key generated per run), indented
    as the placeholder is, in a temporary copy of the cassette."""
    with tempfile.TemporaryDirectory() as scratch:
        library = ROOT / module
        if fill:
            text = (library / name).read_text(encoding="utf-8")
            for key, value in fill.items():
                text = re.sub(rf"^( *)\{{\{{{key}\}}\}}$", _indented(value), text, flags=re.MULTILINE)
            library = Path(scratch)
            (library / name).write_text(text, encoding="utf-8")
        with _recorder(library).use_cassette(name, allow_playback_repeats=False, **options) as played:
            yield played


def _indented(value: str) -> Callable[[re.Match[str]], str]:
    """A replacement for a placeholder line: ``value``'s lines, each indented as the placeholder was."""
    return lambda match: "\n".join(match.group(1) + line for line in value.splitlines())


def _recorder(library: Path) -> Any:
    return vcr.VCR(
        cassette_library_dir=str(library),
        record_mode="none",
        ignore_localhost=True,
        match_on=["method", "scheme", "host", "port", "path", "query"],
        filter_headers=["authorization", "cookie", "set-cookie"],
        decode_compressed_response=True,
    )


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
