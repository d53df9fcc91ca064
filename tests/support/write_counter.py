"""A Graph-like write limiter in its own process: answers 204 to writes, 429 + Retry-After when more than
`--limit` writes arrived within any `--window` seconds, and reports arrival times on GET /arrivals.

Its own process, so that the client under test does not share a CPU and the GIL with it: the pacer test
measures the pacer, not this server.
Run: python -m tests.support.write_counter --limit 50 --window 1.0   (prints the port on stdout), or
`with write_limiter(50, 1.0) as url:` from Python.
"""

from __future__ import annotations

import argparse
import bisect
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def write_limiter(limit: int, window: float) -> Iterator[str]:
    """This limiter in its own process; yields its base URL (without /v1.0) and stops it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.write_counter", "--limit", str(limit), "--window", str(window)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--window", type=float, required=True)
    args = parser.parse_args()
    arrivals: list[float] = []
    throttled: list[float] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as separate writes: without TCP_NODELAY each response waits ~40 ms
            # for the client's delayed ACK (Nagle).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PATCH(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                # Stamped under the lock, so `arrivals` stays sorted for bisect (threads race otherwise).
                now = time.monotonic()
                recent = len(arrivals) - bisect.bisect_right(arrivals, now - args.window)
                if recent >= args.limit:
                    throttled.append(now)
                else:
                    arrivals.append(now)
            if throttled and throttled[-1] == now:
                error = {"error": {"code": "TooManyRequests", "message": "write limit"}}
                self._reply(429, json.dumps(error).encode(), {"Retry-After": "1", "Content-Type": "application/json"})
            else:
                self._reply(204)

        def do_GET(self) -> None:
            with lock:
                body = json.dumps({"arrivals": arrivals, "throttled": throttled}).encode()
            self._reply(200, body, {"Content-Type": "application/json"})

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever(0.05)


if __name__ == "__main__":
    main()
