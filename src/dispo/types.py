"""Type aliases used across modules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

# A database row as a mapping of column name to value (SQLAlchemy's RowMapping, or a plain dict).
Row: TypeAlias = Mapping[Any, Any]
