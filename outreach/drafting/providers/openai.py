"""The OpenAI provider: LangChain ``ChatOpenAI`` with structured output into :class:`~outreach.drafting.drafts.Draft`.

Works with api.openai.com and any OpenAI-compatible server (vLLM, Ollama, llama.cpp server) through
``OPENAI_BASE_URL``; it always uses the Chat Completions API with a ``json_schema`` response format.

Retries live in exactly one layer, here, with tenacity: the SDK's own retries are off (``max_retries=0``),
otherwise the two layers multiply attempts. A 429, a 5xx, a timeout or a dropped connection is retried after
the server's ``retry-after-ms`` / ``Retry-After`` (exponential back-off when there is none), and a 429 also
pauses the shared rate limiter so the other requests in flight back off too. A 429 whose code is
``insufficient_quota`` is not retried: no wait will fix it, so it becomes a :class:`ProviderError`. Invalid
structured output, a refusal, a truncated (``finish_reason: length``) or empty draft are semantic failures,
retried the same way. Responses are cached, so a re-run does not pay twice.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import openai
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from outreach.drafting.config import DraftingConfig
from outreach.drafting.facts import DraftFacts
from outreach.drafting.ledger import TokenUsage, usage_for
from outreach.drafting.providers.base import Draft, ProviderFailure, ProviderResult, RepairRequest
from outreach.drafting.providers.cache import ResponseCache
from outreach.drafting.providers.ratelimit import RateLimiter
from outreach.drafting.templates import ModelParams, RenderedPrompt
from outreach.errors import ProviderError
from outreach.settings import Settings

ModelT = TypeVar("ModelT", bound=BaseModel)

Sleep = Callable[[float], Awaitable[None]]


class SemanticFailure(Exception):
    """The call succeeded but the answer is unusable (invalid JSON, refusal, truncated, empty)."""

    def __init__(self, reason: str, usage: TokenUsage | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage or TokenUsage()


_TRANSIENT = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
)


def _error_code(error: openai.APIStatusError) -> str | None:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code") is not None:
            return str(inner.get("code"))
    code = getattr(error, "code", None)
    return str(code) if code is not None else None


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's requested wait from ``retry-after-ms`` (milliseconds) or ``Retry-After`` (seconds or
    an HTTP date), or None when the response has neither."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(parsed.timestamp() - time.time(), 0.0)


def _retryable(error: BaseException) -> bool:
    if isinstance(error, SemanticFailure):
        return True
    if isinstance(error, openai.APIStatusError) and error.status_code in (408, 409):
        return True
    return isinstance(error, _TRANSIENT)


def _fatal(error: openai.APIStatusError) -> ProviderError:
    status = error.status_code
    message = getattr(error, "message", str(error))
    if isinstance(error, openai.RateLimitError):
        return ProviderError(
            f"OpenAI says the quota is exhausted (429 insufficient_quota): {message}",
            hint="check the plan and billing of the API key; retrying will not help",
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderError(f"the API key was rejected ({status}): {message}", hint="check OPENAI_API_KEY")
    if isinstance(error, openai.NotFoundError):
        return ProviderError(
            f"model or endpoint not found ({status}): {message}",
            hint="check OUTREACH_OPENAI_MODEL and OPENAI_BASE_URL",
        )
    return ProviderError(f"the provider rejected the request ({status}): {message}")


def _usage(raw: Any, model: str, config: DraftingConfig) -> TokenUsage:
    metadata = getattr(raw, "usage_metadata", None) or {}
    details = metadata.get("input_token_details") or {}
    return usage_for(
        model,
        config.prices,
        prompt_tokens=int(metadata.get("input_tokens") or 0),
        completion_tokens=int(metadata.get("output_tokens") or 0),
        cached_tokens=int(details.get("cache_read") or 0),
    )


def _completion_usage(error: BaseException, model: str, config: DraftingConfig) -> TokenUsage:
    """Tokens of a completion the SDK refused to parse (finish_reason length / content_filter)."""
    completion = getattr(error, "completion", None)
    usage = getattr(completion, "usage", None)
    if usage is None:
        return TokenUsage(requests=1)
    details = getattr(usage, "prompt_tokens_details", None)
    return usage_for(
        model,
        config.prices,
        prompt_tokens=int(usage.prompt_tokens or 0),
        completion_tokens=int(usage.completion_tokens or 0),
        cached_tokens=int(getattr(details, "cached_tokens", 0) or 0),
    )


class OpenAIProvider:
    """Drafts through LangChain's ChatOpenAI. ``chat_factory`` and ``sleep`` are injectable for tests."""

    name = "openai"

    def __init__(
        self,
        settings: Settings,
        config: DraftingConfig,
        *,
        cache: ResponseCache | None = None,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if settings.openai_api_key is None:
            raise ProviderError("the openai provider needs an API key", hint="set OPENAI_API_KEY")
        self.settings = settings
        self.config = config
        self.model = settings.openai_model
        self.cache = cache
        options = config.openai
        self.limiter = limiter or RateLimiter(options.requests_per_minute, options.tokens_per_minute)
        self.sleep = sleep
        self._runnables: dict[str, Any] = {}
        self.retries = 0

    def _runnable(self, params: ModelParams, schema: type[BaseModel] = Draft) -> Any:
        key = f"{schema.__name__}:{params.model_dump_json()}"
        if key not in self._runnables:
            from langchain_openai import ChatOpenAI

            api_key = self.settings.openai_api_key
            extra: dict[str, Any] = {}
            if params.top_p is not None:
                extra["top_p"] = params.top_p
            if params.seed is not None:
                extra["seed"] = params.seed
            chat = ChatOpenAI(
                model=self.model,
                api_key=api_key.get_secret_value() if api_key else None,
                base_url=self.settings.openai_base_url,
                max_retries=0,  # retries happen in exactly one layer: tenacity, below
                timeout=self.config.openai.timeout_seconds,
                temperature=params.temperature,
                max_tokens=params.max_tokens,
                use_responses_api=False,
                **extra,
            )
            self._runnables[key] = chat.with_structured_output(
                schema, method="json_schema", strict=True, include_raw=True
            )
        return self._runnables[key]

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, SemanticFailure):
            return 0.0
        if error is not None:
            requested = retry_after_seconds(error)
            if requested is not None:
                wait = min(requested, self.config.openai.max_wait_seconds)
                if isinstance(error, openai.RateLimitError):
                    self.limiter.pause(wait)
                return wait
        return float(min(0.5 * 2 ** (state.attempt_number - 1), 8.0))

    async def _call(
        self, messages: list[dict[str, str]], params: ModelParams, tokens: int, schema: type[ModelT]
    ) -> tuple[ModelT, TokenUsage]:
        await self.limiter.acquire(tokens)
        try:
            result = await self._runnable(params, schema).ainvoke(messages)
        except openai.RateLimitError as error:
            if _error_code(error) == "insufficient_quota":
                raise _fatal(error) from None
            raise
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as error:
            raise _fatal(error) from None
        except openai.BadRequestError as error:
            raise _fatal(error) from None
        except openai.LengthFinishReasonError as error:
            raise SemanticFailure(
                "the model ran out of tokens (finish_reason: length)", _completion_usage(error, self.model, self.config)
            ) from None
        except openai.ContentFilterFinishReasonError as error:
            raise SemanticFailure(
                "the provider's content filter stopped the answer", _completion_usage(error, self.model, self.config)
            ) from None
        except (ValidationError, json.JSONDecodeError) as error:
            raise SemanticFailure(f"invalid structured output: {str(error).splitlines()[0]}",
                                  TokenUsage(requests=1)) from None
        raw = result.get("raw")
        usage = _usage(raw, self.model, self.config)
        problem = result.get("parsing_error")
        parsed = result.get("parsed")
        if problem is not None:
            kind = "refused" if "refus" in type(problem).__name__.lower() else "invalid structured output"
            raise SemanticFailure(f"{kind}: {str(problem).splitlines()[0] if str(problem) else kind}", usage)
        if not isinstance(parsed, schema):
            raise SemanticFailure("no structured output in the answer", usage)
        if isinstance(parsed, Draft) and (not parsed.subject.strip() or not parsed.body.strip()):
            raise SemanticFailure("empty draft (no subject or body)", usage)
        return parsed, usage

    async def structured(
        self, messages: list[dict[str, str]], params: ModelParams, schema: type[ModelT]
    ) -> tuple[ModelT, TokenUsage]:
        """One structured answer of ``schema`` with the retry policy of this provider (tenacity only; the
        SDK's own retries are off): Retry-After honoured on 429/5xx/timeouts, semantic failures retried,
        ``insufficient_quota`` and auth errors raised at once. Used for drafts and for the eval judge."""
        tokens = sum(len(m["content"]) for m in messages) // 4 + params.max_tokens
        spent = TokenUsage()
        reasons: list[str] = []
        options = self.config.openai
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(options.max_attempts),
                wait=self._wait,
                retry=retry_if_exception(_retryable),
                sleep=self.sleep,
                reraise=True,
            ):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self.retries += 1
                    try:
                        parsed, usage = await self._call(messages, params, tokens, schema)
                    except SemanticFailure as failure:
                        spent = spent + failure.usage
                        reasons.append(failure.reason)
                        raise
                    except _TRANSIENT as error:
                        spent = spent + TokenUsage(requests=1)
                        reasons.append(f"{type(error).__name__}: {getattr(error, 'message', error)}")
                        raise
        except ProviderError:
            raise
        except SemanticFailure:
            raise ProviderFailure(
                f"no usable answer after {options.max_attempts} attempts: " + "; ".join(reasons[-2:]), usage=spent
            ) from None
        except _TRANSIENT as error:
            raise ProviderFailure(
                f"the provider kept failing after {options.max_attempts} attempts: {type(error).__name__}",
                usage=spent,
            ) from None
        return parsed, spent + usage

    async def generate(
        self, prompt: RenderedPrompt, facts: DraftFacts, *, repair: RepairRequest | None = None
    ) -> ProviderResult:
        messages = prompt.messages()
        extra = ""
        if repair is not None:
            previous = repair.previous.model_dump_json()
            messages = [*messages, {"role": "assistant", "content": previous},
                        {"role": "user", "content": repair.instructions()}]
            extra = previous + repair.instructions()
        key = prompt.cache_key(self.model, extra)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return ProviderResult(draft=Draft.model_validate(hit["draft"]), model=hit["model"], cached=True)

        draft, usage = await self.structured(messages, prompt.params, Draft)
        if self.cache is not None:
            self.cache.put(key, self.model, {"draft": draft.model_dump(), "model": self.model})
        return ProviderResult(draft=draft, usage=usage, model=self.model)
