"""Telephony providers behind one interface (see :mod:`dispo.telephony.base`); built in: ``test``."""

from dispo.telephony.base import (
    UNCONNECTED,
    CallEvent,
    CallSession,
    DialOutcome,
    DialRequest,
    DialResult,
    Heard,
    Provider,
    ProviderError,
    Spoken,
    make_provider,
    provider_names,
    register,
)

__all__ = [
    "UNCONNECTED",
    "CallEvent",
    "CallSession",
    "DialOutcome",
    "DialRequest",
    "DialResult",
    "Heard",
    "Provider",
    "ProviderError",
    "Spoken",
    "make_provider",
    "provider_names",
    "register",
]
