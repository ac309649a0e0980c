"""The OpenAI-compatible engine: ``POST {base_url}/chat/completions`` (vllm serve, a hosted model, ...).

Transient failures (429, 5xx, connection errors, timeouts) are retried with exponential back-off by tenacity; when
they persist, or the endpoint refuses the key or the model, ``EngineUnavailable`` raises (the task is retried).
A JSON answer is requested with ``response_format={"type": "json_schema", ...}``; a server that rejects that with
400 is remembered and asked again without it (the prompt still describes the format). Reasoning that a server
returns separately (``reasoning_content``, as vllm's reasoning parsers do) is put back in front of the answer
as ``<think>...</think>``, so every engine answers in the same form.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from legoedit_core.faults import Fault
from legoedit_core.settings.engine import EngineSettings
from legoedit_core.vlm.chat import Chat, GenerationError, OutputFormat, openai_messages

# Answers that refuse this one request (too long, malformed): the item's problem. Any other failure, after the
# retries of the transient ones, means the endpoint cannot serve (down, wrong key or model): a fault that raises.
ITEM_STATUSES = (400, 413, 422)


class EngineUnavailable(Fault):
    """The endpoint cannot serve requests: a fault of the machinery, not of the item."""


def is_transient(error: BaseException) -> bool:
    """Worth retrying: a connection problem, a timeout, 429 or a 5xx."""
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code == 429 or error.response.status_code >= 500
    return isinstance(error, httpx.TransportError)


def request_body(settings: EngineSettings, chat: Chat, fmt: OutputFormat | None, seed: int,
                 json_schema_format: bool = True) -> dict[str, Any]:
    """The chat-completions request for one chat."""
    body: dict[str, Any] = {
        "model": settings.model,
        "messages": openai_messages(chat),
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_new_tokens,
        "seed": seed,
    }
    if json_schema_format and fmt is not None and fmt.json_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "answer", "schema": fmt.json_schema, "strict": True}}
    return body


def answer_text(reply: dict[str, Any]) -> str:
    """The assistant's text from a chat-completions reply, with separate reasoning put back as ``<think>``."""
    try:
        message = reply["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise GenerationError(f"the endpoint's reply has no choices[0].message: {str(reply)[:200]}") from None
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning and "<think>" not in content:
        content = f"<think>{reasoning.strip()}</think>\n{content}"
    return content


class OpenAIEngine:
    """Sends each chat as its own request, ``concurrency`` at a time."""

    def __init__(self, settings: EngineSettings, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.base_url or not settings.model:
            raise ValueError("the openai engine needs planner.base_url and planner.model")
        self.settings = settings
        self.name = f"openai:{settings.model}"
        key = os.environ.get(settings.api_key_env)
        self._client = httpx.Client(base_url=settings.base_url.rstrip("/"), timeout=settings.timeout_s,
                                    headers={"Authorization": f"Bearer {key}"} if key else {}, transport=transport)
        self._json_schema_supported = True

    def generate(self, chats: list[Chat], fmt: OutputFormat | None, seeds: list[int]) -> list[str | GenerationError]:
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            return list(pool.map(self._answer, chats, [fmt] * len(chats), seeds))

    def _answer(self, chat: Chat, fmt: OutputFormat | None, seed: int) -> str | GenerationError:
        try:
            if self._json_schema_supported:
                try:
                    return answer_text(self._post(request_body(self.settings, chat, fmt, seed)))
                except httpx.HTTPStatusError as error:
                    if error.response.status_code != 400 or fmt is None or fmt.json_schema is None:
                        raise
                    self._json_schema_supported = False  # this server does not take json_schema: stop offering it
            return answer_text(self._post(request_body(self.settings, chat, fmt, seed, json_schema_format=False)))
        except httpx.HTTPStatusError as error:
            message = f"{self.settings.base_url} answered {error.response.status_code}: {error.response.text[:200]}"
            if error.response.status_code in ITEM_STATUSES:
                return GenerationError(message)
            raise EngineUnavailable(message) from error
        except httpx.HTTPError as error:
            raise EngineUnavailable(f"{self.settings.base_url} failed: {type(error).__name__}: {error}") from error
        except GenerationError as error:
            return error

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        retrying = Retrying(retry=retry_if_exception(is_transient), stop=stop_after_attempt(self.settings.http_retries),
                            wait=wait_exponential(multiplier=self.settings.retry_wait, max=60), reraise=True)
        return retrying(self._post_once, body)

    def _post_once(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post("/chat/completions", json=body)
        response.raise_for_status()
        try:
            return response.json()
        except ValueError:
            raise GenerationError(f"the endpoint's reply is not JSON: {response.text[:200]}") from None
