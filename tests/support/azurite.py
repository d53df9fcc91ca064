"""Azurite for tests, and the `azurite` / `store` fixtures (importable so any conftest can use them).

`run_azurite()` starts the pinned Azurite (package.json) from node_modules on ports the OS picks, so two
test runs on one machine never collide, and stops its whole process group afterwards. Set
GUESTCTL_TEST_AZURITE to a connection string to use an Azurite (or storage account) you started yourself.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest
from azure.data.tables.aio import TableServiceClient

from shared.store import Clock, Store, open_store
from shared.store.protocol import utc_now

REPOSITORY_ROOT: Final = Path(__file__).resolve().parents[2]
ENVIRONMENT_VARIABLE: Final = "GUESTCTL_TEST_AZURITE"
ACCOUNT: Final = "devstoreaccount1"
# Azurite's well-known development key: public, documented, accepted by Azurite only.
ACCOUNT_KEY: Final = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT_SECONDS: Final = 20.0
STOP_TIMEOUT_SECONDS: Final = 5.0
NOT_INSTALLED: Final = "Azurite is not installed: run `npm ci` in the repository root"
_LISTENING: Final = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)"
)


class AzuriteNotInstalledError(RuntimeError):
    """node_modules/.bin/azurite is missing."""


class AzuriteStartError(RuntimeError):
    """Azurite did not come up; the message carries its output."""


def connection_string(ports: dict[str, int]) -> str:
    """A full connection string with explicit endpoints (Azurite's well-known account)."""
    endpoints = ";".join(
        f"{service}Endpoint=http://127.0.0.1:{ports[service]}/{ACCOUNT}" for service in ("Blob", "Queue", "Table")
    )
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};{endpoints};"


@contextmanager
def run_azurite(repository_root: Path = REPOSITORY_ROOT) -> Iterator[str]:
    """Yield a connection string to a fresh in-memory Azurite (or GUESTCTL_TEST_AZURITE's)."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if configured:
        yield configured
        return
    binary = repository_root / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise AzuriteNotInstalledError(NOT_INSTALLED)
    with tempfile.TemporaryDirectory(prefix="guestctl-azurite-") as workspace:
        log_path = Path(workspace) / "azurite.log"
        with log_path.open("wb") as log:
            # The binary itself, not npx: killing npx leaves Azurite running (docs/architecture.md#library-facts).
            process = subprocess.Popen(
                [
                    str(binary),
                    "--silent",
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableTelemetry",
                    "--blobHost=127.0.0.1",
                    "--queueHost=127.0.0.1",
                    "--tableHost=127.0.0.1",
                    # Port 0: the OS picks free ports without a race; Azurite prints the ones it got.
                    "--blobPort=0",
                    "--queuePort=0",
                    "--tablePort=0",
                ],
                cwd=workspace,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so the cleanup reaches every child
            )
        try:
            ports = _wait_until_ready(process, log_path)
            yield connection_string(ports)
        finally:
            _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> dict[str, int]:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        output = log_path.read_text(errors="replace")
        ports = {service: int(port) for service, port in _LISTENING.findall(output)}
        if len(ports) == 3 and _accepts_connections(ports["Table"]):
            return ports
        if process.poll() is not None:
            raise AzuriteStartError(f"Azurite exited with status {process.returncode}:\n{output[-2000:]}")
        time.sleep(0.05)
    raise AzuriteStartError(
        f"Azurite did not accept connections within {START_TIMEOUT_SECONDS:.0f} s:\n"
        f"{log_path.read_text(errors='replace')[-2000:]}"
    )


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, stop_signal)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Connection string of one Azurite for the whole session (missing Azurite fails, never skips)."""
    with ExitStack() as stack:
        failure = None
        try:
            connection = stack.enter_context(run_azurite())
        except (AzuriteNotInstalledError, AzuriteStartError) as error:
            failure = str(error)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        yield connection


@dataclass
class StoreLocation:
    """One test's own state: an SQLite file, or a unique table prefix in Azurite."""

    backend: str
    location: str
    prefix: str
    opened: list[Store] = field(default_factory=list)

    def open(self, *, clock: Clock = utc_now) -> Store:
        """Another store on the same state, as a second process would open it. Closed after the test."""
        store = open_store(self.location, prefix=self.prefix, clock=clock)
        self.opened.append(store)
        return store

    async def has_state(self) -> bool:
        """Whether anything exists yet: the SQLite file (or its folder), or a table with this prefix."""
        if self.backend == "sqlite":
            folder = Path(self.location).parent
            return await asyncio.to_thread(folder.exists)
        async with TableServiceClient.from_connection_string(self.location) as service:
            return any([table.name.startswith(self.prefix) async for table in service.list_tables()])


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("azure-tables", id="azure-tables", marks=pytest.mark.azurite),
    ]
)
async def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreLocation]:
    """Every test runs once on SQLite and once on Azurite, each time on empty, isolated state."""
    sqlite_file = str(tmp_path / "state" / "state.db")  # a folder that does not exist yet
    location = sqlite_file if request.param == "sqlite" else request.getfixturevalue("azurite")
    stores = StoreLocation(request.param, location, prefix="t" + uuid.uuid4().hex[:16])
    yield stores
    for store in stores.opened:
        await store.close()


@pytest.fixture
def store(store_location: StoreLocation) -> Store:
    """An empty store of the parametrised backend (ids `sqlite` and `azure-tables`)."""
    return store_location.open()


# For the few engine tests too big to run twice within the suite's time budget (each says why): the same
# steps at a smaller size run on both backends elsewhere.
sqlite_only = pytest.mark.parametrize("store_location", [pytest.param("sqlite", id="sqlite")], indirect=True)
