"""The one small interface every LLM backend implements, and the registry that picks one.

Two operations cover everything Dispo asks of a model:

- :meth:`Backend.chat` generates a reply, optionally constrained by a JSON schema;
- :meth:`Backend.score` returns the log-probability the model gives to each of several candidate
  replies. Extraction uses it to rank candidates (ENUM choices, yes/no, spans of the transcript)
  instead of parsing free text. Backends that cannot score (most hosted APIs do not echo prompt
  log-probabilities) say so with ``can_score = False`` and extraction falls back to one
  JSON-schema-constrained generation.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict

from dispo.errors import DispoError

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


class LLMError(DispoError):
    """The model could not be loaded or did not answer."""

    status_code = 503


class Backend(ABC):
    """An LLM. Implementations must be safe to call from one thread at a time; callers serialise."""

    name: ClassVar[str]
    can_score: ClassVar[bool] = False
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
    ) -> Completion:
        """Generate the assistant's next reply."""

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
_INSTANCES: dict[tuple[str, str], Backend] = {}
_LOCK = threading.Lock()


def register(name: str) -> Callable[[Callable[[Settings], Backend]], Callable[[Settings], Backend]]:
    """Register a backend factory under ``name`` (the value of ``DISPO_LLM_BACKEND``)."""

    def decorator(factory: Callable[[Settings], Backend]) -> Callable[[Settings], Backend]:
        _REGISTRY[name] = factory
        return factory

    return decorator


def backend_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_backend(settings: Settings) -> Backend:
    """The process's backend for these settings, loaded on first use and kept (a model loads once)."""
    _load_builtins()
    name = settings.llm_backend
    key = (name, settings.llm_model_path or settings.llm_base_url + "|" + settings.llm_model)
    with _LOCK:
        backend = _INSTANCES.get(key)
        if backend is None:
            factory = _REGISTRY.get(name)
            if factory is None:
                raise LLMError(
                    f"Unknown LLM backend {name!r}; set DISPO_LLM_BACKEND to one of {backend_names()}."
                )
            backend = _INSTANCES[key] = factory(settings)
        return backend


def _load_builtins() -> None:
    # Imported for their @register side effect; local pulls in llama-cpp only when used.
    from dispo.llm import local, openai  # noqa: F401
