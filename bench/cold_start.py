"""Cold-start cost of the Functions app and of the first Graph request, each in a fresh interpreter.

Prints medians and their ratio to the baseline measured in the same run: importing msgraph's
GraphServiceClient + azure.identity.aio directly, as a naive app would at module level. Also measures
`import function_app` as deployed: from the unzipped deployment zip (scripts/package) in a clean venv holding
only the zip's requirements.txt (acceptance: ≤ 0.3 s). Needs uv for that venv.
Run: python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
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


ZIP_IMPORT = "import function_app (deployment zip, clean venv)"
# The Python worker imports the Azure Monitor distro itself (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true)
# before it loads function_app: part of a cold start, though not of the app's import (docs/operations.md).
WORKER_OTEL = "worker: import azure.monitor.opentelemetry (clean venv)"
WORKER_OTEL_CODE = """
import time; t = time.perf_counter()
from azure.monitor.opentelemetry import configure_azure_monitor
print(time.perf_counter() - t)
"""
ZIP_LIMIT_SECONDS = 0.3


def measure(code: str, runs: int, python: str = sys.executable, cwd: Path = ROOT) -> float:
    times = []
    for _ in range(runs):
        # The zip: -I, only the unzipped folder (added below) and the clean venv supply modules; -B, no .pyc kept.
        args = (
            [python, "-c", code]
            if cwd == ROOT
            else [python, "-I", "-B", "-c", "import sys; sys.path.insert(0, '')\n" + code]
        )
        result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True)
        times.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def measure_zip(runs: int, work: Path) -> dict[str, float]:
    """Build the zip, unzip it, install its requirements.txt into a clean venv, then time the import there."""
    uv = shutil.which("uv") or sys.exit("bench/cold_start.py: uv not found — it builds the clean venv (pip install uv)")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "package"), "-o", str(work / "app.zip")], check=True)
    zipfile.ZipFile(work / "app.zip").extractall(work / "app")
    subprocess.run([uv, "venv", "--quiet", "--python", base, str(work / "venv")], check=True)
    # Bytecode compiled at install, as the platform's remote build (pip) does; the app's own modules get none
    # (-B below): a package run read-only keeps no .pyc, so the worst case compiles them on every cold start.
    install = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(work / "venv" / "bin" / "python")]
    subprocess.run([*install, "-r", str(work / "app" / "requirements.txt")], check=True)
    python = str(work / "venv" / "bin" / "python")
    return {
        ZIP_IMPORT: measure(SNIPPETS["import function_app"], runs, python, work / "app"),
        WORKER_OTEL: measure(WORKER_OTEL_CODE, runs, python, work / "app"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    medians = {name: measure(code, runs) for name, code in SNIPPETS.items()}
    with tempfile.TemporaryDirectory() as work:
        medians.update(measure_zip(runs, Path(work)))
    baseline = medians["baseline: import msgraph + azure.identity.aio"]
    print(f"median of {runs} fresh interpreters (Python {sys.version.split()[0]})")
    for name, seconds in medians.items():
        print(f"  {name:<48} {seconds * 1000:8.0f} ms   {seconds / baseline:5.2f}x baseline")
    verdict = "within" if medians[ZIP_IMPORT] <= ZIP_LIMIT_SECONDS else "OVER"
    print(f"deployment zip's cold import: {verdict} the {ZIP_LIMIT_SECONDS * 1000:.0f} ms acceptance limit")


if __name__ == "__main__":
    main()
