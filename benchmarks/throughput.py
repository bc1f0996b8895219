"""Requests per second of ``GET /conversation/{id}`` next to a bare Starlette JSON endpoint.

Both servers run at once, each in its own process; the load generator (``benchmarks.loadgen``)
runs in a third. Rounds alternate the two targets, so slow drift on the machine hits both alike,
and each figure is the median of its rounds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.server import BARE_PATH, ROOT, RunningServer


@dataclass(frozen=True)
class Round:
    rps: float
    errors: int
    client_cpu: float  # the load generator's CPU use, in cores


@dataclass
class Throughput:
    connections: int
    seconds: float
    api_bytes: int  # response body sizes, to show the payloads are alike
    bare_bytes: int
    api: list[Round] = field(default_factory=list)
    bare: list[Round] = field(default_factory=list)

    @property
    def api_rps(self) -> float:
        return statistics.median(r.rps for r in self.api)

    @property
    def bare_rps(self) -> float:
        return statistics.median(r.rps for r in self.bare)

    @property
    def ratio(self) -> float:
        return self.api_rps / self.bare_rps

    @property
    def client_cpu(self) -> float:
        return max(r.client_cpu for r in (*self.api, *self.bare))

    @property
    def errors(self) -> int:
        return sum(r.errors for r in (*self.api, *self.bare))


def raw_get(path: str, headers: dict[str, str] | None = None) -> str:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def compare(
    api: RunningServer,
    bare: RunningServer,
    api_paths: Sequence[str],
    api_key: str,
    *,
    api_bytes: int,
    bare_bytes: int,
    rounds: int,
    seconds: float,
    connections: int,
    log: Callable[[str], None],
) -> Throughput:
    result = Throughput(connections, seconds, api_bytes, bare_bytes)
    auth = {"Authorization": f"Bearer {api_key}"}
    with tempfile.TemporaryDirectory(prefix="dispo-bench-") as tmp:
        api_file = Path(tmp) / "api.json"
        api_file.write_text(json.dumps({"requests": [raw_get(p, auth) for p in api_paths]}))
        bare_file = Path(tmp) / "bare.json"
        bare_file.write_text(json.dumps({"requests": [raw_get(BARE_PATH)]}))
        for i in range(rounds):
            for name, server, requests, runs in (
                ("API ", api, api_file, result.api),
                ("bare", bare, bare_file, result.bare),
            ):
                run = _loadgen(server.port, requests, seconds=seconds, connections=connections)
                runs.append(run)
                log(
                    f"    round {i + 1}/{rounds} {name}: {run.rps:>8,.0f} req/s"
                    f"  (errors {run.errors}, client CPU {run.client_cpu:.0%})"
                )
    return result


def _loadgen(port: int, requests: Path, *, seconds: float, connections: int) -> Round:
    command = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        "--port",
        str(port),
        "--requests",
        str(requests),
        "--connections",
        str(connections),
        "--seconds",
        str(seconds),
    ]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
    data = json.loads(out.stdout)
    return Round(rps=float(data["rps"]), errors=int(data["errors"]), client_cpu=float(data["client_cpu"]))
