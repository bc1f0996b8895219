"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

vLLM, Ollama, llama.cpp's server, llama-cpp-python's server and OpenAI itself all speak it. A JSON
schema, when given, is sent as ``response_format: {"type": "json_schema", ...}`` so the server
constrains decoding (servers that only know llama.cpp's older
``{"type": "json_object", "schema": ...}`` form, such as llama-cpp-python's, get that instead once
they refuse the first); the reply's token log-probabilities are requested and their mean is reported
as :attr:`Completion.mean_logprob` (servers that do not return them leave it ``None``).

Requests time out after ``DISPO_LLM_TIMEOUT_SECONDS`` and are retried ``DISPO_LLM_RETRIES`` times
with exponential backoff on connection errors, timeouts, 429 and 5xx answers; any other answer
is an error at once, with the server's message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from dispo.llm.base import Backend, Completion, LLMError, Message, Penalties, register

if TYPE_CHECKING:
    from dispo.config import Settings

_RETRYABLE = {408, 409, 429, 500, 502, 503, 504}


class OpenAIBackend(Backend):
    name = "openai"
    can_score = False

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise LLMError(
                "DISPO_LLM_BACKEND=openai needs DISPO_LLM_BASE_URL, the server's base URL such as "
                "http://127.0.0.1:8080/v1."
            )
        self.model_id = model or "default"
        self.retries = retries
        self.backoff = backoff
        self.model_ms_total = 0.0
        self.schema_style: str = "json_schema"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: Sequence[str] = (),
        penalties: Penalties | None = None,
        prefix: str = "",
    ) -> Completion:
        if prefix and messages:
            # The chat API cannot prefill the reply: ask for its beginning in words.
            last = messages[-1]
            messages = [
                *messages[:-1],
                {**last, "content": f'{last["content"]}\n\nBegin your reply with "{prefix}".'},
            ]
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "logprobs": True,
        }
        if stop:
            body["stop"] = list(stop)
        if penalties is not None:
            # The OpenAI API knows these two; repeat_penalty and n-gram blocking are llama.cpp's.
            body["frequency_penalty"] = penalties.frequency
            body["presence_penalty"] = penalties.presence
        started = time.perf_counter()
        if json_schema is None:
            payload = self._post("/chat/completions", body)
        else:
            body["response_format"] = self._response_format(json_schema)
            try:
                payload = self._post("/chat/completions", body)
            except _FormatRefused:
                self.schema_style = "json_object"
                body["response_format"] = self._response_format(json_schema)
                payload = self._post("/chat/completions", body)
        elapsed = (time.perf_counter() - started) * 1000
        self.model_ms_total += elapsed
        try:
            choice = payload["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"The LLM server's reply has no choices[0].message: {str(payload)[:200]}") from exc
        usage = payload.get("usage") or {}
        return Completion(
            text=str(text),
            model_ms=elapsed,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            mean_logprob=_mean_logprob(choice.get("logprobs")),
        )

    def close(self) -> None:
        self._client.close()

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.schema_style == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(path, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if (
                response.status_code in {400, 422, 500}
                and "response_format" in response.text
                and "response_format" in body
                and self.schema_style == "json_schema"
            ):
                raise _FormatRefused(response.text[:300])
            if response.status_code in _RETRYABLE:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise LLMError(
                    f"The LLM server at {self._client.base_url} answered HTTP {response.status_code}: "
                    f"{response.text[:300]}. Check DISPO_LLM_MODEL and DISPO_LLM_API_KEY."
                )
            try:
                data = response.json()
            except ValueError as exc:
                raise LLMError(
                    f"The LLM server answered something that is not JSON: {response.text[:200]}"
                ) from exc
            if not isinstance(data, dict):
                raise LLMError(f"The LLM server answered {type(data).__name__}, not a JSON object.")
            return data
        raise LLMError(
            f"The LLM server at {self._client.base_url} did not answer after {self.retries + 1} attempts "
            f"({last}); check that it is running and DISPO_LLM_BASE_URL is right."
        )


class _FormatRefused(LLMError):
    """The server does not take ``response_format: json_schema``."""


def _mean_logprob(logprobs: Any) -> float | None:
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if not isinstance(content, list) or not content:
        return None
    values = [float(t["logprob"]) for t in content if isinstance(t, dict) and "logprob" in t]
    return sum(values) / len(values) if values else None


@register("openai", OpenAIBackend)
def _create(settings: Settings) -> Backend:
    return OpenAIBackend(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout_seconds,
        retries=settings.llm_retries,
    )
