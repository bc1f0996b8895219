"""Identifiers in the shapes Atoms uses: 24-hex object ids and ``CALL-<epoch ms>-<6 hex>`` call ids."""

from __future__ import annotations

import os
import re
import secrets
import time

_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
_CALL_ID = re.compile(r"^CALL-\d{10,16}-[0-9a-f]{6}$")
_counter = int.from_bytes(os.urandom(3), "big")


def new_object_id(at_ms: int | None = None) -> str:
    """A MongoDB-style ObjectId: 4 bytes of seconds, 5 random bytes, a 3-byte counter.

    Sorts roughly by creation time, like the ids Atoms hands out.
    """
    global _counter
    _counter = (_counter + 1) & 0xFFFFFF
    seconds = (at_ms if at_ms is not None else int(time.time() * 1000)) // 1000
    return f"{seconds & 0xFFFFFFFF:08x}{secrets.token_hex(5)}{_counter:06x}"


def new_call_id(at_ms: int | None = None) -> str:
    """``CALL-<epoch ms>-<6 hex>``, the call id format of the Atoms call logs."""
    ms = at_ms if at_ms is not None else int(time.time() * 1000)
    return f"CALL-{ms}-{secrets.token_hex(3)}"


def is_object_id(value: str) -> bool:
    return bool(_OBJECT_ID.match(value))


def is_call_id(value: str) -> bool:
    return bool(_CALL_ID.match(value))
