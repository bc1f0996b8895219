"""LLM backends: ``local`` (llama-cpp-python, the default) and ``openai`` (any compatible server).

``scripted`` (:mod:`dispo.llm.testing`) answers canned replies and can crash on cue, for tests; it
is registered like the others. :func:`get_backend` is the factory, called at start-up through a
:class:`LazyBackend` that is handed to everything that calls a model (see :mod:`dispo.llm.base`).
"""

from dispo.llm.base import (
    Backend,
    Completion,
    LazyBackend,
    LLMError,
    Message,
    ModelCrashed,
    ModelTimedOut,
    Penalties,
    close_backends,
    get_backend,
    register,
    release_backend,
)

__all__ = [
    "Backend",
    "Completion",
    "LLMError",
    "LazyBackend",
    "Message",
    "ModelCrashed",
    "ModelTimedOut",
    "Penalties",
    "close_backends",
    "get_backend",
    "register",
    "release_backend",
]
