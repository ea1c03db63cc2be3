"""A small OpenAI-compatible Chat Completions server for tests: real HTTP on 127.0.0.1, real SDK on the client.

It behaves like the servers outreach has to work with, one knob at a time:

- ``json_schema=False``: answers ``response_format: json_schema`` the way llama-cpp-python's server does (HTTP
  500, ``{"error": {"message": "... Input should be 'text' or 'json_object' ...", "type":
  "internal_server_error", "param": null, "code": null}}``);
- ``rate_limit_every=3``: every third request gets a 429 with ``retry-after-ms`` (what api.openai.com sends);
  ``rate_limit_first=N``: the first N requests do;
- ``steered=True``: a model that obeys the injections in its customer data: every draft it writes carries one
  of the paraphrases in tests/injection_payloads.py (again after a repair request).

Its drafts are real: it reads the ``<facts>`` block of the prompt and writes the email with the offline drafter,
answering as JSON content (json_schema / json_object) or as a forced tool call (tools), whichever was asked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from outreach.drafting.facts import DraftFacts
from outreach.drafting.providers.offline import draft_offline
from outreach.drafting.templates import parse_facts
from tests.injection_payloads import PAYLOADS

ANYWHERE = [payload for payload in PAYLOADS if payload.anywhere]

LLAMA_CPP_JSON_SCHEMA_ERROR = (
    "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be 'text' or "
    "'json_object' [type=literal_error, input_value='json_schema', input_type=str]"
)


@dataclass
class LLMServer:
    json_schema: bool = True
    rate_limit_every: int = 0
    rate_limit_first: int = 0
    steered: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    poisoned: list[str] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _method(self, request: dict[str, Any]) -> str:
        if request.get("tools"):
            return "tools"
        kind = (request.get("response_format") or {}).get("type", "text")
        return str(kind)

    def answer(self, request: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(request)
            count = len(self.requests)
        method = self._method(request)
        self.methods.append(method)
        if count <= self.rate_limit_first or (self.rate_limit_every and count % self.rate_limit_every == 0):
            error = {"message": "Rate limit reached for requests. Please try again in 1ms.", "type": "requests",
                     "param": None, "code": "rate_limit_exceeded"}
            return 429, {"error": error}, {"retry-after-ms": "1"}
        if method == "json_schema" and not self.json_schema:
            error = {"message": LLAMA_CPP_JSON_SCHEMA_ERROR, "type": "internal_server_error", "param": None,
                     "code": None}
            return 500, {"error": error}, {}
        messages = request["messages"]
        user = next(m["content"] for m in messages if m["role"] == "user")
        facts = DraftFacts.model_validate(parse_facts(user))
        draft = draft_offline(facts)
        if self.steered:
            payload = ANYWHERE[(count - 1) % len(ANYWHERE)]
            draft = draft.model_copy(update={"body": draft.body.replace("\n\nBest,", f" {payload.obeyed}\n\nBest,")})
            self.poisoned.append(payload.obeyed)
        arguments = draft.model_dump_json()
        message: dict[str, Any] = {"role": "assistant", "content": arguments}
        finish = "stop"
        if method == "tools":
            name = request["tools"][0]["function"]["name"]
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{count}", "type": "function", "function": {"name": name, "arguments": arguments}}]}
            finish = "tool_calls"
        prompt_tokens = sum(len(m.get("content") or "") for m in messages) // 4
        completion_tokens = len(arguments) // 4
        return 200, {
            "id": f"chatcmpl-test{count}", "object": "chat.completion", "created": int(time.time()),
            "model": request["model"],
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }, {}


def _handler(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
            status, payload, headers = server.answer(request)
            server.statuses.append(status)
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(server: LLMServer) -> Iterator[LLMServer]:
    """Run ``server`` on a free port of 127.0.0.1 until the block ends."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    http.daemon_threads = True
    server.port = http.server_address[1]
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)
