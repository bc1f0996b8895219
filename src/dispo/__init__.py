"""Dispo: self-hosted call logs and post-call analytics for voice-AI agents, Atoms-compatible."""

from dispo.config import Settings, get_settings
from dispo.errors import (
    BadRequest,
    Conflict,
    DispoError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "Conflict",
    "DispoError",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "Settings",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
    "get_settings",
]
