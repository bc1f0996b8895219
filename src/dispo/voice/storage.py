"""Where call recordings are kept: the :class:`RecordingStore` interface and the files store.

A call's recordings are two objects, ``<callId>.wav`` (mono mix) and ``<callId>-dual.wav``
(stereo: agent left, caller right); the call row keeps their keys (``recording_url``,
``recording_dual_url``) and the API serves them at signed links (:mod:`dispo.voice.links`).
The files store keeps them under ``DISPO_RECORDINGS_DIR`` (default ``<data_dir>/recordings``). An
S3-compatible store is one more implementation of this interface (not built yet: see
docs/voice.md).
"""

from __future__ import annotations

import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from dispo.voice.recording import Recording

_KEY = re.compile(r"^CALL-[A-Za-z0-9-]+(-dual)?\.wav$")


def keys_for(call_id: str) -> tuple[str, str]:
    """The keys of a call's mono and stereo recordings."""
    return f"{call_id}.wav", f"{call_id}-dual.wav"


def is_key(key: str) -> bool:
    return bool(_KEY.match(key))


class RecordingStore(ABC):
    @abstractmethod
    def save(self, call_id: str, recording: Recording) -> tuple[str, str]:
        """Keep a call's recordings; returns their keys (mono, stereo)."""

    @abstractmethod
    def path(self, key: str) -> Path | None:
        """The local file holding ``key``, or None when there is none."""

    @abstractmethod
    def remove(self, call_id: str) -> None:
        """Forget a call's recordings (idempotent)."""


class FileRecordingStore(RecordingStore):
    """Recordings as files in one directory; each written to a temporary name and renamed, so a
    reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, call_id: str, recording: Recording) -> tuple[str, str]:
        self.root.mkdir(parents=True, exist_ok=True)
        keys = keys_for(call_id)
        for key, data in zip(keys, (recording.mono, recording.stereo), strict=True):
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".part-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.root / key)
        return keys

    def path(self, key: str) -> Path | None:
        if not is_key(key):
            return None
        path = self.root / key
        return path if path.is_file() else None

    def remove(self, call_id: str) -> None:
        for key in keys_for(call_id):
            (self.root / key).unlink(missing_ok=True)
