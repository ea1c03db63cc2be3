"""A real SMTP server (aiosmtpd) for the sending tests and ``benchmarks/bench_scheduler.py``.

It accepts mail on 127.0.0.1 and records, for every message it was given, the ``X-Outreach-Key`` (enrollment
and step), the recipient and the wall-clock time. It can behave like a relay does on a bad day, each switch
set from the test while the server runs:

- ``delay``: seconds to wait before answering the end of DATA (a relay that takes ~50 ms to accept);
- ``tempfail``: a reply such as ``451 4.3.0 Try again later`` for the next N recipients (RCPT);
- ``refuse``: recipients refused permanently at RCPT (``550 5.1.1 …``), e.g. a mailbox that does not exist;
- ``drop_after_data``: recipients whose message is taken in full, then the connection is cut before the reply
  (the client cannot know it was delivered: the outcome is unknown, and the server does have it);
- ``data_reply``: the answer to the end of DATA (``554 5.7.1 …`` rejects the message; it is not kept);
- :meth:`Sink.stop` / :meth:`Sink.start`: the relay goes away (connection refused) and comes back on its port.

Run as a module it is a relay process of its own (``benchmarks/bench_scheduler.py`` starts one per worker, so
the relay is never what limits the workers): ``python -m tests.smtpsink --port P --delay 0.05 --log FILE``
writes the key of every message it accepts to FILE, a line each, until it is terminated.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    key: str
    recipient: str
    at: float


_KEY = re.compile(rb"^X-Outreach-Key: *(\S+)\r?$", re.MULTILINE)  # not a full parse: the sink must stay cheap


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Handler:
    delay: float = 0.0
    tempfail: str = "451 4.3.0 Try again later"
    tempfail_next: int = 0
    refuse: dict[str, str] = field(default_factory=dict)
    drop_after_data: set[str] = field(default_factory=set)
    data_reply: str = "250 OK"
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: Any = None  # a text file each accepted key is written to, when set

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        with self.lock:
            if self.tempfail_next > 0:
                self.tempfail_next -= 1
                return self.tempfail
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipient = envelope.rcpt_tos[0].lower()
        if not self.data_reply.startswith("250"):
            return self.data_reply
        key = _KEY.search(envelope.original_content)
        with self.lock:
            self.received.append(Received(key=key.group(1).decode() if key else "", recipient=recipient,
                                          at=time.time()))
            if self.log is not None:
                self.log.write(f"{self.received[-1].key}\n")
                self.log.flush()
        if recipient in self.drop_after_data:
            server.transport.abort()  # taken in full, then the line goes dead before "250"
            return "250 OK"
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 OK"


class Sink:
    """The server on a fixed port, which can be stopped (relay down) and started again."""

    def __init__(self, handler: Handler | None = None, port: int | None = None) -> None:
        self.handler = handler or Handler()
        self.port = port or free_port()
        self._controller: Controller | None = None

    def start(self) -> Sink:
        controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def keys(self) -> Counter[str]:
        with self.handler.lock:
            return Counter(r.key for r in self.handler.received)

    def count(self) -> int:
        with self.handler.lock:
            return len(self.handler.received)

    def to(self, recipient: str) -> list[Received]:
        with self.handler.lock:
            return [r for r in self.handler.received if r.recipient == recipient.lower()]

    def env(self) -> dict[str, str]:
        """The ``OUTREACH_*`` settings that point a worker at this server."""
        return {"OUTREACH_MAIL_TRANSPORT": "smtp", "OUTREACH_SMTP_HOST": "127.0.0.1",
                "OUTREACH_SMTP_PORT": str(self.port), "OUTREACH_SMTP_SECURITY": "none",
                "OUTREACH_SMTP_TIMEOUT_SECONDS": "5"}


def main() -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open(args.log, "a", encoding="utf-8") as log:
        sink = Sink(Handler(delay=args.delay, log=log), port=args.port).start()
        print("ready", flush=True)
        stop.wait()
        sink.stop()


if __name__ == "__main__":
    main()
