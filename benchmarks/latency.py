"""Latency per case: the API's server-side time next to the raw SQL time of the same requests.

The API's figure is what the server reports in ``Server-Timing: app;dur=<ms>`` (routing, auth,
database, rendering and JSON; not the network or this client). Requests go one at a time on one
keep-alive connection, so each is timed alone. For every sample the API request and the raw replay
run back to back, so both see the same cache state.
"""

from __future__ import annotations

import http.client
import random
import re
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Any

from benchmarks.cases import CURSOR_WALK_PAGES, Case, Fixture, Sample
from benchmarks.rawsql import Recorder, Recording, Replayer

_SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


class ApiClient:
    """One keep-alive connection to the server, authenticated as the bench organization."""

    def __init__(self, port: int, api_key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def request(self, sample: Sample) -> tuple[float, bytes]:
        """Server-side milliseconds and the response body; raises on anything but 200."""
        method, path, body = sample.http()
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._send(method, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionError):
            # uvicorn closes connections idle for 5 s, e.g. while a slow case is being recorded.
            self.conn.close()
            response = self._send(method, path, body, headers)
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} answered {response.status}: {payload[:500]!r}")
        timing = _SERVER_TIMING.search(response.getheader("server-timing") or "")
        if timing is None:
            raise RuntimeError(f"{method} {path} carried no Server-Timing header")
        return float(timing.group(1)), payload

    def _send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        self.conn.request(method, path, body=body, headers=headers)
        return self.conn.getresponse()

    def close(self) -> None:
        self.conn.close()


@dataclass
class CaseResult:
    name: str
    api_ms: list[float] = field(default_factory=list)
    raw_ms: list[float] = field(default_factory=list)
    mean_rows: float = 0.0  # calls per response, to tell an empty result from a fast query
    seconds: float = 0.0

    @property
    def api_p50(self) -> float:
        return statistics.median(self.api_ms)

    @property
    def api_p99(self) -> float:
        return percentile(self.api_ms, 99)

    @property
    def raw_p50(self) -> float:
        return statistics.median(self.raw_ms)

    @property
    def raw_p99(self) -> float:
        return percentile(self.raw_ms, 99)

    @property
    def ratio(self) -> float:
        return self.api_p50 / self.raw_p50 if self.raw_p50 > 0 else float("inf")


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def measure(
    case: Case,
    fixture: Fixture,
    client: ApiClient,
    recorder: Recorder,
    replayer: Replayer,
    *,
    samples: int,
    warmup: int,
    seed: int,
) -> CaseResult:
    """Time ``warmup + samples`` requests of ``case``; the first ``warmup`` are not counted."""
    started = time.perf_counter()
    rng = random.Random(f"{seed}:{case.name}")
    wanted = warmup + samples
    # Recording runs each sample through the store once: the replay's SQL, the cursors a walk
    # follows, and a first touch of the pages, so neither side pays for a cold cache alone.
    if case.cursor_walk:
        plan = _cursor_walk(case, fixture, rng, recorder, wanted)
    else:
        plan = []
        for _ in range(wanted):
            sample = case.draw(fixture, rng)
            plan.append((sample, recorder.record(sample)))
    result = CaseResult(case.name)
    rows = 0
    for i, (sample, recording) in enumerate(plan):
        api_ms, _body = client.request(sample)
        raw_ms = replayer.run(recording.statements, recording.transaction)
        if i >= warmup:
            result.api_ms.append(api_ms)
            result.raw_ms.append(raw_ms)
            rows += _row_count(recording.data)
    result.mean_rows = rows / max(len(result.api_ms), 1)
    result.seconds = time.perf_counter() - started
    return result


def _cursor_walk(
    case: Case, fixture: Fixture, rng: random.Random, recorder: Recorder, wanted: int
) -> list[tuple[Sample, Recording]]:
    """Pages 2..N of walks that follow nextCursor from a first page, until ``wanted`` pages."""
    plan: list[tuple[Sample, Recording]] = []
    while len(plan) < wanted:
        first = case.draw(fixture, rng)
        cursor = recorder.record(first).data["pagination"]["nextCursor"]
        for _page in range(2, CURSOR_WALK_PAGES + 1):
            if cursor is None or len(plan) >= wanted:
                break
            sample = replace(first, params={**first.params, "cursor": cursor})
            recording = recorder.record(sample)
            plan.append((sample, recording))
            cursor = recording.data["pagination"]["nextCursor"]
        if cursor is None and not plan:
            raise RuntimeError(f"{case.name}: the first page has no nextCursor; load more calls")
    return plan


def _row_count(data: dict[str, Any]) -> int:
    if "logs" in data:
        return len(data["logs"])
    return 1  # a single call
