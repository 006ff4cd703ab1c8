"""The bot's LLM: any OpenAI-compatible endpoint, reached with the `openai` SDK.

The LLM is a subroutine of the pipeline, never the system (STYLE.md 5): every call here either
returns or raises LLMError, and each caller has an offline answer to fall back on. Calls are
never retried (max_retries=0): the customer is waiting, and the fallback is immediate.

The timeout (settings.LLM_TIMEOUT) is the client's read timeout, so it bounds the wait for the
first token and for every token after it; a stalled stream fails like a slow start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import openai
from django.conf import settings

from bots.models import Bot


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    api_key: str
    model: str
    timeout: float


def llm_config(bot: Bot) -> LLMConfig | None:
    """The bot's LLM, field by field over the server's LLM_* settings; None when neither names
    an endpoint or a key, and the bot answers extractively."""
    base_url = bot.llm_base_url or settings.LLM_BASE_URL
    api_key = bot.llm_api_key or settings.LLM_API_KEY
    if not base_url and not api_key:
        return None
    return LLMConfig(
        base_url=base_url,
        api_key=api_key,
        model=bot.llm_model or settings.LLM_MODEL,
        timeout=float(settings.LLM_TIMEOUT),
    )


@lru_cache(maxsize=64)
def client(config: LLMConfig) -> openai.OpenAI:
    # One client per configuration keeps its connection pool warm across turns.
    return openai.OpenAI(
        base_url=config.base_url or None,
        api_key=config.api_key or "not-needed",  # local servers (Ollama, vLLM) take any key
        timeout=config.timeout,
        max_retries=0,
    )


class LLMError(Exception):
    """The LLM did not deliver: kind is timeout, connection, http_<status>, malformed,
    truncated or error."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail[:300]

    @property
    def unreachable(self) -> bool:
        """The endpoint itself is in trouble, so the next call of this turn would be too."""
        return self.kind in ("timeout", "connection") or self.kind.startswith("http_5")


@contextmanager
def _errors():
    try:
        yield
    except openai.APITimeoutError as exc:
        raise LLMError("timeout", str(exc)) from exc
    except openai.APIConnectionError as exc:
        raise LLMError("connection", str(exc.__cause__ or exc)) from exc
    except openai.APIStatusError as exc:
        raise LLMError(f"http_{exc.status_code}", exc.message) from exc
    except openai.OpenAIError as exc:
        raise LLMError("error", str(exc)) from exc
    except ValueError as exc:  # a streamed data line that is not JSON
        raise LLMError("malformed", str(exc)) from exc


@dataclass
class Call:
    """One LLM call as the trace records it."""

    step: str
    model: str
    ms: float = 0.0
    first_token_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str = ""
    started: float = field(default_factory=time.perf_counter, repr=False)

    def usage(self, usage) -> None:
        if usage is not None:
            self.prompt_tokens = getattr(usage, "prompt_tokens", None)
            self.completion_tokens = getattr(usage, "completion_tokens", None)

    def done(self, error: LLMError | None = None) -> None:
        self.ms = round((time.perf_counter() - self.started) * 1000, 1)
        if error is not None:
            self.error = str(error)

    def as_trace(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "started"}


def _message(response):
    # Read defensively: a server may send any shape, and a missing field is a malformed reply.
    choices = getattr(response, "choices", None) or []
    return getattr(choices[0], "message", None) if choices else None


def complete(config: LLMConfig, messages: list[dict], call: Call, *, max_tokens: int) -> str:
    """A short non-streamed completion: its text."""
    try:
        with _errors():
            response = client(config).chat.completions.create(
                model=config.model, messages=messages, max_tokens=max_tokens, temperature=0
            )
        call.usage(getattr(response, "usage", None))
        content = getattr(_message(response), "content", None)
        if not isinstance(content, str):
            raise LLMError("malformed", "no message content")
    except LLMError as exc:
        call.done(exc)
        raise
    call.done()
    return content


def call_tool(config: LLMConfig, messages: list[dict], tool: dict, call: Call) -> dict:
    """Force one function call and return its arguments, parsed."""
    name = tool["function"]["name"]
    try:
        with _errors():
            response = client(config).chat.completions.create(
                model=config.model,
                messages=messages,
                tools=[tool],
                tool_choice={"type": "function", "function": {"name": name}},
                max_tokens=120,
                temperature=0,
            )
        call.usage(getattr(response, "usage", None))
        calls = getattr(_message(response), "tool_calls", None)
        function = getattr(calls[0], "function", None) if calls else None
        if function is None or getattr(function, "name", None) != name:
            raise LLMError("malformed", f"no {name} call in the reply")
        try:
            arguments = json.loads(function.arguments or "{}")
        except ValueError as exc:
            raise LLMError("malformed", f"arguments are not JSON: {exc}") from exc
        if not isinstance(arguments, dict):
            raise LLMError("malformed", "arguments are not an object")
    except LLMError as exc:
        call.done(exc)
        raise
    call.done()
    return arguments


def complete_tools(
    config: LLMConfig, messages: list[dict], tools: list[dict], call: Call, *, max_tokens: int
) -> tuple[str, list[tuple[str, str, str]]]:
    """A completion that may call the offered tools (tool_choice auto): its text, and the
    calls it asked for as (id, name, raw arguments); the arguments are the caller's to parse,
    so a malformed one is refused per call rather than failing the turn."""
    try:
        with _errors():
            response = client(config).chat.completions.create(
                model=config.model,
                messages=messages,
                tools=tools,
                tool_choice="auto",
                max_tokens=max_tokens,
                temperature=0,
            )
        call.usage(getattr(response, "usage", None))
        message = _message(response)
        if message is None:
            raise LLMError("malformed", "no message in the reply")
        requested = []
        for n, tool_call in enumerate(getattr(message, "tool_calls", None) or []):
            function = getattr(tool_call, "function", None)
            name = getattr(function, "name", None)
            if not isinstance(name, str):
                raise LLMError("malformed", "a tool call without a name")
            call_id = getattr(tool_call, "id", None) or f"call_{n}"
            requested.append((call_id, name, getattr(function, "arguments", None) or "{}"))
        content = getattr(message, "content", None)
    except LLMError as exc:
        call.done(exc)
        raise
    call.done()
    return (content if isinstance(content, str) else ""), requested


def stream(
    config: LLMConfig, messages: list[dict], call: Call, *, max_tokens: int
) -> Iterator[str]:
    """The answer's text as it arrives, piece by piece. Raises LLMError at the point of failure,
    so the caller knows exactly what it already received; a stream that ends without a finish
    reason was cut and raises too. Closing the iterator early closes the connection."""
    response = None
    finished = False
    try:
        with _errors():
            response = client(config).chat.completions.create(
                model=config.model,
                messages=messages,
                max_tokens=max_tokens,
                temperature=0.2,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in response:
                call.usage(getattr(chunk, "usage", None))
                for choice in getattr(chunk, "choices", None) or []:
                    finished = finished or bool(getattr(choice, "finish_reason", None))
                    content = getattr(getattr(choice, "delta", None), "content", None)
                    if content:
                        if call.first_token_ms is None:
                            call.first_token_ms = round(
                                (time.perf_counter() - call.started) * 1000, 1
                            )
                        yield content
        if not finished:
            raise LLMError("truncated", "the stream ended without a finish reason")
    except LLMError as exc:
        call.done(exc)
        raise
    finally:
        if response is not None:
            response.close()
        if not call.ms:  # finished, or closed early by a guardrail
            call.done()
