"""The one small interface every LLM backend implements, and the registry that picks one.

Two operations cover everything Dispo asks of a model:

- :meth:`Backend.chat` generates a reply, optionally constrained by a JSON schema, optionally with
  sampling :class:`Penalties` against repetition;
- :meth:`Backend.score` returns the log-probability the model gives to each of several candidate
  replies. Extraction uses it to rank candidates (ENUM choices, yes/no, spans of the transcript)
  instead of parsing free text. Backends that cannot score (most hosted APIs do not echo prompt
  log-probabilities) say so with ``can_score = False`` and extraction falls back to one
  JSON-schema-constrained generation.

Where the backend comes from: :func:`get_backend` is the factory (the registry picks the class
from ``DISPO_LLM_BACKEND``; a model loads once per process). It runs at start-up, not inside the
code that calls a model: the server, ``dispo worker`` and the CLI create one :class:`LazyBackend`
(which calls :func:`get_backend` when a model is first needed) and hand it to everything that
calls a model (``create_app`` → ``app.state.backend`` → the call runner, chats and the analytics
jobs). Tests hand those users a backend instance instead (``dispo.llm.testing.ScriptedBackend``) or
select ``DISPO_LLM_BACKEND=scripted``.

Locks, and what each guards:

- **the model**: exactly one lock per loaded model, its backend's own (``LocalBackend._lock``,
  ``ScriptedBackend._lock``; ``openai`` has none, its server schedules). Callers never lock around
  a backend. In worker processes (:mod:`dispo.llm.worker`) a child answers one call at a time, so
  its backend's lock is never contended there;
- ``ModelPool._cond`` (worker.py): which worker process is free: the pool's bookkeeping, not the
  model;
- ``_MAIN_LOCK`` (worker.py): the parent's ``__main__`` while a worker process is being spawned;
- ``_LOCK`` (here): the registry's cache of loaded backends.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict

# The errors live in dispo.errors (the one error tree); imported here so ``dispo.llm`` and the
# backends keep importing them from this module.
from dispo.errors import LLMError as LLMError
from dispo.errors import ModelCrashed as ModelCrashed
from dispo.errors import ModelTimedOut as ModelTimedOut

if TYPE_CHECKING:
    from dispo.config import Settings


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    """A generated reply and what it cost."""

    text: str
    model_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Mean log-probability of the generated tokens, where the backend reports token log-probabilities.
    mean_logprob: float | None = None


@dataclass(frozen=True)
class Penalties:
    """Sampling penalties against repetition, for :meth:`Backend.chat` (the defaults: none).

    - ``repeat``: llama.cpp's ``repeat_penalty``, dividing the logit of each token among the last 64
      the reply generated (1.0: off);
    - ``frequency`` / ``presence``: subtracted from a token's logit per earlier occurrence in the
      reply / once it occurred (OpenAI's meaning; 0: off);
    - ``no_repeat_ngram``: n > 0 never samples a token that would complete a run of n tokens the
      reply already holds (0: off).

    The local backend applies all four; the openai backend sends ``frequency`` and ``presence``
    (the OpenAI API has no others); the scripted backend records them.
    """

    repeat: float = 1.0
    frequency: float = 0.0
    presence: float = 0.0
    no_repeat_ngram: int = 0


class Backend(ABC):
    """An LLM. Implementations serialise their own calls (one model, one lock), so callers in any
    number of threads just call them.

    ``isolated`` says whether the backend runs native code that can take the process down with it
    (llama.cpp): such backends are run in supervised worker processes when ``DISPO_LLM_ISOLATION``
    is ``process`` (:mod:`dispo.llm.worker`); pure-HTTP backends run in the caller's process.
    """

    name: ClassVar[str]
    can_score: ClassVar[bool] = False
    isolated: ClassVar[bool] = False
    model_id: str

    @abstractmethod
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
        """Generate the assistant's next reply.

        ``prefix`` is text the reply is made to begin with (e.g. ``"The user"``): a backend that can
        (the local one) writes it where the assistant's turn starts and generates the rest; one that
        cannot asks for it in words. ``Completion.text`` is the whole reply, the prefix included
        where the backend wrote it. Not combined with ``json_schema``.
        """

    def score(
        self, messages: Sequence[Message], continuations: Sequence[str], *, prefix: str = ""
    ) -> list[float]:
        """Total log-probability of each continuation, ended, as the assistant's reply after ``prefix``.

        ``prefix`` is text the reply is taken to begin with (e.g. ``"Answer:"``); it is shared by all
        continuations and scored by none.
        """
        raise LLMError(f"The {self.name} backend cannot score candidates; use a backend with can_score.")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""


_REGISTRY: dict[str, Callable[[Settings], Backend]] = {}
_CLASSES: dict[str, type[Backend]] = {}
_INSTANCES: dict[tuple[object, ...], Backend] = {}
_LOCK = threading.Lock()  # guards _INSTANCES (the cache), never a model: see the module docstring


def register(
    name: str, backend_class: type[Backend] | None = None
) -> Callable[[Callable[[Settings], Backend]], Callable[[Settings], Backend]]:
    """Register a backend factory under ``name`` (the value of ``DISPO_LLM_BACKEND``).

    ``backend_class`` is the class the factory builds: its ``isolated`` flag decides, before
    anything is loaded, whether the backend runs in worker processes.
    """

    def decorator(factory: Callable[[Settings], Backend]) -> Callable[[Settings], Backend]:
        _REGISTRY[name] = factory
        if backend_class is not None:
            _CLASSES[name] = backend_class
        return factory

    return decorator


def backend_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def runs_isolated(settings: Settings) -> bool:
    """Whether :func:`get_backend` runs this backend in worker processes (see :class:`Backend`)."""
    _load_builtins()
    backend_class = _CLASSES.get(settings.llm_backend)
    if settings.llm_isolation != "process" or backend_class is None or not backend_class.isolated:
        return False
    # Huey's process workers are daemonic, and daemonic processes may not start children: there the
    # worker process itself is the isolation (Huey replaces it when it dies).
    import multiprocessing

    return not multiprocessing.current_process().daemon


def get_backend(settings: Settings) -> Backend:
    """The process's backend for these settings, loaded on first use and kept (a model loads once).

    For an isolated backend (``local``) with ``DISPO_LLM_ISOLATION=process`` this is a proxy whose
    model lives in supervised worker processes (:class:`dispo.llm.worker.ProcessBackend`).
    """
    _load_builtins()
    name = settings.llm_backend
    isolated = runs_isolated(settings)
    key = _key(settings, isolated)
    with _LOCK:
        backend = _INSTANCES.get(key)
        if backend is None:
            factory = _REGISTRY.get(name)
            if factory is None:
                raise LLMError(
                    f"Unknown LLM backend {name!r}; set DISPO_LLM_BACKEND to one of {backend_names()}."
                )
            if isolated:
                from dispo.llm.worker import start_process_backend

                backend = start_process_backend(settings)
            else:
                backend = factory(settings)
            _INSTANCES[key] = backend
        return backend


def close_backends() -> None:
    """Release every backend :func:`get_backend` loaded (stops model worker processes).

    Called when the server or a ``dispo worker`` stops; a later :func:`get_backend` loads afresh.
    """
    with _LOCK:
        backends = list(_INSTANCES.values())
        _INSTANCES.clear()
    for backend in backends:
        backend.close()


def release_backend(settings: Settings) -> None:
    """Release the backend :func:`get_backend` loaded for these settings, if it did (a later
    :func:`get_backend` loads afresh)."""
    key = _key(settings, runs_isolated(settings))
    with _LOCK:
        backend = _INSTANCES.pop(key, None)
    if backend is not None:
        backend.close()


class LazyBackend(Backend):
    """The configured backend, loaded by :func:`get_backend` when a model is first needed.

    What the server, ``dispo worker`` and the CLI create at start-up and hand to the code that
    calls a model: creating it loads nothing (an API that never calls the model never loads it),
    and :meth:`close` releases the model (stopping its worker processes). Everything else — ``name``
    aside — is the loaded backend's: ``can_score``, ``model_id``, ``model_ms_total``, ``pool``.
    It takes no lock: :func:`get_backend` loads once under the registry's, and the loaded backend
    serialises its own calls.
    """

    name = "lazy"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._used = False

    def load(self) -> Backend:
        """The backend itself, loaded now if it is not yet."""
        self._used = True
        return get_backend(self.settings)

    @property
    def can_score(self) -> bool:  # type: ignore[override]  # the loaded backend's class attribute
        return self.load().can_score

    def __getattr__(self, attribute: str) -> Any:
        # Only attributes this class lacks arrive here (model_id, model_ms_total, pool, ...).
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self.load(), attribute)

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
        return self.load().chat(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            json_schema=json_schema,
            stop=stop,
            penalties=penalties,
            prefix=prefix,
        )

    def score(
        self, messages: Sequence[Message], continuations: Sequence[str], *, prefix: str = ""
    ) -> list[float]:
        return self.load().score(messages, continuations, prefix=prefix)

    def close(self) -> None:
        if self._used:
            self._used = False
            release_backend(self.settings)


def _key(settings: Settings, isolated: bool) -> tuple[object, ...]:
    return (
        settings.llm_backend,
        settings.llm_model_path,
        settings.llm_base_url,
        settings.llm_model,
        settings.llm_script,
        isolated and settings.llm_workers,
    )


def _load_builtins() -> None:
    # Imported for their @register side effect; local pulls in llama-cpp only when used.
    from dispo.llm import local, openai, testing  # noqa: F401
