"""Text-to-speech: the :class:`Synthesizer` interface and its registry (``DISPO_TTS_BACKEND``).

- ``espeak`` (default): eSpeak NG, embedded. The ``espeakng-loader`` wheel ships the library and
  its voice data, so nothing is downloaded; it is driven through :mod:`ctypes` (its C API is five
  functions), synthesising far faster than real time on one core.
- ``openai``: any OpenAI-compatible ``POST /audio/speech`` server (OpenAI, Kokoro-FastAPI,
  openedai-speech, LocalAI), asked for raw 24 kHz PCM.

Every synthesis reports its time to first audio (what the caller waits for) and its total time.
"""

from __future__ import annotations

import array
import ctypes
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from dispo.errors import SpeechError
from dispo.voice.audio import PIPELINE_RATE, Audio
from dispo.voice.registry import Registry, speech_client

if TYPE_CHECKING:
    from dispo.config import Settings


@dataclass(frozen=True)
class Synthesis:
    audio: Audio
    first_audio_ms: float  # from the request to the first audio chunk
    total_ms: float


class Synthesizer(ABC):
    name: ClassVar[str]

    @abstractmethod
    def synthesize(self, text: str, voice: str) -> Synthesis:
        """``text`` spoken by ``voice``, as audio at :data:`PIPELINE_RATE`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _key(settings: Settings) -> tuple[object, ...]:
    return (settings.tts_base_url, settings.tts_model, settings.tts_api_key, settings.speech_timeout_seconds)


synthesizers: Registry[Synthesizer] = Registry("text-to-speech", "DISPO_TTS_BACKEND", _key)


def get_synthesizer(settings: Settings) -> Synthesizer:
    """The process's synthesizer for these settings (loaded once)."""
    return synthesizers.get(settings.tts_backend, settings)


# --- eSpeak NG ------------------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1  # espeakRATE: words per minute
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakSynthesizer(Synthesizer):
    """eSpeak NG through ctypes. The library keeps global state, so one lock serialises it (a
    sentence takes a few milliseconds). Voices are eSpeak names: ``en-us``, ``en-us+f3`` (a female
    variant), ``en-gb``…"""

    name = "espeak"

    def __init__(self, *, words_per_minute: int = 150) -> None:
        try:
            import espeakng_loader

            self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path().encode()
        except (ImportError, OSError, RuntimeError) as exc:
            raise SpeechError(
                f"eSpeak NG could not be loaded ({exc}); reinstall Dispo (it needs espeakng-loader) or "
                "set DISPO_TTS_BACKEND=openai."
            ) from exc
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 100, data, 0))
        if self.rate <= 0:
            raise SpeechError("eSpeak NG did not initialise; reinstall espeakng-loader.")
        self.words_per_minute = words_per_minute
        self._lock = threading.Lock()
        self._chunks = array.array("h")
        self._first: float | None = None
        self._callback = _CALLBACK(self._collect)  # kept referenced: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, samples: int, _events: Any) -> int:
        if samples > 0:
            if self._first is None:
                self._first = time.perf_counter()
            self._chunks.extend(ctypes.cast(wav, ctypes.POINTER(ctypes.c_short * samples)).contents)
        return 0  # go on

    def synthesize(self, text: str, voice: str) -> Synthesis:
        encoded = text.encode()
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise SpeechError(
                    f"eSpeak NG has no voice {voice!r}: use a name such as en-us or en-us+f3 "
                    "(DISPO_TTS_AGENT_VOICE, DISPO_TTS_CALLER_VOICE)."
                )
            self._lib.espeak_SetParameter(_ESPEAK_RATE, self.words_per_minute, 0)
            self._chunks = array.array("h")
            self._first = None
            started = time.perf_counter()
            self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, 1, 0, _ESPEAK_CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            ended = time.perf_counter()
            pcm = self._chunks.tobytes()
            first = self._first or ended
        audio = Audio(pcm, self.rate).at_rate(PIPELINE_RATE)
        return Synthesis(audio, round((first - started) * 1000, 2), round((ended - started) * 1000, 2))


@synthesizers.register("espeak")
def _espeak(settings: Settings) -> Synthesizer:
    return EspeakSynthesizer()


# --- OpenAI-compatible /audio/speech ------------------------------------------------------------------

OPENAI_PCM_RATE = 24_000  # what response_format=pcm carries: 24 kHz 16-bit mono


class OpenAISynthesizer(Synthesizer):
    """``POST {base_url}/audio/speech`` with ``response_format: pcm``, streamed: the time to the
    first chunk is the time to first audio."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = speech_client("TTS", base_url, api_key, timeout, transport)
        self.model = model or "tts-1"

    def synthesize(self, text: str, voice: str) -> Synthesis:
        body = {"model": self.model, "input": text, "voice": voice, "response_format": "pcm"}
        started = time.perf_counter()
        first: float | None = None
        chunks = bytearray()
        try:
            with self._client.stream("POST", "/audio/speech", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise SpeechError(
                        f"The speech server at {self._client.base_url} answered HTTP "
                        f"{response.status_code} to /audio/speech: {response.text[:300]}. Check "
                        "DISPO_TTS_MODEL, the voice (DISPO_TTS_AGENT_VOICE) and DISPO_TTS_API_KEY."
                    )
                for chunk in response.iter_bytes():
                    if chunk and first is None:
                        first = time.perf_counter()
                    chunks.extend(chunk)
        except httpx.HTTPError as exc:
            raise SpeechError(
                f"The speech server at {self._client.base_url} did not answer /audio/speech "
                f"({type(exc).__name__}: {exc}); check that it runs and DISPO_TTS_BASE_URL is right."
            ) from exc
        ended = time.perf_counter()
        if len(chunks) % 2:
            chunks = chunks[:-1]
        audio = Audio(bytes(chunks), OPENAI_PCM_RATE).at_rate(PIPELINE_RATE)
        return Synthesis(
            audio, round(((first or ended) - started) * 1000, 2), round((ended - started) * 1000, 2)
        )

    def close(self) -> None:
        self._client.close()


@synthesizers.register("openai")
def _openai(settings: Settings) -> Synthesizer:
    return OpenAISynthesizer(
        settings.tts_base_url,
        settings.tts_model,
        api_key=settings.tts_api_key,
        timeout=settings.speech_timeout_seconds,
    )
