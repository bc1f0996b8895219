"""The ``scripted`` backend: canned replies and scores, and faults on cue — for tests only.

It exists to test what happens when the model misbehaves: a script (``DISPO_LLM_SCRIPT``, a JSON
file path or inline JSON) can make it segfault for real, abort, exit, hang or raise on the Nth
call of an operation, or while loading. Like ``local`` it is ``isolated``, so with
``DISPO_LLM_ISOLATION=process`` (the default) it runs in a supervised worker process and a real
crash exercises the real supervisor.

A script::

    {
      "model_id": "scripted",                  # reported as the model
      "replies": ["Hi!", "Your name?", "Bye!"],  # chat: the k-th agent turn gets replies[k]
      "delay_seconds": 0.0,                    # time every call takes
      "json_reply": "{}",                      # what a chat with a JSON schema gets
      "faults": [
        {"op": "chat", "call": 2, "action": "segfault",
         "once": "/tmp/crashed", "touch": "/tmp/in-flight"}
      ]
    }

Fault fields: ``op`` is ``load``, ``chat``, ``score`` or ``any``; ``call`` the 1-based number of
that operation in this process (omitted: every one); ``when`` a text the prompt must contain (e.g.
``"Call transcript"``, which only post-call analytics prompts do); ``action`` is ``segfault``, ``abort``,
``exit`` (``code``), ``sleep`` (``seconds``, then answers), ``hang`` (``seconds``, default an
hour) or ``error`` (``message``). ``once`` names a marker file: the fault fires only while it does
not exist and creates it, so "crash the first time, succeed after the restart" works across
processes. ``touch`` names a file the fault writes its process id to just before it acts, so a
test knows the call is in flight and which process serves it.

Replies follow the conversation, not a counter: a chat whose messages hold k assistant turns gets
``replies[k]`` (the last one repeats), so an agent's call goes the same way whoever else uses the
model. A chat with a JSON schema gets ``json_reply`` (default ``{}``); scores prefer earlier
candidates.

Tests select it by settings (``DISPO_LLM_BACKEND=scripted``, ``DISPO_LLM_SCRIPT``: a real worker
process, real crashes) or hand an instance to whatever takes a backend —
``ScriptedBackend(Script(replies=(...)))`` to ``create_app(backend=...)``, ``CallRunner``, ``Jobs``
or ``LLMBrain`` — which then runs in the test's process and keeps each request it got
(:attr:`ScriptedBackend.requests`) for the test to look at.
"""

from __future__ import annotations

import collections
import ctypes
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from dispo.llm.base import Backend, Completion, LLMError, Message, Penalties, register

if TYPE_CHECKING:
    from dispo.config import Settings

Op = Literal["load", "chat", "score", "any"]
Action = Literal["segfault", "abort", "exit", "sleep", "hang", "error"]
_OPS = ("load", "chat", "score", "any")
_ACTIONS = ("segfault", "abort", "exit", "sleep", "hang", "error")

KEPT_REQUESTS = 1000  # requests a ScriptedBackend remembers (the newest)
DEFAULT_REPLIES = (
    "Hi! I'm calling about our solar panels. Do you have a minute?",
    "Great. May I have your name, please?",
    "Thank you for your time. Goodbye!",
)


@dataclass(frozen=True)
class Fault:
    """One thing to go wrong; see the module docstring for the fields."""

    op: Op
    action: Action
    call: int | None = None
    seconds: float = 0.0
    code: int = 1
    message: str = "The scripted model failed on purpose."
    once: str | None = None
    touch: str | None = None
    when: str | None = None

    def applies(self, op: str, counts: dict[str, int], prompt: str) -> bool:
        if self.op not in (op, "any") or (self.op == "any" and op == "load"):
            return False
        if self.call is not None and counts[self.op] != self.call:
            return False
        if self.when is not None and self.when not in prompt:
            return False
        return not (self.once and Path(self.once).exists())

    def fire(self) -> None:
        if self.once:
            Path(self.once).write_text(str(os.getpid()))
        if self.touch:
            Path(self.touch).write_text(str(os.getpid()))
        if self.action == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV, for real
        elif self.action == "abort":
            os.abort()
        elif self.action == "exit":
            os._exit(self.code)
        elif self.action == "sleep":
            time.sleep(self.seconds)
        elif self.action == "hang":
            time.sleep(self.seconds or 3600)
        else:
            raise LLMError(self.message)


@dataclass(frozen=True)
class Script:
    model_id: str = "scripted"
    replies: tuple[str, ...] = DEFAULT_REPLIES
    delay_seconds: float = 0.0
    faults: tuple[Fault, ...] = field(default_factory=tuple)
    json_reply: str = "{}"


@dataclass(frozen=True)
class Request:
    """One call the backend answered (or failed): the operation, its messages, JSON schema, and
    the sampling options of a chat."""

    op: Literal["chat", "score"]
    messages: list[Message]
    json_schema: dict[str, Any] | None = None
    temperature: float = 0.0
    penalties: Penalties | None = None
    prefix: str = ""


def parse_script(source: str) -> Script:
    """A script from inline JSON or the path of a JSON file; empty means the default script."""
    text = source.strip()
    if not text:
        return Script()
    if not text.startswith("{"):
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise LLMError(f"DISPO_LLM_SCRIPT={source!r}: cannot read it ({exc}).") from exc
    try:
        raw = json.loads(text)
        faults = tuple(_fault(f) for f in raw.get("faults", ()))
        replies = tuple(str(r) for r in raw.get("replies", DEFAULT_REPLIES)) or DEFAULT_REPLIES
        return Script(
            model_id=str(raw.get("model_id", "scripted")),
            replies=replies,
            delay_seconds=float(raw.get("delay_seconds", 0.0)),
            faults=faults,
            json_reply=str(raw.get("json_reply", "{}")),
        )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise LLMError(f"DISPO_LLM_SCRIPT is not a valid script ({exc}): see dispo.llm.testing.") from exc


def _fault(raw: dict[str, Any]) -> Fault:
    if raw.get("op") not in _OPS or raw.get("action") not in _ACTIONS:
        raise ValueError(f"a fault needs op in {_OPS} and action in {_ACTIONS}, got {raw}")
    return Fault(
        op=cast(Op, raw["op"]),
        action=cast(Action, raw["action"]),
        call=None if raw.get("call") is None else int(raw["call"]),
        seconds=float(raw.get("seconds", 0.0)),
        code=int(raw.get("code", 1)),
        message=str(raw.get("message", Fault.message)),
        once=raw.get("once"),
        touch=raw.get("touch"),
        when=raw.get("when"),
    )


class ScriptedBackend(Backend):
    """Answers from a :class:`Script` (default: the default script); counts its calls per operation
    to fire faults on cue, and keeps the last :data:`KEPT_REQUESTS` requests in :attr:`requests`."""

    name = "scripted"
    can_score = True
    isolated = True  # so that its crashes exercise the worker supervisor, like llama.cpp's would

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.model_id = self.script.model_id
        self.model_ms_total = 0.0
        self.requests: collections.deque[Request] = collections.deque(maxlen=KEPT_REQUESTS)
        self._lock = threading.Lock()  # the one lock of this "model" (see dispo.llm.base)
        self._counts = {"load": 1, "chat": 0, "score": 0, "any": 0}
        self._maybe_fail("load", ())

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
        # A scripted reply is the whole reply, as a model that was given ``prefix`` would end up with.
        with self._lock:
            self._count("chat")
            self.requests.append(Request("chat", list(messages), json_schema, temperature, penalties, prefix))
            self._maybe_fail("chat", messages)
            started = time.perf_counter()
            time.sleep(self.script.delay_seconds)
            if json_schema is not None:
                text = self.script.json_reply
            else:
                turn = sum(1 for m in messages if m["role"] == "assistant")
                text = self.script.replies[min(turn, len(self.script.replies) - 1)]
            elapsed = (time.perf_counter() - started) * 1000
            self.model_ms_total += elapsed
        words = sum(len(m["content"].split()) for m in messages)
        return Completion(text, elapsed, prompt_tokens=words, completion_tokens=len(text.split()))

    def score(
        self, messages: Sequence[Message], continuations: Sequence[str], *, prefix: str = ""
    ) -> list[float]:
        with self._lock:
            self._count("score")
            self.requests.append(Request("score", list(messages)))
            self._maybe_fail("score", messages)
            started = time.perf_counter()
            time.sleep(self.script.delay_seconds)
            self.model_ms_total += (time.perf_counter() - started) * 1000
        return [-1.0 - i for i in range(len(continuations))]

    def _count(self, op: str) -> None:
        self._counts[op] += 1
        self._counts["any"] += 1

    def _maybe_fail(self, op: str, messages: Sequence[Message]) -> None:
        prompt = "\n".join(m["content"] for m in messages)
        for fault in self.script.faults:
            if fault.applies(op, self._counts, prompt):
                fault.fire()


@register("scripted", ScriptedBackend)
def _create(settings: Settings) -> Backend:
    return ScriptedBackend(parse_script(settings.llm_script))
