"""The servers under test, each in its own process: Dispo's real app, and a bare Starlette endpoint.

Both are served the same way (uvicorn, one worker, 127.0.0.1, ``log_level=warning``, access log
off), so that the throughput comparison measures the app and nothing else. The parent starts a
child with ``python -m benchmarks.server api|bare …`` and waits until it answers.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_PATH = "/x"


@dataclass
class RunningServer:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_api(db_url: str) -> RunningServer:
    """Dispo on ``db_url``, exactly as ``create_app`` builds it."""
    return _start("api", ["api", db_url], "/health")


def start_bare(payload: Path) -> RunningServer:
    """A minimal Starlette app answering ``GET /x`` with the JSON in ``payload``."""
    return _start("bare", ["bare", str(payload)], BARE_PATH)


def _start(name: str, args: list[str], ready_path: str) -> RunningServer:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server", *args, str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    server = RunningServer(name, port, process)
    try:
        _wait_ready(server, ready_path)
    except BaseException:
        server.stop()
        raise
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(server: RunningServer, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"the {server.name} server exited with code {server.process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the {server.name} server did not answer on port {server.port} in {timeout:.0f} s"
            )
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Child side


def _serve(app: object, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)  # type: ignore[arg-type]


def _serve_api(db_url: str, port: int) -> None:
    from dispo.api.app import create_app
    from dispo.config import Settings
    from dispo.store.database import Database

    settings = Settings(
        database_url=db_url,
        data_dir=ROOT / "bench-data" / "server",
        log_level="warning",
        # The load comes from one key and one address, as fast as the server answers: measure the
        # app, not the rate limiter's 429s.
        rate_limit="off",
        rate_limit_expensive="off",
        rate_limit_address="off",
    )
    # As `dispo serve` builds it: the settings' pool size, a database the loader already migrated.
    _serve(create_app(settings, Database(db_url, pool_size=settings.db_pool_size)), port)


def _serve_bare(payload_path: str, port: int) -> None:
    import json

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    payload = json.loads(Path(payload_path).read_text())

    def endpoint(_request: Request) -> JSONResponse:
        return JSONResponse(payload)

    _serve(Starlette(routes=[Route(BARE_PATH, endpoint)]), port)


def main(argv: list[str]) -> None:
    mode, target, port = argv
    if mode == "api":
        _serve_api(target, int(port))
    elif mode == "bare":
        _serve_bare(target, int(port))
    else:
        raise SystemExit(
            f"usage: python -m benchmarks.server api DB_URL PORT | bare PAYLOAD_JSON PORT (got {mode!r})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
