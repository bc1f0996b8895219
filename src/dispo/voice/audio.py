"""Audio as Dispo moves it around: 16-bit signed little-endian mono PCM at a known sample rate.

Conversions use the standard library: ``audioop`` (resampling, μ-law for telephone lines, RMS;
deprecated in Python 3.13, where the ``audioop-lts`` package provides the same module) and
``wave`` (WAV files). Nothing here needs NumPy.
"""

from __future__ import annotations

import io
import warnings
import wave
from dataclasses import dataclass

with warnings.catch_warnings():
    # The standard library's up to Python 3.12 (deprecated there); the audioop-lts package's from 3.13.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_WIDTH = 2  # bytes: 16-bit PCM
PIPELINE_RATE = 16_000  # Hz: what the speech backends and the recordings use
TELEPHONE_RATE = 8_000  # Hz: μ-law on phone lines


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit PCM ``pcm`` at ``rate`` Hz."""

    pcm: bytes
    rate: int

    @property
    def frames(self) -> int:
        return len(self.pcm) // SAMPLE_WIDTH

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    def at_rate(self, rate: int) -> Audio:
        """The same sound resampled to ``rate`` Hz."""
        if rate == self.rate or not self.pcm:
            return Audio(self.pcm, rate)
        converted, _state = audioop.ratecv(self.pcm, SAMPLE_WIDTH, 1, self.rate, rate, None)
        return Audio(converted, rate)

    def rms(self) -> float:
        """Root-mean-square level (0 for silence, up to 32767)."""
        return float(audioop.rms(self.pcm, SAMPLE_WIDTH)) if self.pcm else 0.0

    def to_wav(self) -> bytes:
        return wav_bytes(self.pcm, self.rate, channels=1)

    def to_mulaw(self) -> bytes:
        """μ-law bytes at 8 kHz, as phone lines (Twilio Media Streams) carry them."""
        return audioop.lin2ulaw(self.at_rate(TELEPHONE_RATE).pcm, SAMPLE_WIDTH)

    @classmethod
    def from_mulaw(cls, data: bytes, rate: int = TELEPHONE_RATE) -> Audio:
        return cls(audioop.ulaw2lin(data, SAMPLE_WIDTH), rate)

    @classmethod
    def silence(cls, seconds: float, rate: int = PIPELINE_RATE) -> Audio:
        return cls(b"\x00\x00" * max(0, round(seconds * rate)), rate)

    @classmethod
    def from_wav(cls, data: bytes) -> Audio:
        """A mono 16-bit WAV file's audio (stereo files are mixed down)."""
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getsampwidth() != SAMPLE_WIDTH:
                raise ValueError(f"a {8 * w.getsampwidth()}-bit WAV file: Dispo reads 16-bit PCM")
            pcm = w.readframes(w.getnframes())
            if w.getnchannels() == 2:
                pcm = audioop.tomono(pcm, SAMPLE_WIDTH, 0.5, 0.5)
            return cls(pcm, w.getframerate())


def wav_bytes(pcm: bytes, rate: int, *, channels: int) -> bytes:
    """A WAV file of 16-bit ``pcm`` (interleaved when ``channels`` is 2)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def interleave(left: bytes, right: bytes) -> bytes:
    """Two mono tracks of equal length as one stereo stream (left, right)."""
    return audioop.add(
        audioop.tostereo(left, SAMPLE_WIDTH, 1, 0), audioop.tostereo(right, SAMPLE_WIDTH, 0, 1), SAMPLE_WIDTH
    )


def mix(a: bytes, b: bytes) -> bytes:
    """Two mono tracks of equal length summed (clipped) into one."""
    return audioop.add(a, b, SAMPLE_WIDTH)
