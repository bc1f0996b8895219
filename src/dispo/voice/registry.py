"""A registry of speech backends by name, like the LLM's (:mod:`dispo.llm.base`): a factory per
name (``DISPO_STT_BACKEND``, ``DISPO_TTS_BACKEND``), and one instance per process and settings,
loaded on first use (an embedded model loads once) and kept."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

from dispo.errors import SpeechError

if TYPE_CHECKING:
    from dispo.config import Settings

T = TypeVar("T")


class Registry(Generic[T]):
    """Factories of ``T`` by name; :meth:`get` builds one per ``key(settings)`` and keeps it."""

    def __init__(self, what: str, setting: str, key: Callable[[Settings], Hashable]) -> None:
        self.what = what  # "speech-to-text", for messages
        self.setting = setting  # "DISPO_STT_BACKEND"
        self._key = key
        self._factories: dict[str, Callable[[Settings], T]] = {}
        self._instances: dict[Hashable, T] = {}
        self._lock = threading.Lock()  # guards _instances, never a backend

    def register(self, name: str) -> Callable[[Callable[[Settings], T]], Callable[[Settings], T]]:
        def decorator(factory: Callable[[Settings], T]) -> Callable[[Settings], T]:
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str, settings: Settings) -> T:
        key = (name, self._key(settings))
        with self._lock:
            instance = self._instances.get(key)
            if instance is None:
                factory = self._factories.get(name)
                if factory is None:
                    raise SpeechError(
                        f"Unknown {self.what} backend {name!r}: set {self.setting} to one of "
                        f"{', '.join(self.names())}."
                    )
                instance = self._instances[key] = factory(settings)
            return instance


def speech_client(
    kind: str, base_url: str, api_key: str, timeout: float, transport: httpx.BaseTransport | None
) -> httpx.Client:
    """The HTTP client of an OpenAI-compatible speech backend (``kind``: TTS or STT), refusing a
    missing base URL with the setting to give."""
    if not base_url:
        raise SpeechError(
            f"DISPO_{kind}_BACKEND=openai needs DISPO_{kind}_BASE_URL, the server's base URL such as "
            "https://api.openai.com/v1."
        )
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
