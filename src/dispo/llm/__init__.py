"""LLM backends: ``local`` (llama-cpp-python, the default) and ``openai`` (any compatible server).

``scripted`` (:mod:`dispo.llm.testing`) answers canned replies and can crash on cue, for tests.
"""

from dispo.llm.base import (
    Backend,
    Completion,
    LLMError,
    Message,
    ModelCrashed,
    ModelTimedOut,
    close_backends,
    get_backend,
    register,
)

__all__ = [
    "Backend",
    "Completion",
    "LLMError",
    "Message",
    "ModelCrashed",
    "ModelTimedOut",
    "close_backends",
    "get_backend",
    "register",
]
