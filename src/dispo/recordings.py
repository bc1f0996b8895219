"""Recordings of imported calls: files uploaded with ``POST /conversation/{callId}/recording``.

A recording is kept as uploaded under ``<data_dir>/recordings/<org id>/<call id>-<mono|stereo>.<ext>``
and served back by ``GET /conversation/{callId}/recording?channels=…`` (the call's
``recordingUrl`` / ``recordingDualUrl`` point there). Only audio Dispo can recognise by its first
bytes is kept: WAV (whose header must agree with the channels given), MP3, Ogg and FLAC. Nothing
transcribes it yet: a call imported with a recording and no transcript keeps no transcript until
Dispo has speech-to-text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dispo.errors import ValidationFailed
from dispo.store.database import make_private_dir

__all__ = ["CHANNELS", "FORMATS", "Audio", "recognise", "save", "stored"]

CHANNELS = ("mono", "stereo")
FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac"}


@dataclass(frozen=True)
class Audio:
    ext: str
    media_type: str


def recognise(data: bytes, channels: str) -> Audio:
    """The format of ``data``, or a 400 saying what is accepted."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        count = int.from_bytes(data[22:24], "little") if len(data) >= 24 else 0
        if count != (1 if channels == "mono" else 2):
            raise ValidationFailed(
                f"The WAV file has {count} channel(s) but channels={channels}: give channels=mono for one "
                "channel, stereo for two (caller and agent on their own channels)."
            )
        return Audio("wav", FORMATS["wav"])
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return Audio("mp3", FORMATS["mp3"])
    if data[:4] == b"OggS":
        return Audio("ogg", FORMATS["ogg"])
    if data[:4] == b"fLaC":
        return Audio("flac", FORMATS["flac"])
    raise ValidationFailed("The file is not audio Dispo recognises: upload WAV, MP3, Ogg or FLAC.")


def _folder(data_dir: Path, org_id: str) -> Path:
    return data_dir / "recordings" / org_id


def save(data_dir: Path, org_id: str, call_id: str, channels: str, data: bytes, audio: Audio) -> Path:
    """Store the recording (replacing an earlier one of the same channels), atomically."""
    folder = _folder(data_dir, org_id)
    make_private_dir(folder)
    for old in folder.glob(f"{call_id}-{channels}.*"):
        old.unlink()
    path = folder / f"{call_id}-{channels}.{audio.ext}"
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path


def stored(data_dir: Path, org_id: str, call_id: str, channels: str) -> tuple[Path, str] | None:
    """The stored recording and its media type, or None."""
    for path in _folder(data_dir, org_id).glob(f"{call_id}-{channels}.*"):
        media = FORMATS.get(path.suffix.lstrip("."))
        if media is not None:
            return path, media
    return None
