"""Speech-to-text: the :class:`Recognizer` interface and its registry (``DISPO_STT_BACKEND``).

- ``sphinx`` (default): PocketSphinx, embedded; its wheel ships a US-English acoustic model, a
  general language model and a pronouncing dictionary, so nothing is downloaded.
- ``openai``: any OpenAI-compatible ``POST /audio/transcriptions`` server (OpenAI Whisper,
  faster-whisper-server / speaches, LocalAI, vLLM), sent a WAV file.

``hints`` are phrases the speaker is likely to say (a carrier's "speech hints", Whisper's
``prompt``): PocketSphinx decodes with a small language model built from them (see
:class:`SphinxRecognizer`), the OpenAI backend sends them as the ``prompt``. Recognised words are
cased as the hints write them ("my name is test user" → "My name is Test User").
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from dispo.errors import SpeechError
from dispo.voice.audio import PIPELINE_RATE, Audio
from dispo.voice.registry import Registry, speech_client

if TYPE_CHECKING:
    from dispo.config import Settings


@dataclass(frozen=True)
class Transcription:
    text: str  # "" when nothing was recognised
    ms: float  # how long recognition took


class Recognizer(ABC):
    name: ClassVar[str]

    @abstractmethod
    def transcribe(self, audio: Audio, *, hints: Sequence[str] = ()) -> Transcription:
        """What is said in ``audio`` (one utterance)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or connections."""


def _key(settings: Settings) -> tuple[object, ...]:
    return (settings.stt_base_url, settings.stt_model, settings.stt_api_key, settings.speech_timeout_seconds)


recognizers: Registry[Recognizer] = Registry("speech-to-text", "DISPO_STT_BACKEND", _key)


def get_recognizer(settings: Settings) -> Recognizer:
    """The process's recognizer for these settings (loaded once)."""
    return recognizers.get(settings.stt_backend, settings)


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def hinted_case(text: str, hints: Sequence[str]) -> str:
    """``text`` (lower case, as recognisers write it) with words cased as ``hints`` write them and
    its first letter in capitals."""
    cased: dict[str, str] = {"i": "I", "i'm": "I'm", "i'd": "I'd", "i'll": "I'll", "i've": "I've"}
    for hint in hints:
        for word in _WORD.findall(hint):
            if word != word.lower():
                cased.setdefault(word.lower(), word)
    words = [cased.get(w, w) for w in text.split()]
    out = " ".join(words)
    return out[:1].upper() + out[1:]


def _lm_sentences(hints: Sequence[str]) -> str:
    """The hints as a language model's training text: one lower-case sentence a line, no punctuation."""
    lines = []
    for hint in hints:
        for sentence in re.split(r"[.!?;]+", hint):
            words = _WORD.findall(sentence.lower())
            if words:
                lines.append(" ".join(words))
    return "\n".join(lines)


class SphinxRecognizer(Recognizer):
    """PocketSphinx with its shipped US-English model, on 16 kHz audio.

    Without hints it decodes with the general language model and the whole pronouncing dictionary
    (a real-time factor of about 0.3 on one core, and many errors on synthetic voices: see
    docs/voice.md). With hints it decodes with a trigram model of them (``pocketsphinx.lm``, built
    in milliseconds) on a second decoder whose dictionary holds only the words hints have brought
    (PocketSphinx takes seconds to add a language model to a decoder holding all 134,000 words, a
    millisecond to one holding a few hundred); recognition errors remain, as with any recogniser.
    A decoder holds its utterance's state, so one lock serialises them.
    """

    name = "sphinx"
    max_searches = 64

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder, get_model_path

            model = Path(get_model_path()) / "en-us"
            self._pronunciations = _read_dictionary(model / "cmudict-en-us.dict")
            with tempfile.TemporaryDirectory(prefix="dispo-stt-") as folder:
                seed = Path(folder) / "seed.dict"
                seed.write_text("".join(self._pronunciations.get("a", [])))
                self._hinted = Decoder(samprate=PIPELINE_RATE, loglevel="FATAL", dict=str(seed), lm=None)
        except (ImportError, RuntimeError, OSError) as exc:
            raise SpeechError(
                f"PocketSphinx could not be loaded ({exc}); reinstall Dispo (it needs pocketsphinx) "
                "or set DISPO_STT_BACKEND=openai."
            ) from exc
        self._general: Any = None  # the whole dictionary and the general model, loaded when first needed
        self._known: set[str] = {"a"}
        self._lock = threading.Lock()
        self._searches: OrderedDict[str, None] = OrderedDict()

    def transcribe(self, audio: Audio, *, hints: Sequence[str] = ()) -> Transcription:
        pcm = audio.at_rate(PIPELINE_RATE).pcm
        started = time.perf_counter()
        with self._lock:
            decoder = self._decoder_for(hints)
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        return Transcription(hinted_case(text, hints), round((time.perf_counter() - started) * 1000, 2))

    def _decoder_for(self, hints: Sequence[str]) -> Any:
        corpus = _lm_sentences(hints)
        if not corpus:
            if self._general is None:
                from pocketsphinx import Decoder

                self._general = Decoder(samprate=PIPELINE_RATE, loglevel="FATAL")
            return self._general
        name = "hints-" + hashlib.sha256(corpus.encode()).hexdigest()[:16]
        if name in self._searches:
            self._searches.move_to_end(name)
        else:
            self._add_search(name, corpus)
        self._hinted.activate_search(name)
        return self._hinted

    def _add_search(self, name: str, corpus: str) -> None:
        """Teach the hinted decoder the corpus's words (those the dictionary knows; others cannot be
        recognised) and add a search with the corpus's language model."""
        from pocketsphinx.lm import ArpaBoLM

        for word in sorted(set(corpus.split()) - self._known):
            for line in self._pronunciations.get(word, []):
                entry, phones = line.split(" ", 1)
                self._hinted.add_word(entry, phones.strip(), True)
            self._known.add(word)
        model = ArpaBoLM(text=corpus, add_start=True)
        model.compute()
        with tempfile.TemporaryDirectory(prefix="dispo-lm-") as folder:
            path = os.path.join(folder, "hints.arpa")
            model.write_file(path)
            self._hinted.add_lm_file(name, path)
        self._searches[name] = None
        if len(self._searches) > self.max_searches:
            oldest, _ = self._searches.popitem(last=False)
            self._hinted.remove_search(oldest)


def _read_dictionary(path: Path) -> dict[str, list[str]]:
    """CMUdict lines by word: ``{"read": ["read R EH D\\n", "read(2) R IY D\\n"]}``."""
    out: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            entry = line.split(" ", 1)[0]
            out.setdefault(entry.split("(", 1)[0], []).append(line)
    return out


@recognizers.register("sphinx")
def _sphinx(settings: Settings) -> Recognizer:
    return SphinxRecognizer()


class OpenAIRecognizer(Recognizer):
    """``POST {base_url}/audio/transcriptions`` (multipart: the WAV file, the model, the hints as
    ``prompt``); the answer's ``text``."""

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
        self._client = speech_client("STT", base_url, api_key, timeout, transport)
        self.model = model or "whisper-1"

    def transcribe(self, audio: Audio, *, hints: Sequence[str] = ()) -> Transcription:
        data: dict[str, Any] = {"model": self.model, "response_format": "json"}
        if hints:
            data["prompt"] = " ".join(hints)[:1000]
        files = {"file": ("speech.wav", audio.to_wav(), "audio/wav")}
        started = time.perf_counter()
        try:
            response = self._client.post("/audio/transcriptions", data=data, files=files)
        except httpx.HTTPError as exc:
            raise SpeechError(
                f"The speech server at {self._client.base_url} did not answer /audio/transcriptions "
                f"({type(exc).__name__}: {exc}); check that it runs and DISPO_STT_BASE_URL is right."
            ) from exc
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        if response.status_code >= 400:
            raise SpeechError(
                f"The speech server at {self._client.base_url} answered HTTP {response.status_code} to "
                f"/audio/transcriptions: {response.text[:300]}. Check DISPO_STT_MODEL and DISPO_STT_API_KEY."
            )
        try:
            text = response.json()["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SpeechError(
                f"The speech server's transcription has no `text`: {response.text[:200]}"
            ) from exc
        return Transcription(str(text).strip(), elapsed)

    def close(self) -> None:
        self._client.close()


@recognizers.register("openai")
def _openai(settings: Settings) -> Recognizer:
    return OpenAIRecognizer(
        settings.stt_base_url,
        settings.stt_model,
        api_key=settings.stt_api_key,
        timeout=settings.speech_timeout_seconds,
    )
