"""A crashing model is not a crashing platform: the model in supervised worker processes.

Real processes throughout. The ``scripted`` backend (dispo.llm.testing) segfaults for real, or
sleeps so that the test can SIGKILL its process mid-call; the supervisor must turn each death into
one failed call (``ModelCrashed``), restart the child and keep the API answering. The live-server
tests place real calls (test telephony provider, an agent whose turns come from the model) and run
real analytics jobs through the SQLite queue; the last test runs the real ``local`` model in a child.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from dispo.analytics import lifecycle
from dispo.api.app import create_app
from dispo.config import Settings
from dispo.llm import LazyBackend, LLMError, ModelCrashed, ModelTimedOut, close_backends, get_backend
from dispo.llm.worker import ProcessBackend, describe_exit, start_process_backend
from dispo.store.database import Database
from dispo.store.tables import calls
from tests.analytics_fakes import call_row, end_call, make_agent, result_count, wait_for
from tests.conftest import Org, _free_port

HELLO = [{"role": "user", "content": "Hello?"}]


def scripted(tmp_path: Path, *faults: dict[str, Any], **overrides: Any) -> Settings:
    """Settings for the scripted backend with ``faults``, its script written under ``tmp_path``."""
    script = tmp_path / f"script-{time.monotonic_ns()}.json"
    script.write_text(json.dumps({"model_id": "scripted-test", "faults": list(faults)}))
    values: dict[str, Any] = {"data_dir": tmp_path, "llm_backend": "scripted", "llm_script": str(script)}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test closes what it started; none may leave a model process behind."""
    yield
    close_backends()
    left = model_processes()
    assert not left, f"model processes left running: {left}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_file(path: Path, timeout: float = 30.0) -> int:
    """The pid a scripted fault wrote to ``path`` once its call is in flight."""
    wait_for(lambda: path.exists() and path.read_text().strip() != "", timeout=timeout, what=str(path))
    return int(path.read_text())


# ---------------------------------------------------------------------------------------------
# The supervisor, directly


def test_calls_run_in_a_child_that_keeps_the_backends_identity(tmp_path: Path) -> None:
    settings = scripted(tmp_path)
    backend = get_backend(settings)
    assert isinstance(backend, ProcessBackend)
    assert (backend.name, backend.can_score, backend.model_id) == ("scripted", True, "scripted-test")
    assert get_backend(settings) is backend  # loaded once
    (pid,) = backend.pool.pids()
    assert pid != os.getpid()
    reply = backend.chat(HELLO)  # type: ignore[arg-type]
    assert reply.text.startswith("Hi!")
    assert backend.score(HELLO, [" yes", " no"]) == [-1.0, -2.0]  # type: ignore[arg-type]
    assert backend.model_ms_total >= 0
    close_backends()
    assert not alive(pid)


def model_processes() -> list[Any]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("dispo-model")]


def test_the_lazy_backend_loads_on_first_use_and_releases_on_close(tmp_path: Path) -> None:
    """What the server creates at start-up: nothing loads until a model is needed; then it is the
    configured backend (the one get_backend keeps), and closing it stops its worker process."""
    settings = scripted(tmp_path)
    lazy = LazyBackend(settings)
    assert not model_processes()
    assert lazy.chat(HELLO).text.startswith("Hi!")  # type: ignore[arg-type]
    assert lazy.load() is get_backend(settings)
    assert (lazy.can_score, lazy.model_id) == (True, "scripted-test")
    (pid,) = lazy.pool.pids()  # the loaded backend's own attributes
    assert lazy.model_ms_total >= 0
    lazy.close()
    assert not alive(pid)
    assert not model_processes()
    assert get_backend(settings).pool.pids() != [pid]  # type: ignore[attr-defined]  # loaded afresh


def test_isolation_none_loads_the_backend_in_this_process(tmp_path: Path) -> None:
    backend = get_backend(scripted(tmp_path, llm_isolation="none"))
    assert type(backend).__name__ == "ScriptedBackend"


def test_a_child_killed_mid_call_fails_that_call_and_the_next_one_works(tmp_path: Path) -> None:
    touch, once = tmp_path / "in-flight", tmp_path / "once"
    backend = get_backend(
        scripted(
            tmp_path, {"op": "chat", "action": "sleep", "seconds": 60, "touch": str(touch), "once": str(once)}
        )
    )
    errors: list[BaseException] = []

    def call() -> None:
        try:
            backend.chat(HELLO)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    pid = wait_file(touch)
    killed = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    caller.join(timeout=10)
    (error,) = errors
    assert isinstance(error, ModelCrashed)
    assert f"pid {pid}" in error.message
    assert "SIGKILL" in error.message
    assert "dispo doctor" in error.message
    reply = backend.chat(HELLO)  # type: ignore[arg-type]
    restarted = time.perf_counter() - killed
    assert reply.text.startswith("Hi!")
    assert backend.pool.pids() != [pid]
    assert not alive(pid)
    assert backend.pool.restarts == 1
    print(f"\nSIGKILL -> next call answered in {restarted * 1000:.0f} ms")


def test_a_real_segfault_fails_that_call_and_the_next_one_works(tmp_path: Path) -> None:
    backend = get_backend(
        scripted(tmp_path, {"op": "score", "call": 1, "action": "segfault", "once": str(tmp_path / "once")})
    )
    (pid,) = backend.pool.pids()  # type: ignore[attr-defined]
    with pytest.raises(ModelCrashed, match=r"SIGSEGV \(a segmentation fault"):
        backend.score(HELLO, [" yes"])  # type: ignore[arg-type]
    assert backend.score(HELLO, [" yes"]) == [-1.0]  # type: ignore[arg-type]
    assert backend.pool.pids() != [pid]  # type: ignore[attr-defined]


def test_a_call_past_the_timeout_is_stopped_and_the_worker_replaced(tmp_path: Path) -> None:
    settings = scripted(
        tmp_path,
        {"op": "chat", "call": 1, "action": "hang", "once": str(tmp_path / "once")},
        llm_call_timeout_seconds=1.0,
    )
    backend = get_backend(settings)
    started = time.perf_counter()
    with pytest.raises(ModelTimedOut, match="DISPO_LLM_CALL_TIMEOUT_SECONDS"):
        backend.chat(HELLO)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 5
    assert backend.chat(HELLO).text.startswith("Hi!")  # type: ignore[arg-type]


def test_a_model_that_dies_while_loading_gives_up_and_says_run_doctor(tmp_path: Path) -> None:
    with pytest.raises(ModelCrashed, match=r"3 times in a row while loading.*SIGSEGV.*`dispo doctor`"):
        start_process_backend(scripted(tmp_path, {"op": "load", "action": "segfault"}))


def test_a_model_that_cannot_load_raises_the_backends_own_message(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match=r"DISPO_LLM_SCRIPT=.*cannot read it"):
        get_backend(
            Settings(data_dir=tmp_path, llm_backend="scripted", llm_script=str(tmp_path / "none.json"))
        )


def test_errors_raised_in_the_child_keep_their_type_and_the_child(tmp_path: Path) -> None:
    backend = get_backend(
        scripted(tmp_path, {"op": "chat", "call": 1, "action": "error", "message": "context too long"})
    )
    pids = backend.pool.pids()  # type: ignore[attr-defined]
    with pytest.raises(LLMError, match="context too long") as raised:
        backend.chat(HELLO)  # type: ignore[arg-type]
    assert not isinstance(raised.value, ModelCrashed)
    assert backend.pool.pids() == pids  # type: ignore[attr-defined]


def test_calls_go_to_a_free_worker(tmp_path: Path) -> None:
    script = tmp_path / "slow.json"
    script.write_text(json.dumps({"delay_seconds": 0.6}))
    backend = get_backend(
        Settings(data_dir=tmp_path, llm_backend="scripted", llm_script=str(script), llm_workers=2)
    )
    assert len(backend.pool.pids()) == 2  # type: ignore[attr-defined]
    backend.chat(HELLO)  # type: ignore[arg-type]  # both loaded
    threads = [threading.Thread(target=backend.chat, args=(HELLO,)) for _ in range(2)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.perf_counter() - started < 1.1  # in parallel, not 1.2 s one after the other


def test_exit_statuses_are_described() -> None:
    assert "SIGSEGV" in describe_exit(-11)
    assert "out-of-memory" in describe_exit(-9)
    assert describe_exit(3) == "exited with status 3"


# ---------------------------------------------------------------------------------------------
# The analytics job whose model died


def test_a_crash_on_the_last_attempt_records_the_crash_as_the_reason(
    db: Database, org: Org, tmp_path: Path
) -> None:
    settings = scripted(
        tmp_path,
        {"op": "any", "when": "Call transcript", "action": "segfault"},
        database_url=db.url.render_as_string(hide_password=False),
        analytics_max_attempts=1,
    )
    pk = end_call(db, org.id, make_agent(db, org.id))
    outcome = lifecycle.attempt(db, settings, pk, get_backend(settings))  # the real worker processes
    assert outcome.kind == "failed"
    row = call_row(db, pk)
    assert row["analytics_status"] == "failed"
    assert row["analytics_error"].startswith(
        "Failed after 1 attempt: ModelCrashed: The model worker process (pid "
    )
    assert "SIGSEGV" in row["analytics_error"]


# ---------------------------------------------------------------------------------------------
# A real server: calls and analytics while the model's process dies


@dataclass
class Served:
    url: str
    org: Org
    db: Database
    settings: Settings

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.org.headers, timeout=10)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v1{path}", json=body, headers=self.org.headers, timeout=30)

    def answers(self) -> None:
        """The API answers: the crash took nothing of the server with it."""
        assert self.get("/health").status_code == 200
        assert self.get("/api/v1/conversation").status_code == 200

    def pk(self, call_id: str) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(calls.c.pk).where(calls.c.call_id == call_id)).scalar_one())

    def place_call(self, agent_id: str) -> str:
        response = self.post("/conversation/outbound", {"agentId": agent_id, "phoneNumber": "+15005550006"})
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["conversationId"])

    def wait_ended(self, call_id: str, *, while_waiting: Callable[[], None] = lambda: None) -> dict[str, Any]:
        def ended() -> bool:
            while_waiting()
            data = self.get(f"/api/v1/conversation/{call_id}").json()["data"]
            return data["status"] not in ("in_queue", "in_progress")

        wait_for(ended, timeout=60, what=f"call {call_id} to end")
        return dict(self.get(f"/api/v1/conversation/{call_id}").json()["data"])

    def wait_analytics(self, call_id: str) -> dict[str, Any]:
        pk = self.pk(call_id)

        def done() -> bool:
            self.answers()
            return call_row(self.db, pk)["analytics_status"] in ("completed", "failed")

        wait_for(done, timeout=60, what=f"the analytics of {call_id}")
        return call_row(self.db, pk)


@pytest.fixture
def serve(db: Database, org: Org, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start a real server (uvicorn, one analytics worker thread, the dialer's call runner) whose
    model is the scripted backend with the given faults."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(*faults: dict[str, Any]) -> Served:
        settings = scripted(
            tmp_path,
            *faults,
            database_url=db.url.render_as_string(hide_password=False),
            analytics_retry_delay_seconds=0.2,
            call_silence_timeout_seconds=5,
        )
        port = _free_port()
        app = create_app(settings, db, run_workers=1)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_for(lambda: server.started, timeout=20, what="uvicorn to start")
        return Served(f"http://127.0.0.1:{port}", org, db, settings)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=20)


def transcript_roles(data: dict[str, Any]) -> list[str]:
    return [m["role"] for m in data["transcript"]]


@pytest.mark.parametrize("how", ["sigkill", "segfault"])
def test_the_model_dies_during_a_call(serve: Callable[..., Served], tmp_path: Path, how: str) -> None:
    """The agent's second turn is in flight when the model's process dies: the call ends as
    system_error with its transcript so far, its analytics still complete once, the API answers
    throughout, and the next call works on a fresh worker."""
    touch, once = tmp_path / "in-flight", tmp_path / "once"
    action = {"action": "sleep", "seconds": 60} if how == "sigkill" else {"action": "segfault"}
    served = serve({"op": "chat", "call": 2, **action, "touch": str(touch), "once": str(once)})
    agent_id = make_agent(served.db, served.org.id)
    call_id = served.place_call(agent_id)
    pid = wait_file(touch)
    served.answers()
    if how == "sigkill":
        os.kill(pid, signal.SIGKILL)
    data = served.wait_ended(call_id, while_waiting=served.answers)
    assert (data["status"], data["disconnectionReason"]) == ("completed", "system_error")
    assert transcript_roles(data) == ["agent", "user"]  # the opening and the answer to it
    row = served.wait_analytics(call_id)
    assert (row["analytics_status"], row["analytics_attempts"]) == ("completed", 1)
    assert result_count(served.db, served.pk(call_id)) == 1
    assert not alive(pid)

    second = served.wait_ended(served.place_call(agent_id), while_waiting=served.answers)
    assert second["disconnectionReason"] == "agent_hangup"
    assert transcript_roles(second)[:3] == ["agent", "user", "agent"]


@pytest.mark.parametrize("how", ["sigkill", "segfault"])
def test_the_model_dies_during_an_analysis(serve: Callable[..., Served], tmp_path: Path, how: str) -> None:
    """The analytics job's first attempt loses its model process; the retry, on a fresh worker,
    completes the analysis exactly once."""
    touch, once = tmp_path / "in-flight", tmp_path / "once"
    action = {"action": "sleep", "seconds": 60} if how == "sigkill" else {"action": "segfault"}
    # Only analytics prompts hold "Call transcript": the agent's turns are left alone.
    served = serve({"op": "any", "when": "Call transcript", **action, "touch": str(touch), "once": str(once)})
    agent_id = make_agent(served.db, served.org.id)
    call_id = served.place_call(agent_id)
    data = served.wait_ended(call_id)
    assert data["disconnectionReason"] == "agent_hangup"
    pid = wait_file(touch)
    served.answers()
    if how == "sigkill":
        os.kill(pid, signal.SIGKILL)
    row = served.wait_analytics(call_id)
    assert (row["analytics_status"], row["analytics_attempts"]) == ("completed", 2)
    assert row["analytics_error"] is None
    assert result_count(served.db, served.pk(call_id)) == 1
    served.answers()


def test_the_model_dies_during_a_chat(serve: Callable[..., Served], tmp_path: Path) -> None:
    """A chat message whose reply crashes the model: the request says so (503), the chat ends as
    system_error with the person's message kept, and a new chat works."""
    served = serve({"op": "chat", "call": 2, "action": "segfault", "once": str(tmp_path / "once")})
    agent_id = make_agent(served.db, served.org.id)
    started = served.post("/conversation/chat", {"agentId": agent_id})
    assert started.status_code == 200, started.text
    call_id = started.json()["data"]["conversationId"]
    reply = served.post(f"/conversation/chat/{call_id}", {"message": "Who is this?"})
    assert reply.status_code == 503
    assert "SIGSEGV" in reply.json()["errors"][0]
    served.answers()
    data = served.get(f"/api/v1/conversation/{call_id}").json()["data"]
    assert (data["status"], data["disconnectionReason"]) == ("completed", "system_error")
    assert [m["content"] for m in data["transcript"]][1] == "Who is this?"
    again = served.post("/conversation/chat", {"agentId": agent_id})
    assert again.status_code == 200, again.text


def test_the_model_dies_during_a_websocket_chat(serve: Callable[..., Served], tmp_path: Path) -> None:
    """The same over the chat WebSocket: an error frame naming the crash, then ``ended`` with
    system_error; the socket closes cleanly and the chat is stored with the person's message."""
    from websockets.sync.client import connect

    served = serve({"op": "chat", "call": 2, "action": "segfault", "once": str(tmp_path / "once")})
    agent_id = make_agent(served.db, served.org.id)
    url = served.url.replace("http://", "ws://") + f"/api/v1/conversation/chat/ws?agentId={agent_id}"
    with connect(url, additional_headers=served.org.headers, open_timeout=10) as ws:
        started = json.loads(ws.recv(timeout=30))
        assert started["type"] == "started"
        assert json.loads(ws.recv(timeout=30))["type"] == "message"  # the agent's opening
        ws.send(json.dumps({"type": "message", "content": "Who is this?"}))
        error = json.loads(ws.recv(timeout=30))
        assert error["type"] == "error"
        assert "SIGSEGV" in error["errors"][0]
        ended = json.loads(ws.recv(timeout=30))
        assert ended == {
            "type": "ended",
            "conversationId": started["conversationId"],
            "disconnectionReason": "system_error",
        }
    served.answers()
    data = served.get(f"/api/v1/conversation/{started['conversationId']}").json()["data"]
    assert (data["status"], data["disconnectionReason"]) == ("completed", "system_error")
    assert [m["content"] for m in data["transcript"]][1] == "Who is this?"


# ---------------------------------------------------------------------------------------------
# The real model in a child


def test_the_local_model_answers_from_a_worker_process(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    backend = get_backend(Settings(data_dir=tmp_path, llm_backend="local"))
    assert isinstance(backend, ProcessBackend)
    assert backend.name == "local"
    assert backend.can_score
    assert backend.pool.pids()[0] != os.getpid()
    reply = backend.chat(HELLO, max_tokens=8)  # type: ignore[arg-type]
    assert reply.text.strip()
    assert reply.completion_tokens > 0
    assert backend.model_ms_total > 0
    yes, banana = backend.score(  # type: ignore[arg-type]
        [{"role": "user", "content": "User: yes please.\n\nQuestion: did they agree?"}], [" yes", " banana"]
    )
    assert yes > banana
