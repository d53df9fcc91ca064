"""Cold-start cost of the Functions app and of the first Graph request, each in a fresh interpreter.

Prints medians and their ratio to the baseline measured in the same run: importing msgraph's
GraphServiceClient + azure.identity.aio directly, as a naive app would at module level.
Run: python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each snippet prints the seconds it spent in the measured part.
SNIPPETS = {
    "import function_app": """
import time; t = time.perf_counter()
import function_app
print(time.perf_counter() - t)
""",
    "first Graph request (import + client + GET)": """
import threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b'{"id": "1"}'
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/v1.0"

t = time.perf_counter()
import asyncio
from shared.graph import Graph, GraphOptions
async def first() -> None:
    graph = Graph(GraphOptions(base_url=url, auth="emulator"))
    await graph.get_json("/users/1")
    await graph.close()
asyncio.run(first())
print(time.perf_counter() - t)
""",
    "baseline: import msgraph + azure.identity.aio": """
import time; t = time.perf_counter()
from msgraph import GraphServiceClient
import azure.identity.aio
print(time.perf_counter() - t)
""",
}


def measure(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        times.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    medians = {name: measure(code, runs) for name, code in SNIPPETS.items()}
    baseline = medians["baseline: import msgraph + azure.identity.aio"]
    print(f"median of {runs} fresh interpreters (Python {sys.version.split()[0]})")
    for name, seconds in medians.items():
        print(f"  {name:<48} {seconds * 1000:8.0f} ms   {seconds / baseline:5.2f}x baseline")


if __name__ == "__main__":
    main()
