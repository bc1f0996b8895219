"""A small HTTP/1.1 load generator: raw sockets, keep-alive, pre-built requests, fixed duration.

It runs in its own process (``python -m benchmarks.loadgen``) so that the server under test keeps
its core. Each connection has one request in flight (no pipelining); a response is complete when
its ``Content-Length`` bytes have arrived. Only that much parsing happens per response, so that
one client core drives several times the requests a one-worker Python server can answer. It also
reports its own CPU use: near 100 % of a core would mean the client, not the server, is the limit.

Input: a JSON file ``{"requests": [<request text>, …]}`` (latin-1 text), cycled over.
Output on stdout: ``{"requests", "errors", "seconds", "rps", "client_cpu"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast


@dataclass
class _Tally:
    requests: tuple[bytes, ...]
    completed: int = 0
    errors: int = 0
    stopping: bool = False


class _Connection(asyncio.Protocol):
    def __init__(self, tally: _Tally, start: int, done: asyncio.Future[None]) -> None:
        self.tally = tally
        self.next = start
        self.done = done
        self.buffer = bytearray()
        self.expected = -1  # bytes of the response being read, once its head has arrived
        self.ok = True
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self._send()

    def _send(self) -> None:
        requests = self.tally.requests
        assert self.transport is not None
        self.transport.write(requests[self.next % len(requests)])
        self.next += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.expected < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                raise RuntimeError("response without Content-Length; this client needs one")
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            self.expected = end + 4 + length
            self.ok = buffer[9:12] == b"200"
        if len(buffer) < self.expected:
            return
        if len(buffer) > self.expected:
            raise RuntimeError("more bytes than one response: the server sent something unexpected")
        buffer.clear()
        self.expected = -1
        self.tally.completed += 1
        if not self.ok:
            self.tally.errors += 1
        if self.tally.stopping:
            assert self.transport is not None
            self.transport.close()
        else:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _factory(tally: _Tally, start: int, done: asyncio.Future[None]) -> Callable[[], _Connection]:
    return lambda: _Connection(tally, start, done)


async def run(
    host: str, port: int, requests: tuple[bytes, ...], *, connections: int, warmup: float, seconds: float
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    tally = _Tally(requests)
    finished: list[asyncio.Future[None]] = []
    for i in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        # Spread the connections over the request list so they do not fetch the same ids in step.
        start = i * max(len(requests) // connections, 1)
        await loop.create_connection(_factory(tally, start, done), host, port)
        finished.append(done)
    await asyncio.sleep(warmup)
    count0, errors0, wall0, cpu0 = tally.completed, tally.errors, time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    count1, errors1, wall1, cpu1 = tally.completed, tally.errors, time.perf_counter(), time.process_time()
    tally.stopping = True
    await asyncio.wait_for(asyncio.gather(*finished), timeout=60)
    elapsed = wall1 - wall0
    return {
        "requests": count1 - count0,
        "errors": errors1 - errors0,
        "seconds": elapsed,
        "rps": (count1 - count0) / elapsed,
        "client_cpu": (cpu1 - cpu0) / elapsed,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=Path, required=True, help="JSON file of raw requests")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    requests = tuple(r.encode("latin-1") for r in json.loads(args.requests.read_text())["requests"])
    coro = run(
        args.host, args.port, requests, connections=args.connections, warmup=args.warmup, seconds=args.seconds
    )
    try:
        import uvloop  # the event loop uvicorn picks too: the client must outpace the server
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
