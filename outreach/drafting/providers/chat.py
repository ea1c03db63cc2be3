"""Drafting with any LangChain chat model: structured output negotiated per server, one retry layer, the cache
and the cost ledger.

Every LLM provider (the OpenAI-compatible one, Anthropic, anything ``init_chat_model`` builds) is a
:class:`ChatProvider` around a LangChain chat model, so validation, retries, caching and cost accounting are
the same whoever answers.

**Structured output.** Servers differ in what they accept: api.openai.com, vLLM and Ollama take
``response_format: json_schema``; llama-cpp-python's server answers it with HTTP 500 ("Input should be 'text'
or 'json_object'"); some servers only do tool calling. In ``auto`` mode (``OUTREACH_STRUCTURED_OUTPUT``) the
provider tries ``json_schema``, then ``json_object`` with the schema written into the system prompt, then
``tools`` (a forced function call); an answer saying the format is unsupported (400/422/500 naming
``response_format``, ``json_schema``, tools …) switches to the next method at once instead of being retried,
and the method that worked is remembered for the endpoint and model (in the response cache's database), so
the next run starts there. A fixed method that the server refuses stops the run with a hint.

**Retries** live in exactly one layer, here, with tenacity: the SDKs' own retries are off (``max_retries=0``).
A 429, a 5xx, a timeout or a dropped connection is retried after the server's ``retry-after-ms`` /
``Retry-After`` (exponential back-off when there is none), and a 429 also pauses the shared rate limiter so
the other requests in flight back off too. A 429 is the server asking to wait, not a failure: each one buys
an extra attempt (up to ``max_rate_limit_retries``), so a busy server does not cost drafts. OpenAI's ``insufficient_quota`` 429, a rejected key and an unknown
model are not retried: they become a :class:`~outreach.errors.ProviderError` that stops the run. Invalid
structured output, a refusal, a truncated or empty draft are retried at once.

**Cache.** A draft already paid for is not paid for again: the key covers provider, endpoint (base URL),
model, structured-output method, template name, version and hash, the rendered prompt, the parameters and any
repair context (:meth:`outreach.drafting.templates.RenderedPrompt.cache_key`).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from outreach.drafting.config import DraftingConfig
from outreach.drafting.facts import DraftFacts
from outreach.drafting.ledger import TokenUsage, usage_for
from outreach.drafting.providers.base import Draft, ProviderFailure, ProviderResult, RepairRequest
from outreach.drafting.providers.cache import ResponseCache
from outreach.drafting.providers.ratelimit import RateLimiter
from outreach.drafting.templates import ModelParams, RenderedPrompt
from outreach.errors import ProviderError

ModelT = TypeVar("ModelT", bound=BaseModel)
Sleep = Callable[[float], Awaitable[None]]

Method = Literal["json_schema", "json_object", "tools"]
METHODS: tuple[Method, ...] = get_args(Method)
StructuredOutput = Literal["auto", "json_schema", "json_object", "tools"]

#: The LangChain ``with_structured_output`` method behind each of ours.
LANGCHAIN_METHOD: dict[Method, str] = {"json_schema": "json_schema", "json_object": "json_mode",
                                       "tools": "function_calling"}

ChatFactory = Callable[[ModelParams], Any]
"""Builds the LangChain chat model for one set of parameters (temperature, max tokens, …)."""


class SemanticFailure(Exception):
    """The call succeeded but the answer is unusable (invalid JSON, refusal, truncated, empty)."""

    def __init__(self, reason: str, usage: TokenUsage | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage or TokenUsage()


class MethodUnsupported(Exception):
    """The server (or the LangChain integration) does not do this structured-output method."""

    def __init__(self, method: Method, detail: str) -> None:
        super().__init__(f"{method}: {detail}")
        self.method = method
        self.detail = detail


# ------------------------------------------------------------------------------------------------ errors


def status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return int(status) if isinstance(status, int) else None


def message_of(error: BaseException) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(error, "message", None) or error)


def error_code(error: BaseException) -> str | None:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code") is not None:
            return str(inner.get("code"))
    code = getattr(error, "code", None)
    return str(code) if code is not None else None


_UNSUPPORTED = re.compile(
    r"(?i)response_format|json_schema|json_object|structured output|input should be 'text'"
    r"|tool_choice|\btools?\b[^.]{0,40}\b(?:not supported|unsupported|not enabled|does not support)"
    r"|does not support (?:tools|tool use|function calling|functions)|function calling is not"
    r"|unrecognized request argument"
)


def is_unsupported_method(error: BaseException) -> bool:
    """A 400/422/500 whose message says the structured-output format is not supported."""
    return status_of(error) in (400, 404, 422, 500, 501) and bool(_UNSUPPORTED.search(message_of(error)))


_TRANSIENT_NAMES = {"APITimeoutError", "APIConnectionError", "ReadTimeout", "ConnectTimeout", "ConnectError",
                    "RemoteProtocolError", "TimeoutException", "ReadError", "WriteError", "PoolTimeout"}


def is_transient(error: BaseException) -> bool:
    """Worth retrying after a wait: rate limits, server errors, timeouts, dropped connections."""
    status = status_of(error)
    if status is not None:
        return status in (408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529)
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(error).__mro__)


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


def fatal_error(error: BaseException, provider: str) -> ProviderError | None:
    """The :class:`ProviderError` for a failure no retry can fix, or None when a retry might."""
    status = status_of(error)
    message = message_of(error)
    if status == 429 and error_code(error) == "insufficient_quota":
        return ProviderError(
            f"{provider} says the quota is exhausted (429 insufficient_quota): {message}",
            hint="check the plan and billing of the API key; retrying will not help",
        )
    if status in (401, 403):
        return ProviderError(f"the API key was rejected ({status}): {message}",
                             hint=f"check the {provider} API key in the environment")
    if status == 404:
        return ProviderError(f"model or endpoint not found ({status}): {message}",
                             hint="check the model name (--provider NAME:MODEL or OUTREACH_OPENAI_MODEL) and base URL")
    if status in (400, 413, 422):
        return ProviderError(f"the provider rejected the request ({status}): {message}")
    return None


# ------------------------------------------------------------------------------------------------ the provider


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


def schema_instructions(schema: type[BaseModel]) -> str:
    """What the system prompt says in ``json_object`` mode, where the server does not know the schema."""
    return (
        "\n\n# Answer format\nAnswer with one JSON object and nothing else (no prose, no code fence). It must "
        "match this JSON Schema:\n" + json.dumps(schema.model_json_schema(), separators=(",", ":"))
    )


class ChatProvider:
    """Drafts through one LangChain chat model. ``chat_factory`` builds the model; ``sleep`` is injectable.

    ``methods`` are the structured-output methods to try in ``auto`` mode, in order; ``endpoint`` names the
    server (its base URL) for the cache key and the remembered method.
    """

    def __init__(
        self,
        name: str,
        model: str,
        config: DraftingConfig,
        chat_factory: ChatFactory,
        *,
        endpoint: str = "",
        structured_output: StructuredOutput = "auto",
        methods: Sequence[Method] = METHODS,
        cache: ResponseCache | None = None,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.model = model
        self.config = config
        self.chat_factory = chat_factory
        self.endpoint = endpoint
        self.structured_output = structured_output
        self.cache = cache
        options = config.openai
        self.limiter = limiter or RateLimiter(options.requests_per_minute, options.tokens_per_minute)
        self.sleep = sleep
        self.methods: list[Method] = list(methods) if structured_output == "auto" else [structured_output]
        self.method: Method = self.methods[0]
        if structured_output == "auto" and cache is not None:
            remembered = next((m for m in self.methods if m == cache.method_for(self._method_key)), None)
            if remembered is not None:
                self.method = remembered
        self.switches: list[str] = []
        self._runnables: dict[str, Any] = {}
        self.retries = 0

    @property
    def _method_key(self) -> str:
        return f"{self.name}|{self.endpoint}|{self.model}"

    # -------------------------------------------------------------------------------------------- calls

    def _runnable(self, params: ModelParams, schema: type[BaseModel], method: Method) -> Any:
        # Per event loop: the SDK's HTTP client belongs to the loop it was first used on, and callers such as
        # the review queue's regeneration run each request under its own asyncio.run.
        key = f"{id(asyncio.get_running_loop())}:{schema.__name__}:{method}:{params.model_dump_json()}"
        if key not in self._runnables:
            chat = self.chat_factory(params)
            options: dict[str, Any] = {"method": LANGCHAIN_METHOD[method], "include_raw": True}
            if method == "json_schema" and self.name == "openai":
                options["strict"] = True
            try:
                self._runnables[key] = chat.with_structured_output(schema, **options)
            except (ValueError, NotImplementedError, TypeError) as error:
                raise MethodUnsupported(method, f"the LangChain integration does not offer it ({error})") from None
        return self._runnables[key]

    def _switch(self, failed: Method, detail: str) -> bool:
        """Move past ``failed`` (unless another request already did); False when no method is left."""
        if self.method != failed:
            return True
        position = self.methods.index(failed)
        if position + 1 >= len(self.methods):
            return False
        self.method = self.methods[position + 1]
        self.switches.append(f"{failed} → {self.method}: {detail[:120]}")
        if self.cache is not None:
            self.cache.remember_method(self._method_key, self.method)
        return True

    async def _invoke(
        self, messages: list[dict[str, str]], params: ModelParams, schema: type[ModelT], method: Method
    ) -> tuple[ModelT, TokenUsage]:
        if method == "json_object" and messages and messages[0]["role"] == "system":
            messages = [{"role": "system", "content": messages[0]["content"] + schema_instructions(schema)},
                        *messages[1:]]
        runnable = self._runnable(params, schema, method)
        try:
            result = await runnable.ainvoke(messages)
        except (ValidationError, json.JSONDecodeError) as error:
            raise SemanticFailure(f"invalid structured output: {str(error).splitlines()[0]}",
                                  TokenUsage(requests=1)) from None
        except Exception as error:
            kind = type(error).__name__
            if kind == "LengthFinishReasonError":
                raise SemanticFailure("the model ran out of tokens (finish_reason: length)",
                                      _completion_usage(error, self.model, self.config)) from None
            if kind == "ContentFilterFinishReasonError":
                raise SemanticFailure("the provider's content filter stopped the answer",
                                      _completion_usage(error, self.model, self.config)) from None
            if kind == "OutputParserException":
                raise SemanticFailure(f"invalid structured output: {str(error).splitlines()[0][:200]}",
                                      TokenUsage(requests=1)) from None
            if is_unsupported_method(error):
                raise MethodUnsupported(method, message_of(error)) from None
            fatal = fatal_error(error, self.name)
            if fatal is not None:
                raise fatal from None
            raise
        raw = result.get("raw")
        usage = _usage(raw, self.model, self.config)
        problem = result.get("parsing_error")
        parsed = result.get("parsed")
        if problem is not None:
            label = "refused" if "refus" in type(problem).__name__.lower() else "invalid structured output"
            raise SemanticFailure(f"{label}: {str(problem).splitlines()[0][:200] if str(problem) else label}", usage)
        if isinstance(parsed, dict):
            try:
                parsed = schema.model_validate(parsed)
            except ValidationError as error:
                raise SemanticFailure(f"invalid structured output: {str(error).splitlines()[0]}", usage) from None
        if not isinstance(parsed, schema):
            raise SemanticFailure("no structured output in the answer", usage)
        if isinstance(parsed, Draft) and (not parsed.subject.strip() or not parsed.body.strip()):
            raise SemanticFailure("empty draft (no subject or body)", usage)
        return parsed, usage

    async def _call(
        self, messages: list[dict[str, str]], params: ModelParams, tokens: int, schema: type[ModelT]
    ) -> tuple[ModelT, TokenUsage]:
        """One request, switching structured-output method as often as the server refuses one."""
        await self.limiter.acquire(tokens)
        while True:
            method = self.method
            try:
                return await self._invoke(messages, params, schema, method)
            except MethodUnsupported as refused:
                if self.structured_output != "auto":
                    raise ProviderError(
                        f"{self.name} does not support structured output method '{method}': {refused.detail[:200]}",
                        hint="set OUTREACH_STRUCTURED_OUTPUT=auto (or json_object / tools) so outreach negotiates "
                             "a method the server supports",
                    ) from None
                if not self._switch(method, refused.detail):
                    raise ProviderError(
                        f"{self.name} supports none of the structured output methods ({', '.join(self.methods)}): "
                        f"{refused.detail[:200]}",
                        hint="use a server or model with JSON output or tool calling, or --provider offline",
                    ) from None

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, SemanticFailure):
            return 0.0
        if error is not None:
            requested = retry_after_seconds(error)
            if requested is not None:
                wait = min(requested, self.config.openai.max_wait_seconds)
                if status_of(error) == 429:
                    self.limiter.pause(wait)
                return wait
        return float(min(0.5 * 2 ** (state.attempt_number - 1), 8.0))

    @staticmethod
    def _retryable(error: BaseException) -> bool:
        return isinstance(error, SemanticFailure) or (not isinstance(error, ProviderError) and is_transient(error))

    async def structured(
        self, messages: list[dict[str, str]], params: ModelParams, schema: type[ModelT]
    ) -> tuple[ModelT, TokenUsage]:
        """One structured answer of ``schema`` with this provider's retry policy. Used for drafts and for the
        eval judge."""
        tokens = sum(len(m["content"]) for m in messages) // 4 + params.max_tokens
        spent = TokenUsage()
        reasons: list[str] = []
        options = self.config.openai
        limited = 0  # 429s in this call: each buys one more attempt (up to max_rate_limit_retries)

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= options.max_attempts + min(limited, options.max_rate_limit_retries)

        try:
            async for attempt in AsyncRetrying(
                stop=stop,
                wait=self._wait,
                retry=retry_if_exception(self._retryable),
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
                    except ProviderError:
                        raise
                    except Exception as error:
                        if is_transient(error):
                            spent = spent + TokenUsage(requests=1)
                            reasons.append(f"{type(error).__name__}: {message_of(error)[:120]}")
                            if status_of(error) == 429:
                                limited += 1
                        raise
        except ProviderError:
            raise
        except SemanticFailure:
            raise ProviderFailure(
                f"no usable answer after {options.max_attempts} attempts: " + "; ".join(reasons[-2:]), usage=spent
            ) from None
        except Exception as error:
            if not is_transient(error):
                raise  # not a provider condition we know: a bug to see, not a draft to fall back on
            raise ProviderFailure(
                f"the provider kept failing after {options.max_attempts + min(limited, options.max_rate_limit_retries)}"
                f" attempts: {type(error).__name__}",
                usage=spent,
            ) from None
        return parsed, spent + usage

    def cache_key(self, prompt: RenderedPrompt, extra: str = "") -> str:
        return prompt.cache_key(
            self.model, extra, provider=self.name, endpoint=self.endpoint, method=self.method,
        )

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
        if self.cache is not None:
            hit = self.cache.get(self.cache_key(prompt, extra))
            if hit is not None:
                return ProviderResult(draft=Draft.model_validate(hit["draft"]), model=hit["model"], cached=True)

        draft, usage = await self.structured(messages, prompt.params, Draft)
        if self.cache is not None:  # keyed by the method that answered (negotiation may have moved it)
            self.cache.put(self.cache_key(prompt, extra), self.model, {"draft": draft.model_dump(), "model": self.model})
        return ProviderResult(draft=draft, usage=usage, model=self.model)
