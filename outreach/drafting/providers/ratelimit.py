"""A requests-per-minute and tokens-per-minute limiter for async callers.

Two token buckets refilled continuously. Callers wait in arrival order (an asyncio lock is FIFO), so a
batch runs at the limit instead of bursting into 429s; a 429 that still happens pauses every caller for the
server's ``Retry-After``. The clock and sleep are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    def __init__(
        self,
        requests_per_minute: float,
        tokens_per_minute: float,
        *,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if requests_per_minute <= 0 or tokens_per_minute <= 0:
            raise ValueError("rate limits must be positive")
        self.request_rate = requests_per_minute / 60.0
        self.token_rate = tokens_per_minute / 60.0
        self.request_capacity = max(1.0, self.request_rate * burst_seconds)
        self.token_capacity = max(1.0, self.token_rate * burst_seconds)
        self._clock = clock
        self._sleep = sleep
        self._requests = 1.0  # start nearly empty: no burst above the limit in the first window
        self._tokens = min(self.token_capacity, self.token_rate)
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited = 0.0

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._updated, 0.0)
        self._requests = min(self.request_capacity, self._requests + elapsed * self.request_rate)
        self._tokens = min(self.token_capacity, self._tokens + elapsed * self.token_rate)
        self._updated = now

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (the server said Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self, tokens: int = 1) -> None:
        """Wait until one request and ``tokens`` tokens are available, then take them."""
        tokens = max(int(tokens), 0)
        async with self._lock:
            while True:
                self._refill()
                now = self._clock()
                wait = self._paused_until - now
                need_tokens = min(float(tokens), self.token_capacity)  # a huge request waits for a full bucket
                if wait <= 0:
                    wait = max(
                        (1.0 - self._requests) / self.request_rate if self._requests < 1.0 else 0.0,
                        (need_tokens - self._tokens) / self.token_rate if self._tokens < need_tokens else 0.0,
                    )
                if wait <= 0:
                    self._requests -= 1.0
                    self._tokens -= need_tokens
                    return
                self.waited += wait
                await self._sleep(wait)
