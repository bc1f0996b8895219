"""``dispo doctor``: is this installation able to run? Each check says what is wrong and how to fix it.

Checks, in order:

- **model**: loads the configured model in a child process and completes one short prompt
  (reports the model and the times). A model that segfaults kills only that child.
- **llama.cpp build** (``local`` backend): the CPU features llama.cpp was compiled with, read in a
  child process. A build with its AMX path on a CPU that has AMX fails: that path segfaults
  (llama.cpp #20824), and ``scripts/llama_wheel.py`` builds without it.
- **database**: reachable, and its migrations at the newest revision.
- **queue**: the SQLite queue file writable, or Redis answering.
- **disk**: free space where the data directory lives (a warning under 1 GiB).

``dispo serve`` runs the same checks on start-up and refuses to start when the model cannot load
(``--skip-doctor`` bypasses them). There the model check uses the server's own model workers
(:func:`dispo.llm.get_backend`), so the model loaded for the check is the one that serves.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from dispo.config import Settings
from dispo.llm.base import Message

Status = Literal["ok", "warn", "fail"]
MIN_FREE_BYTES = 1 << 30
PROBE: list[Message] = [{"role": "user", "content": "Say hello in one word."}]
MODEL_CHECKS = ("model", "llama.cpp build")
AMX_FIX = (
    "llama.cpp was built with its AMX path, which segfaults on this CPU (llama.cpp #20824): run "
    "`make clean-llama install` to rebuild it without AMX (scripts/llama_wheel.py)."
)


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``fix`` says what to do when it is not ``ok``."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"


# -- model ------------------------------------------------------------------------------------


def check_model(settings: Settings, *, keep: bool = False) -> tuple[Check, str | None]:
    """Load the model in a child process and complete one short prompt; also returns llama.cpp's
    system info, read in that same child (None where the model did not come up).

    With ``keep`` and an isolated backend the server's own backend is loaded (and kept, for
    ``dispo serve``); otherwise a temporary worker process is started and stopped.
    """
    from dispo.llm import LLMError, ModelCrashed, get_backend
    from dispo.llm.base import Backend, runs_isolated
    from dispo.llm.worker import ProcessBackend, start_process_backend

    started = time.perf_counter()
    shared = keep and runs_isolated(settings)
    backend: Backend | None = None
    info: str | None = None
    try:
        backend = get_backend(settings) if shared else start_process_backend(settings, workers=1)
        loaded = time.perf_counter()
        reply = backend.chat(PROBE, max_tokens=8)
        answered = time.perf_counter()
        if settings.llm_backend == "local" and isinstance(backend, ProcessBackend):
            info = backend.system_info()
    except ModelCrashed as exc:
        return Check(
            "model",
            "fail",
            exc.message,
            "The model crashes in native code: see the llama.cpp build check, run `make clean-llama "
            "install`, or try another GGUF (DISPO_LLM_MODEL_PATH).",
        ), None
    except LLMError as exc:
        return Check(
            "model",
            "fail",
            exc.message,
            "Fix the model settings (DISPO_LLM_BACKEND, DISPO_LLM_MODEL_PATH, DISPO_LLM_BASE_URL) "
            "as the message says, then run `dispo doctor` again.",
        ), None
    finally:
        if backend is not None and not shared:
            backend.close()
    words = " ".join(reply.text.split())[:40]
    pool = getattr(backend, "pool", None)
    model_s = f", the model itself {pool.info.load_ms / 1000:.1f} s" if pool is not None else ""
    return Check(
        "model",
        "ok",
        f"{settings.llm_backend} model {backend.model_id} loaded in {loaded - started:.1f} s (in a "
        f"worker process{model_s}), answered a short prompt in {answered - loaded:.2f} s: {words!r}",
    ), info


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def build_features(system_info: str) -> dict[str, bool]:
    """``FEATURE = 0/1`` pairs of ``llama_print_system_info()``, e.g. ``{"AVX2": True}``."""
    return {
        name: value == "1" for name, value in re.findall(r"([A-Z][A-Z0-9_]*)\s*=\s*([01])\b", system_info)
    }


_NOT_SIMD = {"LLAMAFILE", "OPENMP", "REPACK", "KLEIDIAI", "ACCELERATE", "METAL", "CUDA", "MATMUL_INT8"}


def judge_build(system_info: str | None, flags: set[str]) -> Check:
    """The llama.cpp build check from its system info and the CPU's flags (a pure function, for tests)."""
    if system_info is None:
        return Check(
            "llama.cpp build",
            "fail",
            "llama-cpp-python is not installed.",
            "Run `make install`, which builds it for this CPU (scripts/llama_wheel.py).",
        )
    features = build_features(system_info)
    simd = [name for name, on in features.items() if on and name not in _NOT_SIMD]
    amx_built = any(on for name, on in features.items() if name.startswith("AMX"))
    cpu_amx = bool(flags & {"amx_tile", "amx_int8"})
    listed = " ".join(simd) or "none reported"
    if amx_built and cpu_amx:
        return Check(
            "llama.cpp build", "fail", f"SIMD: {listed}; AMX compiled in, and the CPU has AMX.", AMX_FIX
        )
    amx = "AMX compiled in (this CPU has none)" if amx_built else "no AMX"
    return Check("llama.cpp build", "ok", f"SIMD: {listed}; {amx}")


def _system_info_in_child() -> Future[str | None]:
    from dispo.llm.worker import system_info

    executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    future = executor.submit(system_info)
    executor.shutdown(wait=False)
    return future


def check_build(future: Future[str | None], timeout: float = 60.0) -> Check:
    try:
        info = future.result(timeout=timeout)
    except BrokenProcessPool:
        return Check(
            "llama.cpp build",
            "fail",
            "Importing llama-cpp-python crashed the process that asked for its system info.",
            "Rebuild it: `make clean-llama install`.",
        )
    except Exception as exc:
        return Check(
            "llama.cpp build",
            "fail",
            f"Could not read llama.cpp's system info ({type(exc).__name__}: {exc}).",
            "Reinstall it: `make clean-llama install`.",
        )
    return judge_build(info, cpu_flags())


# -- database, queue, disk --------------------------------------------------------------------


def check_database(settings: Settings) -> Check:
    """Reachable, and migrated to the newest revision; never creates anything."""
    from alembic.script import ScriptDirectory

    from dispo.store.database import Database
    from dispo.store.migrate import alembic_config, current_revision

    url = settings.effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return Check(
            "database",
            "warn",
            f"No database yet at {url.removeprefix('sqlite:///')}.",
            "`dispo serve` (or `dispo migrate`) creates it.",
        )
    db = Database(url, pool_size=1)
    shown = db.url.render_as_string(hide_password=True)
    try:
        try:
            current = current_revision(db)
        except Exception as exc:
            return Check(
                "database",
                "fail",
                f"Cannot connect to {shown}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                "Check DISPO_DATABASE_URL, and that the database server is running and reachable.",
            )
        head = ScriptDirectory.from_config(alembic_config(db)).get_current_head()
    finally:
        db.dispose()
    if current == head:
        return Check("database", "ok", f"{db.dialect} at {shown}, migrations at head ({head})")
    if current is None:
        return Check(
            "database",
            "warn",
            f"{shown} has no schema yet.",
            "`dispo serve` (or `dispo migrate`) creates it.",
        )
    return Check(
        "database",
        "fail",
        f"{shown} is at migration {current}, this Dispo expects {head}.",
        "Run `dispo migrate` (if the database is newer, upgrade Dispo instead).",
    )


def _writable(path: Path) -> bool:
    """Whether ``path`` (a file or directory, existing or not) could be written, creating nothing."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return os.access(probe, os.W_OK) and (probe == path or probe.is_dir())


def check_queue(settings: Settings) -> Check:
    from dispo.analytics.queue import is_sqlite_queue, make_huey, queue_description
    from dispo.errors import QueueConfigError

    described = queue_description(settings)
    if is_sqlite_queue(settings):
        url = settings.queue_url.strip()
        path = Path(url.removeprefix("sqlite:///")) if url else settings.data_dir / "queue.db"
        if _writable(path) and _writable(path.parent):
            return Check("queue", "ok", f"{described}, writable")
        return Check(
            "queue",
            "fail",
            f"{described} is not writable by this user.",
            "Fix the permissions of that directory, or point DISPO_DATA_DIR / DISPO_QUEUE_URL elsewhere.",
        )
    try:
        make_huey(settings)
    except QueueConfigError as exc:
        return Check("queue", "fail", exc.message, "Fix DISPO_QUEUE_URL.")
    import redis

    from dispo.analytics.queue import _split_queue_name

    redis_url, _ = _split_queue_name(settings.queue_url.strip())
    try:
        client: Any = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        return Check(
            "queue",
            "fail",
            f"{described} does not answer: {type(exc).__name__}: {exc}",
            "Start Redis (or fix DISPO_QUEUE_URL); leave DISPO_QUEUE_URL empty for the embedded SQLite queue.",
        )
    return Check("queue", "ok", f"{described}, answering")


def check_disk(settings: Settings, minimum: int = MIN_FREE_BYTES) -> Check:
    where = settings.data_dir.resolve()
    while not where.exists() and where.parent != where:
        where = where.parent
    free = shutil.disk_usage(where).free
    detail = f"{free / (1 << 30):.1f} GiB free at {where}"
    if free < minimum:
        return Check(
            "disk",
            "warn",
            detail + f" (under {minimum / (1 << 30):.1f} GiB)",
            "Free some space, or move DISPO_DATA_DIR to a larger disk: the database, queue and logs grow.",
        )
    return Check("disk", "ok", detail)


# -- all of them ------------------------------------------------------------------------------


def run_checks(settings: Settings, *, keep_model: bool = False) -> list[Check]:
    """Every check, in order. ``keep_model`` keeps the model loaded for the server (``dispo serve``)."""
    model, info = check_model(settings, keep=keep_model)
    checks = [model]
    if settings.llm_backend == "local":
        # Read in the model's worker when it came up; else in a child of its own (the import of
        # llama-cpp-python may be what crashes).
        checks.append(
            judge_build(info, cpu_flags()) if info is not None else check_build(_system_info_in_child())
        )
    rest: list[Callable[[Settings], Check]] = [check_database, check_queue, check_disk]
    checks += [check(settings) for check in rest]
    return checks


MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}


def render(checks: list[Check]) -> list[str]:
    """Lines for a terminal: a mark, the check, what it found, and the fix under anything not ok."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{MARKS[c.status]} {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"  {'':<{width}}  fix: {c.fix}")
    return lines


def as_json(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
