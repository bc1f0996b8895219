"""Named sections of BENCHMARKS.md that benchmarks run on their own write and keep.

A section sits between ``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``. Writing one
replaces it in place (or appends it); regenerating the main report keeps every section the new
text does not have, so ``python -m benchmarks dialer`` and ``make bench`` never erase each other.
"""

from __future__ import annotations

import re
from pathlib import Path


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- section:{re.escape(name)} -->.*?<!-- /section:{re.escape(name)} -->\n?", re.S)


def block(name: str, body: str) -> str:
    return f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"


def put(path: Path, name: str, body: str) -> None:
    """Write section ``name`` of ``path`` (created if missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    new = block(name, body)
    pattern = _pattern(name)
    if pattern.search(text):
        text = pattern.sub(lambda _m: new, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + new
    path.write_text(text)


def keep(path: Path, new_text: str) -> str:
    """``new_text`` plus the sections of the current ``path`` that it lacks."""
    if not path.exists():
        return new_text
    old = path.read_text()
    kept = [
        m.group(0)
        for m in re.finditer(r"<!-- section:([\w-]+) -->.*?<!-- /section:\1 -->\n?", old, re.S)
        if f"<!-- section:{m.group(1)} -->" not in new_text
    ]
    if not kept:
        return new_text
    return new_text.rstrip("\n") + "\n\n" + "\n".join(k.rstrip("\n") + "\n" for k in kept)
