"""LLM backends: ``local`` (llama-cpp-python, the default) and ``openai`` (any compatible server)."""

from dispo.llm.base import Backend, Completion, LLMError, Message, get_backend, register

__all__ = ["Backend", "Completion", "LLMError", "Message", "get_backend", "register"]
