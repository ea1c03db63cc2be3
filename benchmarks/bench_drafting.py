"""Drafting throughput against a local OpenAI-compatible stub: drafts per minute vs the rate limit.

The stub (stdlib HTTP server on 127.0.0.1 only) answers ``POST /v1/chat/completions`` after a configurable
latency, enforces a requests-per-minute limit over a sliding 60-second window (429 with ``retry-after-ms``
when exceeded), and injects extra 429s at a configurable rate. Its answers are real drafts: it reads the
``<facts>`` block of the prompt and writes the email with the offline drafter, so every response goes through
the same parsing and validation as production.

The client is the real pipeline (``outreach.drafting.drafts.draft_all`` → ``OpenAIProvider`` → LangChain → openai SDK)
with its limiter set to the same RPM. Targets: >= 90% of the limit achieved, zero lost drafts (every account
ends with an accepted LLM draft; none failed, none fell back offline) even with 429s injected.

    python benchmarks/bench_drafting.py --drafts 240 --rpm 240 --latency 0.4 --inject-429 0.03
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import threading
import time
from collections import deque
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from outreach.drafting.config import DraftingConfig, OpenAIOptions, load_drafting_config
from outreach.drafting.drafts import DraftRecord, draft_all, open_workspace
from outreach.drafting.facts import DraftFacts
from outreach.drafting.providers.offline import draft_offline
from outreach.drafting.providers.openai import OpenAIProvider
from outreach.drafting.providers.ratelimit import RateLimiter
from outreach.drafting.templates import parse_facts
from outreach.engine.decisions import Decision
from outreach.settings import Settings

DEMO = Path(__file__).resolve().parent.parent / "outreach" / "defaults" / "demo"


class Stub:
    """Counters and knobs shared by the handler threads."""

    def __init__(self, rpm: int, latency: float, jitter: float, inject: float, retry_ms: int, seed: int) -> None:
        self.rpm = rpm
        self.latency = latency
        self.jitter = jitter
        self.inject = inject
        self.retry_ms = retry_ms
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.window: deque[float] = deque()
        self.accepted = 0
        self.limited = 0
        self.injected = 0

    def admit(self) -> tuple[str, int]:
        """('ok', 0), ('limit', ms until the window frees a slot) or ('inject', the configured ms)."""
        with self.lock:
            now = time.monotonic()
            while self.window and self.window[0] <= now - 60.0:
                self.window.popleft()
            if self.random.random() < self.inject:
                self.injected += 1
                return "inject", self.retry_ms
            if len(self.window) >= self.rpm:
                self.limited += 1
                return "limit", max(int((self.window[0] + 60.0 - now) * 1000) + 1, 1)
            self.window.append(now)
            self.accepted += 1
            return "ok", 0

    def delay(self) -> float:
        with self.lock:
            return max(0.0, self.latency + self.random.uniform(-self.jitter, self.jitter))


def make_handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
            verdict, retry_ms = stub.admit()
            if verdict != "ok":
                error = {"message": f"Rate limit reached (stub). Please try again in {retry_ms}ms.",
                         "type": "requests", "param": None, "code": "rate_limit_exceeded"}
                self.send_json(429, {"error": error}, {"retry-after-ms": str(retry_ms)})
                return
            time.sleep(stub.delay())
            messages = request["messages"]
            facts_data = parse_facts(messages[1]["content"]) if len(messages) > 1 else None
            if facts_data is None:
                self.send_json(400, {"error": {"message": "no <facts> block", "type": "invalid_request_error",
                                               "param": "messages", "code": None}})
                return
            draft = draft_offline(DraftFacts.model_validate(facts_data))
            content = draft.model_dump_json()
            prompt_tokens = sum(len(m["content"]) for m in messages) // 4
            cached = (len(messages[0]["content"]) // 4) // 128 * 128
            completion_tokens = len(content) // 4
            self.send_json(200, {
                "id": f"chatcmpl-stub{stub.accepted}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens,
                          "prompt_tokens_details": {"cached_tokens": cached}},
            })

    return Handler


def decisions_for(count: int, as_of: date) -> tuple[list[Decision], Any]:
    """``count`` ready decisions: the demo's ready accounts, repeated under distinct account ids."""
    workspace = open_workspace(DEMO, as_of)
    ready = [d for d in workspace.decisions if d.cohort == "ready" and d.offer is not None]
    out: list[Decision] = []
    for index in range(count):
        base = ready[index % len(ready)]
        account = base.account.model_copy(update={"account_id": f"{base.account_id}-{index:04d}"})
        out.append(base.model_copy(update={"account": account}))
    return out, workspace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=240)
    parser.add_argument("--rpm", type=int, default=240, help="stub limit and client limiter, requests/minute")
    parser.add_argument("--client-rpm", type=int, default=None, help="client limiter if different from --rpm")
    parser.add_argument("--latency", type=float, default=0.4, help="seconds per completion")
    parser.add_argument("--jitter", type=float, default=0.2)
    parser.add_argument("--inject-429", type=float, default=0.03, help="share of requests answered 429")
    parser.add_argument("--retry-after-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    stub = Stub(args.rpm, args.latency, args.jitter, args.inject_429, args.retry_after_ms, args.seed)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(stub))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    decisions, workspace = decisions_for(args.drafts, date(2026, 11, 20))
    base = load_drafting_config()
    config = DraftingConfig(
        validation=base.validation,
        prices=base.prices,
        openai=OpenAIOptions(concurrency=args.concurrency, requests_per_minute=args.client_rpm or args.rpm,
                             tokens_per_minute=10_000_000, max_attempts=6),
    )
    workspace.context.config = config
    settings = Settings(OPENAI_API_KEY="sk-bench-local", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
    limiter = RateLimiter(config.openai.requests_per_minute, config.openai.tokens_per_minute)
    provider = OpenAIProvider(settings, config, cache=None, limiter=limiter)

    done = 0

    def progress(_: DraftRecord) -> None:
        nonlocal done
        done += 1
        if done % 60 == 0:
            print(f"  {done}/{args.drafts} drafts", file=sys.stderr)

    started = time.perf_counter()
    records, summary = asyncio.run(draft_all(decisions, workspace.context, provider, progress=progress))
    elapsed = time.perf_counter() - started
    server.shutdown()

    accepted = sum(r.status == "ok" and r.provider == "openai" for r in records)
    lost = len(decisions) - accepted
    per_minute = accepted / elapsed * 60
    limit = args.client_rpm or args.rpm
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "drafts": len(decisions),
        "elapsed_s": round(elapsed, 1),
        "drafts_per_min": round(per_minute, 1),
        "rate_limit_rpm": args.rpm,
        "share_of_limit": round(per_minute / args.rpm, 3),
        "client_rpm": limit,
        "latency_s": f"{args.latency}±{args.jitter}",
        "concurrency": args.concurrency,
        "stub_accepted": stub.accepted,
        "stub_429_injected": stub.injected,
        "stub_429_over_limit": stub.limited,
        "client_retries": provider.retries,
        "ok": summary.drafted,
        "fallbacks": summary.fallbacks,
        "failed": summary.failed,
        "lost": lost,
        "tokens_prompt": summary.usage.prompt_tokens,
        "tokens_cached": summary.usage.cached_tokens,
        "tokens_completion": summary.usage.completion_tokens,
        "est_cost_usd": round(summary.usage.cost_usd, 4),
    }
    print(json.dumps(result, indent=2))
    return 0 if lost == 0 and per_minute >= 0.9 * args.rpm else 1


if __name__ == "__main__":
    raise SystemExit(main())
