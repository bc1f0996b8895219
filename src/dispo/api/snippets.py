"""The snippet of a transcript search: the message that matches best, the match marked.

The databases find and rank the calls (SQLite FTS5, PostgreSQL full-text search; see
``store.filters.transcript_match_sql``); the snippet is cut here from the page's transcripts, which
the call log has loaded anyway, so that both databases answer with the same text and no second
query runs per call. The text is HTML-escaped and each matched word is wrapped in ``<mark>…</mark>``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["snippet"]

_WINDOW = 12  # words kept either side of the first match


def snippet(messages: Sequence[Any], words: Sequence[str]) -> str | None:
    """``messages`` (rows: ``_pk, role, content, …``) cut around the best match of ``words``
    (matched whole, ignoring case), or None when no message contains any of them."""
    if not words:
        return None
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
    best: tuple[int, str] | None = None
    for message in messages:
        content = message[2]
        found = {m.group(0).lower() for m in pattern.finditer(content)}
        if found and (best is None or len(found) > best[0]):
            best = (len(found), content)
            if len(found) == len(set(words)):
                break
    if best is None:
        return None
    return _cut(best[1], pattern)


def _cut(content: str, pattern: re.Pattern[str]) -> str:
    tokens = re.split(r"(\s+)", content)
    first = next(i for i, t in enumerate(tokens) if pattern.search(t))
    start, end = max(0, first - 2 * _WINDOW), min(len(tokens), first + 2 * _WINDOW + 1)
    text = "".join(tokens[start:end]).strip()
    marked = pattern.sub(lambda m: f"\x00{m.group(0)}\x01", text)
    out = html.escape(marked, quote=False).replace("\x00", "<mark>").replace("\x01", "</mark>")
    return ("…" if start > 0 else "") + out + ("…" if end < len(tokens) else "")
