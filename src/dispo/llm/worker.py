"""The model in supervised worker processes: a crashing model is not a crashing platform.

llama.cpp is native code. A segfault in it (an unsupported CPU path, a corrupt GGUF), the kernel's
out-of-memory killer or an operator's ``kill -9`` would take the whole API server down if the model
ran inside it. So isolated backends (``Backend.isolated``: ``local``) run in child processes, and
the server holds a :class:`ProcessBackend`: the same ``chat``/``score`` interface (and the real
backend's ``name``, ``can_score`` and ``model_id``), each call sent over a pipe to a child.

- **One lock per model.** Each child loads the real backend once and answers one call at a time;
  that is the only serialisation. With ``DISPO_LLM_WORKERS`` > 1 a call goes to a free child
  (preferring the one this thread used last, whose KV cache likely holds its prompt).
- **Supervision.** The caller waits on the pipe *and* the child's process sentinel. When the child
  dies with a call in flight, the caller gets :class:`~dispo.llm.base.ModelCrashed` naming the
  signal or exit status, and a fresh child is started at once for the next call. A child that dies
  while loading is retried with a small backoff; after ``START_ATTEMPTS`` deaths in a row the call
  fails with an error that says to run ``dispo doctor``.
- **Timeouts.** A call not answered within ``DISPO_LLM_CALL_TIMEOUT_SECONDS`` gets its child killed
  and replaced (:class:`~dispo.llm.base.ModelTimedOut`).
- **No leaks.** Children are daemonic, exit when the parent's end of their pipe closes, and are
  stopped by :meth:`ProcessBackend.close` (through the ``LazyBackend`` the server or a
  ``dispo worker`` closes when it stops, or ``dispo.llm.close_backends``) and at interpreter exit.

Children are started with the ``spawn`` method: a clean interpreter, no copy of the server's
threads or locks, and nothing of llama.cpp loaded in the parent.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, cast

from dispo.llm.base import Backend, Completion, LLMError, Message, ModelCrashed, ModelTimedOut, Penalties

if TYPE_CHECKING:
    from dispo.config import Settings

log = logging.getLogger("dispo.llm")

START_ATTEMPTS = 3  # deaths in a row while loading before a call gives up
LOAD_TIMEOUT_S = 300.0  # a model that has not loaded in this time is treated as dead
BACKOFF_S = 0.2  # first delay before restarting a child that died while loading; doubles
STOP_GRACE_S = 2.0  # how long close() waits for a child to exit before killing it
_METHODS = frozenset({"chat", "score", "system_info"})


@dataclass(frozen=True)
class ModelInfo:
    """What a child reports once its model is loaded."""

    backend: str
    can_score: bool
    model_id: str
    pid: int
    load_ms: float


# -- the child -----------------------------------------------------------------------------------


def child_main(conn: Connection, settings: Settings) -> None:
    """Entry point of a model worker process: load the backend, then answer requests until told to
    stop or the parent goes away (its end of the pipe closes)."""
    # Ctrl-C in a terminal signals the whole process group: the parent decides when children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from dispo.llm.base import get_backend

    started = time.perf_counter()
    try:
        backend = get_backend(settings)  # settings.llm_isolation is "none" here: the real backend
    except Exception as exc:
        conn.send(("failed", _portable(exc)))
        return
    load_ms = (time.perf_counter() - started) * 1000
    conn.send(("ready", ModelInfo(backend.name, backend.can_score, backend.model_id, os.getpid(), load_ms)))
    while True:
        try:
            method, args, kwargs = conn.recv()
        except (EOFError, OSError):
            break  # the parent is gone
        if method == "close":
            break
        try:
            before = _model_ms(backend)
            result = system_info() if method == "system_info" else getattr(backend, method)(*args, **kwargs)
            conn.send(("ok", result, _model_ms(backend) - before))
        except Exception as exc:
            conn.send(("error", _portable(exc)))
    backend.close()


def system_info() -> str | None:
    """llama.cpp's report of the CPU features it was built with, where llama-cpp-python is installed."""
    try:
        import llama_cpp
    except ImportError:
        return None
    raw = llama_cpp.llama_print_system_info()
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _model_ms(backend: Backend) -> float:
    return float(getattr(backend, "model_ms_total", 0.0))


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (so the caller gets the same type), else an LLMError."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return LLMError(f"The model worker failed: {type(exc).__name__}: {exc}")
    return exc


# -- the parent ----------------------------------------------------------------------------------


def describe_exit(exitcode: int | None) -> str:
    """How a child ended, in words: the signal and what usually sends it."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"was killed by signal {-exitcode}"
        why = {
            signal.SIGSEGV: "a segmentation fault in native code such as llama.cpp",
            signal.SIGKILL: "killed: often the kernel's out-of-memory killer, or an operator",
            signal.SIGABRT: "aborted by native code",
            signal.SIGBUS: "a bus error in native code",
            signal.SIGILL: "an illegal instruction: a build for another CPU",
            signal.SIGFPE: "an arithmetic fault in native code",
        }.get(sig, "killed by a signal")
        return f"died of {sig.name} ({why})"
    return f"exited with status {exitcode}"


# Guards the parent's ``__main__`` while a child is spawned (see _main_hidden), not a model: each
# model has one lock, its backend's own (dispo.llm.base lists the locks).
_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Start a spawned child without running the parent's ``__main__`` again in it.

    ``spawn`` re-imports the main module in every child so that functions defined there can be
    unpickled. For ``dispo serve`` that is the whole CLI (typer, rich, the evaluation code): about a
    second of imports per model worker, paid again at each restart after a crash. The worker's entry
    point lives in this module, so the child needs none of it; the preparation data is read in
    ``Process.start``, and only there is ``__main__`` hidden.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _MAIN_LOCK:
        saved: dict[str, Any] = {
            name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__
        }
        main.__dict__.pop("__file__", None)
        main.__dict__["__spec__"] = None
        try:
            yield
        finally:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


class _Child:
    """One model worker process and the parent's end of its pipe."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None
        self.info: ModelInfo | None = None
        self.busy = False
        self.last_thread: int | None = None
        self.load_deaths = 0  # deaths while loading, in a row

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def spawn(self, settings: Settings) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=child_main, args=(child, settings), name=f"dispo-model-{self.index}", daemon=True
        )
        with _main_hidden():
            process.start()
        child.close()  # the child holds its own copy; ours must go so EOF reaches the child
        self.process, self.conn, self.info = process, parent, None

    def wait_ready(self, timeout: float) -> ModelInfo:
        """The child's model info once it has loaded; raises ``_DiedLoading`` or the load error."""
        assert self.process is not None
        assert self.conn is not None
        if self.info is not None:
            return self.info
        ready = wait([self.conn, self.process.sentinel], timeout)
        message: Any = None
        if self.conn in ready:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                message = None
        if message is not None and message[0] == "ready":
            self.info = cast(ModelInfo, message[1])
            return self.info
        if message is not None and message[0] == "failed":
            self.reap()
            raise cast(BaseException, message[1])
        how = "did not load the model in time" if not ready else describe_exit(self.reap())
        if not ready:
            self.reap(kill=True)
        raise _DiedLoading(how)

    def request(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float) -> Any:
        """Send one call and wait for its answer, the child's death or the timeout."""
        process, conn = self.process, self.conn
        assert process is not None
        assert conn is not None
        try:
            conn.send((method, args, kwargs))
            ready = wait([conn, process.sentinel], timeout)
            if not ready:
                self.reap(kill=True)
                raise _TimedOut()
            reply = conn.recv()  # an answer sent just before dying is still in the pipe
        except (EOFError, OSError):
            raise _Died(f"(pid {process.pid}) {describe_exit(self.reap())}") from None
        if reply[0] == "ok":
            return reply[1], float(reply[2])
        raise cast(BaseException, reply[1])

    def reap(self, *, kill: bool = False) -> int | None:
        """Forget the process (killing it first if asked); returns its exit code."""
        process, conn = self.process, self.conn
        self.process, self.conn, self.info = None, None, None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        if kill and process.is_alive():
            process.kill()
        process.join(timeout=5)
        code = process.exitcode
        if code is not None:
            process.close()
        return code

    def stop(self, *, busy: bool) -> None:
        """Ask an idle child to exit (killing it if it does not within the grace period); kill a busy
        one at once, leaving the rest to the thread whose call it was serving."""
        process = self.process
        if process is None:
            return
        if busy:
            process.kill()
            process.join(timeout=5)
            return
        if self.conn is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.conn.send(("close", (), {}))
            process.join(STOP_GRACE_S)
        self.reap(kill=True)


class _Died(Exception):
    """The child died with a call in flight."""


class _DiedLoading(Exception):
    """The child died (or hung) before its model was loaded."""


class _TimedOut(Exception):
    """The child did not answer in time and was killed."""


class ModelPool:
    """``workers`` children running the backend of ``settings``, supervised; see the module docstring."""

    def __init__(self, settings: Settings, *, workers: int | None = None) -> None:
        n = workers or settings.llm_workers
        threads = settings.llm_threads
        if threads == 0 and n > 1:
            # Each child would take half the cores by default: share that half among them instead.
            threads = max(1, (os.cpu_count() or 2) // 2 // n)
        # Inside the child the backend must be the real one, not another proxy.
        self.settings = settings.model_copy(update={"llm_isolation": "none", "llm_threads": threads})
        self.call_timeout = settings.llm_call_timeout_seconds
        self.restarts = 0  # children started again after a crash or a timeout
        self._children = [_Child(i) for i in range(n)]
        # Guards which child is busy (the pool's bookkeeping): a child answers one call at a time,
        # so the model inside it needs no other lock from this side.
        self._cond = threading.Condition()
        self._closed = False
        _POOLS.add(self)
        for child in self._children:
            child.spawn(self.settings)
        try:
            self.info = self._ready(self._children[0])
        except BaseException:
            self.close()
            raise

    # -- calls ------------------------------------------------------------------------------

    def call(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, float]:
        """Run ``method`` of the backend in a child; returns its result and the model time (ms)."""
        if method not in _METHODS:
            raise ValueError(f"not a model method: {method}")
        child = self._acquire()
        try:
            self._ready(child)
            try:
                return cast(tuple[Any, float], child.request(method, args, kwargs, self.call_timeout))
            except _Died as died:
                raise self._crashed(child, method, str(died)) from None
            except _TimedOut:
                error = ModelTimedOut(
                    f"The model did not answer a {method} call within {self.call_timeout:g} s "
                    "(DISPO_LLM_CALL_TIMEOUT_SECONDS), so its worker process was stopped and a fresh "
                    "one takes the next call. Raise the timeout for a slow model; if the model hangs, "
                    "run `dispo doctor`."
                )
                log.error("%s", error.message)
                self._restart(child)
                raise error from None
        finally:
            self._release(child)

    def _acquire(self) -> _Child:
        me = threading.get_ident()
        with self._cond:
            while True:
                if self._closed:
                    raise LLMError("The model is shut down: Dispo is stopping.")
                free = [c for c in self._children if not c.busy]
                if free:
                    child = next((c for c in free if c.last_thread == me), free[0])
                    child.busy, child.last_thread = True, me
                    return child
                self._cond.wait()

    def _release(self, child: _Child) -> None:
        with self._cond:
            child.busy = False
            self._cond.notify()

    def _ready(self, child: _Child) -> ModelInfo:
        """Wait until ``child`` has loaded its model, (re)starting it as often as it takes."""
        while True:
            if self._closed:
                raise LLMError("The model is shut down: Dispo is stopping.")
            if child.process is not None and child.info is not None and not child.process.is_alive():
                # Died between calls (the OOM killer picks the biggest process): no call was lost.
                pid = child.pid
                log.warning(
                    "The model worker (pid %s) %s while idle; starting a fresh one.",
                    pid,
                    describe_exit(child.reap()),
                )
            if child.process is None:
                if child.load_deaths:
                    time.sleep(BACKOFF_S * 2 ** (child.load_deaths - 1))
                child.spawn(self.settings)
            try:
                info = child.wait_ready(LOAD_TIMEOUT_S)
            except _DiedLoading as died:
                child.load_deaths += 1
                log.error("The model worker %s while loading the model.", died)
                if child.load_deaths >= START_ATTEMPTS:
                    child.load_deaths = 0
                    raise ModelCrashed(
                        f"The model worker died {START_ATTEMPTS} times in a row while loading the model "
                        f"(the last one {died}). Run `dispo doctor` to find out why."
                    ) from None
                continue
            child.load_deaths = 0
            return info

    def _crashed(self, child: _Child, method: str, how: str) -> LLMError:
        if self._closed:
            return LLMError("The model was shut down with a call in flight: Dispo is stopping.")
        error = ModelCrashed(
            f"The model worker process {how} while answering a {method} call; this call "
            "failed, and a fresh worker takes the next one. If it happens again, run `dispo doctor` "
            "and see the server log."
        )
        log.error("%s", error.message)
        self._restart(child)
        return error

    def _restart(self, child: _Child) -> None:
        """Start a fresh child now: it loads while the failed call is reported."""
        if self._closed:
            return
        child.spawn(self.settings)
        self.restarts += 1

    # -- lifecycle --------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Process ids of the live children (for tests and `dispo doctor`)."""
        return [pid for c in self._children if (pid := c.pid) is not None]

    def close(self) -> None:
        """Stop every child (idle ones politely, busy ones at once). Safe to call twice."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            busy = {c.index: c.busy for c in self._children}
        for child in self._children:
            child.stop(busy=busy[child.index])
        _POOLS.discard(self)


_POOLS: weakref.WeakSet[ModelPool] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()


class ProcessBackend(Backend):
    """A backend whose model runs in a :class:`ModelPool`; see :func:`start_process_backend`."""

    name = "process"

    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool
        self.model_id = pool.info.model_id
        self.model_ms_total = 0.0  # time inside the model, as the children measured it

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
        result, model_ms = self.pool.call(
            "chat",
            list(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            json_schema=json_schema,
            stop=tuple(stop),
            penalties=penalties,
            prefix=prefix,
        )
        self.model_ms_total += model_ms
        return cast(Completion, result)

    def score(
        self, messages: Sequence[Message], continuations: Sequence[str], *, prefix: str = ""
    ) -> list[float]:
        if not self.can_score:
            return super().score(messages, continuations, prefix=prefix)
        result, model_ms = self.pool.call("score", list(messages), list(continuations), prefix=prefix)
        self.model_ms_total += model_ms
        return cast(list[float], result)

    def system_info(self) -> str | None:
        """llama.cpp's build report, from a child (see :func:`system_info`)."""
        result, _ = self.pool.call("system_info")
        return cast(str | None, result)

    def close(self) -> None:
        self.pool.close()


_CLASSES: dict[tuple[str, bool], type[ProcessBackend]] = {}


def start_process_backend(settings: Settings, *, workers: int | None = None) -> ProcessBackend:
    """Start the children for ``settings`` and return the proxy, once the first has loaded its model
    (so a model that cannot load fails here, with the backend's own message)."""
    pool = ModelPool(settings, workers=workers)
    info = pool.info
    key = (info.backend, info.can_score)
    cls = _CLASSES.get(key)
    if cls is None:
        # A subclass per real backend, so that ``name`` and ``can_score`` stay class attributes.
        cls = _CLASSES[key] = cast(
            type[ProcessBackend],
            type(
                f"Process{info.backend.title()}Backend",
                (ProcessBackend,),
                {"name": info.backend, "can_score": info.can_score, "__module__": __name__},
            ),
        )
    return cls(pool)
